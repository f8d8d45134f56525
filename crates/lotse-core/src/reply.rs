//! What a conversation turn produces, for every channel: the [`Reply`] and its parts. The JSON
//! form of these types is the public API contract (snake_case names, lower-case enums).

use serde::{Deserialize, Serialize};

/// The id of a conversation: random, unguessable, URL-safe.
pub type ConversationId = String;

/// Where a conversation takes place; channels differ only in how a reply is rendered (the
/// phone gets no URLs, the kiosk no external links).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    #[default]
    Web,
    App,
    Kiosk,
    Phone,
}

impl Channel {
    /// Whether web addresses may appear in reply text on this channel.
    pub fn shows_urls(self) -> bool {
        matches!(self, Channel::Web | Channel::App)
    }
}

/// Reply language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    #[default]
    De,
    En,
}

/// What kind of reply this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplyKind {
    Answer,
    Clarify,
    OutOfScope,
    Handoff,
    Greeting,
    Smalltalk,
}

/// A record a reply is based on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    /// The knowledge id (imported records keep their source system's id).
    pub id: String,
    pub title: String,
    pub url: String,
}

/// Where a handed-over conversation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HandoffState {
    Queued,
    CallbackOffered,
    Connected,
    Closed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandoffInfo {
    pub state: HandoffState,
    /// Position in the staff queue, when queued.
    pub position: Option<u32>,
}

/// `Reply::generated_by` of a reply written by the deterministic record composer.
pub const COMPOSER: &str = "composer";

fn composer() -> String {
    COMPOSER.to_string()
}

/// One reply of the assistant. `text` is plain text: clients must escape it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    pub kind: ReplyKind,
    pub text: String,
    pub lang: Lang,
    pub sources: Vec<Source>,
    pub handoff: Option<HandoffInfo>,
    pub suggestions: Vec<String>,
    /// How the text was made: `"composer"` (copied from the records) or `"llm:<model>"`
    /// (generated, every sentence verified against the records).
    #[serde(default = "composer")]
    pub generated_by: String,
}

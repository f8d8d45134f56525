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
    /// When the record's facts were read from their source (YYYY-MM-DD); shown as "Stand".
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub as_of: String,
}

/// Where a handed-over conversation stands, as the citizen sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum HandoffState {
    /// Waiting for staff (position and estimate in [`HandoffInfo`]).
    #[default]
    Queued,
    /// Staff are not reachable now: a callback is offered (see [`CallbackOffer`]), or, without
    /// a staff queue, the city's general contact.
    CallbackOffered,
    /// The callback request is stored and will be handled in the confirmed slot.
    CallbackScheduled,
    /// A member of staff has taken the conversation; the assistant is silent.
    Connected,
    /// Staff closed the conversation or handed it back to the assistant.
    Closed,
}

/// What a citizen is told about a handoff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct HandoffInfo {
    pub state: HandoffState,
    /// Position in the staff queue (1 = next), when queued.
    pub position: Option<u32>,
    /// An honest estimate of the wait in minutes, only when recent waits allow one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_minutes: Option<u32>,
    /// The team that takes the conversation (`Bürgerservice`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// The staff member's display name, once connected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub staff: Option<String>,
    /// Outside staff hours: the callback on offer, or the one confirmed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback: Option<CallbackOffer>,
}

/// A callback outside staff hours: when it will be handled and what the citizen consents to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallbackOffer {
    /// The slot in words (`Montag, 7. Dezember, 08:00–18:00 Uhr`).
    pub slot: String,
    /// The slot's start, RFC 3339.
    pub slot_start: String,
    /// The consent the citizen gives by sending contact data (shown next to the form).
    pub consent: String,
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

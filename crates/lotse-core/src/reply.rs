//! What a conversation turn produces, for every channel: the [`Reply`] and its parts. The JSON
//! form of these types is the public API contract (snake_case names, lower-case enums).

use serde::{Deserialize, Serialize};

crate::string_id!(
    /// The id of a conversation: random, unguessable, URL-safe.
    ConversationId
);

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

/// How a reply's text was made. On the wire (the API, the widget, the reports) a string:
/// `"composer"` or `"llm:<model>"`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum GeneratedBy {
    /// Copied from the records by the deterministic composer.
    #[default]
    Composer,
    /// Written by the named language model, every sentence verified against the records.
    Model(String),
}

impl GeneratedBy {
    pub fn is_composer(&self) -> bool {
        *self == GeneratedBy::Composer
    }
}

impl std::fmt::Display for GeneratedBy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GeneratedBy::Composer => f.write_str("composer"),
            GeneratedBy::Model(name) => write!(f, "llm:{name}"),
        }
    }
}

impl From<GeneratedBy> for String {
    fn from(g: GeneratedBy) -> String {
        g.to_string()
    }
}

impl TryFrom<String> for GeneratedBy {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        if s == "composer" {
            return Ok(GeneratedBy::Composer);
        }
        match s.strip_prefix("llm:") {
            Some(name) => Ok(GeneratedBy::Model(name.to_string())),
            _ => Err(format!("generated_by is \"composer\" or \"llm:<model>\", not {s:?}")),
        }
    }
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
    /// How the text was made.
    #[serde(default)]
    pub generated_by: GeneratedBy,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn how_a_reply_was_made_is_a_string_on_the_wire() {
        for (g, wire) in [
            (GeneratedBy::Composer, "\"composer\""),
            (GeneratedBy::Model("qwen2.5".into()), "\"llm:qwen2.5\""),
            // A remote model configured without a name.
            (GeneratedBy::Model(String::new()), "\"llm:\""),
        ] {
            assert_eq!(serde_json::to_string(&g).unwrap(), wire);
            assert_eq!(serde_json::from_str::<GeneratedBy>(wire).unwrap(), g);
        }
        for bad in ["\"\"", "\"model\"", "\"Composer\""] {
            assert!(serde_json::from_str::<GeneratedBy>(bad).is_err(), "{bad}");
        }
    }
}

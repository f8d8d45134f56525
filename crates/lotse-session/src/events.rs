//! What a conversation's participants are told, live: the citizen's channel gets
//! [`ConversationEvent`]s (the web's server-sent events, the phone), staff consoles get
//! [`StaffEvent`]s. Both are closed enums: a new channel or plug-in subscribes, it adds nothing.

use lotse_core::{ConversationId, HandoffInfo, Reply};
use lotse_handoff::{Author, HandoffId};
use serde::Serialize;

/// What a conversation's stream carries.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ConversationEvent {
    /// The citizen's message, as received (cleaned).
    Message { text: String },
    /// The grounded part of a reply that the language model is writing: shown at once.
    Facts { reply: Reply },
    /// A verified sentence of the generated text.
    Delta { text: String },
    /// A reply of the assistant (final: it replaces the facts and deltas before it).
    Reply { reply: Reply },
    /// Where the handoff stands now, with the words to show or say.
    Handoff { handoff: HandoffInfo, text: String },
    /// A staff member's message.
    Staff { name: String, text: String },
    /// Staff started or stopped typing.
    Typing { typing: bool },
}

impl ConversationEvent {
    /// The event's name (the `type` tag).
    pub fn name(&self) -> &'static str {
        match self {
            ConversationEvent::Message { .. } => "message",
            ConversationEvent::Facts { .. } => "facts",
            ConversationEvent::Delta { .. } => "delta",
            ConversationEvent::Reply { .. } => "reply",
            ConversationEvent::Handoff { .. } => "handoff",
            ConversationEvent::Staff { .. } => "staff",
            ConversationEvent::Typing { .. } => "typing",
        }
    }
}

/// What staff consoles are told, live.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StaffEvent {
    /// The queue changed (arrival, claim, release, close): fetch it again.
    Queue,
    /// New transcript lines of a conversation (fetch them if it is open).
    Transcript {
        conversation_id: ConversationId,
    },
    /// A line in a handed-over conversation.
    Message {
        handoff_id: HandoffId,
        author: Author,
        staff: Option<String>,
        text: String,
        at_ms: i64,
    },
    Typing {
        handoff_id: HandoffId,
        who: Author,
        typing: bool,
    },
    /// A conversation ended (closed, abandoned, deleted by the citizen).
    Closed {
        handoff_id: HandoffId,
    },
    /// The callback list changed.
    Callbacks,
}

//! What can go wrong in a conversation, for the channel to tell its client (the web maps each
//! to a status code). Never carries personal data.

use lotse_handoff::ContactKind;
use lotse_handoff::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// No such conversation (never started, expired, or deleted).
    #[error("no such conversation")]
    UnknownConversation,
    /// No staff desk is configured: no handoffs, no callbacks.
    #[error("no staff desk is configured")]
    NoStaff,
    #[error("the message is empty")]
    EmptyMessage,
    #[error("a callback needs consent")]
    ConsentRequired,
    #[error("not a contact we can reach")]
    InvalidContact(ContactKind),
    /// The team has no staff hours planned: no callback window.
    #[error("no staff hours are planned for this team")]
    NoSchedule,
    /// A staff member acted on a conversation another one has (or nobody claimed).
    #[error("claim this conversation first")]
    NotYours,
    /// The handoff store (its message never reaches a citizen).
    #[error("handoff store: {0}")]
    Store(#[from] StoreError),
    /// A turn failed inside (a panic on the blocking pool); logged where it happened.
    #[error("the turn failed")]
    Internal,
    /// As many turns are in flight as the server takes: try again in a moment.
    #[error("too many turns in flight")]
    Busy,
    /// The conversation has as many messages as one keeps: start a new one.
    #[error("the conversation is full")]
    ConversationFull,
}

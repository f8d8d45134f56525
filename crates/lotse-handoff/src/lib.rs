//! The staff handoff: when the assistant cannot help, or the citizen asks for a person, the
//! conversation goes to staff — within their reachable hours into a persistent queue, outside
//! them as a callback request.
//!
//! - [`schedule`]: teams, weekly hours, the configured state's public holidays and exceptions; routing.
//! - [`store`]: the queue (waiting → claimed → active → closed / abandoned), transcripts,
//!   callbacks (open → scheduled → done), staff accounts and sessions, retention; SQLite or
//!   PostgreSQL through sqlx.
//! - [`desk`]: the staff desk a channel asks after the engine decided on a person
//!   ([`lotse_dialog::Conversation::requested_handoff`]): it queues or offers a callback.
//! - [`auth`]: argon2 password hashes and session tokens.
//! - [`log`]: the conversation event log the plug-ins read, and their positions in it.

pub mod auth;
pub mod desk;
pub mod log;
pub mod schedule;
pub mod store;

pub use desk::{Desk, HandoffConfig};
pub use schedule::{Exception, Schedule, Team, Window};
pub use store::{
    AuditEntry, Author, Callback, CallbackId, CallbackState, ContactKind, Handoff, HandoffId, Message, NewCallback,
    Outcome, QueueState, Role, Store,
};

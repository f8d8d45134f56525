//! The conversation engine: turns a citizen's message into a grounded, sourced [`Reply`] for any
//! channel. It understands the message (`understand`), decides between answering, asking back,
//! declining and handing over (`engine`), composes answers from service records (`compose`), and
//! checks that every fact in a reply comes from a record (`verify`).
//!
//! Knows nothing of HTTP, SIP or audio. Threading: [`Engine`] is `Send + Sync` and shared; each
//! [`Conversation`] is owned by one caller at a time (the web layer keeps one per conversation id).
//! A turn is CPU work of well under a millisecond to a few tens of milliseconds (with embedding
//! re-ranking); call it from a blocking-tolerant context.

pub mod assist;
pub mod compose;
mod engine;
pub mod offices;
pub mod passages;
pub mod understand;
pub mod verify;

pub use assist::{LlmMode, LlmStats};
pub use compose::{Composer, Grounding, RecordComposer, Request};
pub use engine::{
    Conversation, Engine, EngineConfig, Event, HandoffReason, Partial, TurnRequest, handoff_text, no_staff,
};
pub use lotse_search::Retrieval;

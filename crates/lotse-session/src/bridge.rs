//! What a SIP bridge on another node and the Lotse server say to each other (the server's side
//! is `lotse-web`'s `/bridge/v1/…`, the bridge's `lotse_app::bridge::connect`).
//!
//! The bridge runs recognition, synthesis and the engine for its calls; the server owns the
//! conversations and the staff handoff. A call starts a conversation of channel `phone` here,
//! each turn the caller heard is committed back (the conversation as the bridge's engine left
//! it, and the reply), and the session runs the handoff workflow on it as for the web: the
//! console shows the call, a person asked for is queued or offered a callback. Work the bridge
//! began at a caller's pause and then dropped never reaches the server.
//!
//! A conversation's topic is an index into the knowledge: both sides must have loaded the same
//! one. Each request carries the bridge's [`fingerprint`]; the server refuses another (409).

use lotse_core::{CallbackOffer, ConversationId, Lang, Reply};
use lotse_dialog::Conversation;
use lotse_knowledge::KnowledgeBase;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The routes' common prefix.
pub const PREFIX: &str = "/bridge/v1";

/// The shortest bridge token: a guessable one would open every call's conversation.
pub const MIN_TOKEN: usize = 32;

/// What identifies a knowledge base's indices: its services' and offices' ids in order.
pub fn fingerprint(kb: &KnowledgeBase) -> String {
    let mut hash = Sha256::new();
    for s in &kb.services {
        hash.update(s.id.as_bytes());
        hash.update([0]);
    }
    hash.update([1]);
    for o in &kb.offices {
        hash.update(o.id.as_bytes());
        hash.update([0]);
    }
    hash.finalize().iter().take(12).map(|b| format!("{b:02x}")).collect()
}

/// `GET /bridge/v1/hello`: the server's knowledge, for a bridge to check at its start.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Hello {
    pub knowledge: String,
}

/// `POST /bridge/v1/calls`: a call was answered.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Start {
    pub lang: Lang,
    pub knowledge: String,
}

/// The call's conversation in the server's sessions, and the greeting.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Started {
    pub id: ConversationId,
    pub greeting: Reply,
    pub conversation: Conversation,
    /// The server hears votes by key: the call asks after its last answer whether it helped.
    #[serde(default)]
    pub votes: bool,
}

/// `POST /bridge/v1/calls/{id}/vote`: the caller's key on the last answer (1 yes, 2 no).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Vote {
    pub helpful: bool,
}

/// The number of the answer the vote went to, if the call had one.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Voted {
    pub turn: Option<u32>,
}

/// `POST /bridge/v1/calls/{id}/commit`: a turn the caller heard (or began to hear).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Commit {
    pub conversation: Conversation,
    pub reply: Reply,
    pub knowledge: String,
}

/// The reply to give (the staff queue's words where a person was asked for) and the
/// conversation as the session keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Committed {
    pub reply: Reply,
    pub conversation: Conversation,
}

/// `POST /bridge/v1/calls/{id}/callback`: the caller agreed (in words or by key) to be called
/// back on this number.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Callback {
    pub phone: String,
}

/// `GET /bridge/v1/calls/{id}/callback-offer`: the callback the call's team can offer now.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Offer {
    pub offer: Option<CallbackOffer>,
}

/// `GET /bridge/v1/consent/{lang}`: what a caller is asked before a callback is stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Consent {
    pub text: String,
}

/// `GET /bridge/v1/teams/{team}/transfer`: where a team's calls are put through, if anywhere.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Transfer {
    pub target: Option<String>,
}

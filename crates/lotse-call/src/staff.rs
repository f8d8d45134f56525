//! The staff queue a call reaches, where the call's conversation lives: the server's sessions
//! in this process ([`Staff::new`], [`Staff::on`]), or any other [`Queue`] ([`Staff::with`]):
//! `lotse_app::bridge` reaches a Lotse server on another node over its bridge API
//! (`lotse_session::bridge`), so that this crate itself does no I/O. The call answers on a copy of the
//! conversation (work begun at a pause may be void); what it plays is committed here, and a
//! person requested (key 0 or in words) is queued within staff hours or offered a callback
//! outside them.

use std::sync::Arc;

use lotse_core::{CallbackOffer, Channel, ConversationId, Lang, Reply};
use lotse_dialog::Conversation;
use lotse_session::Sessions;
use lotse_session::bridge::{Committed, Started};

/// The staff queue failed (unreachable, refused, a store error). Names no caller and nothing
/// they said.
#[derive(Debug, thiserror::Error)]
#[error("staff queue: {0}")]
pub struct QueueError(pub String);

impl From<lotse_session::SessionError> for QueueError {
    fn from(e: lotse_session::SessionError) -> QueueError {
        QueueError(e.to_string())
    }
}

/// What a call asks of the place its conversation lives. Its methods block the call's thread
/// (which is not an async one) until the answer is there.
pub trait Queue: Send + Sync {
    /// Starts the call's conversation (channel `phone`): its id, the greeting, the conversation.
    fn start(&self, lang: Lang) -> Result<Started, QueueError>;
    /// Takes back the conversation the call answered on a copy, with the reply it played;
    /// returns the reply to give (the queue's words where a person was asked for) and the
    /// conversation as it is kept.
    fn commit(&self, id: &ConversationId, conversation: Conversation, reply: Reply) -> Result<Committed, QueueError>;
    /// The caller was put through to staff by the line: they leave the queue.
    fn put_through(&self, id: &ConversationId) -> Result<(), QueueError>;
    /// Stores a callback to `phone`, which the caller agreed to (in words or by key).
    fn callback(&self, id: &ConversationId, phone: &str) -> Result<(), QueueError>;
    /// The callback the call's team can offer now, if any.
    fn callback_offer(&self, id: &ConversationId, conversation: &Conversation) -> Option<CallbackOffer>;
    /// What a caller is asked before a callback is stored.
    fn phone_consent(&self, lang: Lang) -> Option<String>;
    /// Where a team's calls are put through, if anywhere.
    fn transfer_target(&self, team: &str) -> Option<String>;
    /// The caller's key on the conversation's last answer (1: it helped, 2: it did not); the
    /// number of the answer it went to, if there was one.
    fn vote(&self, id: &ConversationId, helpful: bool) -> Result<Option<u32>, QueueError>;
}

/// The staff queue of one call, or shared by the calls of a bridge (it is cheap to clone).
#[derive(Clone)]
pub struct Staff {
    queue: Arc<dyn Queue>,
}

impl Staff {
    /// A staff line with a runtime of its own.
    pub fn new(sessions: Arc<Sessions>, runtime: tokio::runtime::Runtime) -> Staff {
        let handle = runtime.handle().clone();
        Staff { queue: Arc::new(Local { sessions, handle, owned: Some(runtime) }) }
    }

    /// A staff line on a server's runtime (the call's thread is not one of its workers).
    pub fn on(sessions: Arc<Sessions>, handle: tokio::runtime::Handle) -> Staff {
        Staff { queue: Arc::new(Local { sessions, handle, owned: None }) }
    }

    /// Another staff queue: a Lotse server on another node (`lotse_app::bridge`).
    pub fn with(queue: Arc<dyn Queue>) -> Staff {
        Staff { queue }
    }

    pub(crate) fn start(&self, lang: Lang) -> Result<Started, QueueError> {
        self.queue.start(lang)
    }

    pub(crate) fn commit(
        &self,
        id: &ConversationId,
        conversation: Conversation,
        reply: Reply,
    ) -> Result<Committed, QueueError> {
        self.queue.commit(id, conversation, reply)
    }

    pub(crate) fn put_through(&self, id: &ConversationId) -> Result<(), QueueError> {
        self.queue.put_through(id)
    }

    pub(crate) fn callback(&self, id: &ConversationId, phone: &str) -> Result<(), QueueError> {
        self.queue.callback(id, phone)
    }

    pub(crate) fn vote(&self, id: &ConversationId, helpful: bool) -> Result<Option<u32>, QueueError> {
        self.queue.vote(id, helpful)
    }

    pub(crate) fn callback_offer(&self, id: &ConversationId, conversation: &Conversation) -> Option<CallbackOffer> {
        self.queue.callback_offer(id, conversation)
    }

    pub(crate) fn phone_consent(&self, lang: Lang) -> Option<String> {
        self.queue.phone_consent(lang)
    }

    /// Where a team's calls are put through (the staff schedule as it is now: the console
    /// edits it); none: the caller stays with the bot.
    pub fn transfer_target(&self, team: &str) -> Option<String> {
        self.queue.transfer_target(team)
    }
}

/// The sessions of this process.
struct Local {
    sessions: Arc<Sessions>,
    /// The runtime the staff queue runs on (owned by a one-call command, shared on a server).
    handle: tokio::runtime::Handle,
    owned: Option<tokio::runtime::Runtime>,
}

impl Local {
    fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        // A runtime of one's own (a current-thread one) is driven only by its own block_on;
        // a server's runtime runs its IO and timers on its workers, so its handle will do.
        match &self.owned {
            Some(runtime) => runtime.block_on(f),
            None => self.handle.block_on(f),
        }
    }
}

impl Queue for Local {
    fn start(&self, lang: Lang) -> Result<Started, QueueError> {
        let (id, greeting) = self.sessions.start(Channel::Phone, lang);
        let conversation = self.block_on(self.sessions.snapshot(&id))?;
        Ok(Started { id, greeting, conversation, votes: self.sessions.hears_votes() })
    }

    fn commit(&self, id: &ConversationId, conversation: Conversation, reply: Reply) -> Result<Committed, QueueError> {
        let reply = self.block_on(self.sessions.commit(id, conversation, reply))?;
        let conversation = self.block_on(self.sessions.snapshot(id))?;
        Ok(Committed { reply, conversation })
    }

    fn put_through(&self, id: &ConversationId) -> Result<(), QueueError> {
        Ok(self.block_on(self.sessions.put_through(id))?)
    }

    fn callback(&self, id: &ConversationId, phone: &str) -> Result<(), QueueError> {
        let request = lotse_session::CallbackRequest {
            contact_kind: lotse_handoff::ContactKind::Phone,
            contact: phone.to_string(),
            name: None,
            consent: true,
        };
        self.block_on(self.sessions.callback(id, request))?;
        Ok(())
    }

    fn callback_offer(&self, _: &ConversationId, conversation: &Conversation) -> Option<CallbackOffer> {
        self.sessions.desk()?.callback_offer(conversation)
    }

    fn phone_consent(&self, lang: Lang) -> Option<String> {
        Some(self.sessions.desk()?.phone_consent(lang))
    }

    fn transfer_target(&self, team: &str) -> Option<String> {
        self.sessions.desk()?.transfer_target(team)
    }

    fn vote(&self, id: &ConversationId, helpful: bool) -> Result<Option<u32>, QueueError> {
        Ok(self.block_on(self.sessions.vote_last_answer(id, helpful))?)
    }
}

//! A conversation's state and one turn's request: what the engine reads and appends to.

#[allow(unused_imports)]
use super::*;

/// What a streaming caller receives during a turn, before the final [`Reply`].
#[derive(Debug)]
pub enum Partial<'a> {
    /// The grounded facts, at once: kind, sources and the composer's text, before the model
    /// writes. A client shows them while the generated answer streams.
    Facts(&'a Reply),
    /// A verified sentence of the generated answer.
    Text(&'a str),
}

/// One turn as a channel asks for it: the message and how to run it. Built with
/// [`TurnRequest::new`] and the setters.
pub struct TurnRequest<'s> {
    /// The citizen's message as received (it is cleaned here).
    pub text: &'s str,
    /// Plain language (Einfache Sprache) for this and the following turns.
    pub plain: bool,
    /// A fixed moment (tests and evaluations); the clock otherwise.
    pub at: Option<(Timestamp, DateTime)>,
    /// The retrieval stages the turn may use; a loaded server asks for [`Retrieval::Lexical`].
    pub retrieval: Retrieval,
    /// Receives the facts and the generated sentences as they come.
    pub sink: Option<&'s mut dyn FnMut(Partial<'_>)>,
    /// Stops the model's part of the turn from another thread (the client went away, the
    /// caller spoke over the answer); the turn then ends with the composer's answer.
    pub cancel: lotse_llm::Cancel,
}

impl<'s> TurnRequest<'s> {
    pub fn new(text: &'s str) -> TurnRequest<'s> {
        TurnRequest {
            text,
            plain: false,
            at: None,
            retrieval: Retrieval::Full,
            sink: None,
            cancel: lotse_llm::Cancel::default(),
        }
    }

    pub fn plain(mut self, plain: bool) -> Self {
        self.plain = plain;
        self
    }

    pub fn at(mut self, at: Timestamp, now: DateTime) -> Self {
        self.at = Some((at, now));
        self
    }

    pub fn retrieval(mut self, retrieval: Retrieval) -> Self {
        self.retrieval = retrieval;
        self
    }

    pub fn sink(mut self, sink: &'s mut dyn FnMut(Partial<'_>)) -> Self {
        self.sink = Some(sink);
        self
    }

    pub fn cancel(mut self, cancel: lotse_llm::Cancel) -> Self {
        self.cancel = cancel;
        self
    }
}

/// The state of one turn, passed down the decision.
pub(super) struct Turn<'s> {
    pub(super) at: Timestamp,
    pub(super) now: DateTime,
    pub(super) retrieval: Retrieval,
    pub(super) sink: Option<&'s mut dyn FnMut(Partial<'_>)>,
    pub(super) cancel: lotse_llm::Cancel,
    /// The citizen's message, cleaned and without markup.
    pub(super) question: String,
    /// The message before it, for follow-ups.
    pub(super) previous: Option<String>,
    /// The service answered is new to the conversation and the message told a situation: the
    /// answer says what the service is, even when it answers one aspect.
    pub(super) introduce: bool,
}

/// Something that happened in a conversation. The log is append-only; the staff console,
/// analytics and plug-ins read it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
// One event per turn: the size of the reply variant does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Event {
    MessageIn { at: Timestamp, text: String },
    ReplyOut { at: Timestamp, reply: Reply },
    HandoffRequested { at: Timestamp, reason: HandoffReason },
}

/// Why a conversation is handed to staff.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum HandoffReason {
    Asked,
    RepeatedFailure,
}

/// The state of one conversation.
/// Serialisable, so that a SIP bridge on another node can answer on a copy and hand it back
/// (`lotse_session::bridge`); its indices point into the knowledge both sides loaded.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Conversation {
    pub id: ConversationId,
    pub channel: Channel,
    pub lang: Lang,
    /// The citizen chose the language explicitly; detection no longer switches it.
    pub lang_chosen: bool,
    pub plain: bool,
    /// The service under discussion (index into the knowledge base), for follow-ups.
    pub topic: Option<usize>,
    /// The office under discussion after a question about the office itself ("Wann hat das
    /// Standesamt geöffnet?"), for follow-ups ("Und montags?").
    pub office: Option<usize>,
    /// What the last answer was asked for, for follow-ups that only change the condition
    /// ("Was kostet ein Reisepass?" – "Und für mein Kind? Es ist 8.").
    pub asked: Vec<Aspect>,
    /// Questions in a row the engine could not answer.
    pub failures: u8,
    /// The one service the bot asked about, on the phone ("Geht es um …?") or offered on the
    /// web ("Meinen Sie: …?"): the next message may say yes or no to it.
    pub confirm: Option<Confirm>,
    pub events: Vec<Event>,
    /// How sure the search of the last message was of its best service (0–1), when a search
    /// decided the reply: for the figures, never shown to the citizen.
    #[serde(default)]
    pub confidence: Option<f32>,
}

/// A service the bot asked about because it was not sure it had heard (or read) the question
/// right.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Confirm {
    /// Index into the knowledge base's services.
    pub service: usize,
    /// The question as it was recognised, for the facts it asked for.
    pub question: String,
    /// The conversation's events when it was asked (the question included): a yes counts only
    /// as the very next message, not after messages relayed to staff in between.
    pub asked_at: usize,
}

impl Confirm {
    /// Whether `conv`'s last message is the one right after the question that asked this.
    pub fn is_answered_by_last_message(&self, conv: &Conversation) -> bool {
        conv.events.len() == self.asked_at + 2
    }
}

impl Conversation {
    /// The handoff the last turn asked for: its reason, when the last message led to one.
    pub fn requested_handoff(&self) -> Option<HandoffReason> {
        self.events.iter().rev().take_while(|e| !matches!(e, Event::MessageIn { .. })).find_map(|e| match e {
            Event::HandoffRequested { reason, .. } => Some(*reason),
            _ => None,
        })
    }

    pub fn new(id: ConversationId, channel: Channel, lang: Lang) -> Conversation {
        Conversation {
            id,
            channel,
            lang,
            lang_chosen: false,
            plain: false,
            topic: None,
            office: None,
            asked: Vec::new(),
            failures: 0,
            confirm: None,
            events: Vec::new(),
            confidence: None,
        }
    }

    /// The caller interrupted the last reply on the phone: the record keeps what they actually
    /// heard (the words played before the barge-in, "…" when none), not what was planned.
    pub fn record_heard(&mut self, heard: &str) {
        if let Some(Event::ReplyOut { reply, .. }) =
            self.events.iter_mut().rev().find(|e| matches!(e, Event::ReplyOut { .. }))
        {
            reply.text = if heard.trim().is_empty() { "…".to_string() } else { heard.to_string() };
        }
    }
}

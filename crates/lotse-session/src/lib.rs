//! The live conversations of every channel: the web's chat, the phone, the staff console. It
//! knows no HTTP, SIP or audio; the channels translate their clients' requests into calls here
//! and map [`SessionError`] to what their clients understand.
//!
//! - A bounded registry ([`Sessions`]): at most `max_conversations`, idle ones expire, a
//!   handed-over conversation the process forgot (a restart) is restored from the store.
//! - One lock per conversation: its turns run in order, different conversations in parallel.
//! - [`Sessions::turn`]: the engine answers on the blocking pool (with cancellation that reaches
//!   the generator), or the message is relayed to the staff member who has the conversation.
//!   Load shedding: beyond `busy_turns` turns in flight, new turns skip the costly retrieval.
//! - Events ([`ConversationEvent`], [`StaffEvent`]) that channels subscribe to.
//! - The handoff workflow: the engine decides on a person, the session asks the desk (never the
//!   engine), stores the transcript, relays, books callbacks, deletes, and sweeps (abandonment,
//!   absent staff, retention) under a cancellation token. Only this crate writes a
//!   conversation's lines to the handoff store.

pub mod bridge;
mod error;
mod events;
mod handoff;
mod relay;
mod staff;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lotse_core::{Channel, ConversationId, Lang, Reply};
use lotse_dialog::{Conversation, Engine, Partial, Retrieval, TurnRequest};
use lotse_handoff::Desk;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use error::SessionError;
pub use events::{ConversationEvent, EventLog, KEPT_EVENTS, StaffEvent};
pub use handoff::{CallbackOutcome, CallbackRequest, Line, Transcript};
pub use lotse_llm::Cancel;
pub use staff::{Presence, Suggestion};

/// Bounds of the registry and of the work it admits.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_conversations: usize,
    /// A conversation with no message for this long is forgotten.
    pub idle_timeout: Duration,
    /// Turns in flight from which new turns skip the costly retrieval stage (embedding
    /// re-ranking) instead of queueing behind it: on 2 cores a few turns at once keep latency.
    pub busy_turns: usize,
    /// Turns answered at once at most; one more waits for a place (without holding a thread)
    /// for up to `admission_wait`, and is then refused ([`SessionError::Busy`]).
    pub max_turns: usize,
    pub admission_wait: Duration,
    /// Events a conversation keeps at most (about two a turn): its memory is bounded, and a
    /// conversation this long is closed for messages (the citizen starts a new one).
    pub max_events: usize,
    /// How long a turn may take: then its cancel is raised and the composer's answer is
    /// given (the language model stops; the facts were ready long before).
    pub turn_deadline: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_conversations: 50_000,
            idle_timeout: Duration::from_secs(30 * 60),
            busy_turns: 2,
            max_turns: 32,
            admission_wait: Duration::from_secs(5),
            max_events: 400,
            turn_deadline: Duration::from_secs(12),
        }
    }
}

/// A conversation and how much of its event log is in the handoff store.
pub(crate) struct Conv {
    pub(crate) c: Conversation,
    /// Events already written to the store's transcript.
    pub(crate) synced: usize,
    /// It has been handed to staff (or a callback was requested): its lines go to the store.
    pub(crate) handed_off: bool,
    /// The citizen deleted it: whoever still holds it writes nothing more.
    pub(crate) deleted: bool,
    /// The citizen's messages before this process held the conversation (restored after a
    /// restart): the answers' numbers go on from there.
    pub(crate) turn_base: u32,
}

impl Conv {
    /// The citizen's messages the assistant has answered: the number of the latest answer.
    pub(crate) fn answered(&self) -> u32 {
        let n = self.c.events.iter().filter(|e| matches!(e, lotse_dialog::Event::MessageIn { .. })).count();
        self.turn_base.saturating_add(u32::try_from(n).unwrap_or(u32::MAX))
    }
}

/// The conversation's lock, unless the citizen deleted it meanwhile.
pub(crate) async fn lock_live(conv: &Shared) -> Result<tokio::sync::MutexGuard<'_, Conv>, SessionError> {
    let guard = conv.lock().await;
    if guard.deleted { Err(SessionError::UnknownConversation) } else { Ok(guard) }
}

pub(crate) type Shared = Arc<tokio::sync::Mutex<Conv>>;

pub(crate) struct Entry {
    conversation: Shared,
    events: EventLog,
    last_active: Instant,
}

/// A client's subscription to a conversation's events ([`Sessions::subscribe`]).
pub struct Subscription {
    /// Where the handoff stands, when the conversation is handed over (no number).
    pub current: Option<ConversationEvent>,
    /// What the client missed since the number it gave, in order.
    pub missed: Vec<(u64, ConversationEvent)>,
    /// Everything from now on.
    pub live: broadcast::Receiver<(u64, ConversationEvent)>,
}

/// One message of the citizen (or caller) for [`Sessions::turn`].
pub struct Turn {
    pub text: String,
    /// Answer in Einfache Sprache.
    pub plain: bool,
    /// The language the citizen chose; detection no longer changes it.
    pub lang: Option<Lang>,
    /// Raised by the channel (the client went away, the caller barged in): the generator stops
    /// and the turn ends with the composer's answer. Also raised when the turn's future is dropped.
    pub cancel: Cancel,
}

impl Turn {
    pub fn new(text: impl Into<String>) -> Turn {
        Turn { text: text.into(), plain: false, lang: None, cancel: Cancel::default() }
    }

    pub fn plain(mut self, plain: bool) -> Turn {
        self.plain = plain;
        self
    }

    pub fn lang(mut self, lang: Option<Lang>) -> Turn {
        self.lang = lang;
        self
    }

    pub fn cancel(mut self, cancel: Cancel) -> Turn {
        self.cancel = cancel;
        self
    }
}

/// What came of a turn.
#[derive(Debug, Clone)]
#[expect(clippy::large_enum_variant, reason = "one a turn, moved once: boxing the reply buys nothing")]
pub enum TurnOutcome {
    /// The assistant answered; `lexical`: retrieval skipped its costly stage (load shedding);
    /// `turn`: the answer's number in the conversation (from 1), as the plug-ins' log has it
    /// (a vote under the answer names it).
    Answered { reply: Reply, lexical: bool, turn: u32 },
    /// A member of staff has the conversation: the message went to them, the assistant is silent.
    Relayed,
}

/// The live conversations of this process.
pub struct Sessions {
    engine: Arc<Engine>,
    desk: Option<Desk>,
    limits: Limits,
    conversations: Mutex<HashMap<ConversationId, Entry>>,
    staff_events: broadcast::Sender<StaffEvent>,
    /// Open console streams per staff account: who is present.
    presence: Mutex<HashMap<String, usize>>,
    /// Turns being answered right now, for load shedding.
    in_flight: AtomicUsize,
    /// Places for turns being answered (`max_turns`).
    turns: Arc<tokio::sync::Semaphore>,
    /// Where what happens is logged for the plug-ins, once any is on.
    activity: std::sync::OnceLock<Activity>,
    /// A plug-in reads votes given by key ([`Sessions::hear_votes`]).
    votes: std::sync::atomic::AtomicBool,
    /// With a store other nodes share (PostgreSQL): the live events they must see too.
    relay: Option<relay::Relay>,
}

/// How long a reply waits for its event to be written ([`Sessions::note_before_reply`]).
const LOG_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

/// Appends `event` to the log and signals the readers.
async fn append(
    store: &lotse_handoff::Store,
    grew: &tokio::sync::Notify,
    conversation: &ConversationId,
    event: &lotse_handoff::log::Event,
) {
    match store.append_event(lotse_handoff::store::now_ms(), Some(conversation), event).await {
        // A permit is kept when the reader is busy: it looks again at once.
        Ok(_) => grew.notify_one(),
        Err(e) => tracing::warn!(error = %e, kind = event.kind(), "an event for the plug-ins was not logged"),
    }
}

/// The event log of the plug-ins ([`lotse_handoff::log`]) and the signal that it grew.
struct Activity {
    store: lotse_handoff::Store,
    grew: Arc<tokio::sync::Notify>,
    /// Whether declined questions are logged with their text (a plug-in reads them).
    questions: bool,
}

/// The longest unanswered question the log keeps, in characters.
pub const MAX_LOGGED_QUESTION: usize = 300;

impl Sessions {
    /// With a staff desk, handoffs are queued, relayed and shown to staff; without one the
    /// engine's handoff reply (the general contact) stands.
    pub fn new(engine: Arc<Engine>, desk: Option<Desk>, limits: Limits) -> Arc<Sessions> {
        let relay = desk.as_ref().filter(|d| d.store.is_shared()).map(|_| relay::Relay::new());
        Arc::new(Sessions {
            engine,
            desk,
            conversations: Mutex::new(HashMap::new()),
            staff_events: broadcast::channel(1024).0,
            presence: Mutex::new(HashMap::new()),
            in_flight: AtomicUsize::new(0),
            turns: Arc::new(tokio::sync::Semaphore::new(limits.max_turns)),
            votes: std::sync::atomic::AtomicBool::new(false),
            limits,
            activity: std::sync::OnceLock::new(),
            relay,
        })
    }

    /// Logs what happens in conversations (started, answered, relayed, handed over) to
    /// `store`'s event log from now on, for the plug-ins; the returned signal fires after each
    /// event is written. With `questions`, a question the assistant declined is logged too,
    /// redacted ([`lotse_handoff::log::Event::Unanswered`]): only while a plug-in reads it. A
    /// second call keeps the first log.
    pub fn record_activity(&self, store: lotse_handoff::Store, questions: bool) -> Arc<tokio::sync::Notify> {
        let activity =
            self.activity.get_or_init(|| Activity { store, grew: Arc::new(tokio::sync::Notify::new()), questions });
        activity.grew.clone()
    }

    /// A plug-in reads votes given by key (the feedback plug-in): calls ask for one after
    /// their last answer.
    pub fn hear_votes(&self) {
        self.votes.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether calls ask whether their last answer helped.
    pub fn hears_votes(&self) -> bool {
        self.votes.load(std::sync::atomic::Ordering::Relaxed) && self.activity.get().is_some()
    }

    /// A vote by key on the conversation's last answer (a reply of the kind `answer`): goes to
    /// the plug-ins' log with that answer's number, which it returns; none when the
    /// conversation had no answer or nobody hears votes.
    pub async fn vote_last_answer(
        self: &Arc<Self>,
        id: &ConversationId,
        helpful: bool,
    ) -> Result<Option<u32>, SessionError> {
        if !self.hears_votes() {
            return Ok(None);
        }
        let (shared, _) = self.entry(id).await?;
        let guard = lock_live(&shared).await?;
        let mut n = guard.turn_base;
        let mut last = None;
        for e in &guard.c.events {
            match e {
                lotse_dialog::Event::MessageIn { .. } => n = n.saturating_add(1),
                lotse_dialog::Event::ReplyOut { reply, .. } if reply.kind == lotse_core::ReplyKind::Answer && n > 0 => {
                    last = Some(n)
                }
                _ => {}
            }
        }
        let (channel, lang) = (guard.c.channel, Some(guard.c.lang));
        drop(guard);
        if let Some(turn) = last {
            self.note_before_reply(id, lotse_handoff::log::Event::Voted { channel, lang, turn, helpful }).await;
        }
        Ok(last)
    }

    /// Whether declined questions go to the log with their text.
    pub(crate) fn logs_questions(&self) -> bool {
        self.activity.get().is_some_and(|a| a.questions)
    }

    /// Appends an event to the plug-ins' log, off the caller's path: a conversation's start
    /// (its greeting answers nothing) does not wait for the write. A failed write is logged and
    /// lost (the figures miss one event; no citizen waits for it).
    pub(crate) fn note(&self, conversation: &ConversationId, event: lotse_handoff::log::Event) {
        self.spawn_append(conversation, event);
    }

    /// Appends an event to the plug-ins' log before the turn's reply leaves: what a citizen was
    /// answered is in the log when a crash follows the answer (a task of its own fell behind
    /// under load, and the answers it still held were lost with the process). The write runs
    /// on a task of its own all the same, so a client that goes away does not cancel it, and
    /// the reply waits for it at most [`LOG_WAIT`]: a store that is slow or away delays no
    /// answer longer. A failed write is logged; the reply goes out all the same.
    pub(crate) async fn note_before_reply(&self, conversation: &ConversationId, event: lotse_handoff::log::Event) {
        let Some(write) = self.spawn_append(conversation, event) else { return };
        if tokio::time::timeout(LOG_WAIT, write).await.is_err() {
            tracing::warn!("the plug-ins' event log is slow: an answer went out before its event was written");
        }
    }

    /// The write of an event to the plug-ins' log, on a task of its own; none while no plug-in
    /// is on or outside a runtime.
    fn spawn_append(
        &self,
        conversation: &ConversationId,
        event: lotse_handoff::log::Event,
    ) -> Option<tokio::task::JoinHandle<()>> {
        let activity = self.activity.get()?;
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let (store, grew, conversation) = (activity.store.clone(), activity.grew.clone(), conversation.clone());
        Some(runtime.spawn(async move { append(&store, &grew, &conversation, &event).await }))
    }

    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// The staff desk, for reading the queue, callbacks and settings.
    pub fn desk(&self) -> Option<&Desk> {
        self.desk.as_ref()
    }

    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ConversationId, Entry>> {
        // A panic while holding the lock leaves a consistent map (every change is one insert
        // or remove), so a poisoned lock is safe to use.
        self.conversations.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts a conversation: its id (random, its only key) and the greeting.
    pub fn start(&self, channel: Channel, lang: Lang) -> (ConversationId, Reply) {
        self.start_from(channel, lang, None)
    }

    /// [`Sessions::start`] for a citizen who came by a campaign (a poster's QR code): its code
    /// goes to the plug-ins' log with the start, nothing else of it is kept.
    pub fn start_from(&self, channel: Channel, lang: Lang, campaign: Option<String>) -> (ConversationId, Reply) {
        let id = ConversationId::new(uuid::Uuid::new_v4().simple().to_string());
        let (conversation, reply) = self.engine.start(id.clone(), channel, lang);
        let outside_hours = self.desk.as_ref().is_some_and(|d| !d.general_open(jiff::Timestamp::now()));
        self.note(&id, lotse_handoff::log::Event::Started { channel, lang, campaign, outside_hours });
        let mut map = self.lock();
        if map.len() >= self.limits.max_conversations {
            // Full: forget the conversation idle the longest (memory stays bounded).
            if let Some(oldest) = map.iter().min_by_key(|(_, e)| e.last_active).map(|(k, _)| k.clone()) {
                map.remove(&oldest);
            }
        }
        let conv = Conv { c: conversation, synced: 0, handed_off: false, deleted: false, turn_base: 0 };
        map.insert(
            id.clone(),
            Entry {
                conversation: Arc::new(tokio::sync::Mutex::new(conv)),
                events: EventLog::new(),
                last_active: Instant::now(),
            },
        );
        (id, reply)
    }

    /// Forgets conversations idle for longer than the limit; returns how many.
    pub fn expire_idle(&self) -> usize {
        let mut map = self.lock();
        let before = map.len();
        let timeout = self.limits.idle_timeout;
        // A citizen with a stream open (waiting for staff, say) is not idle: their events must
        // reach it. A handed-over conversation forgotten here comes back from the store when
        // staff write to it (`staff_reply`).
        map.retain(|_, e| e.last_active.elapsed() < timeout || e.events.receiver_count() > 0);
        before - map.len()
    }

    /// Conversations held in memory.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A copy of the conversation as it stands (a channel that prepares a reply ahead, like the
    /// phone at a pause, works on it and hands it back with [`Sessions::commit`]).
    pub async fn snapshot(self: &Arc<Self>, id: &ConversationId) -> Result<Conversation, SessionError> {
        let (conv, _) = self.entry(id).await?;
        let c = lock_live(&conv).await?.c.clone();
        Ok(c)
    }

    /// The citizen's message: relayed to staff while a staff member has the conversation,
    /// otherwise answered by the engine; then the handoff workflow (a person requested, lines
    /// stored). Subscribers hear the message, the partial reply and the reply.
    pub async fn turn(self: &Arc<Self>, id: &ConversationId, turn: Turn) -> Result<TurnOutcome, SessionError> {
        let text = lotse_dialog::understand::clean(&turn.text);
        if text.is_empty() {
            return Err(SessionError::EmptyMessage);
        }
        let (conversation, events) = self.entry(id).await?;
        if self.relay_if_with_staff(id, &conversation, &text).await? {
            events.send(ConversationEvent::Message { text: text.clone() });
            return Ok(TurnOutcome::Relayed);
        }
        // Holding the conversation's lock across the blocking turn keeps turns in order.
        let mut guard = conversation.lock_owned().await;
        if guard.deleted {
            return Err(SessionError::UnknownConversation);
        }
        if guard.c.events.len() >= self.limits.max_events {
            return Err(SessionError::ConversationFull);
        }
        // A place among the turns answered at once, taken in the conversation's turn: messages
        // queued behind their own conversation's turn hold none.
        let Ok(Ok(_place)) = tokio::time::timeout(self.limits.admission_wait, self.turns.clone().acquire_owned()).await
        else {
            return Err(SessionError::Busy);
        };
        let in_flight = self.in_flight.fetch_add(1, Ordering::SeqCst);
        let _flight = InFlight(self.clone());
        let busy = in_flight >= self.limits.busy_turns;
        events.send(ConversationEvent::Message { text: text.clone() });
        let stream = events.clone();
        // A channel that goes away drops this future: the model stops, the turn ends with the
        // composer's answer (the conversation stays consistent).
        let cancel_on_drop = CancelOnDrop(Some(turn.cancel.clone()));
        let engine = self.engine.clone();
        let (plain, lang, cancel) = (turn.plain, turn.lang, turn.cancel);
        // The deadline counts from here: waiting for the conversation's earlier turn is over.
        let deadline = {
            let (cancel, after) = (cancel.clone(), self.limits.turn_deadline);
            AbortOnDrop(tokio::spawn(async move {
                tokio::time::sleep(after).await;
                cancel.cancel();
            }))
        };
        let (reply, mut guard) = tokio::task::spawn_blocking(move || {
            // Nobody listening is fine.
            let mut sink = |p: Partial<'_>| {
                stream.send(match p {
                    Partial::Facts(r) => ConversationEvent::Facts { reply: Arc::new(r.clone()) },
                    Partial::Text(t) => ConversationEvent::Delta { text: t.to_string() },
                });
            };
            let retrieval = if busy { Retrieval::Lexical } else { Retrieval::Full };
            let request = TurnRequest::new(&text).plain(plain).retrieval(retrieval).sink(&mut sink).cancel(cancel);
            if let Some(lang) = lang {
                guard.c.lang = lang;
                guard.c.lang_chosen = true;
            }
            let reply = engine.respond(&mut guard.c, request);
            (reply, guard)
        })
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "turn failed");
            SessionError::Internal
        })?;
        // The generation is over: a channel's flag stays as the channel left it (unless the
        // deadline raised it).
        drop(deadline);
        cancel_on_drop.disarm();
        let reply = self.after_engine(id, &mut guard, reply, true).await?;
        let turn = guard.answered();
        drop(guard);
        events.send(ConversationEvent::Reply { reply: Arc::new(reply.clone()) });
        Ok(TurnOutcome::Answered { reply, lexical: busy, turn })
    }

    /// A person asked for by a key, not by words: the engine records the request, then the
    /// handoff workflow runs as after any turn.
    pub async fn request_person(self: &Arc<Self>, id: &ConversationId) -> Result<Reply, SessionError> {
        // The key answers no message: the plug-ins hear of the handoff, not of an answer.
        self.answer_locked(id, false, |engine, conv| engine.request_person(conv, None)).await
    }

    /// Takes back a conversation a channel answered on a copy (see [`Sessions::snapshot`]), with
    /// the reply the engine gave there; runs the handoff workflow and returns the reply to give
    /// (a place in the queue or a callback offer instead of the engine's words, when a person
    /// was requested).
    pub async fn commit(
        self: &Arc<Self>,
        id: &ConversationId,
        conversation: Conversation,
        reply: Reply,
    ) -> Result<Reply, SessionError> {
        self.answer_locked(id, true, move |_, conv| {
            *conv = conversation;
            reply
        })
        .await
    }

    /// Quick work on the locked conversation that yields the engine's reply (no generation:
    /// it runs on the async thread), then the handoff workflow; subscribers hear the reply.
    async fn answer_locked(
        self: &Arc<Self>,
        id: &ConversationId,
        answers_message: bool,
        work: impl FnOnce(&Engine, &mut Conversation) -> Reply,
    ) -> Result<Reply, SessionError> {
        let (shared, events) = self.entry(id).await?;
        let mut guard = lock_live(&shared).await?;
        let reply = work(&self.engine, &mut guard.c);
        let reply = self.after_engine(id, &mut guard, reply, answers_message).await?;
        drop(guard);
        events.send(ConversationEvent::Reply { reply: Arc::new(reply.clone()) });
        Ok(reply)
    }

    /// The conversation's live events, numbered; before them the handoff's state when it is
    /// handed over (a client that reconnects learns at once where it stands) and the kept
    /// events after number `after`, the last one the client saw (see [`EventLog`]).
    pub async fn subscribe(
        self: &Arc<Self>,
        id: &ConversationId,
        after: Option<u64>,
    ) -> Result<Subscription, SessionError> {
        let (_, events) = self.entry(id).await?;
        let (missed, live) = events.subscribe(after);
        Ok(Subscription { current: self.current(id).await, missed, live })
    }

    /// Staff consoles' live events.
    pub fn subscribe_staff(&self) -> broadcast::Receiver<StaffEvent> {
        self.staff_events.subscribe()
    }

    /// Tells staff consoles.
    pub fn tell_staff(&self, event: StaffEvent) {
        self.relay_staff(&event);
        let _ = self.staff_events.send(event);
    }

    /// Whether live events go to the other nodes that share the store (PostgreSQL), and
    /// whether this node listens to theirs yet (shortly after the start).
    pub fn relays(&self) -> (bool, bool) {
        let listening = self.relay.as_ref().is_some_and(|r| r.listening.load(Ordering::SeqCst));
        (self.relay.is_some(), listening)
    }

    /// Starts the background work on `tracker`: idle expiry once a minute, with a desk the
    /// handoff sweeper, and with a shared store the relay to the other nodes. All stop when
    /// `token` is cancelled.
    pub fn spawn_background(self: &Arc<Self>, tracker: &TaskTracker, token: CancellationToken) {
        let until_cancelled = |work: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>| {
            let stop = token.clone();
            tracker.spawn(async move {
                tokio::select! {
                    _ = stop.cancelled() => {}
                    _ = work => {}
                }
            });
        };
        if self.relay.is_some() {
            until_cancelled(Box::pin(self.clone().run_relay()));
        }
        if self.desk.is_some() {
            until_cancelled(Box::pin(self.clone().sweep()));
        }
        let sessions = self.clone();
        tracker.spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tokio::select! {
                    _ = token.cancelled() => break,
                    _ = tick.tick() => {
                        let n = sessions.expire_idle();
                        if n > 0 {
                            tracing::debug!(expired = n, "idle conversations forgotten");
                        }
                    }
                }
            }
        });
    }
}

/// Cancels the turn's generation when dropped before the generation ended.
struct CancelOnDrop(Option<Cancel>);

impl CancelOnDrop {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(c) = &self.0 {
            c.cancel();
        }
    }
}

/// Counts a turn as in flight until dropped (also when the turn's future is dropped).
/// A timer task that ends with its turn, however the turn ends.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

struct InFlight(Arc<Sessions>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

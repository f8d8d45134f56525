//! The citizen's side of a handoff: the engine decided on a person and the desk says what comes
//! of it; the transcript goes to the store; messages are relayed to staff once a staff member has
//! the conversation (the assistant is silent then); callback requests; deletion; and the sweeper
//! that marks abandoned conversations, returns those of absent staff to the queue, tells waiting
//! citizens their new place, and applies retention.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::events::EventLog;
use jiff::Timestamp;
use lotse_core::{ConversationId, HandoffInfo, HandoffState, Reply, ReplyKind};
use lotse_dialog::{Conversation, Event, HandoffReason, handoff_text};
use lotse_handoff::store::now_ms;
use lotse_handoff::{Author, ContactKind, Handoff, NewCallback, Outcome, QueueState};

use crate::{Conv, ConversationEvent, Entry, SessionError, Sessions, Shared, StaffEvent, lock_live};

/// A citizen's request to be called back (or written to) outside staff hours.
#[derive(Debug, Clone)]
pub struct CallbackRequest {
    pub contact_kind: ContactKind,
    pub contact: String,
    pub name: Option<String>,
    /// The citizen agrees to the consent text of the offer.
    pub consent: bool,
}

/// A stored callback request: what to show or say, and whether it is new (a second request
/// returns the first).
#[derive(Debug, Clone)]
pub struct CallbackOutcome {
    pub info: HandoffInfo,
    pub text: String,
    pub created: bool,
}

/// One line of a conversation as its citizen saw it ([`Sessions::transcript`]).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Line {
    /// `citizen`, `bot` or `staff` (the staff's own notes are not the citizen's).
    pub author: Author,
    pub text: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<lotse_core::Source>,
    /// A staff line's author, by display name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub staff: Option<String>,
    /// A reply's number (a vote under it names it): the citizen's messages up to it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub turn: Option<u32>,
    /// A reply's kind, where this process still knows it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<ReplyKind>,
    /// A staff line's place in the stored conversation, as its `staff` event names it: the
    /// transcript read while the line arrived holds it, and the events after the transcript
    /// bring it again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<i64>,
}

/// What a client needs to show a conversation again (a reloaded page): the lines, and the
/// number of the last event before they were read, to listen on from there.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Transcript {
    pub lang: lotse_core::Lang,
    pub plain: bool,
    pub last_event: u64,
    pub lines: Vec<Line>,
}

/// A phone number as people write it: digits with spaces, `+`, `/`, `-`, parentheses.
fn valid_phone(s: &str) -> bool {
    let digits = s.chars().filter(char::is_ascii_digit).count();
    (6..=20).contains(&digits) && s.chars().all(|c| c.is_ascii_digit() || " +/-()".contains(c))
}

fn valid_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else { return false };
    !local.is_empty()
        && s.len() <= 254
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.chars().any(|c| c.is_whitespace() || c == '<' || c == '>' || c == ',')
        && !domain.contains('@')
}

/// The line the transcript keeps for a handoff request.
fn reason_line(reason: HandoffReason) -> &'static str {
    match reason {
        HandoffReason::Asked => "Die Person hat nach einem Menschen gefragt.",
        HandoffReason::RepeatedFailure => "Der Assistent konnte mehrere Fragen nicht beantworten.",
    }
}

impl Sessions {
    /// The conversation `id`; a handed-over conversation the process forgot (a restart) is
    /// brought back from the store, so that the citizen can go on.
    pub(crate) async fn entry(&self, id: &ConversationId) -> Result<(Shared, EventLog), SessionError> {
        {
            let mut map = self.lock();
            if let Some(e) = map.get_mut(id) {
                e.last_active = Instant::now();
                return Ok((e.conversation.clone(), e.events.clone()));
            }
        }
        let Some(desk) = &self.desk else { return Err(SessionError::UnknownConversation) };
        // Ids are random, so a lookup for a guessed one finds nothing.
        let Some(h) = desk.store.open_handoff(id).await? else { return Err(SessionError::UnknownConversation) };
        let mut c = Conversation::new(id.clone(), h.channel, h.lang);
        c.lang_chosen = true;
        // The answers' numbers go on after the citizen's messages stored so far (a vote names
        // an answer by its number).
        let said = desk.store.transcript(id).await?.iter().filter(|m| m.author == Author::Citizen).count();
        let turn_base = u32::try_from(said).unwrap_or(u32::MAX);
        let conv =
            Arc::new(tokio::sync::Mutex::new(Conv { c, synced: 0, handed_off: true, deleted: false, turn_base }));
        let events = EventLog::new();
        let mut map = self.lock();
        // Another request may have restored it meanwhile: keep the first.
        let e = map.entry(id.clone()).or_insert(Entry { conversation: conv, events, last_active: Instant::now() });
        Ok((e.conversation.clone(), e.events.clone()))
    }

    /// The conversation as its citizen saw it, so that a client keeps nothing of it but the id.
    /// A handed-over conversation's lines come from the store (staff lines included), then
    /// those not stored (after a handback); otherwise from the conversation held here.
    pub async fn transcript(&self, id: &ConversationId) -> Result<Transcript, SessionError> {
        let (conv, events) = self.entry(id).await?;
        // The number first: an event after it but before the lines are read is heard again
        // rather than lost.
        let last_event = events.last();
        let guard = lock_live(&conv).await?;
        let mut lines = Vec::new();
        let mut said = 0u32;
        let mut tail = &guard.c.events[..];
        if let (true, Some(desk)) = (guard.handed_off, &self.desk) {
            // A stored reply's kind, where this process wrote it (by its moment).
            let kinds: std::collections::HashMap<i64, ReplyKind> = guard
                .c
                .events
                .iter()
                .filter_map(|e| match e {
                    Event::ReplyOut { at, reply } => Some((at.as_millisecond(), reply.kind)),
                    _ => None,
                })
                .collect();
            for m in desk.store.transcript(id).await? {
                if m.author == Author::Citizen {
                    said = said.saturating_add(1);
                }
                let turn = (m.author == Author::Bot).then_some(said);
                if m.author != Author::System {
                    let kind = turn.and_then(|_| kinds.get(&m.at_ms).copied());
                    let line = (m.author == Author::Staff).then_some(m.seq);
                    lines.push(Line {
                        author: m.author,
                        text: m.text,
                        sources: m.sources,
                        staff: m.staff,
                        turn,
                        kind,
                        line,
                    });
                }
            }
            tail = &guard.c.events[guard.synced.min(guard.c.events.len())..];
        } else {
            said = guard.turn_base;
        }
        for event in tail {
            match event {
                Event::MessageIn { text, .. } => {
                    said = said.saturating_add(1);
                    lines.push(Line {
                        author: Author::Citizen,
                        text: text.clone(),
                        sources: Vec::new(),
                        staff: None,
                        turn: None,
                        kind: None,
                        line: None,
                    });
                }
                Event::ReplyOut { reply, .. } => lines.push(Line {
                    author: Author::Bot,
                    text: reply.text.clone(),
                    sources: reply.sources.clone(),
                    staff: None,
                    turn: Some(said),
                    kind: Some(reply.kind),
                    line: None,
                }),
                Event::HandoffRequested { .. } => {}
            }
        }
        Ok(Transcript { lang: guard.c.lang, plain: guard.c.plain, last_event, lines })
    }

    /// The event stream of a conversation this process holds.
    pub(crate) fn sender(&self, id: &ConversationId) -> Option<EventLog> {
        self.lock().get(id).map(|e| e.events.clone())
    }

    /// The handoff event a (re)connecting client gets first, when its conversation is handed over.
    pub(crate) async fn current(&self, id: &ConversationId) -> Option<ConversationEvent> {
        let desk = self.desk.as_ref()?;
        // From the store alone: the conversation's lock may be held by a long turn.
        let (info, lang) = if let Some(h) = desk.store.open_handoff(id).await.ok()? {
            let _ = desk.store.citizen_seen(id, now_ms()).await;
            (desk.info(&h).await.ok()?, h.lang)
        } else {
            let c = desk.store.pending_callback(id).await.ok()??;
            (desk.callback_info(&c, c.lang), c.lang)
        };
        Some(ConversationEvent::Handoff { text: handoff_text(&info, lang), handoff: Box::new(info) })
    }

    /// After the engine's turn: a person requested goes to the desk (a place in the queue within
    /// staff hours, a callback offer outside them; a store that fails leaves the engine's reply,
    /// the general contact), and a handed-over conversation has its lines stored.
    pub(crate) async fn after_engine(
        &self,
        id: &ConversationId,
        conv: &mut Conv,
        mut reply: Reply,
        answers_message: bool,
    ) -> Result<Reply, SessionError> {
        if let (Some(desk), Some(reason)) = (&self.desk, conv.c.requested_handoff()) {
            match desk.request(&conv.c, reason, Timestamp::now()).await {
                Ok(info) => reply = self.engine.handoff_reply(&mut conv.c, reason, &info),
                Err(e) => tracing::error!(error = %e, "the handoff store failed"),
            }
        }
        // A handed-over conversation's lines are stored before the client hears of them.
        self.after_turn(id, conv, &reply).await?;
        let (channel, lang) = (conv.c.channel, reply.lang);
        // An answer to a message (not the reply to the "person" key, which answers none).
        if answers_message {
            let turn = conv.answered();
            self.note_before_reply(
                id,
                lotse_handoff::log::Event::Answered {
                    channel,
                    lang,
                    turn,
                    reply: reply.kind,
                    sources: reply.sources.iter().map(|s| s.id.clone()).collect(),
                    generated_by: reply.generated_by.to_string(),
                    confidence: conv.c.confidence,
                },
            )
            .await;
            if reply.kind == ReplyKind::OutOfScope && self.logs_questions() {
                let question = conv.c.events.iter().rev().find_map(|e| match e {
                    Event::MessageIn { text, .. } => Some(text.as_str()),
                    _ => None,
                });
                if let Some(question) = question {
                    let question = lotse_dialog::understand::redact(question, crate::MAX_LOGGED_QUESTION);
                    self.note_before_reply(id, lotse_handoff::log::Event::Unanswered { channel, lang, turn, question })
                        .await;
                }
            }
        }
        if let Some(h) = &reply.handoff {
            let state = match h.state {
                HandoffState::Queued => "queued",
                HandoffState::Connected => "connected",
                HandoffState::CallbackOffered => "callback_offered",
                HandoffState::CallbackScheduled => "callback",
                HandoffState::Closed => "closed",
            };
            self.note_before_reply(id, lotse_handoff::log::Event::Handoff { channel, state: state.to_string() }).await;
        }
        Ok(reply)
    }

    /// Writes the conversation's events not yet in the store.
    pub(crate) async fn sync(&self, conv: &mut Conv) -> Result<(), SessionError> {
        let Some(desk) = &self.desk else { return Ok(()) };
        for event in &conv.c.events[conv.synced..] {
            let (author, text, sources, at) = match event {
                Event::MessageIn { at, text } => (Author::Citizen, text.clone(), Vec::new(), at),
                Event::ReplyOut { at, reply } => (Author::Bot, reply.text.clone(), reply.sources.clone(), at),
                Event::HandoffRequested { at, reason } => {
                    (Author::System, reason_line(*reason).to_string(), Vec::new(), at)
                }
            };
            desk.store.append(&conv.c.id, author, None, &text, &sources, at.as_millisecond()).await?;
        }
        conv.synced = conv.c.events.len();
        Ok(())
    }

    /// A conversation that is (now) handed over has its lines stored, and staff hear of a new
    /// arrival.
    async fn after_turn(&self, id: &ConversationId, conv: &mut Conv, reply: &Reply) -> Result<(), SessionError> {
        let Some(desk) = &self.desk else { return Ok(()) };
        let queued = reply.kind == ReplyKind::Handoff
            && reply
                .handoff
                .as_ref()
                .is_some_and(|h| matches!(h.state, HandoffState::Queued | HandoffState::Connected));
        if !queued && !conv.handed_off {
            return Ok(());
        }
        let Some(open) = desk.store.open_handoff(id).await? else {
            // Handed back earlier, or only a callback offered: nothing more goes to the store.
            return Ok(());
        };
        let new = !conv.handed_off;
        conv.handed_off = true;
        self.sync(conv).await?;
        let _ = desk.store.citizen_seen(id, now_ms()).await;
        self.tell_staff(if new { StaffEvent::Queue } else { StaffEvent::Transcript { handoff_id: open.id } });
        Ok(())
    }

    /// While a member of staff has the conversation, a citizen's message goes to them (stored
    /// first), and the assistant says nothing. True when relayed.
    pub(crate) async fn relay_if_with_staff(
        &self,
        id: &ConversationId,
        conv: &Shared,
        text: &str,
    ) -> Result<bool, SessionError> {
        let Some(desk) = &self.desk else { return Ok(false) };
        if !lock_live(conv).await?.handed_off {
            return Ok(false);
        }
        let Some(h) = desk.store.open_handoff(id).await? else { return Ok(false) };
        if !matches!(h.state, QueueState::Claimed | QueueState::Active) {
            return Ok(false);
        }
        let mut guard = lock_live(conv).await?;
        if guard.c.events.len() >= self.limits.max_events {
            return Err(SessionError::ConversationFull);
        }
        // Earlier lines first, so the transcript stays in order.
        self.sync(&mut guard).await?;
        let at = Timestamp::now();
        desk.store.append(id, Author::Citizen, None, text, &[], at.as_millisecond()).await?;
        guard.c.events.push(Event::MessageIn { at, text: text.to_string() });
        guard.synced = guard.c.events.len();
        // Logged while the conversation is held: a deletion, which waits for it, finds the
        // event written and erases it.
        let channel = guard.c.channel;
        self.note_before_reply(id, lotse_handoff::log::Event::Relayed { channel }).await;
        drop(guard);
        let _ = desk.store.citizen_seen(id, now_ms()).await;
        self.tell_staff(StaffEvent::Message {
            handoff_id: h.id.clone(),
            author: Author::Citizen,
            staff: None,
            text: text.to_string(),
            at_ms: at.as_millisecond(),
        });
        Ok(true)
    }

    /// Stores a callback request with the citizen's contact and consent, in the team's next
    /// window; the conversation so far goes with it.
    pub async fn callback(
        &self,
        id: &ConversationId,
        request: CallbackRequest,
    ) -> Result<CallbackOutcome, SessionError> {
        let Some(desk) = &self.desk else { return Err(SessionError::NoStaff) };
        let (conv, events) = self.entry(id).await?;
        if !request.consent {
            return Err(SessionError::ConsentRequired);
        }
        let contact = request.contact.trim().to_string();
        let ok = match request.contact_kind {
            ContactKind::Phone => valid_phone(&contact),
            ContactKind::Email => valid_email(&contact),
        };
        if !ok {
            return Err(SessionError::InvalidContact(request.contact_kind));
        }
        let name = request.name.map(|n| n.trim().chars().take(100).collect::<String>()).filter(|n| !n.is_empty());
        let mut guard = lock_live(&conv).await?;
        if let Some(c) = desk.store.pending_callback(id).await? {
            // Asked twice: the first request stands.
            let info = desk.callback_info(&c, guard.c.lang);
            return Ok(CallbackOutcome { text: handoff_text(&info, guard.c.lang), info, created: false });
        }
        let team = desk.team_for(&guard.c);
        let Some(window) = desk.callback_window(&team, Timestamp::now()) else {
            return Err(SessionError::NoSchedule);
        };
        let topic = guard
            .c
            .topic
            .and_then(|i| self.engine.knowledge().services.get(i))
            .map(|s| s.name.clone())
            .or_else(|| {
                guard.c.events.iter().rev().find_map(|e| match e {
                    Event::MessageIn { text, .. }
                        if lotse_dialog::understand::intent(text) == lotse_dialog::understand::Intent::Question =>
                    {
                        Some(text.chars().take(200).collect())
                    }
                    _ => None,
                })
            })
            .unwrap_or_else(|| "Allgemeines Anliegen".into());
        let lang = guard.c.lang;
        let c = desk
            .store
            .add_callback(
                NewCallback {
                    conversation_id: id.clone(),
                    team,
                    contact_kind: request.contact_kind,
                    contact,
                    name,
                    topic,
                    lang,
                    // A caller was asked in words (`phone_consent`); the web shows the text.
                    consent: if guard.c.channel == lotse_core::Channel::Phone {
                        desk.phone_consent(lang)
                    } else {
                        desk.consent_text(lang)
                    },
                    slot_start_ms: window.start.timestamp().as_millisecond(),
                    slot_end_ms: window.end.timestamp().as_millisecond(),
                    // What the consent text just named.
                    retention_days: desk.retention_days(),
                },
                now_ms(),
            )
            .await?;
        guard.handed_off = true;
        self.sync(&mut guard).await?;
        // Waiting in the queue as well (a caller whose transfer failed): the callback takes
        // its place, so that nobody claims a conversation whose citizen has gone.
        if let Some(h) = desk.store.open_handoff(id).await?
            && h.state == QueueState::Waiting
        {
            self.leave_queue(&h, Outcome::Callback).await?;
        }
        let kind = match c.contact_kind {
            ContactKind::Phone => "Rückruf per Telefon erbeten.",
            ContactKind::Email => "Antwort per E-Mail erbeten.",
        };
        desk.store.append(id, Author::System, None, kind, &[], now_ms()).await?;
        // Held until everything is written: a delete waits for it.
        drop(guard);
        tracing::info!(callback = %c.id, team = %c.team, "callback request stored");
        let info = desk.callback_info(&c, lang);
        let text = handoff_text(&info, lang);
        events.send(ConversationEvent::Handoff { handoff: Box::new(info.clone()), text: text.clone() });
        self.tell_staff(StaffEvent::Callbacks);
        Ok(CallbackOutcome { info, text, created: true })
    }

    /// A phone caller was put through to their team's line: the conversation leaves the queue
    /// (the staff member who answers sees it in the console's closed list, with its transcript).
    pub async fn put_through(&self, id: &ConversationId) -> Result<(), SessionError> {
        let Some(desk) = &self.desk else { return Ok(()) };
        if let Some(h) = desk.store.open_handoff(id).await? {
            self.leave_queue(&h, Outcome::PutThrough).await?;
        }
        Ok(())
    }

    async fn leave_queue(&self, h: &Handoff, outcome: Outcome) -> Result<(), SessionError> {
        let Some(desk) = &self.desk else { return Ok(()) };
        let now = now_ms();
        let h = desk.store.close(&h.id, outcome, None, now).await?;
        let line = match outcome {
            Outcome::PutThrough => "Per Telefon an das Team durchgestellt.",
            _ => "Statt zu warten um Rückruf gebeten.",
        };
        desk.store.append(&h.conversation_id, Author::System, None, line, &[], now).await?;
        tracing::info!(handoff = %h.id, outcome = outcome.as_str(), "left the queue");
        self.tell_staff(StaffEvent::Closed { handoff_id: h.id.clone() });
        self.tell_staff(StaffEvent::Queue);
        self.tell_positions().await;
        Ok(())
    }

    /// The citizen is typing (shown to the staff member who has the conversation).
    pub async fn citizen_typing(&self, id: &ConversationId, typing: bool) -> Result<(), SessionError> {
        let Some(desk) = &self.desk else { return Err(SessionError::UnknownConversation) };
        if self.sender(id).is_none() {
            return Err(SessionError::UnknownConversation);
        }
        if let Some(h) = desk.store.open_handoff(id).await? {
            self.tell_staff(StaffEvent::Typing { handoff_id: h.id, who: Author::Citizen, typing });
        }
        Ok(())
    }

    /// The citizen ends the conversation: it is forgotten, and its transcript and contact data
    /// are deleted at once.
    pub async fn delete(&self, id: &ConversationId) -> Result<(), SessionError> {
        // A turn or callback request in flight finishes first; whoever still holds the
        // conversation afterwards finds it deleted and writes nothing. It stays in the map
        // (deleted) until the store has forgotten it too, so that nobody brings it back from
        // the store meanwhile: after the answer to the delete, nothing of it is stored.
        let held = self.lock().get(id).map(|e| e.conversation.clone());
        let guard = match &held {
            Some(conv) => {
                let mut g = conv.clone().lock_owned().await;
                g.deleted = true;
                Some(g)
            }
            None => None,
        };
        let forget = || {
            let mut map = self.lock();
            if map.get(id).is_some_and(|e| held.as_ref().is_some_and(|h| Arc::ptr_eq(h, &e.conversation))) {
                map.remove(id);
            }
        };
        let Some(desk) = &self.desk else {
            forget();
            return if held.is_some() { Ok(()) } else { Err(SessionError::UnknownConversation) };
        };
        let open = desk.store.open_handoff(id).await?;
        if held.is_none() && open.is_none() && desk.store.latest_handoff(id).await?.is_none() {
            return Err(SessionError::UnknownConversation);
        }
        desk.store.delete_conversation(id, now_ms()).await?;
        forget();
        drop(guard);
        if let Some(h) = open {
            self.tell_staff(StaffEvent::Closed { handoff_id: h.id });
            self.tell_staff(StaffEvent::Queue);
            self.tell_positions().await;
        }
        self.tell_staff(StaffEvent::Callbacks);
        Ok(())
    }

    /// Tells a conversation's client where its handoff stands.
    pub(crate) async fn tell(&self, h: &Handoff) {
        let (Some(desk), Some(tx)) = (&self.desk, self.sender(&h.conversation_id)) else { return };
        if let Ok(info) = desk.info(h).await {
            tx.send(ConversationEvent::Handoff { text: handoff_text(&info, h.lang), handoff: Box::new(info) });
        }
    }

    /// [`tell`](Sessions::tell), on every node (a staff action: the citizen's stream may be on
    /// another).
    pub(crate) async fn tell_everywhere(&self, h: &Handoff) {
        let Some(desk) = &self.desk else { return };
        if let Ok(info) = desk.info(h).await {
            self.to_citizen(
                &h.conversation_id,
                ConversationEvent::Handoff { text: handoff_text(&info, h.lang), handoff: Box::new(info) },
                None,
            );
        }
    }

    /// Tells every waiting citizen their place and estimate again (after the queue moved).
    pub(crate) async fn tell_positions(&self) {
        let Some(desk) = &self.desk else { return };
        let Ok(queue) = desk.store.queue().await else { return };
        for h in queue.iter().filter(|h| h.state == QueueState::Waiting) {
            self.tell(h).await;
        }
    }

    /// Every few seconds: presence, abandonment, staff timeouts, positions; retention hourly.
    /// Runs until its future is dropped.
    pub(crate) async fn sweep(self: Arc<Self>) {
        let Some(desk) = self.desk.clone() else { return };
        let every = Duration::from_millis(desk.config.sweep_millis.max(50));
        let mut tick = tokio::time::interval(every);
        let mut last_purge: Option<Instant> = None;
        loop {
            tick.tick().await;
            let now = now_ms();
            // Who is here: staff with an open console stream, citizens with an open events stream.
            let staff: Vec<String> = {
                let p = self.presence.lock().unwrap_or_else(|p| p.into_inner());
                p.iter().filter(|(_, n)| **n > 0).map(|(k, _)| k.clone()).collect()
            };
            for s in staff {
                let _ = desk.store.staff_seen(&s, now).await;
            }
            let listening: Vec<(ConversationId, Shared)> = {
                let map = self.lock();
                map.iter()
                    .filter(|(_, e)| e.events.receiver_count() > 0)
                    .map(|(k, e)| (k.clone(), e.conversation.clone()))
                    .collect()
            };
            for (id, conv) in listening {
                if conv.try_lock().map(|c| c.handed_off).unwrap_or(true) {
                    let _ = desk.store.citizen_seen(&id, now).await;
                }
            }
            let mut moved = false;
            let abandon_before = now - (desk.config.abandon_after_seconds as i64) * 1000;
            match desk.store.abandon_stale(abandon_before, now).await {
                Ok(gone) => {
                    for h in gone {
                        moved = true;
                        let line = "Die Person hat das Gespräch verlassen.";
                        let _ = desk.store.append(&h.conversation_id, Author::System, None, line, &[], now).await;
                        self.tell_staff(StaffEvent::Closed { handoff_id: h.id.clone() });
                        self.note(
                            &h.conversation_id,
                            lotse_handoff::log::Event::Handoff { channel: h.channel, state: "abandoned".into() },
                        );
                        self.tell(&h).await;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "abandonment sweep failed"),
            }
            let staff_before = now - (desk.config.staff_timeout_seconds as i64) * 1000;
            match desk.store.release_absent_staff(staff_before).await {
                Ok(back) => {
                    for h in back {
                        moved = true;
                        let line = "Die Mitarbeiterin oder der Mitarbeiter ist nicht mehr verbunden; zurück in der Warteschlange.";
                        let _ = desk.store.append(&h.conversation_id, Author::System, None, line, &[], now).await;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "staff timeout sweep failed"),
            }
            if moved {
                self.tell_staff(StaffEvent::Queue);
                self.tell_positions().await;
            }
            if last_purge.is_none_or(|t| t.elapsed() > Duration::from_secs(3600)) {
                last_purge = Some(Instant::now());
                let sessions_before = now - (desk.config.session_max_hours as i64) * 3600 * 1000;
                match desk.store.purge(now, desk.retention_days(), sessions_before).await {
                    Ok(p) => tracing::info!(
                        handoffs = p.handoffs,
                        messages = p.messages,
                        callbacks = p.callbacks,
                        sessions = p.sessions,
                        "retention applied"
                    ),
                    Err(e) => tracing::warn!(error = %e, "retention run failed"),
                }
            }
        }
    }
}

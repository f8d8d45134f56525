//! The citizen's side of a handoff: the transcript goes to the store, messages are relayed to
//! staff once a staff member has the conversation (the assistant is silent then), callback
//! requests, deletion, and the sweeper that marks abandoned conversations, returns those of
//! absent staff to the queue, tells waiting citizens their new place, and applies retention.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use lotse_core::{HandoffState, ReplyKind};
use lotse_dialog::{Conversation, Event, handoff_text};
use lotse_handoff::store::now_ms;
use lotse_handoff::{Author, ContactKind, NewCallback, QueueState};
use serde::Deserialize;
use tokio::sync::broadcast;

use crate::events::{StaffEvent, sender, tell, tell_positions};
use crate::{ApiError, AppState, Conv, Entry, MessageResponse, StreamEvent, store_error};

pub(crate) fn unknown() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "unknown_conversation", "No such conversation; it may have expired.")
}

type Shared = Arc<tokio::sync::Mutex<Conv>>;

/// The conversation `id`; a handed-over conversation the server forgot (a restart) is brought
/// back from the store, so that the citizen can go on.
pub(crate) async fn entry(
    state: &Arc<AppState>,
    id: &str,
) -> Result<(Shared, broadcast::Sender<StreamEvent>), ApiError> {
    {
        let mut map = state.lock();
        if let Some(e) = map.get_mut(id) {
            e.last_active = Instant::now();
            return Ok((e.conversation.clone(), e.events.clone()));
        }
    }
    let Some(desk) = &state.desk else { return Err(unknown()) };
    // Ids are random, so a lookup for a guessed one finds nothing.
    let h = match desk.store.open_handoff(id).await.map_err(store_error)? {
        Some(h) => h,
        None => return Err(unknown()),
    };
    let mut c = Conversation::new(id.to_string(), h.channel, h.lang);
    c.lang_chosen = true;
    let conv = Arc::new(tokio::sync::Mutex::new(Conv { c, synced: 0, handed_off: true }));
    let events = broadcast::channel(64).0;
    let mut map = state.lock();
    // Another request may have restored it meanwhile: keep the first.
    let e = map.entry(id.to_string()).or_insert(Entry { conversation: conv, events, last_active: Instant::now() });
    Ok((e.conversation.clone(), e.events.clone()))
}

/// The handoff event a (re)connecting client gets first, when its conversation is handed over.
pub(crate) async fn current(state: &Arc<AppState>, id: &str) -> Option<StreamEvent> {
    let desk = state.desk.as_ref()?;
    // From the store alone: the conversation's lock may be held by a long turn.
    let (info, lang) = if let Some(h) = desk.store.open_handoff(id).await.ok()? {
        let _ = desk.store.citizen_seen(id, now_ms()).await;
        (desk.info(&h).await.ok()?, h.lang)
    } else {
        let c = desk.store.pending_callback(id).await.ok()??;
        (desk.callback_info(&c, c.lang), c.lang)
    };
    Some(StreamEvent::Handoff { text: handoff_text(&info, lang), handoff: info })
}

/// Writes the conversation's events not yet in the store.
pub(crate) async fn sync(state: &AppState, conv: &mut Conv) -> Result<(), ApiError> {
    let Some(desk) = &state.desk else { return Ok(()) };
    for event in &conv.c.events[conv.synced..] {
        let (author, text, sources, at) = match event {
            Event::MessageIn { at, text } => (Author::Citizen, text.clone(), Vec::new(), at),
            Event::ReplyOut { at, reply } => (Author::Bot, reply.text.clone(), reply.sources.clone(), at),
            Event::HandoffRequested { at, reason } => {
                let why = match reason {
                    lotse_dialog::HandoffReason::Asked => "Die Person hat nach einem Menschen gefragt.",
                    lotse_dialog::HandoffReason::RepeatedFailure => {
                        "Der Assistent konnte mehrere Fragen nicht beantworten."
                    }
                };
                (Author::System, why.to_string(), Vec::new(), at)
            }
        };
        desk.store.append(&conv.c.id, author, None, &text, &sources, at.as_millisecond()).await.map_err(store_error)?;
    }
    conv.synced = conv.c.events.len();
    Ok(())
}

/// After the assistant's turn: a conversation that is (now) handed over has its lines stored,
/// and staff hear of a new arrival.
pub(crate) async fn after_turn(
    state: &Arc<AppState>,
    id: &str,
    conv: &mut Conv,
    reply: &lotse_core::Reply,
) -> Result<(), ApiError> {
    let Some(desk) = &state.desk else { return Ok(()) };
    let queued = reply.kind == ReplyKind::Handoff
        && reply.handoff.as_ref().is_some_and(|h| matches!(h.state, HandoffState::Queued | HandoffState::Connected));
    if !queued && !conv.handed_off {
        return Ok(());
    }
    let open = desk.store.open_handoff(id).await.map_err(store_error)?;
    if open.is_none() {
        // Handed back earlier, or only a callback offered: nothing more goes to the store.
        return Ok(());
    }
    let new = !conv.handed_off;
    conv.handed_off = true;
    sync(state, conv).await?;
    let _ = desk.store.citizen_seen(id, now_ms()).await;
    let _ = state.staff_events.send(if new {
        StaffEvent::Queue
    } else {
        StaffEvent::Transcript { conversation_id: id.into() }
    });
    Ok(())
}

/// While a member of staff has the conversation, a citizen's message goes to them (stored
/// first), and the assistant says nothing.
pub(crate) async fn relay_if_with_staff(
    state: &Arc<AppState>,
    id: &str,
    conv: &Shared,
    text: &str,
) -> Result<Option<Json<MessageResponse>>, ApiError> {
    let Some(desk) = &state.desk else { return Ok(None) };
    if !conv.lock().await.handed_off {
        return Ok(None);
    }
    let Some(h) = desk.store.open_handoff(id).await.map_err(store_error)? else { return Ok(None) };
    if !matches!(h.state, QueueState::Claimed | QueueState::Active) {
        return Ok(None);
    }
    let mut guard = conv.lock().await;
    // Earlier lines first, so the transcript stays in order.
    sync(state, &mut guard).await?;
    let at = Timestamp::now();
    desk.store.append(id, Author::Citizen, None, text, &[], at.as_millisecond()).await.map_err(store_error)?;
    guard.c.events.push(Event::MessageIn { at, text: text.to_string() });
    guard.synced = guard.c.events.len();
    drop(guard);
    let _ = desk.store.citizen_seen(id, now_ms()).await;
    let _ = state.staff_events.send(StaffEvent::Message {
        handoff_id: h.id.clone(),
        author: Author::Citizen,
        staff: None,
        text: text.to_string(),
        at_ms: at.as_millisecond(),
    });
    Ok(Some(Json(MessageResponse { reply: None, relayed: true })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CallbackBody {
    contact_kind: ContactKind,
    contact: String,
    #[serde(default)]
    name: Option<String>,
    /// The citizen agrees to the consent text of the offer.
    consent: bool,
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

/// `POST /api/v1/conversations/{id}/callback`: stores a callback request with the citizen's
/// contact and consent, in the team's next window.
pub(crate) async fn callback(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    body: Result<Json<CallbackBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body?;
    let Some(desk) = state.desk.clone() else {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "no_staff", "Callbacks are not offered here."));
    };
    let (conv, events) = entry(&state, &id).await?;
    if !body.consent {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "consent_required",
            "A callback needs your consent to store your contact details.",
        ));
    }
    let contact = body.contact.trim().to_string();
    let ok = match body.contact_kind {
        ContactKind::Phone => valid_phone(&contact),
        ContactKind::Email => valid_email(&contact),
    };
    if !ok {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_contact",
            match body.contact_kind {
                ContactKind::Phone => "This is not a phone number we can call.",
                ContactKind::Email => "This is not an e-mail address we can write to.",
            },
        ));
    }
    let name = body.name.map(|n| n.trim().chars().take(100).collect::<String>()).filter(|n| !n.is_empty());
    let mut guard = conv.lock().await;
    if let Some(c) = desk.store.pending_callback(&id).await.map_err(store_error)? {
        // Asked twice: the first request stands.
        let info = desk.callback_info(&c, guard.c.lang);
        return Ok((
            StatusCode::OK,
            Json(serde_json::json!({"text": handoff_text(&info, guard.c.lang), "handoff": info})),
        )
            .into_response());
    }
    let team = desk.team_for(&guard.c);
    let Some(window) = desk.callback_window(&team, Timestamp::now()) else {
        return Err(ApiError::new(StatusCode::CONFLICT, "no_schedule", "No staff hours are planned for this team."));
    };
    let topic = guard
        .c
        .topic
        .and_then(|i| state.engine.knowledge().services.get(i))
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
                contact_kind: body.contact_kind,
                contact,
                name,
                topic,
                lang,
                consent: desk.consent_text(lang),
                slot_start_ms: window.start.timestamp().as_millisecond(),
                slot_end_ms: window.end.timestamp().as_millisecond(),
            },
            now_ms(),
        )
        .await
        .map_err(store_error)?;
    // The conversation so far goes with it, so staff know the question before they call.
    guard.handed_off = true;
    sync(&state, &mut guard).await?;
    drop(guard);
    let kind = match c.contact_kind {
        ContactKind::Phone => "Rückruf per Telefon erbeten.",
        ContactKind::Email => "Antwort per E-Mail erbeten.",
    };
    desk.store.append(&id, Author::System, None, kind, &[], now_ms()).await.map_err(store_error)?;
    tracing::info!(callback = %c.id, team = %c.team, "callback request stored");
    let info = desk.callback_info(&c, lang);
    let text = handoff_text(&info, lang);
    let _ = events.send(StreamEvent::Handoff { handoff: info.clone(), text: text.clone() });
    let _ = state.staff_events.send(StaffEvent::Callbacks);
    Ok((StatusCode::CREATED, Json(serde_json::json!({"text": text, "handoff": info}))).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TypingBody {
    typing: bool,
}

/// `POST /api/v1/conversations/{id}/typing`: the citizen is typing (shown to the staff member).
pub(crate) async fn citizen_typing(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    body: Result<Json<TypingBody>, JsonRejection>,
) -> Result<StatusCode, ApiError> {
    let Json(body) = body?;
    let Some(desk) = &state.desk else { return Err(unknown()) };
    if sender(&state, &id).is_none() {
        return Err(unknown());
    }
    if let Some(h) = desk.store.open_handoff(&id).await.map_err(store_error)? {
        let _ =
            state.staff_events.send(StaffEvent::Typing { handoff_id: h.id, who: Author::Citizen, typing: body.typing });
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /api/v1/conversations/{id}`: the citizen ends the conversation; its transcript and
/// contact data are deleted at once.
pub(crate) async fn delete_conversation(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let removed = state.lock().remove(&id);
    let Some(desk) = &state.desk else {
        return if removed.is_some() { Ok(StatusCode::NO_CONTENT) } else { Err(unknown()) };
    };
    let open = desk.store.open_handoff(&id).await.map_err(store_error)?;
    if removed.is_none() && open.is_none() && desk.store.latest_handoff(&id).await.map_err(store_error)?.is_none() {
        return Err(unknown());
    }
    desk.store.delete_conversation(&id, now_ms()).await.map_err(store_error)?;
    if let Some(h) = open {
        let _ = state.staff_events.send(StaffEvent::Closed { handoff_id: h.id });
        let _ = state.staff_events.send(StaffEvent::Queue);
        tell_positions(&state).await;
    }
    let _ = state.staff_events.send(StaffEvent::Callbacks);
    Ok(StatusCode::NO_CONTENT)
}

/// Every few seconds: presence, abandonment, staff timeouts, positions; retention hourly.
pub(crate) async fn sweep(state: Arc<AppState>) {
    let Some(desk) = state.desk.clone() else { return };
    let every = Duration::from_millis(desk.config.sweep_millis.max(50));
    let mut tick = tokio::time::interval(every);
    let mut last_purge: Option<Instant> = None;
    loop {
        tick.tick().await;
        let now = now_ms();
        // Who is here: staff with an open console stream, citizens with an open events stream.
        let staff: Vec<String> = {
            let p = state.presence.lock().unwrap_or_else(|p| p.into_inner());
            p.iter().filter(|(_, n)| **n > 0).map(|(k, _)| k.clone()).collect()
        };
        for s in staff {
            let _ = desk.store.staff_seen(&s, now).await;
        }
        let listening: Vec<(String, Shared)> = {
            let map = state.lock();
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
                    let _ = desk
                        .store
                        .append(
                            &h.conversation_id,
                            Author::System,
                            None,
                            "Die Person hat das Gespräch verlassen.",
                            &[],
                            now,
                        )
                        .await;
                    let _ = state.staff_events.send(StaffEvent::Closed { handoff_id: h.id.clone() });
                    tell(&state, &h).await;
                }
            }
            Err(e) => tracing::warn!(error = %e, "abandonment sweep failed"),
        }
        let staff_before = now - (desk.config.staff_timeout_seconds as i64) * 1000;
        match desk.store.release_absent_staff(staff_before).await {
            Ok(back) => {
                for h in back {
                    moved = true;
                    let _ = desk
                        .store
                        .append(
                            &h.conversation_id,
                            Author::System,
                            None,
                            "Die Mitarbeiterin oder der Mitarbeiter ist nicht mehr verbunden; zurück in der Warteschlange.",
                            &[],
                            now,
                        )
                        .await;
                }
            }
            Err(e) => tracing::warn!(error = %e, "staff timeout sweep failed"),
        }
        if moved {
            let _ = state.staff_events.send(StaffEvent::Queue);
            tell_positions(&state).await;
        }
        if last_purge.is_none_or(|t| t.elapsed() > Duration::from_secs(3600)) {
            last_purge = Some(Instant::now());
            let days = desk.retention_days() as i64;
            let before = now - days * 24 * 3600 * 1000;
            let sessions_before = now - (desk.config.session_max_hours as i64) * 3600 * 1000;
            match desk.store.purge(before, sessions_before).await {
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

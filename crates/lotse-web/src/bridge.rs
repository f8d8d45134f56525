//! The bridge API: what a SIP bridge on another node asks of this server, whose sessions own
//! its calls' conversations (the wire types and the protocol: `lotse_session::bridge`).
//!
//! Off unless the configuration gives a bridge token (`[bridge] token`); then every request
//! must carry it (`Authorization: Bearer …`), and only conversations a bridge started here can
//! be written. Routes answer 404 while bridges are not allowed, 401 without the token, 409 when
//! the bridge loaded other knowledge or sends a conversation that is not the stored one carried
//! on (fewer events, other messages, a topic out of range).

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use lotse_core::{Channel, ConversationId, Lang};
use lotse_session::CallbackRequest;
use lotse_session::bridge::{
    Callback, Commit, Committed, Consent, Hello, Offer, Start, Started, Transfer, Vote, Voted, fingerprint,
};
use sha2::{Digest, Sha256};

use crate::{ApiError, AppState};

/// A conversation of a long call, with its sources, fits well within this.
const MAX_BODY: usize = 1024 * 1024;

pub(crate) fn router(state: Arc<AppState>) -> Router<Arc<AppState>> {
    Router::new()
        .route("/bridge/v1/hello", get(hello))
        .route("/bridge/v1/calls", post(start))
        .route("/bridge/v1/calls/{id}/commit", post(commit))
        .route("/bridge/v1/calls/{id}/put-through", post(put_through))
        .route("/bridge/v1/calls/{id}/callback", post(callback))
        .route("/bridge/v1/calls/{id}/vote", post(vote))
        .route("/bridge/v1/calls/{id}/callback-offer", get(offer))
        .route("/bridge/v1/consent/{lang}", get(consent))
        .route("/bridge/v1/teams/{team}/transfer", get(transfer))
        .layer(axum::middleware::from_fn_with_state(state, authorize))
        .layer(DefaultBodyLimit::max(MAX_BODY))
}

/// The token's digest, compared in full whatever the request sent.
pub(crate) fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

pub use lotse_session::bridge::MIN_TOKEN;

/// What the server keeps for bridges: the token's digest, its knowledge's fingerprint, and
/// the calls bridges started (with when), the only conversations they may write.
pub(crate) struct Bridges {
    token: [u8; 32],
    knowledge: String,
    calls: std::sync::Mutex<std::collections::HashMap<ConversationId, std::time::Instant>>,
}

impl Bridges {
    pub(crate) fn new(token: &str, kb: &lotse_knowledge::KnowledgeBase) -> Bridges {
        Bridges { token: digest(token), knowledge: fingerprint(kb), calls: Default::default() }
    }

    fn started(&self, id: &ConversationId) {
        let mut calls = self.calls.lock().unwrap_or_else(|p| p.into_inner());
        if calls.len() >= 10_000 {
            // A call lasts half an hour at most: older ones are long over.
            calls.retain(|_, at| at.elapsed() < std::time::Duration::from_secs(24 * 3600));
        }
        calls.insert(id.clone(), std::time::Instant::now());
    }

    fn is_call(&self, id: &ConversationId) -> bool {
        self.calls.lock().unwrap_or_else(|p| p.into_inner()).contains_key(id)
    }
}

async fn authorize(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let Some(expected) = state.bridges.get().map(|b| &b.token) else {
        return ApiError::new(StatusCode::NOT_FOUND, "not_found", "No such resource.").into_response();
    };
    let given = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(digest);
    // Digests of equal length: comparing them tells nothing about the token.
    if given.as_ref() != Some(expected) {
        return ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "A bridge token is needed.").into_response();
    }
    next.run(req).await
}

fn bridges(state: &AppState) -> &Bridges {
    state.bridges.get().expect("authorize let the request through")
}

fn same_knowledge(state: &AppState, theirs: &str) -> Result<(), ApiError> {
    if theirs == bridges(state).knowledge {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::CONFLICT,
            "other_knowledge",
            "The bridge loaded other knowledge than the server.",
        ))
    }
}

/// A call a bridge started here: a bridge's token reaches no other conversation.
async fn phone_call(state: &AppState, id: &ConversationId) -> Result<lotse_dialog::Conversation, ApiError> {
    if !bridges(state).is_call(id) {
        return Err(crate::handoff::unknown());
    }
    Ok(state.sessions.snapshot(id).await?)
}

/// What a bridge commits carries the stored conversation on: no event taken back (the store
/// has written them), the caller's messages as they were, and indices into this knowledge.
/// (A reply's text may be shorter: the caller interrupted it.)
fn carries_on(
    state: &AppState,
    stored: &lotse_dialog::Conversation,
    sent: &lotse_dialog::Conversation,
) -> Result<(), ApiError> {
    use lotse_dialog::Event;
    let kb = state.engine().knowledge();
    let same = sent.events.len() >= stored.events.len()
        && stored.events.iter().zip(&sent.events).all(|(a, b)| match (a, b) {
            (Event::MessageIn { text: x, .. }, Event::MessageIn { text: y, .. }) => x == y,
            (Event::ReplyOut { .. }, Event::ReplyOut { .. }) => true,
            (Event::HandoffRequested { .. }, Event::HandoffRequested { .. }) => true,
            _ => false,
        });
    let in_range = sent.topic.is_none_or(|i| i < kb.services.len())
        && sent.office.is_none_or(|i| i < kb.offices.len())
        && sent.confirm.as_ref().is_none_or(|c| c.service < kb.services.len());
    if same && in_range {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_carried_on",
            "The conversation sent does not carry the stored one on.",
        ))
    }
}

async fn hello(State(state): State<Arc<AppState>>) -> Json<Hello> {
    Json(Hello { knowledge: bridges(&state).knowledge.clone() })
}

async fn start(
    State(state): State<Arc<AppState>>,
    body: Result<Json<Start>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body?;
    same_knowledge(&state, &body.knowledge)?;
    let (id, greeting) = state.sessions.start(Channel::Phone, body.lang);
    bridges(&state).started(&id);
    state.metrics.conversations.inc();
    let conversation = state.sessions.snapshot(&id).await?;
    let votes = state.sessions.hears_votes();
    Ok((StatusCode::CREATED, Json(Started { id, greeting, conversation, votes })).into_response())
}

async fn commit(
    State(state): State<Arc<AppState>>,
    Path(id): Path<ConversationId>,
    body: Result<Json<Commit>, JsonRejection>,
) -> Result<Json<Committed>, ApiError> {
    let Json(body) = body?;
    same_knowledge(&state, &body.knowledge)?;
    let stored = phone_call(&state, &id).await?;
    let mut conversation = body.conversation;
    carries_on(&state, &stored, &conversation)?;
    // What the bridge sends cannot move the conversation to another id or channel.
    conversation.id = id.clone();
    conversation.channel = Channel::Phone;
    let reply = state.sessions.commit(&id, conversation, body.reply).await?;
    let conversation = state.sessions.snapshot(&id).await?;
    Ok(Json(Committed { reply, conversation }))
}

async fn put_through(
    State(state): State<Arc<AppState>>,
    Path(id): Path<ConversationId>,
) -> Result<StatusCode, ApiError> {
    phone_call(&state, &id).await?;
    state.sessions.put_through(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn callback(
    State(state): State<Arc<AppState>>,
    Path(id): Path<ConversationId>,
    body: Result<Json<Callback>, JsonRejection>,
) -> Result<StatusCode, ApiError> {
    let Json(body) = body?;
    phone_call(&state, &id).await?;
    // The bridge asked for consent in words (or by key) before it sends this.
    let request = CallbackRequest {
        contact_kind: lotse_handoff::ContactKind::Phone,
        contact: body.phone,
        name: None,
        consent: true,
    };
    let out = state.sessions.callback(&id, request).await?;
    Ok(if out.created { StatusCode::CREATED } else { StatusCode::OK })
}

/// The caller's key on the last answer, for the plug-ins' log.
async fn vote(
    State(state): State<Arc<AppState>>,
    Path(id): Path<ConversationId>,
    body: Result<Json<Vote>, JsonRejection>,
) -> Result<Json<Voted>, ApiError> {
    let Json(body) = body?;
    phone_call(&state, &id).await?;
    let turn = state.sessions.vote_last_answer(&id, body.helpful).await?;
    Ok(Json(Voted { turn }))
}

async fn offer(State(state): State<Arc<AppState>>, Path(id): Path<ConversationId>) -> Result<Json<Offer>, ApiError> {
    let conv = phone_call(&state, &id).await?;
    Ok(Json(Offer { offer: state.desk().and_then(|d| d.callback_offer(&conv)) }))
}

async fn consent(State(state): State<Arc<AppState>>, Path(lang): Path<String>) -> Result<Json<Consent>, ApiError> {
    let lang = match lang.as_str() {
        "de" => Lang::De,
        "en" => Lang::En,
        _ => return Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", "No such language.")),
    };
    let desk = state.desk().ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "no_staff", "No staff desk."))?;
    Ok(Json(Consent { text: desk.phone_consent(lang) }))
}

async fn transfer(State(state): State<Arc<AppState>>, Path(team): Path<String>) -> Json<Transfer> {
    let target = state.desk().and_then(|d| d.transfer_target(&team));
    Json(Transfer { target })
}

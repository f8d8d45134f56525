//! The bridge API: what a SIP bridge on another node asks of this server, whose sessions own
//! its calls' conversations (the wire types and the protocol: `lotse_session::bridge`).
//!
//! Off unless the configuration gives a bridge token (`[bridge] token`); then every request
//! must carry it (`Authorization: Bearer …`), and only conversations of channel `phone` that a
//! bridge started can be written. Routes answer 404 while bridges are not allowed, 401 without
//! the token, 409 when the bridge loaded other knowledge.

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
    Callback, Commit, Committed, Consent, Hello, Offer, Start, Started, Transfer, fingerprint,
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

async fn authorize(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let Some(expected) = state.bridge_token.get() else {
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

fn knowledge(state: &AppState) -> String {
    fingerprint(state.engine().knowledge())
}

fn same_knowledge(state: &AppState, theirs: &str) -> Result<(), ApiError> {
    if theirs == knowledge(state) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::CONFLICT,
            "other_knowledge",
            "The bridge loaded other knowledge than the server.",
        ))
    }
}

/// A phone conversation: a bridge's token reaches no other.
async fn phone_call(state: &AppState, id: &ConversationId) -> Result<lotse_dialog::Conversation, ApiError> {
    let conv = state.sessions.snapshot(id).await?;
    if conv.channel != Channel::Phone {
        return Err(crate::handoff::unknown());
    }
    Ok(conv)
}

async fn hello(State(state): State<Arc<AppState>>) -> Json<Hello> {
    Json(Hello { knowledge: knowledge(&state) })
}

async fn start(
    State(state): State<Arc<AppState>>,
    body: Result<Json<Start>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body?;
    same_knowledge(&state, &body.knowledge)?;
    let (id, greeting) = state.sessions.start(Channel::Phone, body.lang);
    state.metrics.conversations.inc();
    let conversation = state.sessions.snapshot(&id).await?;
    Ok((StatusCode::CREATED, Json(Started { id, greeting, conversation })).into_response())
}

async fn commit(
    State(state): State<Arc<AppState>>,
    Path(id): Path<ConversationId>,
    body: Result<Json<Commit>, JsonRejection>,
) -> Result<Json<Committed>, ApiError> {
    let Json(body) = body?;
    same_knowledge(&state, &body.knowledge)?;
    phone_call(&state, &id).await?;
    let mut conversation = body.conversation;
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
    let target =
        state.desk().and_then(|d| d.schedule().teams.into_iter().find(|t| t.name == team || t.id == team)?.transfer);
    Json(Transfer { target })
}

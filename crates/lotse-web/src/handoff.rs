//! The citizen's handoff routes: callback requests, typing, deletion. What they do to the
//! conversation is the session's (`lotse_session`); here are the requests and responses.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use lotse_core::ConversationId;
use lotse_handoff::ContactKind;
use lotse_session::CallbackRequest;
use serde::Deserialize;

use crate::{ApiError, AppState};

pub(crate) fn unknown() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "unknown_conversation", "No such conversation; it may have expired.")
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

/// `POST /api/v1/conversations/{id}/callback`: stores a callback request with the citizen's
/// contact and consent, in the team's next window (201; 200 when one was stored before).
pub(crate) async fn callback(
    State(state): State<Arc<AppState>>,
    Path(id): Path<ConversationId>,
    body: Result<Json<CallbackBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body?;
    let request = CallbackRequest {
        contact_kind: body.contact_kind,
        contact: body.contact,
        name: body.name,
        consent: body.consent,
    };
    let out = state.sessions.callback(&id, request).await?;
    let status = if out.created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(serde_json::json!({"text": out.text, "handoff": out.info}))).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TypingBody {
    typing: bool,
}

/// `POST /api/v1/conversations/{id}/typing`: the citizen is typing (shown to the staff member).
pub(crate) async fn citizen_typing(
    State(state): State<Arc<AppState>>,
    Path(id): Path<ConversationId>,
    body: Result<Json<TypingBody>, JsonRejection>,
) -> Result<StatusCode, ApiError> {
    let Json(body) = body?;
    state.sessions.citizen_typing(&id, body.typing).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// When a deletion erases the plug-ins' data a second time.
const ERASE_AGAIN: std::time::Duration = std::time::Duration::from_secs(5);

/// `DELETE /api/v1/conversations/{id}`: the citizen ends the conversation; its transcript and
/// contact data are deleted at once.
pub(crate) async fn delete_conversation(
    State(state): State<Arc<AppState>>,
    Path(id): Path<ConversationId>,
) -> Result<StatusCode, ApiError> {
    let deleted = state.sessions.delete(&id).await;
    let mut erased = 0;
    if let Some(host) = state.plugins() {
        // What the plug-ins keep of it goes too (their votes and comments, the events), also
        // when this process no longer holds the conversation (idle, a restart, another node).
        erased = host.erase(&id).await.map_err(|e| {
            tracing::error!(error = %e, "the plug-ins could not erase a conversation");
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "store_unavailable", "Please try again in a moment.")
        })?;
        // An event being written at the deletion (a start, a relayed message, an answer whose
        // write outlasted its reply's wait) or a plug-in reading one at this moment may still
        // land: a second pass takes it.
        let (host, id) = (host.clone(), id.clone());
        tokio::spawn(async move {
            tokio::time::sleep(ERASE_AGAIN).await;
            if let Err(e) = host.erase(&id).await {
                tracing::warn!(error = %e, "the plug-ins' second erase failed");
            }
        });
    }
    match deleted {
        // Not held any more, but the plug-ins kept something of it, now deleted.
        Err(lotse_session::SessionError::UnknownConversation) if erased > 0 => Ok(StatusCode::NO_CONTENT),
        other => other.map(|()| StatusCode::NO_CONTENT).map_err(Into::into),
    }
}

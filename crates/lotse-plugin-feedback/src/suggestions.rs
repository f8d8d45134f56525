//! The suggestion box (Verbesserungsvorschlag, HF5-M04): a citizen sends a topic, a text and,
//! only with their consent, an e-mail address for questions back; administrators triage it
//! (received, in review, done, declined), may tag it as a problem statement for a hackathon
//! and may answer it publicly: the public sees the topic, the status and the answer, never the
//! citizen's text (they did not agree to its publication). The text is redacted as a comment
//! is; the address is dropped after the comment retention, the whole suggestion
//! [`KEEP_DAYS`] after it came in.
//!
//! Routes: `POST /p/feedback/suggestions`, `GET /p/feedback/suggestions` (the answered ones
//! marked public), `GET /staff/p/feedback/admin/suggestions`, `POST
//! /staff/p/feedback/admin/suggestions/{id}`.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use lotse_handoff::Store;
use lotse_plugin::{error, redact};
use serde::{Deserialize, Serialize};
use sqlx::Row;

/// The topics a suggestion can have.
pub const CATEGORIES: [&str; 4] = ["digital", "service", "city", "other"];

/// Where a suggestion stands.
pub const STATES: [&str; 4] = ["received", "reviewing", "done", "declined"];

/// The longest suggestion kept, and the longest public answer.
pub const MAX_TEXT: usize = 2000;

/// Days a suggestion is kept after it came in.
pub const KEEP_DAYS: u32 = 365;

pub(crate) const MIGRATION: &str = "CREATE TABLE feedback_suggestions (
        id TEXT PRIMARY KEY,
        at_ms BIGINT NOT NULL,
        changed_ms BIGINT NOT NULL,
        category TEXT NOT NULL,
        text TEXT NOT NULL,
        email TEXT,
        status TEXT NOT NULL,
        answer TEXT,
        public BIGINT NOT NULL,
        hackathon BIGINT NOT NULL
    );
    CREATE INDEX feedback_suggestions_at ON feedback_suggestions (at_ms)";

/// A citizen's suggestion.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSuggestion {
    pub category: String,
    pub text: String,
    #[serde(default)]
    pub email: Option<String>,
    /// That the city may write to `email` about this suggestion.
    #[serde(default)]
    pub consent: bool,
}

fn unavailable(e: sqlx::Error) -> Response {
    lotse_plugin::store_unavailable("feedback", e)
}

pub(crate) async fn submit(
    State(store): State<Store>,
    body: Result<Json<NewSuggestion>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Ok(Json(s)) = body else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            "The suggestion is not valid JSON of the expected form.",
        );
    };
    if !CATEGORIES.contains(&s.category.as_str()) {
        return error(StatusCode::BAD_REQUEST, "invalid_category", "Unknown topic.");
    }
    let text = redact(&s.text, MAX_TEXT);
    if text.chars().filter(|c| c.is_alphanumeric()).count() < 3 {
        return error(StatusCode::BAD_REQUEST, "invalid_text", "Please describe your suggestion.");
    }
    let email = s.email.as_deref().map(str::trim).filter(|e| !e.is_empty());
    if let Some(e) = email {
        let plausible = e.len() <= 254
            && !e.chars().any(char::is_whitespace)
            && e.split_once('@').is_some_and(|(a, d)| !a.is_empty() && d.contains('.') && !d.starts_with('.'));
        if !plausible {
            return error(StatusCode::BAD_REQUEST, "invalid_contact", "Please check the e-mail address.");
        }
        if !s.consent {
            return error(StatusCode::BAD_REQUEST, "consent_required", "An address is kept only with your consent.");
        }
    }
    let id = uuid::Uuid::new_v4().simple().to_string();
    let now = lotse_handoff::store::now_ms();
    let written = sqlx::query(
        "INSERT INTO feedback_suggestions (id, at_ms, changed_ms, category, text, email, status, answer, public, hackathon) \
         VALUES ($1, $2, $3, $4, $5, $6, 'received', NULL, 0, 0)",
    )
    .bind(&id)
    .bind(now)
    .bind(now)
    .bind(&s.category)
    .bind(&text)
    .bind(email)
    .execute(store.pool())
    .await;
    match written {
        Ok(_) => {
            crate::count(&store, "web", "de", "suggestion").await;
            (StatusCode::CREATED, Json(serde_json::json!({ "id": id }))).into_response()
        }
        Err(e) => unavailable(e),
    }
}

/// A suggestion as the public sees it (answered and marked public): the city's answer, not
/// the citizen's words.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct Public {
    pub at_ms: i64,
    pub category: String,
    pub status: String,
    pub answer: String,
}

pub(crate) async fn public(State(store): State<Store>) -> Response {
    let rows = sqlx::query(
        "SELECT at_ms, category, status, answer FROM feedback_suggestions \
         WHERE public = 1 AND answer IS NOT NULL ORDER BY at_ms DESC LIMIT 100",
    )
    .fetch_all(store.pool())
    .await;
    match rows {
        Ok(rows) => {
            let list: Vec<Public> = rows
                .iter()
                .map(|r| Public {
                    at_ms: r.try_get(0).unwrap_or(0),
                    category: r.try_get(1).unwrap_or_default(),
                    status: r.try_get(2).unwrap_or_default(),
                    answer: r.try_get(3).unwrap_or_default(),
                })
                .collect();
            Json(serde_json::json!({ "suggestions": list })).into_response()
        }
        Err(e) => unavailable(e),
    }
}

/// A suggestion as administrators see it.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct Suggestion {
    pub id: String,
    pub at_ms: i64,
    pub changed_ms: i64,
    pub category: String,
    pub text: String,
    pub email: Option<String>,
    pub status: String,
    pub answer: Option<String>,
    pub public: bool,
    pub hackathon: bool,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Filter {
    status: Option<String>,
}

pub(crate) async fn list(State(store): State<Store>, Query(f): Query<Filter>) -> Response {
    if f.status.as_deref().is_some_and(|s| !STATES.contains(&s)) {
        return error(StatusCode::BAD_REQUEST, "invalid_status", "Unknown status.");
    }
    let rows = sqlx::query(
        "SELECT id, at_ms, changed_ms, category, text, email, status, answer, public, hackathon \
         FROM feedback_suggestions WHERE ($1 = '' OR status = $1) ORDER BY at_ms DESC LIMIT 500",
    )
    .bind(f.status.unwrap_or_default())
    .fetch_all(store.pool())
    .await;
    match rows {
        Ok(rows) => {
            let list: Vec<Suggestion> = rows
                .iter()
                .map(|r| Suggestion {
                    id: r.try_get(0).unwrap_or_default(),
                    at_ms: r.try_get(1).unwrap_or(0),
                    changed_ms: r.try_get(2).unwrap_or(0),
                    category: r.try_get(3).unwrap_or_default(),
                    text: r.try_get(4).unwrap_or_default(),
                    email: r.try_get(5).unwrap_or(None),
                    status: r.try_get(6).unwrap_or_default(),
                    answer: r.try_get(7).unwrap_or(None),
                    public: r.try_get::<i64, _>(8).unwrap_or(0) != 0,
                    hackathon: r.try_get::<i64, _>(9).unwrap_or(0) != 0,
                })
                .collect();
            Json(serde_json::json!({ "suggestions": list })).into_response()
        }
        Err(e) => unavailable(e),
    }
}

/// An administrator's triage of a suggestion.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Triage {
    pub status: String,
    /// The answer, shown publicly when `public`.
    #[serde(default)]
    pub answer: Option<String>,
    #[serde(default)]
    pub public: bool,
    #[serde(default)]
    pub hackathon: bool,
}

pub(crate) async fn triage(
    State(store): State<Store>,
    Path(id): Path<String>,
    body: Result<Json<Triage>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Ok(Json(t)) = body else {
        return error(StatusCode::BAD_REQUEST, "invalid_json", "The triage is not valid JSON of the expected form.");
    };
    if !STATES.contains(&t.status.as_str()) {
        return error(StatusCode::BAD_REQUEST, "invalid_status", "Unknown status.");
    }
    // The city's own words: its addresses and numbers stay (no redaction), only control
    // characters and runs of spaces go.
    let answer = t
        .answer
        .as_deref()
        .map(|a| {
            a.split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .chars()
                .filter(|c| !c.is_control())
                .take(MAX_TEXT)
                .collect::<String>()
        })
        .filter(|a| !a.is_empty());
    if t.public && answer.is_none() {
        return error(StatusCode::BAD_REQUEST, "answer_required", "A suggestion is shown publicly with an answer.");
    }
    let updated = sqlx::query(
        "UPDATE feedback_suggestions SET status = $1, answer = $2, public = $3, hackathon = $4, changed_ms = $5 WHERE id = $6",
    )
    .bind(&t.status)
    .bind(answer)
    .bind(i64::from(t.public))
    .bind(i64::from(t.hackathon))
    .bind(lotse_handoff::store::now_ms())
    .bind(&id)
    .execute(store.pool())
    .await;
    match updated {
        Ok(r) if r.rows_affected() == 0 => {
            error(StatusCode::NOT_FOUND, "unknown_suggestion", "There is no such suggestion.")
        }
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => unavailable(e),
    }
}

/// Addresses after `address_days`, suggestions [`KEEP_DAYS`] after they came in.
pub(crate) async fn purge(store: &Store, now_ms: i64, address_days: u32) -> anyhow::Result<u64> {
    const DAY: i64 = 86_400_000;
    let addresses = sqlx::query("UPDATE feedback_suggestions SET email = NULL WHERE email IS NOT NULL AND at_ms < $1")
        .bind(now_ms - i64::from(address_days) * DAY)
        .execute(store.pool())
        .await?
        .rows_affected();
    let gone = sqlx::query("DELETE FROM feedback_suggestions WHERE at_ms < $1")
        .bind(now_ms - i64::from(KEEP_DAYS) * DAY)
        .execute(store.pool())
        .await?
        .rows_affected();
    Ok(addresses + gone)
}

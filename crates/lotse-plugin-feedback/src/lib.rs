//! Feedback (HF5-M04, first part): under each answer the citizen can say whether it helped;
//! on "no", why (wrong, out of date, hard to understand, not what I looked for, other) and, if
//! they like, a short comment. Each vote is kept with the reply's kind, sources, channel and
//! language, never with a person: the conversation's random id only, so that the citizen's
//! deletion erases it. Comments are redacted (e-mail addresses, numbers) and dropped after the
//! retention; the votes stay as counts.
//!
//! Service ratings on the city's pages (the national feedback component's first level): the
//! widget's script tag with `data-feedback="SERVICE-ID"` renders one to five stars and an
//! optional comment; a rating is kept with the service, the stars, the language and the time,
//! nothing of the person (no conversation, no address).
//!
//! The suggestion box: see [`suggestions`]; surveys: see [`surveys`].
//!
//! Routes: `POST /p/feedback/thumbs`, `POST /p/feedback/rating`, `/p/feedback/suggestions`
//! (citizens), `GET /staff/p/feedback/summary` (staff), `/staff/p/feedback/admin/suggestions`
//! (administrators).

pub mod suggestions;
pub mod surveys;

use std::collections::HashSet;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use lotse_core::ConversationId;
use lotse_handoff::Store;
use lotse_handoff::log::{Event, Logged};
use lotse_plugin::{FreeText, Manifest, Plugin, erase_rows, error, from_name, name_of, redact};
use serde::{Deserialize, Serialize};
use sqlx::Row;

/// Counts a citizen's feedback in the key figures: an event in the log with its channel and
/// language only (no conversation, no text). The feedback itself is stored already; a log that
/// cannot take the event costs a count, not the citizen's feedback.
pub(crate) async fn count(store: &Store, channel: &str, lang: &str, what: &str) {
    let event = Event::Feedback { channel: from_name(channel), lang: from_name(lang), what: what.to_string() };
    if let Err(e) = store.append_event(lotse_handoff::store::now_ms(), None, &event).await {
        tracing::warn!(error = %e, what, "feedback: not counted in the figures");
    }
}

/// Why an answer did not help.
pub const REASONS: [&str; 5] = ["wrong", "outdated", "unclear", "not_sought", "other"];

/// The longest comment kept.
pub const MAX_COMMENT: usize = 500;

const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        "CREATE TABLE feedback_replies (
        conversation_id TEXT NOT NULL,
        turn BIGINT NOT NULL,
        at_ms BIGINT NOT NULL,
        channel TEXT NOT NULL,
        lang TEXT NOT NULL,
        kind TEXT NOT NULL,
        sources TEXT NOT NULL,
        PRIMARY KEY (conversation_id, turn)
    );
    CREATE INDEX feedback_replies_at ON feedback_replies (at_ms);
    CREATE TABLE feedback_votes (
        conversation_id TEXT NOT NULL,
        turn BIGINT NOT NULL,
        at_ms BIGINT NOT NULL,
        helpful BIGINT NOT NULL,
        reason TEXT,
        comment TEXT,
        channel TEXT NOT NULL,
        lang TEXT NOT NULL,
        kind TEXT NOT NULL,
        sources TEXT NOT NULL,
        PRIMARY KEY (conversation_id, turn)
    );
    CREATE INDEX feedback_votes_at ON feedback_votes (at_ms)",
    ),
    (
        2,
        "CREATE TABLE feedback_ratings (
        at_ms BIGINT NOT NULL,
        service_id TEXT NOT NULL,
        stars BIGINT NOT NULL,
        comment TEXT,
        lang TEXT NOT NULL
    );
    CREATE INDEX feedback_ratings_at ON feedback_ratings (at_ms)",
    ),
    (3, suggestions::MIGRATION),
    (4, surveys::MIGRATION),
    (5, surveys::MIGRATION_COUNT),
];

/// The feedback plug-in.
pub struct Feedback {
    manifest: Manifest,
    store: Store,
    /// The services a page may be rated for (the knowledge's ids).
    services: Arc<HashSet<String>>,
    /// Days a comment is kept.
    comment_days: std::sync::atomic::AtomicU32,
    /// Days a reply's description (kind, sources) waits for a vote.
    reply_days: u32,
    surveys: Arc<surveys::Surveys>,
}

impl Feedback {
    /// `services`: the ids a page's rating may name (the knowledge's services); `tz`: the
    /// city's time zone (a survey's dates, the export's times); `chat_survey`: the survey the
    /// widget offers after a conversation, if any.
    pub fn new(
        store: Store,
        comment_days: u32,
        services: HashSet<String>,
        tz: jiff::tz::TimeZone,
        chat_survey: Option<String>,
    ) -> Arc<Feedback> {
        Arc::new(Feedback {
            manifest: Manifest {
                name: "feedback",
                purpose: "Whether an answer helped, and why not, so that editors can correct the knowledge.",
                reads: &["answered", "voted"],
                free_text: Some(FreeText {
                    purpose: "The citizen's own words on why an answer did not help, on a service they rated or in a survey (kept for the comment retention), and their suggestions (kept a year).",
                    retention_days: comment_days.max(suggestions::KEEP_DAYS),
                }),
                migrations: MIGRATIONS,
            },
            surveys: Arc::new(surveys::Surveys {
                store: store.clone(),
                tz,
                chat_survey: std::sync::RwLock::new(chat_survey),
            }),
            store,
            services: Arc::new(services),
            comment_days: std::sync::atomic::AtomicU32::new(comment_days),
            reply_days: 2,
        })
    }
}

impl Feedback {
    fn comment_days(&self) -> u32 {
        self.comment_days.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// A vote on one answer.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vote {
    pub conversation_id: String,
    /// Which answer: the conversation's answered messages counted from 1 (the reply's `turn`).
    pub turn: i64,
    pub helpful: bool,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub comment: Option<String>,
}

async fn vote(
    State(store): State<Store>,
    body: Result<Json<Vote>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Ok(Json(v)) = body else {
        return error(StatusCode::BAD_REQUEST, "invalid_json", "The vote is not valid JSON of the expected form.");
    };
    if v.conversation_id.is_empty() || v.conversation_id.len() > 64 || v.turn < 1 {
        return error(StatusCode::BAD_REQUEST, "invalid_vote", "Say which answer the vote is for.");
    }
    let reason = match v.reason.as_deref() {
        None | Some("") => None,
        Some(r) if !v.helpful && REASONS.contains(&r) => Some(r.to_string()),
        Some(_) => return error(StatusCode::BAD_REQUEST, "invalid_reason", "Unknown reason."),
    };
    let comment = v.comment.as_deref().filter(|_| !v.helpful).map(|c| redact(c, MAX_COMMENT)).filter(|c| !c.is_empty());
    let reply = sqlx::query(
        "SELECT channel, lang, kind, sources FROM feedback_replies WHERE conversation_id = $1 AND turn = $2",
    )
    .bind(&v.conversation_id)
    .bind(v.turn)
    .fetch_optional(store.pool())
    .await;
    let row = match reply {
        Ok(Some(row)) => row,
        Ok(None) => return error(StatusCode::NOT_FOUND, "unknown_answer", "There is no such answer to vote on."),
        Err(e) => {
            tracing::warn!(error = %e, "feedback: the store failed");
            return error(StatusCode::SERVICE_UNAVAILABLE, "store_unavailable", "Please try again in a moment.");
        }
    };
    let get = |i: usize| row.try_get::<String, _>(i).unwrap_or_default();
    // A second vote on the same answer replaces the first (the citizen changed their mind).
    let written = sqlx::query(
        "INSERT INTO feedback_votes (conversation_id, turn, at_ms, helpful, reason, comment, channel, lang, kind, sources) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
         ON CONFLICT (conversation_id, turn) DO UPDATE SET at_ms = excluded.at_ms, helpful = excluded.helpful, \
         reason = excluded.reason, comment = excluded.comment",
    )
    .bind(&v.conversation_id)
    .bind(v.turn)
    .bind(lotse_handoff::store::now_ms())
    .bind(i64::from(v.helpful))
    .bind(reason)
    .bind(comment)
    .bind(get(0))
    .bind(get(1))
    .bind(get(2))
    .bind(get(3))
    .execute(store.pool())
    .await;
    match written {
        Ok(_) => {
            // Logged as a vote on that answer of that conversation, as a caller's key is: the
            // figures count it, and the self-service count takes a conversation voted down
            // off. Its id is the log's key as for every answer, erased with the conversation.
            let event = Event::Voted {
                channel: from_name(&get(0)),
                lang: Some(from_name(&get(1))),
                turn: u32::try_from(v.turn).unwrap_or(u32::MAX),
                helpful: v.helpful,
            };
            let conversation = lotse_core::ConversationId::from(v.conversation_id.clone());
            if let Err(e) = store.append_event(lotse_handoff::store::now_ms(), Some(&conversation), &event).await {
                tracing::warn!(error = %e, "feedback: the vote is not counted in the figures");
            }
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => {
            tracing::warn!(error = %e, "feedback: the vote was not stored");
            error(StatusCode::SERVICE_UNAVAILABLE, "store_unavailable", "Please try again in a moment.")
        }
    }
}

/// A page's rating of a service.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rating {
    pub service: String,
    /// 1 (very dissatisfied) to 5 (very satisfied).
    pub stars: i64,
    #[serde(default)]
    pub comment: Option<String>,
    #[serde(default)]
    pub lang: Option<String>,
}

async fn rate(
    State((store, services)): State<(Store, Arc<HashSet<String>>)>,
    body: Result<Json<Rating>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Ok(Json(r)) = body else {
        return error(StatusCode::BAD_REQUEST, "invalid_json", "The rating is not valid JSON of the expected form.");
    };
    if !(1..=5).contains(&r.stars) {
        return error(StatusCode::BAD_REQUEST, "invalid_stars", "Give one to five stars.");
    }
    if !services.contains(&r.service) {
        return error(StatusCode::NOT_FOUND, "unknown_service", "There is no such service to rate.");
    }
    let lang = if r.lang.as_deref() == Some("en") { "en" } else { "de" };
    let comment = r.comment.as_deref().map(|c| redact(c, MAX_COMMENT)).filter(|c| !c.is_empty());
    let written = sqlx::query(
        "INSERT INTO feedback_ratings (at_ms, service_id, stars, comment, lang) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(lotse_handoff::store::now_ms())
    .bind(&r.service)
    .bind(r.stars)
    .bind(comment)
    .bind(lang)
    .execute(store.pool())
    .await;
    match written {
        Ok(_) => {
            count(&store, "web", lang, "rating").await;
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => {
            tracing::warn!(error = %e, "feedback: the rating was not stored");
            error(StatusCode::SERVICE_UNAVAILABLE, "store_unavailable", "Please try again in a moment.")
        }
    }
}

#[derive(Debug, Deserialize)]
struct Period {
    /// The last this many days (default 30, at most 366).
    days: Option<i64>,
}

/// A comment under a vote: (time in ms, reason, reply kind, sources, comment); a tuple, so
/// that the console reads it as an array.
pub type Comment = (i64, Option<String>, String, Vec<String>, String);

/// What staff see: the votes of a period, by reason and by service, and the latest comments.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    pub days: i64,
    pub helpful: i64,
    pub not_helpful: i64,
    /// (reason, votes), in the order of [`REASONS`].
    pub reasons: Vec<(String, i64)>,
    /// (service id, helpful, not helpful), most not-helpful first.
    pub services: Vec<(String, i64, i64)>,
    /// The latest comments.
    pub comments: Vec<Comment>,
    /// The pages' ratings per service: (service id, ratings, mean stars, ratings with 1 … 5
    /// stars), most rated first.
    #[serde(default)]
    pub ratings: Vec<(String, i64, f64, [i64; 5])>,
    /// The latest rating comments: (time in ms, service id, stars, comment).
    #[serde(default)]
    pub rating_comments: Vec<(i64, String, i64, String)>,
}

async fn summary(State(store): State<Store>, Query(p): Query<Period>) -> Response {
    let days = p.days.unwrap_or(30).clamp(1, 366);
    let since = lotse_handoff::store::now_ms() - days * 86_400_000;
    let rows = sqlx::query(
        "SELECT at_ms, helpful, reason, comment, kind, sources FROM feedback_votes WHERE at_ms >= $1 ORDER BY at_ms DESC",
    )
    .bind(since)
    .fetch_all(store.pool())
    .await;
    let Ok(rows) = rows else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "store_unavailable", "Please try again in a moment.");
    };
    let mut s = Summary {
        days,
        helpful: 0,
        not_helpful: 0,
        reasons: REASONS.iter().map(|r| (r.to_string(), 0)).collect(),
        services: Vec::new(),
        comments: Vec::new(),
        ratings: Vec::new(),
        rating_comments: Vec::new(),
    };
    for row in rows {
        let helpful = row.try_get::<i64, _>(1).unwrap_or(0) != 0;
        let reason: Option<String> = row.try_get(2).unwrap_or(None);
        let sources: Vec<String> =
            serde_json::from_str(&row.try_get::<String, _>(5).unwrap_or_default()).unwrap_or_default();
        if helpful {
            s.helpful += 1;
        } else {
            s.not_helpful += 1;
            if let Some(r) = s.reasons.iter_mut().find(|(r, _)| Some(r) == reason.as_ref()) {
                r.1 += 1;
            }
        }
        // A vote counts for the answer's first source, the service it was about.
        if let Some(first) = sources.first() {
            match s.services.iter_mut().find(|(id, _, _)| id == first) {
                Some(e) => *(if helpful { &mut e.1 } else { &mut e.2 }) += 1,
                None => s.services.push((first.clone(), i64::from(helpful), i64::from(!helpful))),
            }
        }
        if let Some(comment) = row.try_get::<Option<String>, _>(3).unwrap_or(None)
            && s.comments.len() < 50
        {
            let kind = row.try_get::<String, _>(4).unwrap_or_default();
            s.comments.push((row.try_get(0).unwrap_or(0), reason, kind, sources, comment));
        }
    }
    s.services.sort_by(|a, b| b.2.cmp(&a.2).then(a.1.cmp(&b.1)).then(a.0.cmp(&b.0)));
    // Counted in the database: a year of ratings is never read into memory.
    let counts = sqlx::query(
        "SELECT service_id, stars, COUNT(*) FROM feedback_ratings WHERE at_ms >= $1 GROUP BY service_id, stars",
    )
    .bind(since)
    .fetch_all(store.pool())
    .await;
    let comments = sqlx::query(
        "SELECT at_ms, service_id, stars, comment FROM feedback_ratings WHERE at_ms >= $1 AND comment IS NOT NULL \
         ORDER BY at_ms DESC LIMIT 50",
    )
    .bind(since)
    .fetch_all(store.pool())
    .await;
    let (Ok(counts), Ok(comments)) = (counts, comments) else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "store_unavailable", "Please try again in a moment.");
    };
    for row in counts {
        let service: String = row.try_get(0).unwrap_or_default();
        let stars = row.try_get::<i64, _>(1).unwrap_or(0).clamp(1, 5);
        let n = row.try_get::<i64, _>(2).unwrap_or(0);
        let i = match s.ratings.iter().position(|r| r.0 == service) {
            Some(i) => i,
            None => {
                s.ratings.push((service.clone(), 0, 0.0, [0; 5]));
                s.ratings.len() - 1
            }
        };
        let r = &mut s.ratings[i];
        r.1 += n;
        r.3[(stars - 1) as usize] += n;
    }
    for row in comments {
        s.rating_comments.push((
            row.try_get(0).unwrap_or(0),
            row.try_get(1).unwrap_or_default(),
            row.try_get::<i64, _>(2).unwrap_or(0),
            row.try_get::<Option<String>, _>(3).unwrap_or(None).unwrap_or_default(),
        ));
    }
    for r in &mut s.ratings {
        r.2 = r.3.iter().enumerate().map(|(i, n)| (i as f64 + 1.0) * *n as f64).sum::<f64>() / r.1.max(1) as f64;
    }
    s.ratings.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    Json(s).into_response()
}

#[async_trait::async_trait]
impl Plugin for Feedback {
    fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Remembers what each answer was (kind, sources, channel, language), so that a vote is
    /// stored with it; a caller's vote by key is stored as one under the answer it names.
    async fn on_event(&self, store: &Store, e: &Logged) -> anyhow::Result<()> {
        if let (Event::Voted { turn, helpful, .. }, Some(conversation)) = (&e.event, &e.conversation_id) {
            // The answer's description came before it in the log; an answer past its
            // description's retention keeps no vote.
            sqlx::query(
                "INSERT INTO feedback_votes (conversation_id, turn, at_ms, helpful, reason, comment, channel, lang, kind, sources) \
                 SELECT conversation_id, turn, $3, $4, NULL, NULL, channel, lang, kind, sources FROM feedback_replies \
                 WHERE conversation_id = $1 AND turn = $2 \
                 ON CONFLICT (conversation_id, turn) DO UPDATE SET at_ms = excluded.at_ms, helpful = excluded.helpful",
            )
            .bind(conversation.as_str())
            .bind(i64::from(*turn))
            .bind(e.at_ms)
            .bind(i64::from(*helpful))
            .execute(store.pool())
            .await?;
            return Ok(());
        }
        let (Event::Answered { channel, lang, turn, reply, sources, .. }, Some(conversation)) =
            (&e.event, &e.conversation_id)
        else {
            return Ok(());
        };
        sqlx::query(
            "INSERT INTO feedback_replies (conversation_id, turn, at_ms, channel, lang, kind, sources) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (conversation_id, turn) DO NOTHING",
        )
        .bind(conversation.as_str())
        .bind(i64::from(*turn))
        .bind(e.at_ms)
        .bind(name_of(channel))
        .bind(name_of(lang))
        .bind(name_of(reply))
        .bind(serde_json::to_string(sources)?)
        .execute(store.pool())
        .await?;
        Ok(())
    }

    fn public_routes(&self) -> Option<axum::Router> {
        Some(
            axum::Router::new()
                .route("/thumbs", post(vote))
                .route("/suggestions", post(suggestions::submit).get(suggestions::public))
                .with_state(self.store.clone())
                .merge(
                    axum::Router::new()
                        .route("/rating", post(rate))
                        .with_state((self.store.clone(), self.services.clone())),
                )
                .merge(surveys::public_routes(self.surveys.clone())),
        )
    }

    fn staff_routes(&self) -> Option<axum::Router> {
        Some(
            axum::Router::new()
                .route("/summary", get(summary))
                .route("/admin/suggestions", get(suggestions::list))
                .route("/admin/suggestions/{id}", post(suggestions::triage))
                .with_state(self.store.clone())
                .merge(surveys::staff_routes(self.surveys.clone())),
        )
    }

    fn settings(&self) -> Vec<lotse_plugin::Setting> {
        vec![
            lotse_plugin::Setting {
                name: "comment_days".into(),
                label: "Tage, die Anmerkungen, Kontaktadressen und Freitexte aus Umfragen aufbewahrt werden".into(),
                kind: lotse_plugin::SettingKind::Days { min: 1, max: 365 },
                value: self.comment_days().into(),
            },
            lotse_plugin::Setting {
                name: "chat_survey".into(),
                label: "Umfrage, die das Chatfenster nach einem Gespräch anbietet (Kennung, leer: keine)".into(),
                kind: lotse_plugin::SettingKind::Id,
                value: self.surveys.chat_survey().map_or(serde_json::Value::Null, serde_json::Value::String),
            },
        ]
    }

    fn set(&self, name: &str, value: &serde_json::Value) -> Result<(), String> {
        match name {
            "comment_days" => {
                let days = value.as_u64().and_then(|d| u32::try_from(d).ok()).ok_or("a number of days")?;
                self.comment_days.store(days, std::sync::atomic::Ordering::Relaxed);
                Ok(())
            }
            "chat_survey" => {
                let id = value.as_str().filter(|s| !s.is_empty()).map(String::from);
                self.surveys.set_chat_survey(id);
                Ok(())
            }
            _ => Err(format!("no setting is called {name:?}")),
        }
    }

    fn text_days(&self) -> Option<u32> {
        Some(self.comment_days().max(suggestions::KEEP_DAYS))
    }

    async fn purge(&self, store: &Store, now_ms: i64) -> anyhow::Result<u64> {
        const DAY: i64 = 86_400_000;
        let comment_days = self.comment_days();
        let replies = sqlx::query("DELETE FROM feedback_replies WHERE at_ms < $1")
            .bind(now_ms - i64::from(self.reply_days) * DAY)
            .execute(store.pool())
            .await?
            .rows_affected();
        let comments = sqlx::query("UPDATE feedback_votes SET comment = NULL WHERE comment IS NOT NULL AND at_ms < $1")
            .bind(now_ms - i64::from(comment_days) * DAY)
            .execute(store.pool())
            .await?
            .rows_affected();
        let rating_comments =
            sqlx::query("UPDATE feedback_ratings SET comment = NULL WHERE comment IS NOT NULL AND at_ms < $1")
                .bind(now_ms - i64::from(comment_days) * DAY)
                .execute(store.pool())
                .await?
                .rows_affected();
        let suggestions = suggestions::purge(store, now_ms, comment_days).await?;
        let survey_texts = surveys::purge(store, now_ms, comment_days).await?;
        Ok(replies + comments + rating_comments + suggestions + survey_texts)
    }

    async fn erase(&self, store: &Store, conversation: &ConversationId) -> anyhow::Result<u64> {
        erase_rows(store, &["feedback_replies", "feedback_votes"], conversation).await
    }
}

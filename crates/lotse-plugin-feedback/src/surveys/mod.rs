//! Surveys (HF5-M04): administrators write a questionnaire (sections, questions of eight
//! kinds, one level of display conditions, German, English and Einfache Sprache texts, start
//! and end dates, a response cap) in the console; citizens answer it on a city page (the
//! widget's tag with `data-survey="ID"`), by link or QR code (`/p/feedback/surveys/ID/form`),
//! and on the kiosk. Anonymous: no address, no conversation, no IP; a random token of the
//! device (kept in the browser) against a second submission, stored only as a hash.
//! Administrators read the results (no breakdown below [`results::MIN_BREAKDOWN`] responses)
//! and export them as CSV or JSON; a survey may publish its results (never the free texts).
//! Free texts are redacted as comments are and dropped after the comment retention.
//!
//! Routes: `GET /p/feedback/surveys/{id}`, `POST /p/feedback/surveys/{id}/responses`,
//! `GET /p/feedback/surveys/{id}/results`, `GET /p/feedback/surveys/{id}/form` (citizens);
//! `/staff/p/feedback/editor/surveys[/{id}[/results|/export|/qr.svg]]` (administrators).

pub mod definition;
pub mod results;

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use lotse_handoff::Store;
use lotse_plugin::{error, escape_html as escape};
use serde::{Deserialize, Serialize};
use sha2::Digest;
use sqlx::Row;

pub use definition::{Kind, Survey};

pub(crate) const MIGRATION: &str = "CREATE TABLE feedback_surveys (
        id TEXT PRIMARY KEY,
        created_ms BIGINT NOT NULL,
        changed_ms BIGINT NOT NULL,
        definition TEXT NOT NULL
    );
    CREATE TABLE feedback_survey_responses (
        survey_id TEXT NOT NULL,
        token TEXT NOT NULL,
        at_ms BIGINT NOT NULL,
        lang TEXT NOT NULL,
        channel TEXT NOT NULL,
        answers TEXT NOT NULL,
        has_text BIGINT NOT NULL,
        PRIMARY KEY (survey_id, token)
    );
    CREATE INDEX feedback_survey_responses_at ON feedback_survey_responses (at_ms)";

/// The count of a survey's responses, raised with each under its cap.
pub(crate) const MIGRATION_COUNT: &str = "ALTER TABLE feedback_surveys ADD COLUMN responses BIGINT NOT NULL DEFAULT 0;
    UPDATE feedback_surveys SET responses = \
        (SELECT COUNT(*) FROM feedback_survey_responses r WHERE r.survey_id = feedback_surveys.id)";

/// Where an answer came from.
pub const CHANNELS: [&str; 4] = ["web", "link", "kiosk", "chat"];

/// The surveys' shared state.
pub(crate) struct Surveys {
    pub store: Store,
    pub tz: jiff::tz::TimeZone,
    /// The survey the widget offers after a conversation (`[plugins] chat_survey`, or as an
    /// administrator set it).
    pub chat_survey: std::sync::RwLock<Option<String>>,
}

fn unavailable(e: impl std::fmt::Display) -> Response {
    lotse_plugin::store_unavailable("feedback", e)
}

fn unknown() -> Response {
    error(StatusCode::NOT_FOUND, "unknown_survey", "There is no such survey.")
}

/// A stored survey.
struct Loaded {
    survey: Survey,
    /// The definition as its editor wrote it.
    text: String,
    /// Its responses (kept with it, raised with each under the cap).
    responses: i64,
}

/// The language a citizen asked for (`en`, `ls`), German otherwise.
fn lang_of(asked: Option<&str>) -> &str {
    asked.filter(|l| matches!(*l, "en" | "ls")).unwrap_or("de")
}

/// Whether a survey takes answers now.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Open {
    Open,
    NotStarted,
    Ended,
    Full,
}

impl Surveys {
    pub(crate) fn chat_survey(&self) -> Option<String> {
        self.chat_survey.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(crate) fn set_chat_survey(&self, id: Option<String>) {
        *self.chat_survey.write().unwrap_or_else(|p| p.into_inner()) = id;
    }

    /// A survey with its definition as written and its count of responses, if there is one.
    async fn load(&self, id: &str) -> Result<Option<Loaded>, Response> {
        let row = sqlx::query("SELECT definition, responses FROM feedback_surveys WHERE id = $1")
            .bind(id)
            .fetch_optional(self.store.pool())
            .await
            .map_err(unavailable)?;
        let Some(row) = row else { return Ok(None) };
        let text: String = row.try_get(0).map_err(unavailable)?;
        let responses: i64 = row.try_get(1).map_err(unavailable)?;
        // Stored only after its check; a stored one that no longer reads is the store's fault.
        let survey = Survey::parse(&text).map_err(unavailable)?;
        Ok(Some(Loaded { survey, text, responses }))
    }

    /// [`Surveys::load`], a missing survey refused as unknown.
    async fn found(&self, id: &str) -> Result<Loaded, Response> {
        self.load(id).await?.ok_or_else(unknown)
    }

    fn open(&self, s: &Survey, responses: i64, now_ms: i64) -> Open {
        let today = jiff::Timestamp::from_millisecond(now_ms).unwrap_or_default().to_zoned(self.tz.clone()).date();
        if s.starts.is_some_and(|d| today < d) {
            Open::NotStarted
        } else if s.ends.is_some_and(|d| today > d) {
            Open::Ended
        } else if s.max_responses.is_some_and(|m| responses >= i64::from(m)) {
            Open::Full
        } else {
            Open::Open
        }
    }
}

/// A survey as a citizen's form gets it.
#[derive(Debug, Serialize, Deserialize)]
pub struct Form {
    pub id: String,
    pub open: Open,
    pub survey: Survey,
}

async fn form(State(s): State<Arc<Surveys>>, Path(id): Path<String>) -> Response {
    let Loaded { survey, responses, .. } = match s.found(&id).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let open = s.open(&survey, responses, lotse_handoff::store::now_ms());
    Json(Form { id, open, survey }).into_response()
}

/// A citizen's answers.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Submission {
    /// A random token of the device (against a second submission), 16 to 128 characters.
    pub token: String,
    #[serde(default)]
    pub lang: Option<String>,
    #[serde(default)]
    pub channel: Option<String>,
    pub answers: serde_json::Map<String, serde_json::Value>,
}

/// The token as kept: not the device's, and different for every survey.
fn token_hash(survey: &str, token: &str) -> String {
    let d = sha2::Sha256::digest(format!("{survey}\n{token}").as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

async fn submit(
    State(s): State<Arc<Surveys>>,
    Path(id): Path<String>,
    body: Result<Json<Submission>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Ok(Json(sub)) = body else {
        return error(StatusCode::BAD_REQUEST, "invalid_json", "The answers are not valid JSON of the expected form.");
    };
    if !(16..=128).contains(&sub.token.len())
        || !sub.token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return error(StatusCode::BAD_REQUEST, "invalid_token", "The form's token is missing.");
    }
    let lang = lang_of(sub.lang.as_deref());
    let channel = sub.channel.as_deref().filter(|c| CHANNELS.contains(c)).unwrap_or("web");
    let Loaded { survey, responses, .. } = match s.found(&id).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let answers = match survey.check_answers(&sub.answers) {
        Ok(a) => a,
        Err((question, message)) => {
            let body =
                serde_json::json!({ "error": { "code": "invalid_answer", "message": message, "question": question } });
            return (StatusCode::BAD_REQUEST, Json(body)).into_response();
        }
    };
    let now = lotse_handoff::store::now_ms();
    let open = s.open(&survey, responses, now);
    if open != Open::Open {
        let body = serde_json::json!({ "error": { "code": "survey_closed", "message": "This survey takes no answers now.", "open": open } });
        return (StatusCode::GONE, Json(body)).into_response();
    }
    let has_text = answers.values().any(|a| matches!(a, definition::Answer::Text(_)));
    let token = token_hash(&id, &sub.token);
    let cap = survey.max_responses.map_or(i64::MAX, i64::from);
    match keep_response(&s.store, &id, &token, now, lang, channel, &answers, has_text, cap).await {
        Ok(Kept::Yes) => {
            let counted_as = if channel == "kiosk" { "kiosk" } else { "web" };
            crate::count(&s.store, counted_as, if lang == "en" { "en" } else { "de" }, "survey_response").await;
            StatusCode::CREATED.into_response()
        }
        Ok(Kept::Again) => {
            error(StatusCode::CONFLICT, "already_answered", "This device has answered the survey already.")
        }
        Ok(Kept::Full) => {
            let body = serde_json::json!({ "error": { "code": "survey_closed", "message": "This survey takes no answers now.", "open": Open::Full } });
            (StatusCode::GONE, Json(body)).into_response()
        }
        Err(e) => unavailable(e),
    }
}

enum Kept {
    Yes,
    /// The device answered already.
    Again,
    /// The cap is reached.
    Full,
}

/// Keeps a response under the cap: the survey's count of responses is raised only below the
/// cap, in the same transaction as the response (its row's lock makes two answers at once wait
/// for each other on PostgreSQL, as SQLite's single writer does).
#[allow(clippy::too_many_arguments)]
async fn keep_response(
    store: &Store,
    id: &str,
    token: &str,
    now: i64,
    lang: &str,
    channel: &str,
    answers: &std::collections::BTreeMap<String, definition::Answer>,
    has_text: bool,
    cap: i64,
) -> Result<Kept, sqlx::Error> {
    let mut tx = store.pool().begin().await?;
    let taken = sqlx::query("UPDATE feedback_surveys SET responses = responses + 1 WHERE id = $1 AND responses < $2")
        .bind(id)
        .bind(cap)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    let inserted = if taken == 1 {
        sqlx::query(
            "INSERT INTO feedback_survey_responses (survey_id, token, at_ms, lang, channel, answers, has_text) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (survey_id, token) DO NOTHING",
        )
        .bind(id)
        .bind(token)
        .bind(now)
        .bind(lang)
        .bind(channel)
        .bind(serde_json::to_string(answers).unwrap_or_default())
        .bind(i64::from(has_text))
        .execute(&mut *tx)
        .await?
        .rows_affected()
    } else {
        0
    };
    if inserted == 1 {
        tx.commit().await?;
        return Ok(Kept::Yes);
    }
    tx.rollback().await?;
    let again = sqlx::query("SELECT 1 FROM feedback_survey_responses WHERE survey_id = $1 AND token = $2")
        .bind(id)
        .bind(token)
        .fetch_optional(store.pool())
        .await?;
    Ok(if again.is_some() { Kept::Again } else { Kept::Full })
}

async fn answers_of(s: &Surveys, id: &str) -> Result<Vec<results::Response>, Response> {
    let rows = sqlx::query(
        "SELECT at_ms, lang, channel, answers FROM feedback_survey_responses WHERE survey_id = $1 ORDER BY at_ms LIMIT 100000",
    )
    .bind(id)
    .fetch_all(s.store.pool())
    .await
    .map_err(unavailable)?;
    Ok(rows
        .iter()
        .map(|r| results::Response {
            at_ms: r.try_get(0).unwrap_or(0),
            lang: r.try_get(1).unwrap_or_default(),
            channel: r.try_get(2).unwrap_or_default(),
            answers: serde_json::from_str(&r.try_get::<String, _>(3).unwrap_or_default()).unwrap_or_default(),
        })
        .collect())
}

#[derive(Debug, Deserialize)]
struct LangQuery {
    lang: Option<String>,
    /// `kiosk` on the info terminal: every visitor answers anew.
    channel: Option<String>,
}

/// The results of a survey that publishes them, in `lang`, without the free texts; unknown
/// otherwise.
async fn published(s: &Surveys, id: &str, lang: &str) -> Result<results::Results, Response> {
    let Loaded { survey, .. } = s.found(id).await?;
    if !survey.public_results {
        return Err(unknown());
    }
    let answers = answers_of(s, id).await?;
    Ok(results::tally(id, &survey, &answers, lang, false))
}

/// The published results: counts and means, never the free texts.
async fn public_results(State(s): State<Arc<Surveys>>, Path(id): Path<String>, Query(q): Query<LangQuery>) -> Response {
    match published(&s, &id, lang_of(q.lang.as_deref())).await {
        Ok(r) => Json(r).into_response(),
        Err(r) => r,
    }
}

/// The published results as a page of their own: per question a table of the counts and
/// shares (and the means), no free texts, nothing below five responses.
async fn public_results_page(
    State(s): State<Arc<Surveys>>,
    Path(id): Path<String>,
    Query(q): Query<LangQuery>,
) -> Response {
    let lang = lang_of(q.lang.as_deref());
    let r = match published(&s, &id, lang).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let en = lang == "en";
    let t = |de: &'static str, english: &'static str| if en { english } else { de };
    let number = |v: f64| {
        let s = format!("{v:.1}");
        if en { s } else { s.replace('.', ",") }
    };
    let mut body = format!(
        "<h1>{}</h1><p>{} {}</p>",
        escape(&r.title),
        r.responses,
        if r.responses == 1 { t("Antwort", "response") } else { t("Antworten", "responses") }
    );
    if r.withheld {
        body.push_str(&format!(
            "<p>{}</p>",
            t("Ergebnisse werden ab fünf Antworten gezeigt.", "Results are shown from five responses.")
        ));
    }
    for (i, qr) in r.questions.iter().enumerate() {
        body.push_str(&format!("<h2 id=\"q{i}\">{}</h2>", escape(&qr.text)));
        let mut facts = format!("{} {}", qr.answered, t("beantwortet", "answered"));
        if let Some(m) = qr.mean {
            facts.push_str(&format!(", {} {}", t("Mittelwert", "mean"), number(m)));
        }
        if let Some(n) = qr.nps {
            facts.push_str(&format!(", NPS {n:.0}"));
        }
        if qr.withheld {
            facts.push_str(t(
                " (zu wenige Antworten für eine Aufschlüsselung)",
                " (too few answers to show a breakdown)",
            ));
        }
        body.push_str(&format!("<p>{facts}</p>"));
        if !qr.counts.is_empty() {
            body.push_str(&format!(
                "<table aria-labelledby=\"q{i}\"><thead><tr><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th></tr></thead><tbody>",
                t("Antwort", "Answer"),
                t("Anzahl", "Count"),
                t("Anteil", "Share")
            ));
            for c in &qr.counts {
                let share = if qr.answered > 0 { 100.0 * c.n as f64 / qr.answered as f64 } else { 0.0 };
                body.push_str(&format!(
                    "<tr><th scope=\"row\">{}</th><td>{}</td><td><span class=\"bar\" style=\"width:{:.0}px\" aria-hidden=\"true\"></span> {} %</td></tr>",
                    escape(&c.label),
                    c.n,
                    share * 2.0,
                    number(share)
                ));
            }
            body.push_str("</tbody></table>");
        }
        if !qr.statements.is_empty() {
            body.push_str(&format!(
                "<table aria-labelledby=\"q{i}\"><thead><tr><th scope=\"col\">{}</th>",
                t("Aussage", "Statement")
            ));
            let scale = if en {
                ["agree fully", "rather agree", "partly", "rather disagree", "disagree fully"]
            } else {
                ["stimme voll zu", "stimme eher zu", "teils, teils", "stimme eher nicht zu", "stimme gar nicht zu"]
            };
            for h in scale {
                body.push_str(&format!("<th scope=\"col\">{h}</th>"));
            }
            body.push_str(&format!("<th scope=\"col\">{}</th></tr></thead><tbody>", t("Mittelwert", "Mean")));
            for st in &qr.statements {
                body.push_str(&format!("<tr><th scope=\"row\">{}</th>", escape(&st.label)));
                for n in &st.counts {
                    body.push_str(&format!("<td>{n}</td>"));
                }
                body.push_str(&format!("<td>{}</td></tr>", st.mean.map(number).unwrap_or_else(|| "–".into())));
            }
            body.push_str("</tbody></table>");
        }
    }
    let html = format!(
        "<!doctype html>\n<html lang=\"{}\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><style>body{{font:16px/1.5 system-ui,sans-serif;margin:0;padding:16px;color:#1a1a1a}}main{{max-width:48em;margin:0 auto}}\
         table{{border-collapse:collapse;width:100%;margin-bottom:1rem}}th,td{{text-align:left;padding:.4rem;border-bottom:1px solid #c8c8c8}}\
         .bar{{display:inline-block;height:.8em;background:#004f9f;vertical-align:middle}}</style></head><body><main>{body}</main></body></html>\n",
        if en { "en" } else { "de" },
        escape(&r.title),
    );
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response()
}

/// The page a link or QR code opens: the survey's form, by itself.
async fn page(State(s): State<Arc<Surveys>>, Path(id): Path<String>, Query(q): Query<LangQuery>) -> Response {
    let Loaded { survey, .. } = match s.found(&id).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let lang = lang_of(q.lang.as_deref());
    let channel = q.channel.as_deref().filter(|c| matches!(*c, "kiosk" | "chat")).unwrap_or("link");
    let title = escape(survey.title.get(lang));
    let html_lang = if lang == "en" { "en" } else { "de" };
    let html = format!(
        "<!doctype html>\n<html lang=\"{html_lang}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{title}</title>\
         <style>body{{font:16px/1.5 system-ui,sans-serif;margin:0;padding:16px;color:#1a1a1a}}main{{max-width:40em;margin:0 auto}}</style></head>\
         <body><main><h1>{title}</h1>\
         <script src=\"/widget.js\" data-survey=\"{id}\" data-channel=\"{channel}\" data-lang=\"{lang}\" defer></script>\
         </main></body></html>\n",
        id = escape(&id),
    );
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response()
}

/// The survey offered after a conversation, while it runs: its title and the page's path.
async fn chat_survey(State(s): State<Arc<Surveys>>, Query(q): Query<LangQuery>) -> Response {
    let none = || error(StatusCode::NOT_FOUND, "no_survey", "No survey runs after conversations now.");
    let Some(id) = s.chat_survey() else { return none() };
    let Loaded { survey, responses, .. } = match s.load(&id).await {
        Ok(Some(v)) => v,
        Ok(None) => return none(),
        Err(r) => return r,
    };
    if s.open(&survey, responses, lotse_handoff::store::now_ms()) != Open::Open {
        return none();
    }
    let lang = lang_of(q.lang.as_deref());
    Json(serde_json::json!({
        "id": id,
        "title": survey.title.get(lang),
        "url": format!("/p/feedback/surveys/{id}/form?channel=chat&lang={lang}"),
    }))
    .into_response()
}

/// A survey as administrators list them.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct Listed {
    pub id: String,
    pub title: String,
    pub open: Open,
    pub responses: i64,
    pub changed_ms: i64,
    pub public_results: bool,
}

async fn list(State(s): State<Arc<Surveys>>) -> Response {
    let rows = sqlx::query(
        "SELECT id, definition, changed_ms, responses FROM feedback_surveys ORDER BY changed_ms DESC LIMIT 500",
    )
    .fetch_all(s.store.pool())
    .await;
    let rows = match rows {
        Ok(r) => r,
        Err(e) => return unavailable(e),
    };
    let now = lotse_handoff::store::now_ms();
    let list: Vec<Listed> = rows
        .iter()
        .filter_map(|r| {
            let survey = Survey::parse(&r.try_get::<String, _>(1).ok()?).ok()?;
            let responses = r.try_get(3).unwrap_or(0);
            Some(Listed {
                id: r.try_get(0).ok()?,
                title: survey.title.de.clone(),
                open: s.open(&survey, responses, now),
                responses,
                changed_ms: r.try_get(2).unwrap_or(0),
                public_results: survey.public_results,
            })
        })
        .collect();
    Json(serde_json::json!({ "surveys": list })).into_response()
}

/// A survey's definition as editors write it.
#[derive(Debug, Serialize, Deserialize)]
pub struct Edited {
    pub definition: String,
    /// A new survey: an id in use is refused rather than replaced.
    #[serde(default)]
    pub create: bool,
}

async fn read(State(s): State<Arc<Surveys>>, Path(id): Path<String>) -> Response {
    match s.found(&id).await {
        Ok(Loaded { text, responses, .. }) => {
            Json(serde_json::json!({ "id": id, "definition": text, "responses": responses })).into_response()
        }
        Err(r) => r,
    }
}

/// Creates or changes a survey. Once it has answers, its questions, kinds and options stay
/// (texts, dates, cap and publication may change): the answers are kept by them.
async fn write(
    State(s): State<Arc<Surveys>>,
    Path(id): Path<String>,
    body: Result<Json<Edited>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Ok(Json(e)) = body else {
        return error(StatusCode::BAD_REQUEST, "invalid_json", "Expected {\"definition\": \"…\"}.");
    };
    if !definition::valid_id(&id) {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_id",
            "A survey's id is 2 to 64 lower-case letters, digits and dashes.",
        );
    }
    if e.definition.len() > 200_000 {
        return error(StatusCode::PAYLOAD_TOO_LARGE, "too_large", "The definition is too long.");
    }
    let survey = match Survey::parse(&e.definition) {
        Ok(s) => s,
        Err(message) => return error(StatusCode::BAD_REQUEST, "invalid_survey", &message),
    };
    let before = match s.load(&id).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let now = lotse_handoff::store::now_ms();
    if e.create && before.is_some() {
        return error(StatusCode::CONFLICT, "survey_exists", "A survey with this id exists; choose another id.");
    }
    if let Some(old) = &before
        && old.responses > 0
        && old.survey.shape() != survey.shape()
    {
        return error(
            StatusCode::CONFLICT,
            "survey_answered",
            "The survey has answers: its questions, their kinds and options can no longer change (texts, dates and the cap can). Start a new survey for new questions.",
        );
    }
    let written = sqlx::query(
        "INSERT INTO feedback_surveys (id, created_ms, changed_ms, definition) VALUES ($1, $2, $2, $3) \
         ON CONFLICT (id) DO UPDATE SET changed_ms = excluded.changed_ms, definition = excluded.definition",
    )
    .bind(&id)
    .bind(now)
    .bind(&e.definition)
    .execute(s.store.pool())
    .await;
    match written {
        Ok(_) if before.is_none() => StatusCode::CREATED.into_response(),
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => unavailable(e),
    }
}

async fn remove(State(s): State<Arc<Surveys>>, Path(id): Path<String>) -> Response {
    let mut tx = match s.store.pool().begin().await {
        Ok(t) => t,
        Err(e) => return unavailable(e),
    };
    let gone = async {
        sqlx::query("DELETE FROM feedback_survey_responses WHERE survey_id = $1").bind(&id).execute(&mut *tx).await?;
        let r = sqlx::query("DELETE FROM feedback_surveys WHERE id = $1").bind(&id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok::<_, sqlx::Error>(r.rows_affected())
    }
    .await;
    match gone {
        Ok(0) => unknown(),
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => unavailable(e),
    }
}

async fn staff_results(State(s): State<Arc<Surveys>>, Path(id): Path<String>) -> Response {
    let Loaded { survey, .. } = match s.found(&id).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    match answers_of(&s, &id).await {
        Ok(a) => Json(results::tally(&id, &survey, &a, "de", true)).into_response(),
        Err(r) => r,
    }
}

#[derive(Debug, Deserialize)]
struct ExportQuery {
    /// `csv` (default) or `json`.
    format: Option<String>,
    /// `semicolon` for German spreadsheets (with a byte order mark, so they read UTF-8).
    sep: Option<String>,
}

async fn export(State(s): State<Arc<Surveys>>, Path(id): Path<String>, Query(q): Query<ExportQuery>) -> Response {
    let Loaded { survey, .. } = match s.found(&id).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let answers = match answers_of(&s, &id).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let disposition = |ext: &str| format!("attachment; filename=\"umfrage-{id}.{ext}\"");
    match q.format.as_deref() {
        Some("json") => {
            let body = serde_json::json!({ "survey": survey, "responses": answers });
            ([(header::CONTENT_DISPOSITION, disposition("json"))], Json(body)).into_response()
        }
        None | Some("csv") => {
            let semicolon = q.sep.as_deref() == Some("semicolon");
            match results::csv(&survey, &answers, if semicolon { b';' } else { b',' }, &s.tz) {
                Ok(mut bytes) => {
                    if semicolon {
                        bytes.splice(0..0, [0xEF, 0xBB, 0xBF]);
                    }
                    (
                        [
                            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                            (header::CONTENT_DISPOSITION, disposition("csv")),
                        ],
                        bytes,
                    )
                        .into_response()
                }
                Err(e) => unavailable(e),
            }
        }
        Some(_) => error(StatusCode::BAD_REQUEST, "invalid_format", "Export as csv or json."),
    }
}

#[derive(Debug, Deserialize)]
struct QrQuery {
    /// The address the city's citizens reach Lotse at (`https://lotse.jena.de`).
    base: String,
}

/// A QR code of the survey's page, for posters and letters.
async fn qr(State(s): State<Arc<Surveys>>, Path(id): Path<String>, Query(q): Query<QrQuery>) -> Response {
    if let Err(r) = s.found(&id).await {
        return r;
    }
    let base = match url::Url::parse(&q.base) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => u,
        _ => return error(StatusCode::BAD_REQUEST, "invalid_base", "Give the address citizens reach Lotse at."),
    };
    let Ok(link) = base.join(&format!("/p/feedback/surveys/{id}/form")) else {
        return error(StatusCode::BAD_REQUEST, "invalid_base", "Give the address citizens reach Lotse at.");
    };
    match qrcode::QrCode::new(link.as_str().as_bytes()) {
        Ok(code) => {
            let svg = code.render::<qrcode::render::svg::Color<'_>>().min_dimensions(240, 240).quiet_zone(true).build();
            ([(header::CONTENT_TYPE, "image/svg+xml")], svg).into_response()
        }
        Err(_) => error(StatusCode::BAD_REQUEST, "invalid_base", "The address is too long for a QR code."),
    }
}

pub(crate) fn public_routes(s: Arc<Surveys>) -> axum::Router {
    axum::Router::new()
        .route("/surveys/{id}", get(form))
        .route("/surveys/{id}/responses", axum::routing::post(submit))
        .route("/surveys/{id}/results", get(public_results))
        .route("/surveys/{id}/results/page", get(public_results_page))
        .route("/surveys/{id}/form", get(page))
        .route("/chat-survey", get(chat_survey))
        .with_state(s)
}

pub(crate) fn staff_routes(s: Arc<Surveys>) -> axum::Router {
    axum::Router::new()
        .route("/editor/surveys", get(list))
        .route("/editor/surveys/{id}", get(read).put(write).delete(remove))
        .route("/editor/surveys/{id}/results", get(staff_results))
        .route("/editor/surveys/{id}/export", get(export))
        .route("/editor/surveys/{id}/qr.svg", get(qr))
        .with_state(s)
}

/// Free texts after `text_days`; the choices stay.
pub(crate) async fn purge(store: &Store, now_ms: i64, text_days: u32) -> anyhow::Result<u64> {
    const DAY: i64 = 86_400_000;
    let rows = sqlx::query(
        "SELECT survey_id, token, answers FROM feedback_survey_responses WHERE has_text = 1 AND at_ms < $1 LIMIT 10000",
    )
    .bind(now_ms - i64::from(text_days) * DAY)
    .fetch_all(store.pool())
    .await?;
    let mut n = 0;
    for r in rows {
        let id: String = r.try_get(0)?;
        let token: String = r.try_get(1)?;
        let mut answers: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&r.try_get::<String, _>(2)?).unwrap_or_default();
        let definition: Option<String> = sqlx::query("SELECT definition FROM feedback_surveys WHERE id = $1")
            .bind(&id)
            .fetch_optional(store.pool())
            .await?
            .and_then(|r| r.try_get(0).ok());
        let texts: Vec<String> = definition
            .and_then(|d| Survey::parse(&d).ok())
            .map(|s| {
                s.questions()
                    .filter(|q| matches!(q.kind, Kind::ShortText | Kind::LongText))
                    .map(|q| q.id.clone())
                    .collect()
            })
            .unwrap_or_default();
        answers.retain(|k, _| !texts.contains(k));
        n += sqlx::query(
            "UPDATE feedback_survey_responses SET answers = $1, has_text = 0 WHERE survey_id = $2 AND token = $3",
        )
        .bind(serde_json::to_string(&answers)?)
        .bind(&id)
        .bind(&token)
        .execute(store.pool())
        .await?
        .rows_affected();
    }
    Ok(n)
}

//! The unanswered-questions inbox (HF5-M07): the questions the assistant declined, redacted,
//! kept for a short configurable time and grouped by similarity, so that the city's editors see
//! what citizens ask that the knowledge does not answer. Staff decide per group: it is about a
//! service the knowledge has (the inbox proposes a line for `knowledge/synonyms.toml` from the
//! words the knowledge does not know), it is a gap in the knowledge, or it is dismissed.
//!
//! Grouping: two questions are alike when they are very close, or close and the search's best
//! (however unsure) service is the same for both ([`alike`]); close by their embeddings (the
//! search's own, e5) with the embedding model loaded ([`DENSE_ALIKE`]), else by their index
//! terms ([`TERMS_ALIKE`], Jaccard). Groups are formed when staff look (each question joins the
//! first group whose first question it is alike to), so a purge or a decision never leaves a
//! stale group behind. `lotse eval grouping` measures it.
//!
//! What it keeps per question: the event's place in the log, the conversation's random id (for
//! the citizen's deletion), time, channel, language, the redacted text, its embedding or terms,
//! the search's best services and the words no service knows; nothing else of the citizen. All
//! of it goes after the retention, decided or not.
//!
//! Routes (staff): `GET /staff/p/inbox/groups?status=open|service|gap|dismissed&days=N`,
//! `POST /staff/p/inbox/editor/decide` (editors and administrators).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use lotse_core::ConversationId;
use lotse_handoff::Store;
use lotse_handoff::log::{Event, Logged};
use lotse_plugin::{FreeText, Manifest, Plugin, error, name_of};
use lotse_search::SearchIndex;
use serde::{Deserialize, Serialize};
use sqlx::Row;

/// When two questions are alike: their similarity is at least `any`, or at least `same_best`
/// where the search's best (however unsure) service for both is the same.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    pub any: f32,
    pub same_best: f32,
}

/// By embeddings (cosine). Chosen on the tune half of `../shared/eval/jena-dev.jsonl` with
/// `lotse eval grouping` (of the pairs grouped together, those about one service: tune 0.857,
/// check 0.889).
pub const DENSE_ALIKE: Thresholds = Thresholds { any: 0.92, same_best: 0.87 };

/// By index terms (Jaccard), where no embedding model is loaded; chosen the same way.
pub const TERMS_ALIKE: Thresholds = Thresholds { any: 0.5, same_best: 0.2 };

/// The most questions read for grouping (the newest), and so the most one decision covers.
pub const MAX_READ: usize = 2000;

/// The most groups shown, the largest first.
const MAX_GROUPS: usize = 100;

/// What staff may decide of a group.
pub const DECISIONS: [&str; 3] = ["service", "gap", "dismissed"];

const MIGRATIONS: &[(i64, &str)] = &[(
    1,
    "CREATE TABLE inbox_questions (
        seq BIGINT PRIMARY KEY,
        conversation_id TEXT NOT NULL,
        at_ms BIGINT NOT NULL,
        channel TEXT NOT NULL,
        lang TEXT NOT NULL,
        question TEXT NOT NULL,
        vector TEXT NOT NULL,
        terms TEXT NOT NULL,
        unknown_words TEXT NOT NULL,
        suggestions TEXT NOT NULL,
        decision TEXT,
        service_id TEXT,
        decided_ms BIGINT
    );
    CREATE INDEX inbox_questions_at ON inbox_questions (at_ms);
    CREATE INDEX inbox_questions_conversation ON inbox_questions (conversation_id)",
)];

/// The services staff can map a group to: (id, name), in knowledge order.
pub type Services = Vec<(String, String)>;

/// The inbox plug-in.
pub struct Inbox {
    manifest: Manifest,
    shared: Arc<Shared>,
    /// Days a question is kept (a setting administrators may change).
    days: std::sync::atomic::AtomicU32,
}

struct Shared {
    store: Store,
    search: Arc<SearchIndex>,
    services: Services,
}

impl Inbox {
    /// Over the engine's search index and the knowledge's services; questions are kept `days`
    /// days.
    pub fn new(store: Store, search: Arc<SearchIndex>, services: Services, days: u32) -> Arc<Inbox> {
        Arc::new(Inbox {
            manifest: Manifest {
                name: "inbox",
                purpose: "The questions the assistant could not answer, grouped, so that editors can close the gaps in the knowledge.",
                reads: &["unanswered"],
                free_text: Some(FreeText {
                    purpose: "The citizen's declined question, redacted, to find what the knowledge lacks.",
                    retention_days: days,
                }),
                migrations: MIGRATIONS,
            },
            shared: Arc::new(Shared { store, search, services }),
            days: std::sync::atomic::AtomicU32::new(days),
        })
    }
}

/// What the search makes of a question, kept with it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reading {
    /// The question's embedding; empty without the embedding model.
    pub vector: Vec<f32>,
    /// Its index terms, stop words removed.
    pub terms: Vec<String>,
    /// Its words no service knows (folded).
    pub unknown_words: Vec<String>,
    /// The search's best services (ids), best first, however unsure.
    pub suggestions: Vec<String>,
}

/// Reads a question with the engine's search (blocking: embedding takes milliseconds).
pub fn read(search: &SearchIndex, question: &str) -> Reading {
    let mut terms: Vec<String> = search.analyzer().terms(question);
    terms.sort();
    terms.dedup();
    let vector = match search.embed_question(question) {
        Some(Ok(v)) => v,
        Some(Err(e)) => {
            tracing::warn!(error = %e, "inbox: a question could not be embedded; it is grouped by its words");
            Vec::new()
        }
        None => Vec::new(),
    };
    let (unknown_words, suggestions) = match search.search(question, 3) {
        Ok(r) => (r.unknown_words, r.hits.into_iter().map(|h| h.service_id).collect()),
        Err(_) => (Vec::new(), Vec::new()),
    };
    Reading { vector, terms, unknown_words, suggestions }
}

/// How alike two questions are, 0–1: the cosine of their embeddings where both have one,
/// else the overlap of their index terms (Jaccard); and which of the two it is (`true`: the
/// embeddings').
pub fn similarity(a: &Reading, b: &Reading) -> (f32, bool) {
    if !a.vector.is_empty() && a.vector.len() == b.vector.len() {
        return (lotse_embed::cosine(&a.vector, &b.vector), true);
    }
    let (x, y): (HashSet<&str>, HashSet<&str>) =
        (a.terms.iter().map(String::as_str).collect(), b.terms.iter().map(String::as_str).collect());
    let union = x.union(&y).count();
    let shared = x.intersection(&y).count();
    (if union == 0 { 0.0 } else { shared as f32 / union as f32 }, false)
}

/// Whether two questions belong in one group, by embeddings where both have them (`dense`),
/// else by terms (`terms`).
pub fn alike_at(a: &Reading, b: &Reading, dense: Thresholds, terms: Thresholds) -> bool {
    let (s, by_embeddings) = similarity(a, b);
    let t = if by_embeddings { dense } else { terms };
    let same_best = a.suggestions.first().is_some_and(|x| b.suggestions.first() == Some(x));
    s > 0.0 && (s >= t.any || (same_best && s >= t.same_best))
}

/// [`alike_at`] with the inbox's thresholds, [`DENSE_ALIKE`] and [`TERMS_ALIKE`].
pub fn alike(a: &Reading, b: &Reading) -> bool {
    alike_at(a, b, DENSE_ALIKE, TERMS_ALIKE)
}

/// Groups readings (oldest first): each joins the first group whose first member it is alike
/// to, or starts one. Returns the members' indices per group, in the order groups began.
pub fn group(readings: &[&Reading]) -> Vec<Vec<usize>> {
    group_at(readings, DENSE_ALIKE, TERMS_ALIKE)
}

/// [`group`] with other thresholds (for measuring them).
pub fn group_at(readings: &[&Reading], dense: Thresholds, terms: Thresholds) -> Vec<Vec<usize>> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (i, r) in readings.iter().enumerate() {
        match groups.iter_mut().find(|g| alike_at(readings[g[0]], r, dense, terms)) {
            Some(g) => g.push(i),
            None => groups.push(vec![i]),
        }
    }
    groups
}

/// The lines for `knowledge/synonyms.toml` that would lead a group's questions to a service:
/// the words of the questions that no service knows (the most frequent first, at most three),
/// each mapped to the nouns of the service's name. None where the knowledge knows every word (then the
/// service's record wants the citizens' words, not a synonym).
pub fn synonym_lines(unknown_words: &[&[String]], service_name: &str) -> Vec<String> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for words in unknown_words {
        for w in words.iter().collect::<HashSet<_>>() {
            if w.chars().count() >= 3 && !w.chars().any(|c| c.is_ascii_digit() || c == '"' || c == '\\') {
                *counts.entry(w.as_str()).or_default() += 1;
            }
        }
    }
    let mut words: Vec<(&str, usize)> = counts.into_iter().collect();
    words.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    // The service's name in the knowledge's words: its nouns ("Hund anmelden (Hundesteuer)" →
    // "Hund", "Hundesteuer"), or the whole name where it has none.
    let nouns: Vec<String> = service_name
        .split(|c: char| !(c.is_alphanumeric() || c == '-'))
        .map(|w| w.trim_matches('-'))
        .filter(|w| w.chars().count() >= 3 && w.chars().next().is_some_and(char::is_uppercase))
        .take(3)
        .map(|w| format!("\"{w}\""))
        .collect();
    let target =
        if nouns.is_empty() { format!("\"{}\"", service_name.replace(['"', '\\'], "")) } else { nouns.join(", ") };
    words.iter().take(3).map(|(w, _)| format!("\"{w}\" = [{target}]")).collect()
}

#[async_trait::async_trait]
impl Plugin for Inbox {
    fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Keeps a declined question with what the search makes of it.
    async fn on_event(&self, store: &Store, e: &Logged) -> anyhow::Result<()> {
        let (Event::Unanswered { channel, lang, question, .. }, Some(conversation)) = (&e.event, &e.conversation_id)
        else {
            return Ok(());
        };
        let search = self.shared.search.clone();
        let text = question.clone();
        let r = tokio::task::spawn_blocking(move || read(&search, &text)).await?;
        // Only while the event is still in the log: a citizen's deletion between the host's
        // read and this write must not leave their question behind.
        sqlx::query(
            "INSERT INTO inbox_questions (seq, conversation_id, at_ms, channel, lang, question, vector, terms, \
             unknown_words, suggestions) SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10 \
             WHERE EXISTS (SELECT 1 FROM events WHERE seq = $1) ON CONFLICT (seq) DO NOTHING",
        )
        .bind(e.seq)
        .bind(conversation.as_str())
        .bind(e.at_ms)
        .bind(name_of(channel))
        .bind(name_of(lang))
        .bind(question)
        .bind(serde_json::to_string(&r.vector)?)
        .bind(serde_json::to_string(&r.terms)?)
        .bind(serde_json::to_string(&r.unknown_words)?)
        .bind(serde_json::to_string(&r.suggestions)?)
        .execute(store.pool())
        .await?;
        Ok(())
    }

    fn staff_routes(&self) -> Option<axum::Router> {
        Some(
            axum::Router::new()
                .route("/groups", get(groups))
                .route("/editor/decide", post(decide))
                .with_state(self.shared.clone()),
        )
    }

    fn settings(&self) -> Vec<lotse_plugin::Setting> {
        vec![lotse_plugin::Setting {
            name: "inbox_days".into(),
            label: "Tage, die eine nicht beantwortete Frage aufbewahrt wird".into(),
            kind: lotse_plugin::SettingKind::Days { min: 1, max: 365 },
            value: self.days.load(std::sync::atomic::Ordering::Relaxed).into(),
        }]
    }

    fn set(&self, name: &str, value: &serde_json::Value) -> Result<(), String> {
        match (name, value.as_u64().and_then(|d| u32::try_from(d).ok())) {
            ("inbox_days", Some(d)) => {
                self.days.store(d, std::sync::atomic::Ordering::Relaxed);
                Ok(())
            }
            _ => Err(format!("no setting is called {name:?}")),
        }
    }

    fn text_days(&self) -> Option<u32> {
        Some(self.days.load(std::sync::atomic::Ordering::Relaxed))
    }

    async fn purge(&self, store: &Store, now_ms: i64) -> anyhow::Result<u64> {
        let days = self.days.load(std::sync::atomic::Ordering::Relaxed);
        Ok(sqlx::query("DELETE FROM inbox_questions WHERE at_ms < $1")
            .bind(now_ms - i64::from(days) * 86_400_000)
            .execute(store.pool())
            .await?
            .rows_affected())
    }

    async fn erase(&self, store: &Store, conversation: &ConversationId) -> anyhow::Result<u64> {
        lotse_plugin::erase_rows(store, &["inbox_questions"], conversation).await
    }
}

/// The inbox is switched off: what it kept of citizens' questions goes at once (there is no
/// plug-in left whose retention would drop it), and so do the declined questions in the log.
pub async fn forget(store: &Store) -> anyhow::Result<u64> {
    let mut n = store.purge_events_of("unanswered", i64::MAX).await?;
    if store.plugin_migrated("inbox").await? {
        n += sqlx::query("DELETE FROM inbox_questions").execute(store.pool()).await?.rows_affected();
    }
    Ok(n)
}

#[derive(Debug, Deserialize)]
struct Filter {
    /// `open` (default), or a decision: `service`, `gap`, `dismissed`.
    status: Option<String>,
    /// The last this many days (default: all that is kept).
    days: Option<i64>,
}

/// One question as staff see it.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct Question {
    /// Its place in the event log: what a decision names.
    pub id: i64,
    pub at_ms: i64,
    pub channel: String,
    pub lang: String,
    pub text: String,
}

/// A group of alike questions.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct Group {
    /// The questions, newest first.
    pub questions: Vec<Question>,
    /// The services the search found closest to the group's questions, most often first:
    /// (id, name).
    pub suggestions: Vec<(String, String)>,
    /// The service staff mapped the group to (status `service`): (id, name).
    pub service: Option<(String, String)>,
    /// For a mapped group: lines for `knowledge/synonyms.toml` (may be none).
    pub synonym_lines: Vec<String>,
}

/// What staff see: the groups of one status, the largest first, and the services to map to.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct Groups {
    pub status: String,
    /// Questions of this status (of the newest [`MAX_READ`]; the groups shown may hold fewer).
    pub questions: usize,
    pub groups: Vec<Group>,
    /// (id, name) of every service, for the choice of a mapped service.
    pub services: Vec<(String, String)>,
}

struct Stored {
    question: Question,
    reading: Reading,
    service: Option<String>,
}

fn json_list<T: serde::de::DeserializeOwned>(row: &sqlx::any::AnyRow, i: usize) -> Vec<T> {
    serde_json::from_str(&row.try_get::<String, _>(i).unwrap_or_default()).unwrap_or_default()
}

async fn groups(State(shared): State<Arc<Shared>>, Query(f): Query<Filter>) -> Response {
    let status = f.status.unwrap_or_else(|| "open".into());
    if status != "open" && !DECISIONS.contains(&status.as_str()) {
        return error(StatusCode::BAD_REQUEST, "invalid_status", "Unknown status.");
    }
    let since = f.days.map_or(0, |d| lotse_handoff::store::now_ms() - d.clamp(1, 3660) * 86_400_000);
    let condition = if status == "open" { "decision IS NULL" } else { "decision = $3" };
    let sql = format!(
        "SELECT seq, at_ms, channel, lang, question, vector, terms, unknown_words, suggestions, service_id \
         FROM inbox_questions WHERE at_ms >= $1 AND {condition} ORDER BY seq DESC LIMIT $2"
    );
    let mut q = sqlx::query(&sql).bind(since).bind(MAX_READ as i64);
    if status != "open" {
        q = q.bind(&status);
    }
    let rows = match q.fetch_all(shared.store.pool()).await {
        Ok(rows) => rows,
        Err(e) => {
            tracing::warn!(error = %e, "inbox: the store failed");
            return error(StatusCode::SERVICE_UNAVAILABLE, "store_unavailable", "Please try again in a moment.");
        }
    };
    // Parsing the vectors and comparing them takes milliseconds per hundred questions: off the
    // async workers.
    let services = shared.clone();
    match tokio::task::spawn_blocking(move || build(rows, status, &services.services)).await {
        Ok(groups) => Json(groups).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "inbox: grouping failed");
            error(StatusCode::INTERNAL_SERVER_ERROR, "internal", "The questions could not be grouped.")
        }
    }
}

/// The groups of the questions `rows` (newest first), with the services to map to.
fn build(rows: Vec<sqlx::any::AnyRow>, status: String, services: &Services) -> Groups {
    let mut stored: Vec<Stored> = rows
        .iter()
        .map(|row| Stored {
            question: Question {
                id: row.try_get(0).unwrap_or(0),
                at_ms: row.try_get(1).unwrap_or(0),
                channel: row.try_get(2).unwrap_or_default(),
                lang: row.try_get(3).unwrap_or_default(),
                text: row.try_get(4).unwrap_or_default(),
            },
            reading: Reading {
                vector: json_list(row, 5),
                terms: json_list(row, 6),
                unknown_words: json_list(row, 7),
                suggestions: json_list(row, 8),
            },
            service: row.try_get::<Option<String>, _>(9).unwrap_or(None),
        })
        .collect();
    // Oldest first for grouping: a group is named by the question that began it.
    stored.reverse();
    let names: HashMap<&str, &str> = services.iter().map(|(id, n)| (id.as_str(), n.as_str())).collect();
    let named = |id: &str| names.get(id).map(|n| (id.to_string(), n.to_string()));
    // Mapped questions group per service first, then by likeness.
    let mut out = Vec::new();
    let mut by_service: BTreeMap<Option<String>, Vec<&Stored>> = BTreeMap::new();
    for s in &stored {
        by_service.entry(s.service.clone()).or_default().push(s);
    }
    for (service, members) in by_service {
        let readings: Vec<&Reading> = members.iter().map(|s| &s.reading).collect();
        for g in group(&readings) {
            let mut counts: HashMap<&str, usize> = HashMap::new();
            for &i in &g {
                for (rank, id) in members[i].reading.suggestions.iter().enumerate() {
                    *counts.entry(id.as_str()).or_default() += 3 - rank.min(2);
                }
            }
            let mut suggestions: Vec<(&str, usize)> = counts.into_iter().collect();
            suggestions.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
            let service = service.as_deref().and_then(named);
            let synonym_lines = match &service {
                Some((_, name)) => {
                    let words: Vec<&[String]> =
                        g.iter().map(|&i| members[i].reading.unknown_words.as_slice()).collect();
                    synonym_lines(&words, name)
                }
                None => Vec::new(),
            };
            let mut questions: Vec<Question> = g
                .iter()
                .map(|&i| {
                    let q = &members[i].question;
                    Question {
                        id: q.id,
                        at_ms: q.at_ms,
                        channel: q.channel.clone(),
                        lang: q.lang.clone(),
                        text: q.text.clone(),
                    }
                })
                .collect();
            questions.reverse();
            out.push(Group {
                questions,
                suggestions: suggestions.iter().filter_map(|(id, _)| named(id)).take(3).collect(),
                service,
                synonym_lines,
            });
        }
    }
    out.sort_by(|a, b| b.questions.len().cmp(&a.questions.len()).then(b.questions[0].at_ms.cmp(&a.questions[0].at_ms)));
    out.truncate(MAX_GROUPS);
    Groups { status, questions: stored.len(), groups: out, services: services.clone() }
}

/// A decision on a group.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    /// The questions' ids (their places in the log).
    pub questions: Vec<i64>,
    /// `service`, `gap`, `dismissed`, or `open` to take a decision back.
    pub decision: String,
    /// For `service`: the service's id.
    #[serde(default)]
    pub service: Option<String>,
}

/// What a decision did.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct Decided {
    pub decided: u64,
    /// For `service`: lines for `knowledge/synonyms.toml` (may be none).
    pub synonym_lines: Vec<String>,
}

async fn decide(
    State(shared): State<Arc<Shared>>,
    body: Result<Json<Decision>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Ok(Json(d)) = body else {
        return error(StatusCode::BAD_REQUEST, "invalid_json", "The decision is not valid JSON of the expected form.");
    };
    if d.questions.is_empty() || d.questions.len() > MAX_READ {
        return error(StatusCode::BAD_REQUEST, "invalid_questions", "Name between 1 and 2,000 questions.");
    }
    if d.decision != "open" && !DECISIONS.contains(&d.decision.as_str()) {
        return error(StatusCode::BAD_REQUEST, "invalid_decision", "Unknown decision.");
    }
    let service = match (d.decision.as_str(), d.service.as_deref()) {
        ("service", Some(id)) => match shared.services.iter().find(|(s, _)| s == id) {
            Some(s) => Some(s.clone()),
            None => return error(StatusCode::BAD_REQUEST, "unknown_service", "There is no such service."),
        },
        ("service", None) => {
            return error(StatusCode::BAD_REQUEST, "missing_service", "Say which service the questions are about.");
        }
        (_, Some(_)) => return error(StatusCode::BAD_REQUEST, "invalid_decision", "Only a mapping names a service."),
        (_, None) => None,
    };
    let decision = (d.decision != "open").then_some(d.decision.as_str());
    let mut tx = match shared.store.pool().begin().await {
        Ok(tx) => tx,
        Err(e) => {
            tracing::warn!(error = %e, "inbox: the store failed");
            return error(StatusCode::SERVICE_UNAVAILABLE, "store_unavailable", "Please try again in a moment.");
        }
    };
    let mut decided = 0;
    let mut unknown: Vec<Vec<String>> = Vec::new();
    let now = lotse_handoff::store::now_ms();
    for id in &d.questions {
        let updated = sqlx::query(
            "UPDATE inbox_questions SET decision = $1, service_id = $2, decided_ms = $3 WHERE seq = $4 RETURNING unknown_words",
        )
        .bind(decision)
        .bind(service.as_ref().map(|s| s.0.clone()))
        .bind(decision.map(|_| now))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await;
        match updated {
            Ok(Some(row)) => {
                decided += 1;
                unknown.push(json_list(&row, 0));
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, "inbox: the decision was not stored");
                return error(StatusCode::SERVICE_UNAVAILABLE, "store_unavailable", "Please try again in a moment.");
            }
        }
    }
    if decided == 0 {
        return error(StatusCode::NOT_FOUND, "unknown_questions", "None of these questions is kept (any longer).");
    }
    if let Err(e) = tx.commit().await {
        tracing::warn!(error = %e, "inbox: the decision was not stored");
        return error(StatusCode::SERVICE_UNAVAILABLE, "store_unavailable", "Please try again in a moment.");
    }
    let synonym_lines = match &service {
        Some((_, name)) => synonym_lines(&unknown.iter().map(Vec::as_slice).collect::<Vec<_>>(), name),
        None => Vec::new(),
    };
    Json(Decided { decided, synonym_lines }).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn questions_close_in_words_or_meaning_form_one_group() {
        let r = |t: &[&str], best: &str| Reading {
            terms: t.iter().map(|s| s.to_string()).collect(),
            suggestions: vec![best.to_string()],
            ..Reading::default()
        };
        let a = r(&["wetter", "morg"], "x");
        let b = r(&["wetter", "morg", "jena"], "y");
        let c = r(&["parkplatz", "rathaus", "kost", "gebuhr", "stund"], "parken");
        let d = r(&["parkplatz", "rathaus", "tag"], "parken");
        let e = r(&["parkplatz", "rathaus", "tag"], "anderes");
        // a and b: most words in common; c and d: some, and the same best service; e: the
        // same words as d, but the search found another service and too few in common with c.
        assert_eq!(group(&[&a, &c, &b, &d, &e]), vec![vec![0, 2], vec![1, 3], vec![4]]);
        assert!(!alike(&a, &r(&[], "x")), "nothing in common");
        // Embeddings decide where both have them.
        let v = |x: f32, best: &str| Reading { vector: vec![x, (1.0 - x * x).sqrt()], ..r(&["gleich"], best) };
        assert!(alike(&v(1.0, "x"), &v(0.93, "y")), "very close");
        assert!(alike(&v(1.0, "x"), &v(0.88, "x")), "close, the same best service");
        assert!(!alike(&v(1.0, "x"), &v(0.88, "y")), "close, other services");
        assert!(!alike(&v(1.0, "x"), &v(0.5, "x")), "the same words, far apart in meaning");
    }

    #[test]
    fn a_synonym_line_maps_the_words_the_knowledge_lacks_to_the_service() {
        let w = |t: &[&str]| t.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let (a, b, c) = (w(&["perso", "knete"]), w(&["perso"]), w(&["42", "a\"b"]));
        assert_eq!(
            synonym_lines(&[&a, &b, &c], "Personalausweis beantragen"),
            vec!["\"perso\" = [\"Personalausweis\"]", "\"knete\" = [\"Personalausweis\"]"]
        );
        assert_eq!(
            synonym_lines(&[&b], "Hund anmelden (Hundesteuer)"),
            vec!["\"perso\" = [\"Hund\", \"Hundesteuer\"]"]
        );
        assert_eq!(synonym_lines(&[&b], "sperrmüll \"abholen\""), vec!["\"perso\" = [\"sperrmüll abholen\"]"]);
        assert!(synonym_lines(&[], "Reisepass").is_empty());
    }
}

//! Key figures (HF5-M07): what happened, counted per day (the city's local date), channel and
//! language, and kept as counts only, for as long as the city likes. Each event is counted
//! exactly once: the count and the plug-in's own note of the last event counted change in one
//! transaction, so an event offered again after a crash is skipped.
//!
//! Counted: `conversations`, `conversations.outside_hours` (begun while the general team was
//! not reachable), and `campaign.CODE` for those that came by a campaign; `answers` (messages the assistant answered) and `reply.KIND` for
//! each kind (`answer`, `clarify`, `out_of_scope`, `handoff`, `greeting`, `smalltalk`);
//! `written_by_model`; `relayed` (messages that went to staff); `handoff.STATE` for each state an
//! answer announced (`queued`, `connected`, `callback_offered`, `callback`, `closed`);
//! `feedback.WHAT` for what citizens sent the feedback plug-in (`thumbs_up`, `thumbs_down`,
//! `rating`, `suggestion`, `survey_response`).
//!
//! `self_served`: conversations the assistant served alone (an answer from the records, no
//! handoff or callback, no thumbs down), counted on the day the conversation began; a
//! conversation counted that later goes to staff or gets a thumbs down is taken off again. What
//! that needs of a conversation (answered, handed over, voted down) is kept with its id for two
//! days at most, and erased with it.
//!
//! Derived, with their definitions ([`Derived`]): the answered, clarified and unanswered shares
//! of the answers, the self-service rate and the handoff rate of the conversations, and the
//! satisfaction (the share of thumbs up among the votes).
//!
//! Routes (administrators): `GET /staff/p/figures/admin/daily?from=&to=&channel=&format=json|csv`,
//! `GET /staff/p/figures/admin/report?month=YYYY-MM&format=html|csv` (the monthly report).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use lotse_core::ConversationId;
use lotse_handoff::Store;
use lotse_handoff::log::{Event, Logged};
use lotse_plugin::{Manifest, Plugin, error, escape_html as escape, name_of};
use serde::{Deserialize, Serialize};
use sqlx::Row;

const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        "CREATE TABLE figures_daily (
        day TEXT NOT NULL,
        channel TEXT NOT NULL,
        lang TEXT NOT NULL,
        name TEXT NOT NULL,
        n BIGINT NOT NULL,
        PRIMARY KEY (day, channel, lang, name)
    );
    CREATE TABLE figures_counted (id BIGINT PRIMARY KEY, seq BIGINT NOT NULL);
    INSERT INTO figures_counted (id, seq) VALUES (1, 0)",
    ),
    (
        2,
        "CREATE TABLE figures_queued (conversation_id TEXT PRIMARY KEY, at_ms BIGINT NOT NULL);
    CREATE TABLE figures_waits (day TEXT NOT NULL, channel TEXT NOT NULL, wait_s BIGINT NOT NULL);
    CREATE INDEX figures_waits_day ON figures_waits (day)",
    ),
    (
        3,
        "CREATE TABLE figures_conversations (
        conversation_id TEXT PRIMARY KEY,
        day TEXT NOT NULL,
        channel TEXT NOT NULL,
        lang TEXT NOT NULL,
        started BIGINT NOT NULL,
        answered BIGINT NOT NULL,
        handed BIGINT NOT NULL,
        down BIGINT NOT NULL,
        at_ms BIGINT NOT NULL
    )",
    ),
];

/// What an event says of a conversation for the self-service rate: it got an answer from the
/// records, it went to staff (or a callback), or an answer was voted down.
fn served_mark(event: &Event) -> Option<&'static str> {
    match event {
        Event::Answered { reply: lotse_core::ReplyKind::Answer, .. } => Some("answered"),
        Event::Handoff { state, .. }
            if matches!(state.as_str(), "queued" | "connected" | "callback_offered" | "callback") =>
        {
            Some("handed")
        }
        Event::Voted { helpful: false, .. } => Some("down"),
        _ => None,
    }
}

/// Adds `by` to one count of a day, channel and language.
async fn add(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    (day, channel, lang): (&str, &str, &str),
    name: &str,
    by: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO figures_daily (day, channel, lang, name, n) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (day, channel, lang, name) DO UPDATE SET n = figures_daily.n + $5",
    )
    .bind(day)
    .bind(channel)
    .bind(lang)
    .bind(name)
    .bind(by)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The key-figures plug-in.
pub struct Figures {
    manifest: Manifest,
    store: Store,
    zone: jiff::tz::TimeZone,
}

impl Figures {
    /// Days are the dates in `zone` (the city's).
    pub fn new(store: Store, zone: jiff::tz::TimeZone) -> Arc<Figures> {
        Arc::new(Figures {
            manifest: Manifest {
                name: "figures",
                purpose: "The key figures of the assistant: conversations, answers, handoffs, per day, channel and language.",
                reads: &["started", "answered", "relayed", "handoff", "feedback", "voted"],
                free_text: None,
                migrations: MIGRATIONS,
            },
            store,
            zone,
        })
    }
}

/// The counts an event adds: (channel, language, names).
fn counts(event: &Event) -> (String, String, Vec<String>) {
    match event {
        Event::Started { channel, lang, campaign, outside_hours } => {
            let mut names = vec!["conversations".to_string()];
            if *outside_hours {
                names.push("conversations.outside_hours".into());
            }
            names.extend(campaign.as_ref().map(|c| format!("campaign.{c}")));
            (name_of(channel), name_of(lang), names)
        }
        Event::Answered { channel, lang, reply, generated_by, sources, .. } => {
            let mut names = vec!["answers".to_string(), format!("reply.{}", name_of(reply))];
            // The service an answer was about (its first source), for the services asked most.
            if *reply == lotse_core::ReplyKind::Answer
                && let Some(first) = sources.first()
            {
                names.push(format!("service.{first}"));
            }
            if generated_by != "composer" {
                names.push("written_by_model".into());
            }
            (name_of(channel), name_of(lang), names)
        }
        Event::Relayed { channel } => (name_of(channel), "-".into(), vec!["relayed".into()]),
        Event::Handoff { channel, state } => (name_of(channel), "-".into(), vec![format!("handoff.{state}")]),
        Event::Feedback { channel, lang, what } => (name_of(channel), name_of(lang), vec![format!("feedback.{what}")]),
        // A caller's key on the last answer counts as a vote under it.
        Event::Voted { channel, lang, helpful, .. } => (
            name_of(channel),
            lang.as_ref().map_or_else(|| "-".into(), name_of),
            vec![format!("feedback.{}", if *helpful { "thumbs_up" } else { "thumbs_down" })],
        ),
        // Not read (the manifest does not ask for it): the question's text is the inbox's.
        Event::Unanswered { .. } | Event::Unknown => (String::new(), String::new(), Vec::new()),
    }
}

#[async_trait::async_trait]
impl Plugin for Figures {
    fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    async fn on_event(&self, store: &Store, e: &Logged) -> anyhow::Result<()> {
        let local = jiff::Timestamp::from_millisecond(e.at_ms)?.to_zoned(self.zone.clone());
        let day = local.date().to_string();
        let (channel, lang, mut names) = counts(&e.event);
        // Conversations by the hour they began (the city's time), for the busiest hours.
        if matches!(e.event, Event::Started { .. }) {
            names.push(format!("hour.{:02}", local.hour()));
        }
        let mut tx = store.pool().begin().await?;
        // Counted already (offered again after a crash): nothing changes.
        let moved = sqlx::query("UPDATE figures_counted SET seq = $1 WHERE id = 1 AND seq < $1")
            .bind(e.seq)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if moved == 0 {
            return Ok(());
        }
        // The wait in the queue: from the first "queued" to the claim (kept as a number of
        // seconds per day and channel; the conversation's id only while it waits).
        if let (Event::Handoff { state, .. }, Some(c)) = (&e.event, &e.conversation_id) {
            match state.as_str() {
                "queued" => {
                    sqlx::query(
                        "INSERT INTO figures_queued (conversation_id, at_ms) VALUES ($1, $2) \
                         ON CONFLICT (conversation_id) DO NOTHING",
                    )
                    .bind(c.as_str())
                    .bind(e.at_ms)
                    .execute(&mut *tx)
                    .await?;
                }
                "claimed" => {
                    let since: Option<i64> = sqlx::query("SELECT at_ms FROM figures_queued WHERE conversation_id = $1")
                        .bind(c.as_str())
                        .fetch_optional(&mut *tx)
                        .await?
                        .and_then(|r| r.try_get(0).ok());
                    if let Some(since) = since {
                        sqlx::query("INSERT INTO figures_waits (day, channel, wait_s) VALUES ($1, $2, $3)")
                            .bind(&day)
                            .bind(&channel)
                            .bind((e.at_ms - since).max(0) / 1000)
                            .execute(&mut *tx)
                            .await?;
                    }
                    sqlx::query("DELETE FROM figures_queued WHERE conversation_id = $1")
                        .bind(c.as_str())
                        .execute(&mut *tx)
                        .await?;
                }
                "abandoned" | "closed" | "callback" => {
                    sqlx::query("DELETE FROM figures_queued WHERE conversation_id = $1")
                        .bind(c.as_str())
                        .execute(&mut *tx)
                        .await?;
                }
                _ => {}
            }
        }
        // Self-service: a conversation is counted on the day it began while it has an answer
        // and neither went to staff nor was voted down. Only a conversation whose start is
        // counted counts (the rate stays a share of `conversations`), also when its start's
        // event comes after its first answer's (the start is logged on a task of its own).
        if let Some(c) = &e.conversation_id {
            let started = matches!(e.event, Event::Started { .. });
            let mark = served_mark(&e.event);
            if started || mark.is_some() {
                let row = sqlx::query(
                    "SELECT day, channel, lang, started, answered, handed, down FROM figures_conversations \
                     WHERE conversation_id = $1",
                )
                .bind(c.as_str())
                .fetch_optional(&mut *tx)
                .await?;
                let flag = |i: usize| row.as_ref().is_some_and(|r| r.try_get::<i64, _>(i).unwrap_or(0) != 0);
                let before = [flag(3), flag(4), flag(5), flag(6)];
                let mut after = before;
                match mark {
                    _ if started => after[0] = true,
                    Some("answered") => after[1] = true,
                    Some("handed") => after[2] = true,
                    Some(_) => after[3] = true,
                    None => {}
                }
                let served = |f: [bool; 4]| f[0] && f[1] && !f[2] && !f[3];
                // The conversation's day, channel and language are its start's.
                let key = match &row {
                    Some(r) if !started => {
                        let text = |i: usize| r.try_get::<String, _>(i).unwrap_or_default();
                        (text(0), text(1), text(2))
                    }
                    _ => (day.clone(), channel.clone(), lang.clone()),
                };
                // Its first event makes the row (and its time, for the purge); later ones change it.
                sqlx::query(
                    "INSERT INTO figures_conversations \
                     (conversation_id, day, channel, lang, started, answered, handed, down, at_ms) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                     ON CONFLICT (conversation_id) DO UPDATE SET day = excluded.day, channel = excluded.channel, \
                     lang = excluded.lang, started = excluded.started, answered = excluded.answered, \
                     handed = excluded.handed, down = excluded.down",
                )
                .bind(c.as_str())
                .bind(&key.0)
                .bind(&key.1)
                .bind(&key.2)
                .bind(i64::from(after[0]))
                .bind(i64::from(after[1]))
                .bind(i64::from(after[2]))
                .bind(i64::from(after[3]))
                .bind(e.at_ms)
                .execute(&mut *tx)
                .await?;
                if served(before) != served(after) {
                    let by = if served(after) { 1 } else { -1 };
                    add(&mut tx, (&key.0, &key.1, &key.2), "self_served", by).await?;
                }
            }
        }
        for name in names {
            add(&mut tx, (&day, &channel, &lang), &name, 1).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// A conversation still waiting, and what the self-service count needs of a recent one,
    /// are the only things kept with an id: gone on deletion (the counts stay).
    async fn erase(&self, store: &Store, conversation: &ConversationId) -> anyhow::Result<u64> {
        lotse_plugin::erase_rows(store, &["figures_queued", "figures_conversations"], conversation).await
    }

    /// A wait that never ended (the event was lost), and a conversation begun, are forgotten
    /// after two days: what happens later no longer changes its day's counts.
    async fn purge(&self, store: &Store, now_ms: i64) -> anyhow::Result<u64> {
        let mut n = 0;
        for table in ["figures_queued", "figures_conversations"] {
            n += sqlx::query(&format!("DELETE FROM {table} WHERE at_ms < $1"))
                .bind(now_ms - 2 * 86_400_000)
                .execute(store.pool())
                .await?
                .rows_affected();
        }
        Ok(n)
    }

    fn staff_routes(&self) -> Option<axum::Router> {
        Some(
            axum::Router::new()
                .route("/admin/daily", axum::routing::get(daily))
                .route("/admin/report", axum::routing::get(report))
                .with_state((self.store.clone(), self.zone.clone())),
        )
    }
}

#[derive(Debug, Deserialize)]
struct Period {
    /// First day, `YYYY-MM-DD` (default: 29 days before `to`, the last 30 days).
    from: Option<String>,
    /// Last day (default: today, the city's date).
    to: Option<String>,
    /// `json` (default) or `csv` (UTF-8, `;`-separated for German spreadsheets).
    format: Option<String>,
    /// Only this channel (`web`, `app`, `kiosk`, `phone`).
    channel: Option<String>,
}

/// One count.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Row1 {
    pub day: String,
    pub channel: String,
    pub lang: String,
    pub name: String,
    pub n: i64,
}

/// Figures derived from the counts of a period, each with its definition.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct Derived {
    /// `reply.answer` / `answers`: messages answered from the records.
    pub answered_share: Option<f64>,
    /// `reply.clarify` / `answers`: messages asked back about or offered choices.
    pub clarified_share: Option<f64>,
    /// `reply.out_of_scope` / `answers`: messages the assistant could not answer.
    pub unanswered_share: Option<f64>,
    /// (`handoff.queued` + `handoff.callback_offered`) / `conversations`: conversations that
    /// went to staff or were offered a callback.
    pub handoff_rate: Option<f64>,
    /// `self_served` / `conversations`: conversations with an answer from the records, no
    /// handoff or callback and no thumbs down.
    #[serde(default)]
    pub self_service_rate: Option<f64>,
    /// `feedback.thumbs_up` / (`feedback.thumbs_up` + `feedback.thumbs_down`): answers that
    /// helped, of those voted on.
    #[serde(default)]
    pub satisfaction: Option<f64>,
    /// The median wait in the staff queue, in seconds: from the first "queued" to the claim,
    /// of the conversations claimed in the period.
    #[serde(default)]
    pub wait_median_s: Option<i64>,
    /// The services answered about most (`service.ID`: answers whose first source it was),
    /// at most ten, most first: (id, answers).
    #[serde(default)]
    pub top_services: Vec<(String, i64)>,
    /// Conversations begun per hour of the day, the city's time (`hour.HH`), 0 to 23.
    #[serde(default)]
    pub by_hour: Vec<i64>,
}

/// The figures of a period.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct Daily {
    pub from: String,
    pub to: String,
    pub rows: Vec<Row1>,
    /// Each name's total over the period, all channels and languages.
    pub totals: BTreeMap<String, i64>,
    pub derived: Derived,
}

fn share(a: i64, b: i64) -> Option<f64> {
    (b > 0).then(|| (a as f64 / b as f64 * 1000.0).round() / 1000.0)
}

/// The counts of the days `from` to `to`, of one channel or all.
async fn read_period(
    store: &Store,
    from: jiff::civil::Date,
    to: jiff::civil::Date,
    channel: Option<&str>,
) -> Result<Vec<Row1>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT day, channel, lang, name, n FROM figures_daily WHERE day >= $1 AND day <= $2 \
         AND ($3 = '' OR channel = $3) ORDER BY day, channel, lang, name",
    )
    .bind(from.to_string())
    .bind(to.to_string())
    .bind(channel.unwrap_or_default())
    .fetch_all(store.pool())
    .await?;
    Ok(rows
        .iter()
        .map(|r| Row1 {
            day: r.try_get(0).unwrap_or_default(),
            channel: r.try_get(1).unwrap_or_default(),
            lang: r.try_get(2).unwrap_or_default(),
            name: r.try_get(3).unwrap_or_default(),
            n: r.try_get(4).unwrap_or_default(),
        })
        .collect())
}

fn totals_of(rows: &[Row1]) -> BTreeMap<String, i64> {
    let mut totals: BTreeMap<String, i64> = BTreeMap::new();
    for r in rows {
        *totals.entry(r.name.clone()).or_default() += r.n;
    }
    totals
}

fn derive(totals: &BTreeMap<String, i64>) -> Derived {
    let n = |k: &str| totals.get(k).copied().unwrap_or(0);
    Derived {
        answered_share: share(n("reply.answer"), n("answers")),
        clarified_share: share(n("reply.clarify"), n("answers")),
        unanswered_share: share(n("reply.out_of_scope"), n("answers")),
        handoff_rate: share(n("handoff.queued") + n("handoff.callback_offered"), n("conversations")),
        self_service_rate: share(n("self_served"), n("conversations")),
        satisfaction: share(n("feedback.thumbs_up"), n("feedback.thumbs_up") + n("feedback.thumbs_down")),
        wait_median_s: None,
        top_services: {
            let mut top: Vec<(String, i64)> =
                totals.iter().filter_map(|(k, v)| k.strip_prefix("service.").map(|id| (id.to_string(), *v))).collect();
            top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            top.truncate(10);
            top
        },
        by_hour: (0..24).map(|h| n(&format!("hour.{h:02}"))).collect(),
    }
}

/// The median of the queue waits of the days `from` to `to`, of one channel or all.
async fn median_wait(
    store: &Store,
    from: jiff::civil::Date,
    to: jiff::civil::Date,
    channel: Option<&str>,
) -> Result<Option<i64>, sqlx::Error> {
    let waits: Vec<i64> = sqlx::query(
        "SELECT wait_s FROM figures_waits WHERE day >= $1 AND day <= $2 AND ($3 = '' OR channel = $3) \
         ORDER BY wait_s",
    )
    .bind(from.to_string())
    .bind(to.to_string())
    .bind(channel.unwrap_or_default())
    .fetch_all(store.pool())
    .await?
    .iter()
    .filter_map(|r| r.try_get(0).ok())
    .collect();
    // The median: the middle wait, or the mean of the two middle ones.
    let n = waits.len();
    Ok((n > 0).then(|| if n % 2 == 1 { waits[n / 2] } else { (waits[n / 2 - 1] + waits[n / 2]) / 2 }))
}

/// The channels the figures know; a filter names one of them.
const CHANNELS: [&str; 4] = ["web", "app", "kiosk", "phone"];

async fn daily(State((store, zone)): State<(Store, jiff::tz::TimeZone)>, Query(p): Query<Period>) -> Response {
    let parse = |s: &Option<String>| s.as_deref().map(|d| d.parse::<jiff::civil::Date>()).transpose();
    let (Ok(to), Ok(from)) = (parse(&p.to), parse(&p.from)) else {
        return error(StatusCode::BAD_REQUEST, "invalid_date", "Dates are written YYYY-MM-DD.");
    };
    let channel = p.channel.as_deref().filter(|c| !c.is_empty());
    if channel.is_some_and(|c| !CHANNELS.contains(&c)) {
        return error(StatusCode::BAD_REQUEST, "invalid_channel", "Unknown channel.");
    }
    let to = to.unwrap_or_else(|| jiff::Timestamp::now().to_zoned(zone).date());
    // The last 30 days, today among them.
    let from = from.unwrap_or_else(|| to.saturating_sub(jiff::Span::new().days(29)));
    if from > to || (to - from).get_days() > 3660 {
        return error(StatusCode::BAD_REQUEST, "invalid_period", "Give a period of at most ten years, from before to.");
    }
    let Ok(rows) = read_period(&store, from, to, channel).await else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "store_unavailable", "Please try again in a moment.");
    };
    if p.format.as_deref() == Some("csv") {
        let mut csv = String::from("\u{feff}Tag;Kanal;Sprache;Kennzahl;Anzahl\r\n");
        for r in &rows {
            csv.push_str(&format!("{};{};{};{};{}\r\n", r.day, r.channel, r.lang, r.name, r.n));
        }
        return (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (header::CONTENT_DISPOSITION, "attachment; filename=\"lotse-kennzahlen.csv\""),
            ],
            csv,
        )
            .into_response();
    }
    let totals = totals_of(&rows);
    let mut derived = derive(&totals);
    match median_wait(&store, from, to, channel).await {
        Ok(m) => derived.wait_median_s = m,
        Err(_) => return error(StatusCode::SERVICE_UNAVAILABLE, "store_unavailable", "Please try again in a moment."),
    }
    axum::Json(Daily { from: from.to_string(), to: to.to_string(), rows, totals, derived }).into_response()
}

#[derive(Debug, Deserialize)]
struct Month {
    /// `YYYY-MM` (default: the last full month).
    month: Option<String>,
    /// `html` (default, a page to print) or `csv`.
    format: Option<String>,
}

/// One line of the monthly report: the plan's key figure, its value this month and the month
/// before (a share in per cent, a count as it is).
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct ReportLine {
    pub figure: String,
    pub value: Option<f64>,
    pub before: Option<f64>,
    pub percent: bool,
}

/// The lines of the monthly report from the totals of the month and of the month before.
pub fn report_lines(now: &BTreeMap<String, i64>, before: &BTreeMap<String, i64>) -> Vec<ReportLine> {
    let (d_now, d_before) = (derive(now), derive(before));
    let n = |t: &BTreeMap<String, i64>, k: &str| t.get(k).copied().unwrap_or(0) as f64;
    let count = |figure: &str, f: &dyn Fn(&BTreeMap<String, i64>) -> f64| ReportLine {
        figure: figure.into(),
        value: Some(f(now)),
        before: Some(f(before)),
        percent: false,
    };
    let pct = |figure: &str, a: Option<f64>, b: Option<f64>| ReportLine {
        figure: figure.into(),
        value: a.map(|v| v * 100.0),
        before: b.map(|v| v * 100.0),
        percent: true,
    };
    let mut lines = vec![
        count("Interaktionen: Gespräche", &|t| n(t, "conversations")),
        count("davon am Infoterminal (Kiosk)", &|t| n(t, "kiosk.conversations")),
        count("Interaktionen: beantwortete Nachrichten", &|t| n(t, "answers")),
        count("davon am Telefon", &|t| n(t, "phone.answers")),
        pct("aus den Daten beantwortet", d_now.answered_share, d_before.answered_share),
        pct("nicht beantwortet", d_now.unanswered_share, d_before.unanswered_share),
        pct(
            "Selbstbedienung (Gespräche mit Antwort, ohne Übergabe und ohne „hat nicht geholfen“)",
            d_now.self_service_rate,
            d_before.self_service_rate,
        ),
        pct("Übergaben an Mitarbeitende (Anteil der Gespräche)", d_now.handoff_rate, d_before.handoff_rate),
        count("Gespräche außerhalb der Servicezeiten", &|t| n(t, "conversations.outside_hours")),
        count("Übergaben: verbunden", &|t| n(t, "handoff.connected")),
        count("Übergaben: verlassen (Person ging aus der Warteschlange)", &|t| n(t, "handoff.abandoned")),
        count("Rückrufe vereinbart", &|t| n(t, "handoff.callback")),
        pct("Zufriedenheit („hat geholfen“ der Bewertungen)", d_now.satisfaction, d_before.satisfaction),
        count("Bewertungen unter Antworten", &|t| n(t, "feedback.thumbs_up") + n(t, "feedback.thumbs_down")),
        count("Bewertungen von Leistungen", &|t| n(t, "feedback.rating")),
        count("Verbesserungsvorschläge", &|t| n(t, "feedback.suggestion")),
        count("Nutzerbefragungen: Antworten", &|t| n(t, "feedback.survey_response")),
    ];
    // Each campaign's reach: the conversations begun through its code, this month or the one
    // before.
    let codes: std::collections::BTreeSet<&str> =
        now.keys().chain(before.keys()).filter_map(|k| k.strip_prefix("campaign.")).collect();
    for code in codes {
        let key = format!("campaign.{code}");
        lines.push(count(&format!("Kampagne „{code}“: Gespräche"), &|t| n(t, &key)));
    }
    lines
}

fn german(v: Option<f64>, percent: bool) -> String {
    match v {
        None => "–".into(),
        Some(v) if percent => format!("{:.1} %", v).replace('.', ","),
        Some(v) => format!("{v:.0}"),
    }
}

/// The monthly report: the plan's key figures for a month beside the month before, as a page
/// to print or as CSV.
async fn report(State((store, zone)): State<(Store, jiff::tz::TimeZone)>, Query(q): Query<Month>) -> Response {
    let first = match q.month.as_deref() {
        Some(m) => match format!("{m}-01").parse::<jiff::civil::Date>() {
            Ok(d) => d,
            Err(_) => return error(StatusCode::BAD_REQUEST, "invalid_month", "Months are written YYYY-MM."),
        },
        None => {
            let today = jiff::Timestamp::now().to_zoned(zone).date();
            today.first_of_month().saturating_sub(jiff::Span::new().months(1))
        }
    };
    let last = first.last_of_month();
    let before_first = first.saturating_sub(jiff::Span::new().months(1));
    let (Ok(now), Ok(before)) = (
        read_period(&store, first, last, None).await,
        read_period(&store, before_first, before_first.last_of_month(), None).await,
    ) else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "store_unavailable", "Please try again in a moment.");
    };
    // The phone's share of the answers, the kiosk's of the conversations.
    let phone = |rows: &[Row1]| {
        let mut t = totals_of(rows);
        let answers: i64 = rows.iter().filter(|r| r.channel == "phone" && r.name == "answers").map(|r| r.n).sum();
        t.insert("phone.answers".into(), answers);
        let kiosk: i64 = rows.iter().filter(|r| r.channel == "kiosk" && r.name == "conversations").map(|r| r.n).sum();
        t.insert("kiosk.conversations".into(), kiosk);
        t
    };
    let mut lines = report_lines(&phone(&now), &phone(&before));
    let (Ok(wait_now), Ok(wait_before)) = (
        median_wait(&store, first, last, None).await,
        median_wait(&store, before_first, before_first.last_of_month(), None).await,
    ) else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "store_unavailable", "Please try again in a moment.");
    };
    lines.push(ReportLine {
        figure: "Wartezeit in der Warteschlange, Median (Sekunden)".into(),
        value: wait_now.map(|s| s as f64),
        before: wait_before.map(|s| s as f64),
        percent: false,
    });
    let month = first.strftime("%Y-%m").to_string();
    if q.format.as_deref() == Some("csv") {
        let mut csv = format!("\u{feff}Kennzahl;{month};{}\r\n", before_first.strftime("%Y-%m"));
        for l in &lines {
            let v = |x: Option<f64>| {
                x.map(|v| if l.percent { format!("{v:.1}").replace('.', ",") } else { format!("{v:.0}") })
            };
            csv.push_str(&format!(
                "{}{};{};{}\r\n",
                l.figure,
                if l.percent { " (%)" } else { "" },
                v(l.value).unwrap_or_default(),
                v(l.before).unwrap_or_default()
            ));
        }
        return (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                (header::CONTENT_DISPOSITION, format!("attachment; filename=\"lotse-monatsbericht-{month}.csv\"")),
            ],
            csv,
        )
            .into_response();
    }
    let mut html = format!(
        "<!doctype html>\n<html lang=\"de\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Lotse – Monatsbericht {month}</title>\
         <style>body{{font:16px/1.5 system-ui,sans-serif;color:#1a1a1a;margin:2rem;max-width:48rem}}table{{border-collapse:collapse;width:100%}}\
         th,td{{text-align:left;padding:.4rem;border-bottom:1px solid #c8c8c8}}td.n{{text-align:right}}@media print{{body{{margin:0}}}}</style></head>\
         <body><main><h1>Lotse – Monatsbericht {month}</h1>\
         <p>Kennzahlen des digitalen Assistenten für den Monat {month}, daneben der Vormonat {before}. Gezählt wird je Tag in der Zeit der Stadt; gespeichert sind nur Zahlen.</p>\
         <table><caption>Kennzahlen {month}</caption><thead><tr><th scope=\"col\">Kennzahl</th><th scope=\"col\">{month}</th><th scope=\"col\">{before}</th></tr></thead><tbody>",
        before = before_first.strftime("%Y-%m"),
    );
    for l in &lines {
        html.push_str(&format!(
            "<tr><th scope=\"row\">{}</th><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            escape(&l.figure),
            german(l.value, l.percent),
            german(l.before, l.percent)
        ));
    }
    html.push_str("</tbody></table>");
    let top = derive(&totals_of(&now)).top_services;
    if !top.is_empty() {
        html.push_str("<h2>Meistgefragte Leistungen</h2><ol>");
        for (id, n) in top {
            html.push_str(&format!("<li>{} ({n} Antworten)</li>", escape(&id)));
        }
        html.push_str("</ol>");
    }
    html.push_str("</main></body></html>\n");
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response()
}

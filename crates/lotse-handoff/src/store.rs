//! The persistent handoff store: the queue, transcripts, callback requests, staff accounts and
//! sessions. One implementation serves SQLite (embedded, the default, in WAL mode with full
//! sync) and PostgreSQL (for several server nodes): sqlx's `Any` driver is the seam between the
//! two, and the schema and every query are written once, in the SQL both understand.
//!
//! Every change is one statement (or one transaction), so a crash leaves either the old or the
//! new state; a change is acknowledged to a client only after the statement returned.

use lotse_core::{Channel, ConversationId, Lang, Source};
use serde::{Deserialize, Serialize};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor, Row};

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Someone else changed it first (a claim race, a closed conversation).
    #[error("{0}")]
    Conflict(&'static str),
    #[error("not found")]
    NotFound,
}

pub type Result<T> = std::result::Result<T, StoreError>;

lotse_core::string_id!(
    /// The id of a handoff (one stay of a conversation in the staff queue).
    HandoffId
);
lotse_core::string_id!(
    /// The id of a callback request.
    CallbackId
);

macro_rules! string_enum {
    ($(#[$m:meta])* $name:ident { $($v:ident = $s:literal),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($v),* }
        impl $name {
            pub fn as_str(self) -> &'static str { match self { $($name::$v => $s),* } }
            pub fn parse(s: &str) -> Option<$name> { match s { $($s => Some($name::$v),)* _ => None } }
        }
    };
}

string_enum!(
    /// A queued conversation's state: waiting → claimed → active → closed, or abandoned.
    QueueState { Waiting = "waiting", Claimed = "claimed", Active = "active", Closed = "closed", Abandoned = "abandoned" }
);
string_enum!(
    /// Who wrote a transcript line.
    Author { Citizen = "citizen", Bot = "bot", Staff = "staff", System = "system" }
);
string_enum!(
    /// A callback request: open → scheduled → done.
    CallbackState { Open = "open", Scheduled = "scheduled", Done = "done" }
);
string_enum!(
    /// How the citizen wants to be contacted.
    ContactKind { Phone = "phone", Email = "email" }
);
string_enum!(
    /// A staff account's role: editors (the knowledge's and the surveys' editors) also decide
    /// on the unanswered questions and write surveys (plug-in routes under `editor/`); admins
    /// may do all of that and also see the figures, edit the schedule and the accounts.
    Role { Staff = "staff", Editor = "editor", Admin = "admin" }
);

string_enum!(
    /// How a handoff ended. Staff choose the first four when they close a conversation; the
    /// others are written by the system (`put_through`: a caller was put through to the team's
    /// telephone line; `callback`: the citizen asked for a callback instead of waiting).
    Outcome {
        Resolved = "resolved",
        Referred = "referred",
        NoAnswer = "no_answer",
        Spam = "spam",
        HandedBack = "handed_back",
        Abandoned = "abandoned",
        Deleted = "deleted",
        PutThrough = "put_through",
        Callback = "callback",
    }
);

impl Outcome {
    /// The outcomes a member of staff may choose when closing (the console's choice).
    pub const BY_STAFF: [Outcome; 4] = [Outcome::Resolved, Outcome::Referred, Outcome::NoAnswer, Outcome::Spam];
}

impl QueueState {
    pub fn is_open(self) -> bool {
        matches!(self, QueueState::Waiting | QueueState::Claimed | QueueState::Active)
    }
}

fn lang_str(l: Lang) -> &'static str {
    match l {
        Lang::De => "de",
        Lang::En => "en",
    }
}

fn channel_str(c: Channel) -> &'static str {
    match c {
        Channel::Web => "web",
        Channel::App => "app",
        Channel::Kiosk => "kiosk",
        Channel::Phone => "phone",
    }
}

fn parse_json<T: serde::de::DeserializeOwned + Default>(s: &str) -> T {
    serde_json::from_str(s).unwrap_or_default()
}

/// A conversation in the staff queue.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Handoff {
    pub id: HandoffId,
    /// The citizen's only key to their conversation: never shown to staff (the handoff's own
    /// id names it in the console, the API and the audit trail).
    #[serde(skip_serializing)]
    pub conversation_id: ConversationId,
    pub team: String,
    pub state: QueueState,
    pub reason: String,
    pub lang: Lang,
    pub channel: Channel,
    /// The service the conversation was about, when one was detected.
    pub service: Option<String>,
    pub sources: Vec<Source>,
    pub created_ms: i64,
    pub claimed_ms: Option<i64>,
    pub claimed_by: Option<String>,
    pub staff_seen_ms: Option<i64>,
    pub closed_ms: Option<i64>,
    pub outcome: Option<Outcome>,
    pub note: Option<String>,
    pub citizen_seen_ms: i64,
}

impl Handoff {
    fn from_row(r: &AnyRow) -> Result<Handoff> {
        let state: String = r.try_get("state")?;
        let lang: String = r.try_get("lang")?;
        let channel: String = r.try_get("channel")?;
        let sources: String = r.try_get("sources")?;
        Ok(Handoff {
            id: HandoffId::new(r.try_get::<String, _>("id")?),
            conversation_id: ConversationId::new(r.try_get::<String, _>("conversation_id")?),
            team: r.try_get("team")?,
            state: QueueState::parse(&state).unwrap_or(QueueState::Closed),
            reason: r.try_get("reason")?,
            lang: serde_json::from_value(serde_json::Value::String(lang)).unwrap_or_default(),
            channel: serde_json::from_value(serde_json::Value::String(channel)).unwrap_or_default(),
            service: r.try_get("service")?,
            sources: parse_json(&sources),
            created_ms: r.try_get("created_ms")?,
            claimed_ms: r.try_get("claimed_ms")?,
            claimed_by: r.try_get("claimed_by")?,
            staff_seen_ms: r.try_get("staff_seen_ms")?,
            closed_ms: r.try_get("closed_ms")?,
            outcome: r.try_get::<Option<String>, _>("outcome")?.as_deref().and_then(Outcome::parse),
            note: r.try_get("note")?,
            citizen_seen_ms: r.try_get("citizen_seen_ms")?,
        })
    }
}

/// What is needed to queue a conversation.
#[derive(Debug, Clone)]
pub struct NewHandoff {
    pub conversation_id: ConversationId,
    pub team: String,
    pub reason: String,
    pub lang: Lang,
    pub channel: Channel,
    pub service: Option<String>,
    pub sources: Vec<Source>,
    /// How long its transcript is kept after it ends (days), as promised at the time.
    pub retention_days: u32,
}

/// One line of a transcript.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Message {
    pub seq: i64,
    pub at_ms: i64,
    pub author: Author,
    /// The staff member's display name, for staff lines.
    pub staff: Option<String>,
    pub text: String,
    pub sources: Vec<Source>,
}

/// A callback request made outside staff hours.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Callback {
    pub id: CallbackId,
    /// Never shown to staff (see [`Handoff::conversation_id`]).
    #[serde(skip_serializing)]
    pub conversation_id: ConversationId,
    pub team: String,
    pub state: CallbackState,
    pub contact_kind: ContactKind,
    pub contact: String,
    pub name: Option<String>,
    pub topic: String,
    pub lang: Lang,
    /// The consent text the citizen agreed to, and when.
    pub consent: String,
    pub consent_ms: i64,
    /// The staff window it will be handled in.
    pub slot_start_ms: i64,
    pub slot_end_ms: i64,
    pub created_ms: i64,
    pub assigned_to: Option<String>,
    pub scheduled_ms: Option<i64>,
    pub done_ms: Option<i64>,
    pub note: Option<String>,
}

impl Callback {
    fn from_row(r: &AnyRow) -> Result<Callback> {
        let state: String = r.try_get("state")?;
        let kind: String = r.try_get("contact_kind")?;
        let lang: String = r.try_get("lang")?;
        Ok(Callback {
            id: CallbackId::new(r.try_get::<String, _>("id")?),
            conversation_id: ConversationId::new(r.try_get::<String, _>("conversation_id")?),
            team: r.try_get("team")?,
            state: CallbackState::parse(&state).unwrap_or(CallbackState::Open),
            contact_kind: ContactKind::parse(&kind).unwrap_or(ContactKind::Phone),
            contact: r.try_get("contact")?,
            name: r.try_get("name")?,
            topic: r.try_get("topic")?,
            lang: serde_json::from_value(serde_json::Value::String(lang)).unwrap_or_default(),
            consent: r.try_get("consent")?,
            consent_ms: r.try_get("consent_ms")?,
            slot_start_ms: r.try_get("slot_start_ms")?,
            slot_end_ms: r.try_get("slot_end_ms")?,
            created_ms: r.try_get("created_ms")?,
            assigned_to: r.try_get("assigned_to")?,
            scheduled_ms: r.try_get("scheduled_ms")?,
            done_ms: r.try_get("done_ms")?,
            note: r.try_get("note")?,
        })
    }
}

/// What is needed to store a callback request.
#[derive(Debug, Clone)]
pub struct NewCallback {
    pub conversation_id: ConversationId,
    pub team: String,
    pub contact_kind: ContactKind,
    pub contact: String,
    pub name: Option<String>,
    pub topic: String,
    pub lang: Lang,
    pub consent: String,
    pub slot_start_ms: i64,
    pub slot_end_ms: i64,
    /// How long contact data and transcript are kept after the callback is done or its slot
    /// passed (days): what the consent text promised.
    pub retention_days: u32,
}

/// A staff account.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StaffAccount {
    pub name: String,
    pub display_name: String,
    #[serde(skip)]
    pub password_hash: String,
    pub role: Role,
    pub created_ms: i64,
    /// When the account was disabled; a disabled account cannot log in and has no sessions.
    pub disabled_ms: Option<i64>,
}

/// One line of the audit trail: who did what to which handoff, callback, account or setting,
/// and when. It never holds message text or a citizen's contact data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    pub at_ms: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
}

/// How long the audit trail is kept: a year, long enough to answer for a decision.
pub const AUDIT_DAYS: i64 = 365;

/// A staff login session (the cookie holds the token; the store only its SHA-256).
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    pub staff: String,
    pub csrf: String,
    pub created_ms: i64,
    pub seen_ms: i64,
}

/// What a retention run deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Purged {
    pub handoffs: u64,
    pub messages: u64,
    pub callbacks: u64,
    pub sessions: u64,
}

/// Figures for the admin page.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Figures {
    pub since_ms: i64,
    pub queued: u64,
    pub waiting_now: u64,
    pub handled: u64,
    pub abandoned: u64,
    pub handed_back: u64,
    /// Waits until a staff member claimed, in seconds.
    pub wait_median_s: Option<u64>,
    pub wait_p90_s: Option<u64>,
    pub callbacks_open: u64,
    pub callbacks_scheduled: u64,
    pub callbacks_done: u64,
    pub by_team: Vec<TeamFigures>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TeamFigures {
    pub team: String,
    pub queued: u64,
    pub handled: u64,
    pub abandoned: u64,
    pub wait_median_s: Option<u64>,
}

/// The current time in milliseconds since the epoch.
pub fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn quantile(sorted: &[i64], q: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    Some((sorted[i].max(0) / 1000) as u64)
}

const HANDOFF_COLUMNS: &str = "id, conversation_id, team, state, reason, lang, channel, service, sources, created_ms, \
     claimed_ms, claimed_by, staff_seen_ms, closed_ms, outcome, note, citizen_seen_ms";

/// The handoff store. Cheap to clone (a connection pool).
#[derive(Clone, Debug)]
pub struct Store {
    pub(crate) pool: AnyPool,
    sqlite: bool,
    /// The PostgreSQL address, for a [`Listener`]'s own connection (none with SQLite).
    listen_url: Option<Address>,
}

/// A database address, which may hold a password: not printed.
#[derive(Clone)]
struct Address(String);

impl std::fmt::Debug for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Address(…)")
    }
}

/// Notifications from the other nodes that share this PostgreSQL database (`LISTEN`), on a
/// connection of its own, which reconnects by itself after the database was away
/// (notifications sent meanwhile are not received).
pub struct Listener(sqlx::postgres::PgListener);

impl Listener {
    /// The next notification's payload.
    pub async fn recv(&mut self) -> Result<String> {
        Ok(self.0.recv().await?.payload().to_string())
    }
}

/// The longest payload PostgreSQL's `NOTIFY` carries, in bytes (its limit is 8000).
pub const MAX_NOTIFY_BYTES: usize = 7900;

impl Store {
    /// Opens (and creates) the database at `url` and brings its schema up to date.
    /// `sqlite:data/lotse.db` or `postgres://user:pass@host/db`; a plain path means SQLite.
    pub async fn open(url: &str) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let sqlite = !url.starts_with("postgres");
        let url = if sqlite {
            let path = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).unwrap_or(url);
            let (path, query) = path.split_once('?').unwrap_or((path, ""));
            if path != ":memory:"
                && let Some(dir) = std::path::Path::new(path).parent()
                && !dir.as_os_str().is_empty()
            {
                std::fs::create_dir_all(dir).map_err(|e| StoreError::Db(sqlx::Error::Io(e)))?;
            }
            let query = if query.contains("mode=") { query.to_string() } else { format!("mode=rwc&{query}") };
            format!("sqlite://{path}?{}", query.trim_end_matches('&'))
        } else {
            url.to_string()
        };
        let pool = AnyPoolOptions::new()
            // SQLite has one writer at a time anyway; a few readers beside it.
            .max_connections(if sqlite { 4 } else { 16 })
            // A database that is away (PostgreSQL restarting) fails a request within seconds
            // (503 `store_unavailable`) rather than holding it; the pool reconnects by itself.
            .acquire_timeout(std::time::Duration::from_secs(3))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if sqlite {
                        // WAL: readers never block the writer. FULL: a committed change is on
                        // disk before the client hears of it (survives a power cut, not only a crash).
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA synchronous = FULL").await?;
                        conn.execute("PRAGMA busy_timeout = 5000").await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Store { pool, sqlite, listen_url: (!sqlite).then_some(Address(url)) })
    }

    /// Whether several nodes may share this store (PostgreSQL); SQLite serves one process.
    pub fn is_shared(&self) -> bool {
        !self.sqlite
    }

    /// Tells the other nodes' [`Listener`]s on `channel` (after the statement committed; in
    /// the order sent). Nothing with SQLite. At most [`MAX_NOTIFY_BYTES`].
    pub async fn notify(&self, channel: &str, payload: &str) -> Result<()> {
        if self.sqlite {
            return Ok(());
        }
        sqlx::query("SELECT pg_notify($1, $2)").bind(channel).bind(payload).execute(&self.pool).await?;
        Ok(())
    }

    /// Listens on `channel` for what the other nodes [`notify`](Store::notify); `None` with
    /// SQLite.
    pub async fn listen(&self, channel: &str) -> Result<Option<Listener>> {
        let Some(url) = &self.listen_url else { return Ok(None) };
        let mut l = sqlx::postgres::PgListener::connect(&url.0).await?;
        l.listen(channel).await?;
        Ok(Some(Listener(l)))
    }

    pub fn is_sqlite(&self) -> bool {
        self.sqlite
    }

    /// The SQLite journal mode (`wal`), for tests and the health page.
    pub async fn journal_mode(&self) -> Result<Option<String>> {
        if !self.sqlite {
            return Ok(None);
        }
        let row = sqlx::query("PRAGMA journal_mode").fetch_one(&self.pool).await?;
        Ok(Some(row.try_get::<String, _>(0)?))
    }

    // --- the queue -------------------------------------------------------------------------

    /// The open (waiting, claimed or active) handoff of a conversation.
    pub async fn open_handoff(&self, conversation_id: &ConversationId) -> Result<Option<Handoff>> {
        let sql = format!(
            "SELECT {HANDOFF_COLUMNS} FROM handoffs WHERE conversation_id = $1 \
             AND state IN ('waiting', 'claimed', 'active') ORDER BY created_ms DESC LIMIT 1"
        );
        let row = sqlx::query(&sql).bind(conversation_id.as_str()).fetch_optional(&self.pool).await?;
        row.as_ref().map(Handoff::from_row).transpose()
    }

    /// The latest handoff of a conversation, open or not.
    pub async fn latest_handoff(&self, conversation_id: &ConversationId) -> Result<Option<Handoff>> {
        let sql = format!(
            "SELECT {HANDOFF_COLUMNS} FROM handoffs WHERE conversation_id = $1 ORDER BY created_ms DESC LIMIT 1"
        );
        let row = sqlx::query(&sql).bind(conversation_id.as_str()).fetch_optional(&self.pool).await?;
        row.as_ref().map(Handoff::from_row).transpose()
    }

    pub async fn handoff(&self, id: &HandoffId) -> Result<Handoff> {
        let sql = format!("SELECT {HANDOFF_COLUMNS} FROM handoffs WHERE id = $1");
        let row = sqlx::query(&sql).bind(id.as_str()).fetch_optional(&self.pool).await?;
        row.as_ref().map(Handoff::from_row).transpose()?.ok_or(StoreError::NotFound)
    }

    /// Queues a conversation; a conversation already queued keeps its place.
    pub async fn enqueue(&self, new: NewHandoff, now: i64) -> Result<Handoff> {
        if let Some(open) = self.open_handoff(&new.conversation_id).await? {
            return Ok(open);
        }
        let id = new_id();
        let inserted = sqlx::query(
            "INSERT INTO handoffs (id, conversation_id, team, state, reason, lang, channel, service, sources, \
             created_ms, citizen_seen_ms, retention_days) VALUES ($1, $2, $3, 'waiting', $4, $5, $6, $7, $8, $9, $9, $10)",
        )
        .bind(&id)
        .bind(new.conversation_id.as_str())
        .bind(&new.team)
        .bind(&new.reason)
        .bind(lang_str(new.lang))
        .bind(channel_str(new.channel))
        .bind(new.service.clone())
        .bind(serde_json::to_string(&new.sources).unwrap_or_else(|_| "[]".into()))
        .bind(now)
        .bind(i64::from(new.retention_days))
        .execute(&self.pool)
        .await;
        if let Err(e) = inserted {
            // Another node queued it a moment ago (the schema allows one open handoff per
            // conversation): that one stands.
            return match self.open_handoff(&new.conversation_id).await? {
                Some(open) => Ok(open),
                None => Err(e.into()),
            };
        }
        self.handoff(&HandoffId::new(id)).await
    }

    /// 1 = next in its team's queue; `None` when not waiting.
    pub async fn position(&self, h: &Handoff) -> Result<Option<u32>> {
        if h.state != QueueState::Waiting {
            return Ok(None);
        }
        let row = sqlx::query(
            "SELECT COUNT(*) FROM handoffs WHERE state = 'waiting' AND team = $1 \
             AND (created_ms < $2 OR (created_ms = $2 AND id < $3))",
        )
        .bind(&h.team)
        .bind(h.created_ms)
        .bind(h.id.as_str())
        .fetch_one(&self.pool)
        .await?;
        Ok(Some(row.try_get::<i64, _>(0)? as u32 + 1))
    }

    /// An honest estimate of the wait at `position`, in minutes: the team's recent pace of
    /// claims (the last two hours) times the position. `None` with fewer than three recent
    /// claims: then nobody can know.
    pub async fn wait_estimate(&self, team: &str, position: u32, now: i64) -> Result<Option<u32>> {
        let rows = sqlx::query(
            "SELECT claimed_ms FROM handoffs WHERE team = $1 AND claimed_ms IS NOT NULL AND claimed_ms > $2 \
             ORDER BY claimed_ms",
        )
        .bind(team)
        .bind(now - 2 * 3600 * 1000)
        .fetch_all(&self.pool)
        .await?;
        let claims: Vec<i64> = rows.iter().filter_map(|r| r.try_get::<i64, _>(0).ok()).collect();
        if claims.len() < 3 {
            return Ok(None);
        }
        // The pace so far, including the time since the last claim (a desk gone quiet slows it).
        let span = (now.max(claims[claims.len() - 1]) - claims[0]) as f64;
        let per_claim_ms = span / claims.len() as f64;
        let minutes = (per_claim_ms * position as f64 / 60_000.0).ceil() as u32;
        Ok(Some(minutes.max(1)))
    }

    /// Open handoffs, oldest first (of the given teams, or all).
    pub async fn queue(&self) -> Result<Vec<Handoff>> {
        let sql = format!(
            "SELECT {HANDOFF_COLUMNS} FROM handoffs WHERE state IN ('waiting', 'claimed', 'active') \
             ORDER BY created_ms, id"
        );
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        rows.iter().map(Handoff::from_row).collect()
    }

    /// Claims a waiting conversation for `staff`. Exactly one of several racing claims wins.
    pub async fn claim(&self, id: &HandoffId, staff: &str, now: i64) -> Result<Handoff> {
        let done = sqlx::query(
            "UPDATE handoffs SET state = 'claimed', claimed_by = $1, claimed_ms = COALESCE(claimed_ms, $2), \
             staff_seen_ms = $2 WHERE id = $3 AND state = 'waiting'",
        )
        .bind(staff)
        .bind(now)
        .bind(id.as_str())
        .execute(&self.pool)
        .await?;
        if done.rows_affected() != 1 {
            self.handoff(id).await?;
            return Err(StoreError::Conflict("this conversation is no longer waiting"));
        }
        self.handoff(id).await
    }

    /// The first staff reply makes a claimed conversation active.
    pub async fn activate(&self, id: &HandoffId, staff: &str, now: i64) -> Result<()> {
        sqlx::query(
            "UPDATE handoffs SET state = 'active', staff_seen_ms = $1 WHERE id = $2 AND claimed_by = $3 \
             AND state IN ('claimed', 'active')",
        )
        .bind(now)
        .bind(id.as_str())
        .bind(staff)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Staff `staff` is present (their console is connected).
    pub async fn staff_seen(&self, staff: &str, now: i64) -> Result<()> {
        sqlx::query("UPDATE handoffs SET staff_seen_ms = $1 WHERE claimed_by = $2 AND state IN ('claimed', 'active')")
            .bind(now)
            .bind(staff)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The citizen is present (their events stream is open, or they wrote).
    pub async fn citizen_seen(&self, conversation_id: &ConversationId, now: i64) -> Result<()> {
        sqlx::query(
            "UPDATE handoffs SET citizen_seen_ms = $1 WHERE conversation_id = $2 \
             AND state IN ('waiting', 'claimed', 'active')",
        )
        .bind(now)
        .bind(conversation_id.as_str())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Puts a claimed conversation back in the queue, keeping its original place.
    pub async fn release(&self, id: &HandoffId) -> Result<Handoff> {
        let done = sqlx::query(
            "UPDATE handoffs SET state = 'waiting', claimed_by = NULL, staff_seen_ms = NULL \
             WHERE id = $1 AND state IN ('claimed', 'active')",
        )
        .bind(id.as_str())
        .execute(&self.pool)
        .await?;
        if done.rows_affected() != 1 {
            return Err(StoreError::Conflict("this conversation is not with staff"));
        }
        self.handoff(id).await
    }

    /// Ends a handoff with an outcome.
    pub async fn close(&self, id: &HandoffId, outcome: Outcome, note: Option<&str>, now: i64) -> Result<Handoff> {
        let done = sqlx::query(
            "UPDATE handoffs SET state = 'closed', outcome = $1, note = $2, closed_ms = $3 \
             WHERE id = $4 AND state IN ('waiting', 'claimed', 'active')",
        )
        .bind(outcome.as_str())
        .bind(note.map(str::to_string))
        .bind(now)
        .bind(id.as_str())
        .execute(&self.pool)
        .await?;
        if done.rows_affected() != 1 {
            self.handoff(id).await?;
            return Err(StoreError::Conflict("this conversation is already closed"));
        }
        self.handoff(id).await
    }

    /// Marks abandoned every open handoff whose citizen was last seen before `before`.
    pub async fn abandon_stale(&self, before: i64, now: i64) -> Result<Vec<Handoff>> {
        let sql = format!(
            "SELECT {HANDOFF_COLUMNS} FROM handoffs WHERE state IN ('waiting', 'claimed', 'active') \
             AND citizen_seen_ms < $1"
        );
        let stale: Vec<Handoff> = sqlx::query(&sql)
            .bind(before)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(Handoff::from_row)
            .collect::<Result<_>>()?;
        let mut out = Vec::new();
        for h in stale {
            let done = sqlx::query(
                "UPDATE handoffs SET state = 'abandoned', outcome = 'abandoned', closed_ms = $1 \
                 WHERE id = $2 AND state IN ('waiting', 'claimed', 'active') AND citizen_seen_ms < $3",
            )
            .bind(now)
            .bind(h.id.as_str())
            .bind(before)
            .execute(&self.pool)
            .await?;
            if done.rows_affected() == 1 {
                out.push(self.handoff(&h.id).await?);
            }
        }
        Ok(out)
    }

    /// Returns to the queue every claimed conversation whose staff member was last seen before
    /// `before` (they closed the console or lost the connection).
    pub async fn release_absent_staff(&self, before: i64) -> Result<Vec<Handoff>> {
        let sql = format!(
            "SELECT {HANDOFF_COLUMNS} FROM handoffs WHERE state IN ('claimed', 'active') AND staff_seen_ms < $1"
        );
        let absent: Vec<Handoff> = sqlx::query(&sql)
            .bind(before)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(Handoff::from_row)
            .collect::<Result<_>>()?;
        let mut out = Vec::new();
        for h in absent {
            if let Ok(h) = self.release(&h.id).await {
                out.push(h);
            }
        }
        Ok(out)
    }

    // --- transcripts -----------------------------------------------------------------------

    /// Appends a line to a conversation's transcript; returns its sequence number.
    pub async fn append(
        &self,
        conversation_id: &ConversationId,
        author: Author,
        staff: Option<&str>,
        text: &str,
        sources: &[Source],
        now: i64,
    ) -> Result<i64> {
        let sources = serde_json::to_string(sources).unwrap_or_else(|_| "[]".into());
        // One statement picks the next number and inserts: atomic in SQLite; on PostgreSQL two
        // nodes may race for a number, and the loser retries.
        for _ in 0..5 {
            let r = sqlx::query(
                "INSERT INTO messages (conversation_id, seq, at_ms, author, staff, text, sources) \
                 SELECT $1, COALESCE(MAX(seq), 0) + 1, $2, $3, $4, $5, $6 FROM messages WHERE conversation_id = $1 \
                 RETURNING seq",
            )
            .bind(conversation_id.as_str())
            .bind(now)
            .bind(author.as_str())
            .bind(staff.map(str::to_string))
            .bind(text)
            .bind(&sources)
            .fetch_one(&self.pool)
            .await;
            match r {
                Ok(row) => return Ok(row.try_get::<i64, _>(0)?),
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Conflict("could not append to the transcript"))
    }

    pub async fn transcript(&self, conversation_id: &ConversationId) -> Result<Vec<Message>> {
        let rows = sqlx::query(
            "SELECT seq, at_ms, author, staff, text, sources FROM messages WHERE conversation_id = $1 ORDER BY seq",
        )
        .bind(conversation_id.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let author: String = r.try_get("author")?;
                let sources: String = r.try_get("sources")?;
                Ok(Message {
                    seq: r.try_get("seq")?,
                    at_ms: r.try_get("at_ms")?,
                    author: Author::parse(&author).unwrap_or(Author::System),
                    staff: r.try_get("staff")?,
                    text: r.try_get("text")?,
                    sources: parse_json(&sources),
                })
            })
            .collect()
    }

    // --- callbacks -------------------------------------------------------------------------

    pub async fn add_callback(&self, c: NewCallback, now: i64) -> Result<Callback> {
        let id = new_id();
        sqlx::query(
            "INSERT INTO callbacks (id, conversation_id, team, state, contact_kind, contact, name, topic, lang, \
             consent, consent_ms, slot_start_ms, slot_end_ms, created_ms, retention_days) \
             VALUES ($1, $2, $3, 'open', $4, $5, $6, $7, $8, $9, $10, $11, $12, $10, $13)",
        )
        .bind(&id)
        .bind(c.conversation_id.as_str())
        .bind(&c.team)
        .bind(c.contact_kind.as_str())
        .bind(&c.contact)
        .bind(c.name.clone())
        .bind(&c.topic)
        .bind(lang_str(c.lang))
        .bind(&c.consent)
        .bind(now)
        .bind(c.slot_start_ms)
        .bind(c.slot_end_ms)
        .bind(i64::from(c.retention_days))
        .execute(&self.pool)
        .await?;
        self.callback(&CallbackId::new(id)).await
    }

    pub async fn callback(&self, id: &CallbackId) -> Result<Callback> {
        let row =
            sqlx::query("SELECT * FROM callbacks WHERE id = $1").bind(id.as_str()).fetch_optional(&self.pool).await?;
        row.as_ref().map(Callback::from_row).transpose()?.ok_or(StoreError::NotFound)
    }

    /// The conversation's callback request that is not done yet.
    pub async fn pending_callback(&self, conversation_id: &ConversationId) -> Result<Option<Callback>> {
        let row = sqlx::query(
            "SELECT * FROM callbacks WHERE conversation_id = $1 AND state <> 'done' ORDER BY created_ms DESC LIMIT 1",
        )
        .bind(conversation_id.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(Callback::from_row).transpose()
    }

    /// Callback requests not yet done, by slot; with `done`, the finished ones too.
    pub async fn callbacks(&self, done: bool) -> Result<Vec<Callback>> {
        let sql = if done {
            "SELECT * FROM callbacks ORDER BY slot_start_ms, created_ms"
        } else {
            "SELECT * FROM callbacks WHERE state <> 'done' ORDER BY slot_start_ms, created_ms"
        };
        sqlx::query(sql).fetch_all(&self.pool).await?.iter().map(Callback::from_row).collect()
    }

    /// A staff member takes a callback and plans it for `at` (open → scheduled).
    pub async fn schedule_callback(&self, id: &CallbackId, staff: &str, at: i64) -> Result<Callback> {
        let done = sqlx::query(
            "UPDATE callbacks SET state = 'scheduled', assigned_to = $1, scheduled_ms = $2 \
             WHERE id = $3 AND state IN ('open', 'scheduled')",
        )
        .bind(staff)
        .bind(at)
        .bind(id.as_str())
        .execute(&self.pool)
        .await?;
        if done.rows_affected() != 1 {
            self.callback(id).await?;
            return Err(StoreError::Conflict("this callback is already done"));
        }
        self.callback(id).await
    }

    pub async fn complete_callback(
        &self,
        id: &CallbackId,
        staff: &str,
        note: Option<&str>,
        now: i64,
    ) -> Result<Callback> {
        let done = sqlx::query(
            "UPDATE callbacks SET state = 'done', assigned_to = COALESCE(assigned_to, $1), done_ms = $2, note = $3 \
             WHERE id = $4 AND state <> 'done'",
        )
        .bind(staff)
        .bind(now)
        .bind(note.map(str::to_string))
        .bind(id.as_str())
        .execute(&self.pool)
        .await?;
        if done.rows_affected() != 1 {
            self.callback(id).await?;
            return Err(StoreError::Conflict("this callback is already done"));
        }
        self.callback(id).await
    }

    // --- staff and sessions ----------------------------------------------------------------

    /// Creates an account, or sets a new password hash, display name and role for an existing
    /// one, which ends all its sessions (a password reset locks out whoever knew the old one).
    pub async fn put_staff(&self, name: &str, display_name: &str, password_hash: &str, role: Role) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let updated = sqlx::query("UPDATE staff SET display_name = $1, password_hash = $2, role = $3 WHERE name = $4")
            .bind(display_name)
            .bind(password_hash)
            .bind(role.as_str())
            .bind(name)
            .execute(&mut *tx)
            .await?;
        if updated.rows_affected() > 0 {
            sqlx::query("DELETE FROM sessions WHERE staff = $1").bind(name).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        if updated.rows_affected() == 0 {
            sqlx::query(
                "INSERT INTO staff (name, display_name, password_hash, role, created_ms) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(name)
            .bind(display_name)
            .bind(password_hash)
            .bind(role.as_str())
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
        }
        Ok(())
    }

    pub async fn staff(&self, name: &str) -> Result<Option<StaffAccount>> {
        let row = sqlx::query(
            "SELECT name, display_name, password_hash, role, created_ms, disabled_ms FROM staff WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(staff_account).transpose()
    }

    /// All accounts, by name.
    pub async fn staff_accounts(&self) -> Result<Vec<StaffAccount>> {
        let rows = sqlx::query(
            "SELECT name, display_name, password_hash, role, created_ms, disabled_ms FROM staff ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(staff_account).collect()
    }

    /// Sets a new password hash and ends every session of the account but `keep` (the one
    /// the change was made in). False for an unknown account.
    pub async fn set_password(&self, name: &str, password_hash: &str, keep: Option<&str>) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let updated = sqlx::query("UPDATE staff SET password_hash = $1 WHERE name = $2")
            .bind(password_hash)
            .bind(name)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query("DELETE FROM sessions WHERE staff = $1 AND token_hash <> $2")
            .bind(name)
            .bind(keep.unwrap_or(""))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(updated > 0)
    }

    /// Disables an account (ending its sessions) or enables it again. False for an unknown
    /// account.
    pub async fn set_staff_disabled(&self, name: &str, disabled: bool, now: i64) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let updated = sqlx::query("UPDATE staff SET disabled_ms = $1 WHERE name = $2")
            .bind(disabled.then_some(now))
            .bind(name)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if disabled {
            sqlx::query("DELETE FROM sessions WHERE staff = $1").bind(name).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(updated > 0)
    }

    /// Adds a line to the audit trail.
    pub async fn audit(&self, actor: &str, action: &str, target: &str, now: i64) -> Result<()> {
        // The next number orders lines of one millisecond (two writers at the same moment may
        // share one: they were simultaneous).
        sqlx::query(
            "INSERT INTO audit (at_ms, seq, actor, action, target) \
             VALUES ($1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM audit), $2, $3, $4)",
        )
        .bind(now)
        .bind(actor)
        .bind(action)
        .bind(target)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The newest lines of the audit trail, newest first.
    pub async fn audit_trail(&self, limit: i64) -> Result<Vec<AuditEntry>> {
        let rows = sqlx::query("SELECT at_ms, actor, action, target FROM audit ORDER BY at_ms DESC, seq DESC LIMIT $1")
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditEntry {
                    at_ms: r.try_get("at_ms")?,
                    actor: r.try_get("actor")?,
                    action: r.try_get("action")?,
                    target: r.try_get("target")?,
                })
            })
            .collect()
    }

    pub async fn create_session(&self, token_hash: &str, staff: &str, csrf: &str, now: i64) -> Result<()> {
        sqlx::query("INSERT INTO sessions (token_hash, staff, csrf, created_ms, seen_ms) VALUES ($1, $2, $3, $4, $4)")
            .bind(token_hash)
            .bind(staff)
            .bind(csrf)
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn session(&self, token_hash: &str) -> Result<Option<Session>> {
        let row = sqlx::query("SELECT staff, csrf, created_ms, seen_ms FROM sessions WHERE token_hash = $1")
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            Ok(Session {
                staff: r.try_get("staff")?,
                csrf: r.try_get("csrf")?,
                created_ms: r.try_get("created_ms")?,
                seen_ms: r.try_get("seen_ms")?,
            })
        })
        .transpose()
    }

    pub async fn touch_session(&self, token_hash: &str, now: i64) -> Result<()> {
        sqlx::query("UPDATE sessions SET seen_ms = $1 WHERE token_hash = $2")
            .bind(now)
            .bind(token_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn delete_session(&self, token_hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1").bind(token_hash).execute(&self.pool).await?;
        Ok(())
    }

    // --- settings --------------------------------------------------------------------------

    pub async fn setting(&self, name: &str) -> Result<Option<String>> {
        let row =
            sqlx::query("SELECT value FROM settings WHERE name = $1").bind(name).fetch_optional(&self.pool).await?;
        Ok(row.map(|r| r.try_get::<String, _>(0)).transpose()?)
    }

    pub async fn set_setting(&self, name: &str, value: &str) -> Result<()> {
        let updated = sqlx::query("UPDATE settings SET value = $1 WHERE name = $2")
            .bind(value)
            .bind(name)
            .execute(&self.pool)
            .await?;
        if updated.rows_affected() == 0 {
            sqlx::query("INSERT INTO settings (name, value) VALUES ($1, $2)")
                .bind(name)
                .bind(value)
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    // --- retention and deletion --------------------------------------------------------------

    /// Deletes what has outlived its retention at `now`: each handoff and callback keeps the
    /// period promised when it was made (`default_days`, the current setting, for records
    /// from before that was stored). A handoff counts from its end, a callback from when it
    /// was done or, never done, from the end of its slot: an open request does not keep a
    /// phone number forever. A conversation's transcript goes when nothing of it is kept any
    /// more (also one that only ever had a callback). Expired sessions go too, and audit lines
    /// older than [`AUDIT_DAYS`].
    pub async fn purge(&self, now: i64, default_days: u32, sessions_before: i64) -> Result<Purged> {
        const DAY: i64 = 86_400_000;
        let default_days = i64::from(default_days);
        let mut tx = self.pool.begin().await?;
        // Lines of a conversation none of whose records is kept; lines younger than a day are
        // left alone (a handoff's lines are written just before its record).
        let messages = sqlx::query(
            "DELETE FROM messages WHERE at_ms < $1 - $3 \
             AND NOT EXISTS (SELECT 1 FROM handoffs h WHERE h.conversation_id = messages.conversation_id \
               AND (h.state IN ('waiting', 'claimed', 'active') OR h.closed_ms IS NULL \
                    OR h.closed_ms + COALESCE(h.retention_days, $2) * $3 >= $1)) \
             AND NOT EXISTS (SELECT 1 FROM callbacks c WHERE c.conversation_id = messages.conversation_id \
               AND COALESCE(c.done_ms, c.slot_end_ms) + COALESCE(c.retention_days, $2) * $3 >= $1)",
        )
        .bind(now)
        .bind(default_days)
        .bind(DAY)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let handoffs = sqlx::query(
            "DELETE FROM handoffs WHERE state IN ('closed', 'abandoned') \
             AND closed_ms + COALESCE(retention_days, $2) * $3 < $1",
        )
        .bind(now)
        .bind(default_days)
        .bind(DAY)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let callbacks = sqlx::query(
            "DELETE FROM callbacks WHERE COALESCE(done_ms, slot_end_ms) + COALESCE(retention_days, $2) * $3 < $1",
        )
        .bind(now)
        .bind(default_days)
        .bind(DAY)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let sessions = sqlx::query("DELETE FROM sessions WHERE seen_ms < $1")
            .bind(sessions_before)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        // The audit trail has its own period, whatever the transcripts' is.
        sqlx::query("DELETE FROM audit WHERE at_ms < $1").bind(now - AUDIT_DAYS * DAY).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(Purged { handoffs, messages, callbacks, sessions })
    }

    /// The citizen ends and deletes their conversation: transcript and contact data go at once;
    /// an open handoff is closed (its row stays, without content, for the waiting-time figures).
    pub async fn delete_conversation(&self, conversation_id: &ConversationId, now: i64) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM messages WHERE conversation_id = $1")
            .bind(conversation_id.as_str())
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM callbacks WHERE conversation_id = $1")
            .bind(conversation_id.as_str())
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE handoffs SET state = CASE WHEN state IN ('waiting', 'claimed', 'active') THEN 'closed' ELSE state END, \
             outcome = CASE WHEN state IN ('waiting', 'claimed', 'active') THEN 'deleted' ELSE outcome END, \
             closed_ms = COALESCE(closed_ms, $1), note = NULL, sources = '[]', service = NULL \
             WHERE conversation_id = $2",
        )
        .bind(now)
        .bind(conversation_id.as_str())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    // --- figures -----------------------------------------------------------------------------

    pub async fn figures(&self, since: i64) -> Result<Figures> {
        let sql = format!("SELECT {HANDOFF_COLUMNS} FROM handoffs WHERE created_ms >= $1");
        let hs: Vec<Handoff> = sqlx::query(&sql)
            .bind(since)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(Handoff::from_row)
            .collect::<Result<_>>()?;
        let waits = |hs: &[&Handoff]| {
            let mut w: Vec<i64> = hs.iter().filter_map(|h| Some(h.claimed_ms? - h.created_ms)).collect();
            w.sort_unstable();
            w
        };
        let all: Vec<&Handoff> = hs.iter().collect();
        let w = waits(&all);
        let handled = |h: &Handoff| h.state == QueueState::Closed && h.claimed_ms.is_some();
        let mut teams: Vec<String> = hs.iter().map(|h| h.team.clone()).collect();
        teams.sort();
        teams.dedup();
        let by_team = teams
            .into_iter()
            .map(|t| {
                let of: Vec<&Handoff> = hs.iter().filter(|h| h.team == t).collect();
                TeamFigures {
                    queued: of.len() as u64,
                    handled: of.iter().filter(|h| handled(h)).count() as u64,
                    abandoned: of.iter().filter(|h| h.state == QueueState::Abandoned).count() as u64,
                    wait_median_s: quantile(&waits(&of), 0.5),
                    team: t,
                }
            })
            .collect();
        let cbs = self.callbacks(true).await?;
        let cbs: Vec<&Callback> = cbs.iter().filter(|c| c.created_ms >= since).collect();
        Ok(Figures {
            since_ms: since,
            queued: hs.len() as u64,
            waiting_now: hs.iter().filter(|h| h.state == QueueState::Waiting).count() as u64,
            handled: all.iter().filter(|h| handled(h)).count() as u64,
            abandoned: hs.iter().filter(|h| h.state == QueueState::Abandoned).count() as u64,
            handed_back: hs.iter().filter(|h| h.outcome == Some(Outcome::HandedBack)).count() as u64,
            wait_median_s: quantile(&w, 0.5),
            wait_p90_s: quantile(&w, 0.9),
            callbacks_open: cbs.iter().filter(|c| c.state == CallbackState::Open).count() as u64,
            callbacks_scheduled: cbs.iter().filter(|c| c.state == CallbackState::Scheduled).count() as u64,
            callbacks_done: cbs.iter().filter(|c| c.state == CallbackState::Done).count() as u64,
            by_team,
        })
    }
}

fn staff_account(r: &AnyRow) -> Result<StaffAccount> {
    let role: String = r.try_get("role")?;
    Ok(StaffAccount {
        name: r.try_get("name")?,
        display_name: r.try_get("display_name")?,
        password_hash: r.try_get("password_hash")?,
        role: Role::parse(&role).unwrap_or(Role::Staff),
        created_ms: r.try_get("created_ms")?,
        disabled_ms: r.try_get("disabled_ms")?,
    })
}

//! Plug-ins: the modules of the city's digital administration that join the assistant
//! (feedback and surveys, key figures, …). A plug-in is a crate of the workspace, compiled in
//! and switched on in `lotse.toml` (`[plugins] enabled = ["feedback"]`); no code is loaded at
//! run time.
//!
//! - [`Plugin`]: what a plug-in is: its [`Manifest`] (name, the events it reads, what free text
//!   it keeps, for what and how long, its schema changes), what it does with each event, its
//!   HTTP routes (public under `/p/NAME/`, staff under `/staff/p/NAME/` behind the console's
//!   login), and how it purges and erases.
//! - [`Host`]: runs the enabled plug-ins: applies their schema changes, feeds each the
//!   conversation event log ([`lotse_handoff::log`]) from its own position, at least once and
//!   in order, also after a restart (a new plug-in starts from the beginning of the log), and
//!   passes a citizen's deletion and the retention sweep on to every one.
//!
//! A plug-in may add elements under a reply (the widget's thumbs); it never changes a reply.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use lotse_core::ConversationId;
use lotse_handoff::Store;
use lotse_handoff::log::Logged;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// What a plug-in declares of itself.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// Its name: lower-case letters and dashes; the key in `lotse.toml` and in its routes.
    pub name: &'static str,
    /// One sentence on what it is for (shown to admins).
    pub purpose: &'static str,
    /// The kinds of events it reads (`started`, `answered`, `relayed`, `handoff`); it is given
    /// no others.
    pub reads: &'static [&'static str],
    /// The free text it keeps from citizens, if any: why, and for how many days at most.
    pub free_text: Option<FreeText>,
    /// Its schema changes: (version, SQL both SQLite and PostgreSQL understand), ascending;
    /// each runs once, in a transaction. Statements are separated by `;`.
    pub migrations: &'static [(i64, &'static str)],
}

/// Free text a plug-in keeps (a comment under a thumbs down, a survey answer).
#[derive(Debug, Clone, Copy)]
pub struct FreeText {
    pub purpose: &'static str,
    pub retention_days: u32,
}

/// A setting administrators may change in the console (it starts from `lotse.toml`; a
/// change is kept in the store and outlasts a restart).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct Setting {
    /// Its key ("comment_days").
    pub name: String,
    /// What it is, for the console (German).
    pub label: String,
    pub kind: SettingKind,
    /// Its value now.
    pub value: serde_json::Value,
}

/// What a setting holds.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SettingKind {
    /// A whole number of days.
    Days { min: u32, max: u32 },
    /// An id (lower-case letters, digits, dashes), or none (empty).
    Id,
}

impl SettingKind {
    /// Checks a value; the message names what is wrong.
    pub fn check(&self, value: &serde_json::Value) -> Result<(), String> {
        match self {
            SettingKind::Days { min, max } => match value.as_u64() {
                Some(n) if (u64::from(*min)..=u64::from(*max)).contains(&n) => Ok(()),
                _ => Err(format!("a number of days from {min} to {max}")),
            },
            SettingKind::Id => match value {
                serde_json::Value::Null => Ok(()),
                serde_json::Value::String(s)
                    if s.is_empty()
                        || (s.len() <= 64
                            && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')) =>
                {
                    Ok(())
                }
                _ => Err("an id of lower-case letters, digits and dashes, or nothing".into()),
            },
        }
    }
}

/// A plug-in.
#[async_trait::async_trait]
pub trait Plugin: Send + Sync + 'static {
    fn manifest(&self) -> &Manifest;

    /// The settings administrators may change, with their values now.
    fn settings(&self) -> Vec<Setting> {
        Vec::new()
    }

    /// Changes a setting (already checked against its kind); takes effect at once.
    fn set(&self, name: &str, _value: &serde_json::Value) -> Result<(), String> {
        Err(format!("no setting is called {name:?}"))
    }

    /// Days the free text it keeps stays at most, as set now (the manifest's unless a setting
    /// changed it).
    fn text_days(&self) -> Option<u32> {
        self.manifest().free_text.map(|f| f.retention_days)
    }

    /// Called once the plug-in's schema is in place, before any event.
    async fn start(&self, _store: &Store) -> anyhow::Result<()> {
        Ok(())
    }

    /// One event of a kind the manifest reads. An error stops the plug-in's reading at this
    /// event; it is offered again on the next round (so handle an event twice without harm).
    async fn on_event(&self, _store: &Store, _event: &Logged) -> anyhow::Result<()> {
        Ok(())
    }

    /// Routes for citizens, mounted under `/p/NAME`.
    fn public_routes(&self) -> Option<axum::Router> {
        None
    }

    /// Routes for staff, mounted under `/staff/p/NAME` behind the console's login and CSRF
    /// check; paths under `/admin/` need an administrator.
    fn staff_routes(&self) -> Option<axum::Router> {
        None
    }

    /// Drops what has outlived its retention; returns how many records went.
    async fn purge(&self, _store: &Store, _now_ms: i64) -> anyhow::Result<u64> {
        Ok(0)
    }

    /// A citizen deleted their conversation: drop what the plug-in keeps of it.
    async fn erase(&self, _store: &Store, _conversation: &ConversationId) -> anyhow::Result<u64> {
        Ok(0)
    }
}

/// How many events a plug-in is given per read.
const BATCH: i64 = 256;

/// How often a node reads the settings again (another node's administrator may change them).
const SETTINGS_EVERY: Duration = Duration::from_secs(60);

/// The store's key of a plug-in's setting.
fn setting_key(plugin: &str, name: &str) -> String {
    format!("plugin.{plugin}.{name}")
}

/// Runs the enabled plug-ins.
pub struct Host {
    store: Store,
    plugins: Vec<Arc<dyn Plugin>>,
    /// How long the retention sweep keeps events, and events that carry a citizen's words, in
    /// milliseconds (as long as forever before the first sweep): an event's absence is a
    /// citizen's deletion only where no sweep could have taken it.
    kept_ms: AtomicI64,
    kept_text_ms: AtomicI64,
}

impl Host {
    /// Applies each plug-in's schema changes and starts it.
    pub async fn start(store: Store, plugins: Vec<Arc<dyn Plugin>>, now_ms: i64) -> anyhow::Result<Host> {
        for p in &plugins {
            let m = p.manifest();
            store.migrate_plugin(m.name, m.migrations, now_ms).await?;
            p.start(&store).await?;
        }
        let host = Host { store, plugins, kept_ms: AtomicI64::new(i64::MAX), kept_text_ms: AtomicI64::new(i64::MAX) };
        host.load_settings().await?;
        Ok(host)
    }

    /// Applies the settings administrators changed (kept in the store) over `lotse.toml`'s;
    /// one that no longer fits its kind is left out, with a warning.
    pub async fn load_settings(&self) -> anyhow::Result<()> {
        for p in &self.plugins {
            let name = p.manifest().name;
            for s in p.settings() {
                let Some(text) = self.store.setting(&setting_key(name, &s.name)).await? else { continue };
                let Ok(value) = serde_json::from_str::<serde_json::Value>(&text) else { continue };
                if value == s.value {
                    continue;
                }
                if let Err(e) = s.kind.check(&value).and_then(|_| p.set(&s.name, &value)) {
                    tracing::warn!(plugin = name, setting = s.name, error = %e, "a stored setting was not applied");
                }
            }
        }
        Ok(())
    }

    /// An administrator changes a setting: checked, applied, and kept in the store.
    pub async fn change(&self, plugin: &str, name: &str, value: &serde_json::Value) -> Result<(), SettingError> {
        let p = self.plugin(plugin).ok_or(SettingError::Unknown)?;
        let setting = p.settings().into_iter().find(|s| s.name == name).ok_or(SettingError::Unknown)?;
        setting.kind.check(value).map_err(SettingError::Invalid)?;
        self.store
            .set_setting(&setting_key(plugin, name), &value.to_string())
            .await
            .map_err(|e| SettingError::Store(e.to_string()))?;
        p.set(name, value).map_err(SettingError::Invalid)
    }

    pub fn plugins(&self) -> &[Arc<dyn Plugin>] {
        &self.plugins
    }

    /// The names of the plug-ins switched on.
    pub fn names(&self) -> Vec<&'static str> {
        self.plugins.iter().map(|p| p.manifest().name).collect()
    }

    /// Whether an enabled plug-in reads events of `kind` (the session logs declined questions
    /// only while one reads `unanswered`).
    pub fn reads(&self, kind: &str) -> bool {
        self.plugins.iter().any(|p| p.manifest().reads.contains(&kind))
    }

    /// The enabled plug-in called `name`.
    pub fn plugin(&self, name: &str) -> Option<&Arc<dyn Plugin>> {
        self.plugins.iter().find(|p| p.manifest().name == name)
    }

    /// Gives every plug-in the events after its position; returns how many were handled.
    /// A plug-in's position moves past an event only once the plug-in handled it.
    pub async fn dispatch(&self) -> anyhow::Result<usize> {
        let mut handled = 0;
        for p in &self.plugins {
            let m = p.manifest();
            let mut position = self.store.plugin_position(m.name).await?;
            loop {
                let events = self.store.events_after(position, BATCH).await?;
                let Some(last) = events.last().map(|e| e.seq) else { break };
                // The conversations this batch gave the plug-in, checked for a deletion once
                // each after it handled them (see `erase_if_deleted`), also where the reading
                // stops early: what it handled is not offered again.
                let mut touched: Vec<&ConversationId> = Vec::new();
                let mut stop = false;
                for e in &events {
                    if m.reads.contains(&e.kind.as_str()) {
                        // A kind it reads, written by a newer node in a form this version
                        // cannot read: left for the newer node (during a rolling upgrade),
                        // not passed over.
                        if e.event == lotse_handoff::log::Event::Unknown {
                            stop = true;
                            break;
                        }
                        if let Err(err) = p.on_event(&self.store, e).await {
                            tracing::warn!(plugin = m.name, seq = e.seq, error = %err, "a plug-in failed on an event; it is offered again");
                            stop = true;
                            break;
                        }
                        if let Some(c) = self.deletable(e)
                            && !touched.contains(&c)
                        {
                            touched.push(c);
                        }
                        handled += 1;
                    }
                    position = e.seq;
                }
                for c in touched {
                    if let Err(err) = self.erase_if_deleted(p.as_ref(), c).await {
                        tracing::warn!(plugin = m.name, error = %err, "a deletion during the events could not be checked");
                    }
                }
                self.store.set_plugin_position(m.name, position).await?;
                if stop {
                    break;
                }
                if last == position && (events.len() as i64) < BATCH {
                    break;
                }
            }
        }
        Ok(handled)
    }

    /// The conversation of `e`, where its events being gone would mean a deletion: an event old
    /// enough for the retention sweep to have taken it is not a deletion, since what the
    /// plug-in keeps of it outlives the log by design.
    fn deletable<'e>(&self, e: &'e Logged) -> Option<&'e ConversationId> {
        let kept = if e.kind == "unanswered" { &self.kept_text_ms } else { &self.kept_ms };
        let sweepable = e.at_ms < lotse_handoff::store::now_ms().saturating_sub(kept.load(Ordering::Relaxed));
        e.conversation_id.as_ref().filter(|_| !sweepable)
    }

    /// A citizen's deletion may have run while the plug-in handled events of conversation `c`
    /// (read before the deletion, kept after it): what it kept of a conversation whose events
    /// are gone is erased now. Erasing deletes the events first, so either that deletion sees
    /// what was kept or this check, run after the plug-in kept it, sees the events gone.
    async fn erase_if_deleted(&self, p: &dyn Plugin, c: &ConversationId) -> anyhow::Result<()> {
        if !self.store.has_events(c).await? {
            p.erase(&self.store, c).await?;
        }
        Ok(())
    }

    /// Feeds the plug-ins whenever the log grew (`grew`), and every `every` at the latest (an
    /// event another node wrote), until `token` is cancelled.
    pub fn spawn(
        self: &Arc<Self>,
        grew: Arc<tokio::sync::Notify>,
        every: Duration,
        tracker: &TaskTracker,
        token: CancellationToken,
    ) {
        let host = self.clone();
        tracker.spawn(async move {
            // A setting another node's administrator changed is taken up within a minute.
            let mut settings_read = tokio::time::Instant::now();
            loop {
                if settings_read.elapsed() >= SETTINGS_EVERY {
                    settings_read = tokio::time::Instant::now();
                    if let Err(e) = host.load_settings().await {
                        tracing::warn!(error = %e, "the plug-ins' settings could not be read");
                    }
                }
                if let Err(e) = host.dispatch().await {
                    tracing::warn!(error = %e, "the plug-ins could not read the event log");
                }
                tokio::select! {
                    _ = token.cancelled() => break,
                    _ = grew.notified() => {}
                    _ = tokio::time::sleep(every) => {}
                }
            }
        });
    }

    /// A citizen's deletion: their events and whatever each plug-in keeps of them.
    pub async fn erase(&self, conversation: &ConversationId) -> anyhow::Result<u64> {
        let mut n = self.store.erase_events(conversation).await?;
        for p in &self.plugins {
            n += p.erase(&self.store, conversation).await?;
        }
        Ok(n)
    }

    /// The retention sweep: events older than `log_days` days, events that carry a citizen's
    /// words (`unanswered`) older than the shortest free-text retention of the plug-ins that
    /// read them, and what each plug-in keeps past its own retention.
    pub async fn purge(&self, now_ms: i64, log_days: u32) -> anyhow::Result<u64> {
        const DAY: i64 = 86_400_000;
        let kept = i64::from(log_days) * DAY;
        self.kept_ms.store(kept, Ordering::Relaxed);
        let mut n = self.store.purge_events(now_ms - kept).await?;
        let text_days = self
            .plugins
            .iter()
            .filter(|p| p.manifest().reads.contains(&"unanswered"))
            .map(|p| p.text_days().unwrap_or(0))
            .min()
            .unwrap_or(0)
            .min(log_days);
        let kept_text = i64::from(text_days) * DAY;
        self.kept_text_ms.store(kept_text, Ordering::Relaxed);
        n += self.store.purge_events_of("unanswered", now_ms - kept_text).await?;
        for p in &self.plugins {
            n += p.purge(&self.store, now_ms).await?;
        }
        Ok(n)
    }
}

/// Why a setting was not changed.
#[derive(Debug, thiserror::Error)]
pub enum SettingError {
    #[error("no such plug-in or setting")]
    Unknown,
    #[error("{0}")]
    Invalid(String),
    #[error("the store failed: {0}")]
    Store(String),
}

/// The name a value of the log serialises to ("web", "de", "answer"), for a plug-in's columns.
pub fn name_of<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default()
}

/// The value a name of the log reads as ([`name_of`] back: "web" → `Channel::Web`), or the
/// default for a name this version does not know.
pub fn from_name<T: serde::de::DeserializeOwned + Default>(name: &str) -> T {
    serde_json::from_value(serde_json::Value::String(name.to_string())).unwrap_or_default()
}

/// A citizen's deletion in a plug-in's tables: every row of `conversation` in each of `tables`
/// (the plug-in's own, keyed by `conversation_id`); how many went.
pub async fn erase_rows(store: &Store, tables: &[&str], conversation: &ConversationId) -> anyhow::Result<u64> {
    let mut n = 0;
    for table in tables {
        n += sqlx::query(&format!("DELETE FROM {table} WHERE conversation_id = $1"))
            .bind(conversation.as_str())
            .execute(store.pool())
            .await?
            .rows_affected();
    }
    Ok(n)
}

/// A refusal in the API's shape (`{"error": {"code", "message"}}`), for plug-in routes.
pub fn error(status: axum::http::StatusCode, code: &str, message: &str) -> axum::response::Response {
    use axum::response::IntoResponse;
    let body = serde_json::json!({ "error": { "code": code, "message": message } });
    (status, axum::Json(body)).into_response()
}

/// The store failed: logged with the plug-in's name (never the request's content), and a 503
/// `store_unavailable` for the client.
pub fn store_unavailable(plugin: &str, e: impl std::fmt::Display) -> axum::response::Response {
    tracing::warn!(plugin, error = %e, "a plug-in's store failed");
    error(axum::http::StatusCode::SERVICE_UNAVAILABLE, "store_unavailable", "Please try again in a moment.")
}

/// Text for a plug-in's HTML page: `&`, `<`, `>` and `"` escaped.
pub fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Free text from a citizen as a plug-in may keep it (see [`lotse_dialog::understand::redact`]).
pub use lotse_dialog::understand::redact;

//! The conversation event log: what happened in conversations (started, answered, handed
//! over), appended by the session layer and read by the plug-ins, each from its own position,
//! at least once, also after a restart. It holds no contact data and no message text, with one
//! exception: a question the assistant could not answer ([`Event::Unanswered`]), redacted, and
//! written only while a plug-in that reads it is on (the unanswered-questions inbox), which
//! also sets how long it is kept. A conversation's id (random) is its only key, and a citizen's
//! deletion erases its events.

use lotse_core::{Channel, ConversationId, Lang, ReplyKind};
use serde::{Deserialize, Serialize};
use sqlx::{Executor, Row};

use crate::store::{Result, Store, StoreError};

/// One thing that happened in a conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    /// A conversation began; `campaign` is the code of the page or poster it came from.
    Started {
        channel: Channel,
        lang: Lang,
        campaign: Option<String>,
        /// It began while the general team was not reachable (staff hours).
        #[serde(default)]
        outside_hours: bool,
    },
    /// The assistant answered a citizen's message: the reply's kind, the ids of its sources
    /// and how its text was made, and how sure the search was of its best service (0–1) when
    /// a search decided the reply. `turn` counts the conversation's answered messages from 1.
    Answered {
        channel: Channel,
        lang: Lang,
        turn: u32,
        reply: ReplyKind,
        sources: Vec<String>,
        generated_by: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        confidence: Option<f32>,
    },
    /// A citizen's message went to the member of staff who has the conversation.
    Relayed { channel: Channel },
    /// A reply told the citizen where their handoff stands: `queued`, `connected`,
    /// `callback_offered` (staff are away), `callback` (a callback was booked), `closed`; or
    /// the sweeper found the citizen gone from the queue: `abandoned`; or a member of staff
    /// took the conversation: `claimed`.
    Handoff { channel: Channel, state: String },
    /// The assistant declined a citizen's question (an `out_of_scope` reply): the question as
    /// the citizen wrote or said it, redacted (e-mail addresses, phone and other long numbers,
    /// IBANs replaced), for the unanswered-questions inbox. `turn` is the answer's, as in
    /// [`Event::Answered`].
    Unanswered { channel: Channel, lang: Lang, turn: u32, question: String },
    /// A citizen said whether an answer helped: a caller by key after the last answer
    /// ("Drücken Sie 1 für ja, 2 für nein"), the widget by its thumbs (the feedback plug-in
    /// keeps the reason and comment, never in the log). `turn` is that answer's, as in
    /// [`Event::Answered`].
    /// `lang`: the answer's language (none in lines written before it was logged).
    Voted {
        channel: Channel,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        lang: Option<Lang>,
        turn: u32,
        helpful: bool,
    },
    /// A citizen gave feedback (no conversation, no text: a count for the key figures):
    /// `what` is `thumbs_up`, `thumbs_down`, `rating`, `suggestion` or `survey_response`.
    Feedback { channel: Channel, lang: Lang, what: String },
    /// An event this version cannot read (a newer node wrote it): no plug-in is given it, and
    /// the reading goes on past it.
    #[serde(other)]
    Unknown,
}

impl Event {
    /// The event's kind, as stored.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::Started { .. } => "started",
            Event::Answered { .. } => "answered",
            Event::Relayed { .. } => "relayed",
            Event::Handoff { .. } => "handoff",
            Event::Unanswered { .. } => "unanswered",
            Event::Feedback { .. } => "feedback",
            Event::Voted { .. } => "voted",
            Event::Unknown => "unknown",
        }
    }
}

/// An event as the log holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct Logged {
    pub seq: i64,
    pub at_ms: i64,
    pub conversation_id: Option<ConversationId>,
    /// The kind as stored, also for an event this version cannot read.
    pub kind: String,
    pub event: Event,
}

impl Store {
    /// Appends an event; returns its place in the log.
    pub async fn append_event(&self, at_ms: i64, conversation: Option<&ConversationId>, event: &Event) -> Result<i64> {
        let body = serde_json::to_string(event).map_err(|e| StoreError::Db(sqlx::Error::Encode(Box::new(e))))?;
        let mut tx = self.pool.begin().await?;
        // The counter row's lock is held to the commit: the next writer gets the next place
        // and commits after this one.
        let seq: i64 = sqlx::query("UPDATE event_seq SET seq = seq + 1 WHERE id = 1 RETURNING seq")
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        sqlx::query("INSERT INTO events (seq, at_ms, conversation_id, kind, body) VALUES ($1, $2, $3, $4, $5)")
            .bind(seq)
            .bind(at_ms)
            .bind(conversation.map(|c| c.as_str().to_string()))
            .bind(event.kind())
            .bind(&body)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(seq)
    }

    /// Up to `limit` events after place `after`, in order. An event whose body this version
    /// cannot read (written by a newer one) comes as [`Event::Unknown`] with its stored kind.
    pub async fn events_after(&self, after: i64, limit: i64) -> Result<Vec<Logged>> {
        let rows = sqlx::query(
            "SELECT seq, at_ms, conversation_id, body, kind FROM events WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let body: String = row.try_get(3)?;
            out.push(Logged {
                seq: row.try_get(0)?,
                at_ms: row.try_get(1)?,
                conversation_id: row.try_get::<Option<String>, _>(2)?.map(ConversationId::new),
                kind: row.try_get(4)?,
                event: serde_json::from_str::<Event>(&body).unwrap_or(Event::Unknown),
            });
        }
        Ok(out)
    }

    /// The place up to which plug-in `plugin` has handled the log (0: nothing yet).
    pub async fn plugin_position(&self, plugin: &str) -> Result<i64> {
        let row = sqlx::query("SELECT seq FROM plugin_positions WHERE plugin = $1")
            .bind(plugin)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(r) => r.try_get(0)?,
            None => 0,
        })
    }

    /// Records that plug-in `plugin` has handled the log up to `seq`. A position only moves
    /// forward (another node's reader may have moved it further).
    pub async fn set_plugin_position(&self, plugin: &str, seq: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO plugin_positions (plugin, seq) VALUES ($1, $2) \
             ON CONFLICT (plugin) DO UPDATE SET seq = excluded.seq WHERE plugin_positions.seq < excluded.seq",
        )
        .bind(plugin)
        .bind(seq)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A conversation's events are erased with it (a citizen's deletion).
    pub async fn erase_events(&self, conversation: &ConversationId) -> Result<u64> {
        Ok(sqlx::query("DELETE FROM events WHERE conversation_id = $1")
            .bind(conversation.as_str())
            .execute(&self.pool)
            .await?
            .rows_affected())
    }

    /// Whether the log still holds an event of `conversation` (a citizen's deletion erases
    /// them all).
    pub async fn has_events(&self, conversation: &ConversationId) -> Result<bool> {
        Ok(sqlx::query("SELECT 1 FROM events WHERE conversation_id = $1 LIMIT 1")
            .bind(conversation.as_str())
            .fetch_optional(&self.pool)
            .await?
            .is_some())
    }

    /// Events older than `before_ms` are dropped (the plug-ins keep what they need of them as
    /// aggregates); returns how many.
    pub async fn purge_events(&self, before_ms: i64) -> Result<u64> {
        Ok(sqlx::query("DELETE FROM events WHERE at_ms < $1")
            .bind(before_ms)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }

    /// Events of kind `kind` older than `before_ms` are dropped (those that carry text, kept no
    /// longer than the plug-ins that read them keep text); returns how many.
    pub async fn purge_events_of(&self, kind: &str, before_ms: i64) -> Result<u64> {
        Ok(sqlx::query("DELETE FROM events WHERE kind = $1 AND at_ms < $2")
            .bind(kind)
            .bind(before_ms)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }

    /// Whether plug-in `plugin`'s schema was ever applied here (its tables exist).
    pub async fn plugin_migrated(&self, plugin: &str) -> Result<bool> {
        Ok(sqlx::query("SELECT 1 FROM plugin_migrations WHERE plugin = $1 LIMIT 1")
            .bind(plugin)
            .fetch_optional(&self.pool)
            .await?
            .is_some())
    }

    /// Applies plug-in `plugin`'s schema changes that are not yet applied, each once and in
    /// its own transaction: `(version, sql)`, versions ascending. Returns how many ran.
    pub async fn migrate_plugin(&self, plugin: &str, migrations: &[(i64, &str)], now: i64) -> Result<usize> {
        let mut applied = 0;
        for (version, sql) in migrations {
            let mut tx = self.pool.begin().await?;
            let done = sqlx::query("SELECT 1 FROM plugin_migrations WHERE plugin = $1 AND version = $2")
                .bind(plugin)
                .bind(version)
                .fetch_optional(&mut *tx)
                .await?
                .is_some();
            if done {
                continue;
            }
            for statement in sql.split(';').map(str::trim).filter(|s| !s.is_empty()) {
                (&mut *tx).execute(statement).await?;
            }
            sqlx::query("INSERT INTO plugin_migrations (plugin, version, applied_ms) VALUES ($1, $2, $3)")
                .bind(plugin)
                .bind(version)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            applied += 1;
        }
        Ok(applied)
    }

    /// The pool, for a plug-in's own tables (see [`Store::migrate_plugin`]).
    pub fn pool(&self) -> &sqlx::AnyPool {
        &self.pool
    }
}

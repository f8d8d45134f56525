//! The host feeds each plug-in the event log from its own position: every event once per
//! reading, again after a failure, from where it stopped after a restart, from the start for a
//! new plug-in; deletion and retention reach every plug-in.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use lotse_core::{Channel, ConversationId, Lang, ReplyKind};
use lotse_handoff::Store;
use lotse_handoff::log::{Event, Logged};
use lotse_plugin::{Host, Manifest, Plugin};
use sqlx::Row;

/// Counts the answers per conversation in its own table.
struct Counter {
    manifest: Manifest,
    /// Fails on the next event once, when set.
    fail_once: AtomicBool,
    /// Fails once on the event at this place in the log, when not 0.
    fail_at: AtomicI64,
    /// A citizen's deletion of the event's conversation runs, whole, between the reading of the
    /// next event and what the plug-in keeps of it, when set.
    deleted_meanwhile: AtomicBool,
    /// The retention sweep takes the event from the log in the same window, when set.
    swept_meanwhile: AtomicBool,
    erased: AtomicU64,
}

impl Counter {
    fn new(name: &'static str) -> Arc<Counter> {
        Arc::new(Counter {
            manifest: Manifest {
                name,
                purpose: "Counts answers (a test).",
                reads: &["answered"],
                free_text: None,
                migrations: &[(
                    1,
                    "CREATE TABLE IF NOT EXISTS counted (plugin TEXT NOT NULL, seq BIGINT NOT NULL, conversation_id TEXT)",
                )],
            },
            fail_once: AtomicBool::new(false),
            fail_at: AtomicI64::new(0),
            deleted_meanwhile: AtomicBool::new(false),
            swept_meanwhile: AtomicBool::new(false),
            erased: AtomicU64::new(0),
        })
    }
}

#[async_trait::async_trait]
impl Plugin for Counter {
    fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    async fn on_event(&self, store: &Store, e: &Logged) -> anyhow::Result<()> {
        assert!(matches!(e.event, Event::Answered { .. }), "only the kinds it reads");
        if self.fail_once.swap(false, Ordering::SeqCst)
            || self.fail_at.compare_exchange(e.seq, 0, Ordering::SeqCst, Ordering::SeqCst).is_ok()
        {
            anyhow::bail!("not now");
        }
        if self.deleted_meanwhile.swap(false, Ordering::SeqCst)
            && let Some(c) = &e.conversation_id
        {
            store.erase_events(c).await?;
            self.erase(store, c).await?;
        }
        if self.swept_meanwhile.swap(false, Ordering::SeqCst) {
            store.purge_events(e.at_ms + 1).await?;
        }
        sqlx::query("INSERT INTO counted (plugin, seq, conversation_id) VALUES ($1, $2, $3)")
            .bind(self.manifest.name)
            .bind(e.seq)
            .bind(e.conversation_id.as_ref().map(|c| c.as_str().to_string()))
            .execute(store.pool())
            .await?;
        Ok(())
    }

    async fn erase(&self, store: &Store, conversation: &ConversationId) -> anyhow::Result<u64> {
        let n = sqlx::query("DELETE FROM counted WHERE plugin = $1 AND conversation_id = $2")
            .bind(self.manifest.name)
            .bind(conversation.as_str())
            .execute(store.pool())
            .await?
            .rows_affected();
        self.erased.fetch_add(n, Ordering::SeqCst);
        Ok(n)
    }
}

async fn counted(store: &Store, plugin: &str) -> Vec<i64> {
    let rows = sqlx::query("SELECT seq FROM counted WHERE plugin = $1 ORDER BY seq")
        .bind(plugin)
        .fetch_all(store.pool())
        .await
        .unwrap();
    rows.iter().map(|r| r.get::<i64, _>(0)).collect()
}

/// An event at place `seq` in a form this version may not know, as a newer node writes it.
async fn written_by_a_newer_node(store: &Store, seq: i64, kind: &str, body: &str) {
    sqlx::query("INSERT INTO events (seq, at_ms, conversation_id, kind, body) VALUES ($1, 1, 'a', $2, $3)")
        .bind(seq)
        .bind(kind)
        .bind(body)
        .execute(store.pool())
        .await
        .unwrap();
    sqlx::query("UPDATE event_seq SET seq = $1").bind(seq).execute(store.pool()).await.unwrap();
}

fn answered(turn: u32) -> Event {
    Event::Answered {
        channel: Channel::Web,
        lang: Lang::De,
        turn,
        reply: ReplyKind::Answer,
        sources: vec!["reisepass".into()],
        generated_by: "composer".into(),
        confidence: Some(0.9),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_plugin_reads_every_event_once_from_its_own_position() {
    let dir = std::env::temp_dir().join(format!("lotse-plugin-{}", uuid::Uuid::new_v4().simple()));
    let url = format!("sqlite:{}/lotse.db", dir.display());
    let store = Store::open(&url).await.unwrap();
    let a = ConversationId::new("a".to_string());
    let b = ConversationId::new("b".to_string());
    let started = Event::Started { channel: Channel::Web, lang: Lang::De, campaign: None, outside_hours: false };
    store.append_event(1, Some(&a), &started).await.unwrap();
    let s1 = store.append_event(2, Some(&a), &answered(1)).await.unwrap();
    let s2 = store.append_event(3, Some(&b), &answered(1)).await.unwrap();

    let counter = Counter::new("counter");
    let host = Host::start(store.clone(), vec![counter.clone() as Arc<dyn Plugin>], 0).await.unwrap();
    assert_eq!(host.dispatch().await.unwrap(), 2);
    assert_eq!(host.dispatch().await.unwrap(), 0, "nothing twice");
    assert_eq!(counted(&store, "counter").await, vec![s1, s2]);

    // A failure stops the reading at that event; it is offered again.
    let s3 = store.append_event(4, Some(&a), &answered(2)).await.unwrap();
    counter.fail_once.store(true, Ordering::SeqCst);
    assert_eq!(host.dispatch().await.unwrap(), 0);
    assert_eq!(host.dispatch().await.unwrap(), 1);
    assert_eq!(counted(&store, "counter").await, vec![s1, s2, s3]);

    // A restart (a new store and host on the same file) goes on from the position ...
    drop(host);
    drop(store);
    let store = Store::open(&url).await.unwrap();
    let s4 = store.append_event(5, Some(&b), &answered(2)).await.unwrap();
    let counter = Counter::new("counter");
    let late = Counter::new("late");
    let host = Host::start(store.clone(), vec![counter.clone() as Arc<dyn Plugin>, late.clone()], 0).await.unwrap();
    assert_eq!(host.dispatch().await.unwrap(), 1 + 4);
    assert_eq!(counted(&store, "counter").await, vec![s1, s2, s3, s4]);
    // ... and a new plug-in reads the log from its start.
    assert_eq!(counted(&store, "late").await, vec![s1, s2, s3, s4]);

    // More events than one read holds.
    for i in 0..300 {
        store.append_event(10 + i, Some(&a), &answered(3)).await.unwrap();
    }
    assert_eq!(host.dispatch().await.unwrap(), 2 * 300);

    // A citizen's deletion reaches the log and every plug-in.
    let erased = host.erase(&b).await.unwrap();
    assert_eq!(erased, 2 + 2 + 2, "two events of b, and what each of the two plug-ins kept of them");
    assert!(counted(&store, "late").await.iter().all(|s| *s != s2 && *s != s4));
    assert_eq!(late.erased.load(Ordering::SeqCst), 2);

    // The retention sweep drops old events.
    assert!(host.purge(1_000 + 86_400_000, 1).await.unwrap() >= 300);
    assert!(store.events_after(0, 10).await.unwrap().is_empty());

    // After deletions and the sweep emptied the log, new events still get new places and
    // reach every plug-in.
    let after = store.append_event(2_000 + 86_400_000, Some(&a), &answered(4)).await.unwrap();
    assert!(after > s4 + 300, "{after}: a place is never given twice");
    assert_eq!(host.dispatch().await.unwrap(), 2);
    assert_eq!(counted(&store, "late").await.last(), Some(&after));

    // An event this version cannot read (a newer node wrote it) is passed over, not stuck on.
    written_by_a_newer_node(&store, after + 1, "survey", r#"{"kind":"survey"}"#).await;
    let last = store.append_event(3_000 + 86_400_000, Some(&a), &answered(5)).await.unwrap();
    assert_eq!(host.dispatch().await.unwrap(), 2);
    assert_eq!(counted(&store, "counter").await.last(), Some(&last));
    assert_eq!(store.plugin_position("counter").await.unwrap(), last);

    // But an answer in a form this version cannot read is left for the node that wrote it: the
    // reading stops there rather than pass it for every node.
    written_by_a_newer_node(&store, last + 1, "answered", r#"{"kind":"answered","mood":1}"#).await;
    store.append_event(4_000 + 86_400_000, Some(&a), &answered(6)).await.unwrap();
    assert_eq!(host.dispatch().await.unwrap(), 0);
    assert_eq!(store.plugin_position("counter").await.unwrap(), last);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deletion_while_a_plugin_handles_the_event_leaves_nothing_behind() {
    let dir = std::env::temp_dir().join(format!("lotse-plugin-{}", uuid::Uuid::new_v4().simple()));
    let store = Store::open(&format!("sqlite:{}/lotse.db", dir.display())).await.unwrap();
    let a = ConversationId::new("a".to_string());
    let b = ConversationId::new("b".to_string());
    let kept = store.append_event(1, Some(&a), &answered(1)).await.unwrap();
    store.append_event(2, Some(&b), &answered(1)).await.unwrap();
    let counter = Counter::new("counter");
    let host = Host::start(store.clone(), vec![counter.clone() as Arc<dyn Plugin>], 0).await.unwrap();

    // The deletion of "b" runs after the host read b's event and before the plug-in wrote what
    // it keeps of it: the plug-in's erase found nothing then.
    store.append_event(3, Some(&b), &answered(2)).await.unwrap();
    assert_eq!(host.dispatch().await.unwrap(), 3);
    counter.deleted_meanwhile.store(true, Ordering::SeqCst);
    let late = store.append_event(4, Some(&b), &answered(3)).await.unwrap();
    assert_eq!(host.dispatch().await.unwrap(), 1);

    assert!(store.events_after(0, 10).await.unwrap().iter().all(|e| e.conversation_id.as_ref() != Some(&b)));
    assert_eq!(counted(&store, "counter").await, vec![kept], "nothing of b kept, a untouched (not {late})");

    // The retention sweep taking an old event meanwhile (a plug-in reading far behind) is no
    // deletion: what the plug-in keeps outlives the log.
    host.purge(lotse_handoff::store::now_ms(), 1).await.unwrap();
    let c = ConversationId::new("c".to_string());
    let old = store.append_event(5, Some(&c), &answered(1)).await.unwrap();
    counter.swept_meanwhile.store(true, Ordering::SeqCst);
    assert_eq!(host.dispatch().await.unwrap(), 1);
    assert!(store.events_after(0, 10).await.unwrap().is_empty());
    assert_eq!(counted(&store, "counter").await, vec![kept, old], "c's row stays with a's");

    // A reading cut short by a failing event still checks the conversations it handled before
    // it: their events are not offered again.
    let (d, e) = (ConversationId::new("d".to_string()), ConversationId::new("e".to_string()));
    let now = lotse_handoff::store::now_ms();
    store.append_event(now, Some(&d), &answered(1)).await.unwrap();
    let failing = store.append_event(now, Some(&e), &answered(1)).await.unwrap();
    counter.deleted_meanwhile.store(true, Ordering::SeqCst);
    counter.fail_at.store(failing, Ordering::SeqCst);
    assert_eq!(host.dispatch().await.unwrap(), 1, "d's event handled, e's failed");
    assert_eq!(counted(&store, "counter").await, vec![kept, old], "nothing of d kept");
    assert_eq!(host.dispatch().await.unwrap(), 1, "e's event offered again");
    assert_eq!(counted(&store, "counter").await, vec![kept, old, failing]);
    let _ = std::fs::remove_dir_all(dir);
}

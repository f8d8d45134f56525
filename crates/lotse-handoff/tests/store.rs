//! The handoff store against a real SQLite file, and against PostgreSQL when
//! `LOTSE_TEST_POSTGRES` names a database (`scripts/test` starts one).

use lotse_core::ReplyKind;
use lotse_core::{Channel, ConversationId, Lang, Source};
use lotse_handoff::log::Event;
use lotse_handoff::store::{NewHandoff, StoreError, now_ms};
use lotse_handoff::{Author, CallbackId, CallbackState, ContactKind, NewCallback, Outcome, QueueState, Role, Store};

fn sqlite_url() -> String {
    let dir = std::env::temp_dir().join(format!("lotse-store-{}", uuid::Uuid::new_v4().simple()));
    format!("sqlite:{}/handoff.db", dir.display())
}

fn new(conv: &str, team: &str) -> NewHandoff {
    NewHandoff {
        conversation_id: conv.into(),
        team: team.into(),
        reason: "asked".into(),
        lang: Lang::De,
        channel: Channel::Web,
        service: Some("Personalausweis beantragen".into()),
        sources: vec![Source {
            id: "x".into(),
            title: "Personalausweis".into(),
            url: "https://example.org".into(),
            as_of: String::new(),
        }],
        retention_days: 30,
    }
}

/// A fresh namespace per run, so that a shared PostgreSQL database can be used again.
fn unique(s: &str) -> String {
    format!("{s}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
}

fn conversation(s: &str) -> ConversationId {
    ConversationId::new(unique(s))
}

async fn queue_lifecycle(store: &Store) {
    let team = unique("team");
    let t0 = now_ms();
    let (a, b, c) = (conversation("conv-a"), conversation("conv-b"), conversation("conv-c"));
    let ha = store.enqueue(new(&a, &team), t0).await.unwrap();
    let hb = store.enqueue(new(&b, &team), t0 + 1).await.unwrap();
    let hc = store.enqueue(new(&c, &team), t0 + 2).await.unwrap();
    assert_eq!(ha.state, QueueState::Waiting);
    assert_eq!(ha.sources.len(), 1);
    // Asking again keeps the place in the queue.
    assert_eq!(store.enqueue(new(&a, &team), t0 + 3).await.unwrap().id, ha.id);
    assert_eq!(store.position(&ha).await.unwrap(), Some(1));
    assert_eq!(store.position(&hc).await.unwrap(), Some(3));
    // No honest estimate without recent claims.
    assert_eq!(store.wait_estimate(&team, 3, t0).await.unwrap(), None);

    // Claim: one winner; the second claim is a conflict.
    let claimed = store.claim(&ha.id, "anna", t0 + 60_000).await.unwrap();
    assert_eq!(claimed.state, QueueState::Claimed);
    assert_eq!(claimed.claimed_by.as_deref(), Some("anna"));
    assert!(matches!(store.claim(&ha.id, "bert", t0 + 60_001).await, Err(StoreError::Conflict(_))));
    assert_eq!(store.position(&store.handoff(&hc.id).await.unwrap()).await.unwrap(), Some(2));
    store.activate(&ha.id, "anna", t0 + 61_000).await.unwrap();
    assert_eq!(store.handoff(&ha.id).await.unwrap().state, QueueState::Active);

    // Staff gone: back to the queue, first again (its original place).
    let back = store.release_absent_staff(t0 + 120_000).await.unwrap();
    assert!(back.iter().any(|h| h.id == ha.id));
    let ha2 = store.handoff(&ha.id).await.unwrap();
    assert_eq!((ha2.state, ha2.claimed_by.clone()), (QueueState::Waiting, None));
    assert_eq!(store.position(&ha2).await.unwrap(), Some(1));

    // Three claims in the last two hours give an estimate.
    store.claim(&ha.id, "anna", t0 + 180_000).await.unwrap();
    store.claim(&hb.id, "bert", t0 + 240_000).await.unwrap();
    let est = store.wait_estimate(&team, 1, t0 + 300_000).await.unwrap();
    assert_eq!(est, None, "two distinct claims are not enough");
    store.close(&ha.id, Outcome::Resolved, Some("erledigt"), t0 + 300_000).await.unwrap();
    assert!(matches!(store.close(&ha.id, Outcome::Resolved, None, t0 + 300_001).await, Err(StoreError::Conflict(_))));

    // The citizen of c leaves: abandoned after the timeout; a present citizen is kept.
    store.citizen_seen(&b, t0 + 400_000).await.unwrap();
    let gone = store.abandon_stale(t0 + 300_000, t0 + 400_000).await.unwrap();
    assert!(gone.iter().any(|h| h.id == hc.id));
    assert!(!gone.iter().any(|h| h.id == hb.id));
    assert_eq!(store.handoff(&hc.id).await.unwrap().state, QueueState::Abandoned);
    assert!(store.open_handoff(&c).await.unwrap().is_none());
    assert_eq!(store.open_handoff(&b).await.unwrap().unwrap().id, hb.id);

    let f = store.figures(t0 - 1).await.unwrap();
    let tf = f.by_team.iter().find(|t| t.team == team).unwrap();
    assert_eq!((tf.queued, tf.handled, tf.abandoned), (3, 1, 1));
    assert!(tf.wait_median_s.is_some());
}

async fn transcripts_and_deletion(store: &Store) {
    let conv = conversation("conv-t");
    let now = now_ms();
    store.enqueue(new(&conv, "t"), now).await.unwrap();
    assert_eq!(store.append(&conv, Author::Citizen, None, "Hallo", &[], now).await.unwrap(), 1);
    assert_eq!(store.append(&conv, Author::Bot, None, "Guten Tag", &[], now).await.unwrap(), 2);
    // Concurrent writers: every line gets its own number, none is lost.
    let mut tasks = Vec::new();
    for i in 0..20 {
        let (s, c) = (store.clone(), conv.clone());
        tasks.push(tokio::spawn(async move {
            s.append(&c, Author::Staff, Some("Anna"), &format!("Zeile {i}"), &[], now_ms()).await.unwrap()
        }));
    }
    let mut seqs: Vec<i64> = Vec::new();
    for t in tasks {
        seqs.push(t.await.unwrap());
    }
    seqs.sort();
    assert_eq!(seqs, (3..=22).collect::<Vec<_>>());
    let t = store.transcript(&conv).await.unwrap();
    assert_eq!(t.len(), 22);
    assert_eq!((t[0].author, t[0].text.as_str()), (Author::Citizen, "Hallo"));
    assert_eq!(t[5].staff.as_deref(), Some("Anna"));

    let cb = store
        .add_callback(
            NewCallback {
                conversation_id: conv.clone(),
                team: "t".into(),
                contact_kind: ContactKind::Phone,
                contact: "03641 123456".into(),
                name: None,
                topic: "Personalausweis".into(),
                lang: Lang::De,
                consent: "Ich bin einverstanden".into(),
                slot_start_ms: now + 1000,
                slot_end_ms: now + 2000,
                retention_days: 30,
            },
            now,
        )
        .await
        .unwrap();
    assert_eq!(cb.state, CallbackState::Open);
    assert_eq!(store.pending_callback(&conv).await.unwrap().unwrap().id, cb.id);
    let s = store.schedule_callback(&cb.id, "anna", now + 1500).await.unwrap();
    assert_eq!((s.state, s.assigned_to.as_deref()), (CallbackState::Scheduled, Some("anna")));

    // The citizen deletes the conversation: transcript and contact data are gone at once.
    store.delete_conversation(&conv, now).await.unwrap();
    assert!(store.transcript(&conv).await.unwrap().is_empty());
    assert!(matches!(store.callback(&cb.id).await, Err(StoreError::NotFound)));
    let h = store.latest_handoff(&conv).await.unwrap().unwrap();
    assert_eq!((h.state, h.outcome, h.service.clone()), (QueueState::Closed, Some(Outcome::Deleted), None));
}

/// Several nodes queueing one conversation at the same moment: one open handoff, the same
/// for all.
async fn one_open_handoff_per_conversation(store: &Store) {
    let conv = conversation("conv-race");
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (store, conv) = (store.clone(), conv.clone());
            tokio::spawn(async move { store.enqueue(new(&conv, "r"), now_ms()).await.unwrap().id })
        })
        .collect();
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.unwrap());
    }
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    let open = store.queue().await.unwrap().into_iter().filter(|h| h.conversation_id == conv).count();
    assert_eq!(open, 1);
}

async fn retention(store: &Store) {
    let (old, fresh) = (conversation("conv-old"), conversation("conv-new"));
    let now = now_ms();
    let day = 24 * 3600 * 1000;
    let h = store.enqueue(new(&old, "r"), now - 40 * day).await.unwrap();
    store.append(&old, Author::Citizen, None, "alt", &[], now - 40 * day).await.unwrap();
    store.close(&h.id, Outcome::Resolved, None, now - 35 * day).await.unwrap();
    let h2 = store.enqueue(new(&fresh, "r"), now - day).await.unwrap();
    store.append(&fresh, Author::Citizen, None, "neu", &[], now - day).await.unwrap();
    store.close(&h2.id, Outcome::Resolved, None, now - day).await.unwrap();
    let p = store.purge(now, 30, now - day).await.unwrap();
    assert!(p.handoffs >= 1 && p.messages >= 1, "{p:?}");
    assert!(store.transcript(&old).await.unwrap().is_empty());
    assert!(store.latest_handoff(&old).await.unwrap().is_none());
    assert_eq!(store.transcript(&fresh).await.unwrap().len(), 1);
}

/// Callbacks and their transcripts go when their promised retention has passed after they were
/// done or, never done, after their slot; a later change of the setting does not reach back.
async fn callbacks_keep_what_was_promised(store: &Store) {
    let now = now_ms();
    let day = 24 * 3600 * 1000;
    let request = |conv: &ConversationId, days: u32, slot_end: i64| NewCallback {
        conversation_id: conv.clone(),
        team: "t".into(),
        contact_kind: ContactKind::Phone,
        contact: "03641 123456".into(),
        name: Some("Erika Muster".into()),
        topic: "Personalausweis".into(),
        lang: Lang::De,
        consent: format!("Ich bin einverstanden ({days} Tage)"),
        slot_start_ms: slot_end - 3_600_000,
        slot_end_ms: slot_end,
        retention_days: days,
    };
    let case = |name: &str| conversation(name);
    let (done, open, promised, recent) = (case("cb-done"), case("cb-open"), case("cb-promised"), case("cb-recent"));
    let mut ids = Vec::new();
    for (conv, days, slot_end) in [
        (&done, 30, now - 40 * day),
        (&open, 30, now - 31 * day),
        (&promised, 90, now - 31 * day),
        (&recent, 30, now + day),
    ] {
        ids.push(store.add_callback(request(conv, days, slot_end), slot_end - 2 * day).await.unwrap().id);
        store.append(conv, Author::Citizen, None, "Bitte rufen Sie mich an", &[], slot_end - 2 * day).await.unwrap();
    }
    // Done 31 days ago under a 30-day promise.
    store.complete_callback(&ids[0], "anna", None, now - 31 * day).await.unwrap();

    // The setting is 7 days now: it does not shorten or lengthen what was promised.
    store.purge(now, 7, now - day).await.unwrap();
    let kept = |id: &CallbackId| {
        let id = id.clone();
        async move { store.callback(&id).await.is_ok() }
    };
    assert!(!kept(&ids[0]).await && store.transcript(&done).await.unwrap().is_empty(), "done and past its period");
    assert!(!kept(&ids[1]).await && store.transcript(&open).await.unwrap().is_empty(), "never done, slot long past");
    assert!(kept(&ids[2]).await && !store.transcript(&promised).await.unwrap().is_empty(), "90 days were promised");
    assert!(kept(&ids[3]).await, "still to be called");
    // Two months on, the 90 days have passed too.
    store.purge(now + 60 * day, 7, now - day).await.unwrap();
    assert!(!kept(&ids[2]).await && store.transcript(&promised).await.unwrap().is_empty());
}

async fn accounts_and_sessions(store: &Store) {
    let name = unique("anna");
    let hash = lotse_handoff::auth::hash_password("ein gutes Passwort").unwrap();
    store.put_staff(&name, "Anna A.", &hash, Role::Staff).await.unwrap();
    store.put_staff(&name, "Anna A.", &hash, Role::Admin).await.unwrap();
    let a = store.staff(&name).await.unwrap().unwrap();
    assert_eq!((a.role, a.display_name.as_str()), (Role::Admin, "Anna A."));
    assert!(lotse_handoff::auth::verify_password("ein gutes Passwort", &a.password_hash));
    let token = lotse_handoff::auth::new_token();
    let th = lotse_handoff::auth::token_hash(&token);
    store.create_session(&th, &name, "csrf", 5).await.unwrap();
    assert_eq!(store.session(&th).await.unwrap().unwrap().staff, name);
    assert!(store.session(&token).await.unwrap().is_none(), "the raw token is not stored");
    store.delete_session(&th).await.unwrap();
    assert!(store.session(&th).await.unwrap().is_none());
    // A new password ends every session but the one it was set in; disabling ends all.
    let (here, there) = ("h".repeat(64), "t".repeat(64));
    store.create_session(&here, &name, "csrf", 5).await.unwrap();
    store.create_session(&there, &name, "csrf", 5).await.unwrap();
    assert!(store.set_password(&name, &hash, Some(&here)).await.unwrap());
    assert!(store.session(&here).await.unwrap().is_some() && store.session(&there).await.unwrap().is_none());
    assert!(store.set_staff_disabled(&name, true, 7).await.unwrap());
    assert_eq!(store.staff(&name).await.unwrap().unwrap().disabled_ms, Some(7));
    assert!(store.session(&here).await.unwrap().is_none());
    assert!(store.set_staff_disabled(&name, false, 8).await.unwrap());
    assert_eq!(store.staff(&name).await.unwrap().unwrap().disabled_ms, None);
    assert!(!store.set_staff_disabled(&unique("niemand"), true, 9).await.unwrap());
    assert!(store.staff_accounts().await.unwrap().iter().any(|a| a.name == name));
    // The audit trail, newest first; a year on, gone.
    let day = 24 * 3600 * 1000;
    let now = now_ms();
    store.audit(&name, "handoffs.claim", "h-1", now - 400 * day).await.unwrap();
    store.audit(&name, "admin.schedule", "", now).await.unwrap();
    let trail = store.audit_trail(1_000_000).await.unwrap();
    let mine: Vec<&str> = trail.iter().filter(|l| l.actor == name).map(|l| l.action.as_str()).collect();
    assert_eq!(mine, ["admin.schedule", "handoffs.claim"]);
    // Lines of one millisecond keep the order they were written in.
    for action in ["admin.accounts.enable", "login", "handoffs.claim"] {
        store.audit(&name, action, "same-ms", now + 1).await.unwrap();
    }
    let trail = store.audit_trail(1_000_000).await.unwrap();
    let same: Vec<&str> =
        trail.iter().filter(|l| l.actor == name && l.target == "same-ms").map(|l| l.action.as_str()).collect();
    assert_eq!(same, ["handoffs.claim", "login", "admin.accounts.enable"], "newest first");
    store.purge(now, 30, now - day).await.unwrap();
    let trail = store.audit_trail(1_000_000).await.unwrap();
    let mine: Vec<&str> = trail.iter().filter(|l| l.actor == name).map(|l| l.action.as_str()).collect();
    assert_eq!(mine, ["handoffs.claim", "login", "admin.accounts.enable", "admin.schedule"]);
    store.set_setting("x", "1").await.unwrap();
    store.set_setting("x", "2").await.unwrap();
    assert_eq!(store.setting("x").await.unwrap().as_deref(), Some("2"));
}

/// The estimate is the team's recent pace of claims times the position.
async fn estimates(store: &Store) {
    let team = unique("pace");
    let now = now_ms();
    let min = 60_000;
    let mut hs = Vec::new();
    for i in 0..5 {
        hs.push(store.enqueue(new(&unique("conv-p"), &team), now - 30 * min + i).await.unwrap());
    }
    for (h, at) in hs.iter().zip([now - 20 * min, now - 10 * min, now]) {
        store.claim(&h.id, "anna", at).await.unwrap();
    }
    // Three claims in 20 minutes: one every 6⅔ minutes; the second in line waits about 14.
    assert_eq!(store.wait_estimate(&team, 2, now).await.unwrap(), Some(14));
    assert_eq!(store.wait_estimate(&team, 1, now).await.unwrap(), Some(7));
    // A desk gone quiet for an hour slows the estimate down.
    assert!(store.wait_estimate(&team, 1, now + 60 * min).await.unwrap().unwrap() > 20);
}

async fn event_log(store: &Store) {
    let (a, b) = (conversation("log-a"), conversation("log-b"));
    let started = Event::Started {
        channel: Channel::Web,
        lang: Lang::De,
        campaign: Some("plakat-bus".into()),
        outside_hours: true,
    };
    let answered = Event::Answered {
        channel: Channel::Phone,
        lang: Lang::En,
        turn: 1,
        reply: ReplyKind::Answer,
        sources: vec!["personalausweis".into()],
        generated_by: "composer".into(),
        confidence: Some(0.91),
    };
    let now = now_ms();
    let first = store.append_event(now, Some(&a), &started).await.unwrap();
    let second = store.append_event(now, Some(&b), &answered).await.unwrap();
    assert!(second > first);
    let read = store.events_after(first - 1, 10).await.unwrap();
    assert_eq!(read[0].seq, first);
    assert_eq!(read[0].event, started);
    assert_eq!(read[0].conversation_id.as_ref(), Some(&a));
    assert!(read.iter().any(|e| e.seq == second && e.event == answered));
    assert!(store.events_after(second, 10).await.unwrap().iter().all(|e| e.seq > second));

    // Appends at once (another node, another task) each get their own place.
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let (store, b, answered) = (store.clone(), b.clone(), answered.clone());
        tasks.spawn(async move { store.append_event(now_ms(), Some(&b), &answered).await.unwrap() });
    }
    let mut seqs = tasks.join_all().await;
    seqs.sort();
    seqs.dedup();
    assert_eq!(seqs.len(), 16);
    assert!(seqs[0] > second);

    // Each plug-in keeps its own position.
    let plugin = unique("feedback");
    assert_eq!(store.plugin_position(&plugin).await.unwrap(), 0);
    store.set_plugin_position(&plugin, second).await.unwrap();
    store.set_plugin_position(&plugin, seqs[3]).await.unwrap();
    assert_eq!(store.plugin_position(&plugin).await.unwrap(), seqs[3]);
    assert_eq!(store.plugin_position(&unique("figures")).await.unwrap(), 0);

    // A citizen's deletion erases their events; old events are purged.
    assert_eq!(store.erase_events(&b).await.unwrap(), 17);
    let left = store.events_after(first - 1, 100).await.unwrap();
    assert!(left.iter().all(|e| e.conversation_id.as_ref() != Some(&b)));
    assert!(left.iter().any(|e| e.seq == first));
    let old = store.append_event(1_000, None, &Event::Relayed { channel: Channel::Web }).await.unwrap();
    assert!(store.purge_events(2_000).await.unwrap() >= 1);
    assert!(store.events_after(old - 1, 1).await.unwrap().first().is_none_or(|e| e.seq != old));
    // A place is never given twice, however many events were erased or purged: a reader that
    // has passed it would miss the new event.
    let next = store.append_event(now_ms(), Some(&a), &started).await.unwrap();
    assert!(next > old, "{next} after {old}");

    // A plug-in's schema changes run once.
    let table = unique("plugin_test").replace('-', "_");
    let create = format!("CREATE TABLE {table} (id TEXT PRIMARY KEY, n BIGINT NOT NULL)");
    let migrations = [(1, create.as_str())];
    assert_eq!(store.migrate_plugin(&plugin, &migrations, now).await.unwrap(), 1);
    assert_eq!(store.migrate_plugin(&plugin, &migrations, now).await.unwrap(), 0);
    sqlx::query(&format!("INSERT INTO {table} (id, n) VALUES ('x', 1)")).execute(store.pool()).await.unwrap();
}

async fn all(store: &Store) {
    event_log(store).await;
    queue_lifecycle(store).await;
    estimates(store).await;
    transcripts_and_deletion(store).await;
    one_open_handoff_per_conversation(store).await;
    retention(store).await;
    accounts_and_sessions(store).await;
    callbacks_keep_what_was_promised(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store() {
    let url = sqlite_url();
    let store = Store::open(&url).await.unwrap();
    assert_eq!(store.journal_mode().await.unwrap().as_deref(), Some("wal"));
    all(&store).await;
    // Reopening runs the migrations again without harm and keeps the data.
    drop(store);
    let again = Store::open(&url).await.unwrap();
    assert!(again.setting("x").await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store() {
    let Ok(url) = std::env::var("LOTSE_TEST_POSTGRES") else {
        eprintln!("LOTSE_TEST_POSTGRES is not set: the PostgreSQL run is skipped (scripts/test sets it)");
        return;
    };
    let store = Store::open(&url).await.unwrap();
    assert!(!store.is_sqlite());
    all(&store).await;
}

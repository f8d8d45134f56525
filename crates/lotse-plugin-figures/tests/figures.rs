//! Each event is counted once, also when it is offered again (after a crash between the count
//! and the host's note of its position), on the city's local date.

use lotse_core::{Channel, ConversationId, Lang, ReplyKind};
use lotse_handoff::Store;
use lotse_handoff::log::{Event, Logged};
use lotse_plugin::Plugin;
use lotse_plugin_figures::Figures;
use sqlx::Row;

async fn n(store: &Store, day: &str, name: &str) -> i64 {
    sqlx::query("SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT) FROM figures_daily WHERE day = $1 AND name = $2")
        .bind(day)
        .bind(name)
        .fetch_one(store.pool())
        .await
        .unwrap()
        .get::<i64, _>(0)
}

#[tokio::test]
async fn an_event_offered_again_is_not_counted_twice() {
    let dir = std::env::temp_dir().join(format!("lotse-figures-{}", uuid::Uuid::new_v4().simple()));
    let store = Store::open(&format!("sqlite:{}/lotse.db", dir.display())).await.unwrap();
    let berlin = jiff::tz::TimeZone::get("Europe/Berlin").unwrap();
    let figures = Figures::new(store.clone(), berlin);
    store.migrate_plugin("figures", figures.manifest().migrations, 0).await.unwrap();
    // 23:30 UTC is already the next day in Berlin.
    let at = jiff::Timestamp::from_second(1_775_000_000 - 1_775_000_000 % 86_400 + 23 * 3600 + 1800).unwrap();
    let answered = |seq: i64| Logged {
        seq,
        at_ms: at.as_millisecond(),
        conversation_id: Some(ConversationId::new("c".to_string())),
        kind: "answered".into(),
        event: Event::Answered {
            channel: Channel::Phone,
            lang: Lang::De,
            turn: 1,
            reply: ReplyKind::OutOfScope,
            sources: vec![],
            generated_by: "llm:qwen".into(),
            confidence: None,
        },
    };
    figures.on_event(&store, &answered(1)).await.unwrap();
    figures.on_event(&store, &answered(1)).await.unwrap();
    figures.on_event(&store, &answered(2)).await.unwrap();
    let day = at.to_zoned(jiff::tz::TimeZone::get("Europe/Berlin").unwrap()).date().to_string();
    let utc_day = at.to_zoned(jiff::tz::TimeZone::UTC).date().to_string();
    assert_ne!(day, utc_day, "the example crosses midnight in Berlin");
    assert_eq!(n(&store, &day, "answers").await, 2);
    assert_eq!(n(&store, &day, "reply.out_of_scope").await, 2);
    assert_eq!(n(&store, &day, "written_by_model").await, 2);
    assert_eq!(n(&store, &utc_day, "answers").await, 0);
    let _ = std::fs::remove_dir_all(dir);
}

/// A conversation counts as served by the assistant alone while it has an answer from the
/// records and neither went to staff nor was voted down; it counts on the day it began.
#[tokio::test]
async fn self_service_counts_a_conversation_once_and_takes_it_off_again() {
    let dir = std::env::temp_dir().join(format!("lotse-figures-{}", uuid::Uuid::new_v4().simple()));
    self_service(Store::open(&format!("sqlite:{}/lotse.db", dir.display())).await.unwrap()).await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_service_on_postgresql() {
    let Ok(url) = std::env::var("LOTSE_TEST_POSTGRES") else {
        assert!(std::env::var_os("LOTSE_REQUIRE_MODELS").is_none(), "LOTSE_TEST_POSTGRES missing");
        eprintln!("LOTSE_TEST_POSTGRES is not set: the PostgreSQL run is skipped (scripts/test sets it)");
        return;
    };
    self_service(Store::open(&url).await.unwrap()).await;
}

/// On a store that may hold other runs' figures: its own conversation ids, a day of its own,
/// and log numbers after those counted already.
async fn self_service(store: Store) {
    let zone = jiff::tz::TimeZone::get("Europe/Berlin").unwrap();
    let figures = Figures::new(store.clone(), zone.clone());
    store.migrate_plugin("figures", figures.manifest().migrations, 0).await.unwrap();
    let run = uuid::Uuid::new_v4();
    let days = i64::from(run.as_bytes()[0]) * 256 + i64::from(run.as_bytes()[1]);
    let start = jiff::Timestamp::from_second(1_775_000_000 - days * 86_400).unwrap();
    let day = start.to_zoned(zone).date().to_string();
    let mut seq: i64 =
        sqlx::query("SELECT seq FROM figures_counted WHERE id = 1").fetch_one(store.pool()).await.unwrap().get(0);
    let id = |c: &str| ConversationId::new(format!("{}-{c}", run.simple()));
    let mut offer = async |conversation: &str, minutes: i64, event: Event| {
        seq += 1;
        let at = start.as_millisecond() + minutes * 60_000;
        let e = Logged { seq, at_ms: at, conversation_id: Some(id(conversation)), kind: event.kind().into(), event };
        figures.on_event(&store, &e).await.unwrap();
    };
    let started = || Event::Started { channel: Channel::Web, lang: Lang::De, campaign: None, outside_hours: false };
    let reply = |reply: ReplyKind, turn: u32| Event::Answered {
        channel: Channel::Web,
        lang: Lang::De,
        turn,
        reply,
        sources: vec!["personalausweis".into()],
        generated_by: "composer".into(),
        confidence: Some(0.8),
    };
    let handoff = |state: &str| Event::Handoff { channel: Channel::Web, state: state.into() };
    let voted = |helpful: bool| Event::Voted { channel: Channel::Web, lang: Some(Lang::De), turn: 1, helpful };

    // a: two answers, counted once. b: declined only. c: answered, then to staff. d: answered,
    // then voted down. e: answered, voted up. f: answered after the day turned (still d's day).
    for c in ["a", "b", "c", "d", "e", "f"] {
        offer(c, 0, started()).await;
    }
    offer("a", 1, reply(ReplyKind::Answer, 1)).await;
    offer("a", 2, reply(ReplyKind::Answer, 2)).await;
    offer("b", 1, reply(ReplyKind::OutOfScope, 1)).await;
    offer("c", 1, reply(ReplyKind::Answer, 1)).await;
    assert_eq!(n(&store, &day, "self_served").await, 2, "a and c so far");
    offer("c", 2, handoff("queued")).await;
    offer("c", 3, reply(ReplyKind::Answer, 2)).await;
    offer("d", 1, reply(ReplyKind::Answer, 1)).await;
    offer("d", 2, voted(false)).await;
    offer("e", 1, reply(ReplyKind::Answer, 1)).await;
    offer("e", 2, voted(true)).await;
    offer("f", 24 * 60, reply(ReplyKind::Answer, 1)).await;
    assert_eq!(n(&store, &day, "self_served").await, 3, "a, e and f");
    assert_eq!(n(&store, &day, "conversations").await, 6);
    // A vote counts in the answer's language, as the answers do.
    let by_lang: Vec<(String, String)> = sqlx::query(
        "SELECT name, lang FROM figures_daily WHERE day = $1 AND name LIKE 'feedback.thumbs%' ORDER BY name",
    )
    .bind(&day)
    .fetch_all(store.pool())
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect();
    assert_eq!(
        by_lang,
        [("feedback.thumbs_down".to_string(), "de".to_string()), ("feedback.thumbs_up".to_string(), "de".to_string())]
    );

    // A conversation whose start's event came after its first answer's (the start is logged
    // on a task of its own) counts once its start does; one begun before the plug-in was on
    // (no start) does not: the rate stays a share of the conversations counted.
    offer("g", 1, reply(ReplyKind::Answer, 1)).await;
    offer("h", 1, reply(ReplyKind::Answer, 1)).await;
    assert_eq!(n(&store, &day, "self_served").await, 3, "not yet g, never h");
    offer("g", 0, started()).await;
    assert_eq!(n(&store, &day, "self_served").await, 4, "a, e, f and g");
    assert_eq!(n(&store, &day, "conversations").await, 7);
    // Deletion and purging leave the counts; what comes after the purge changes none.
    figures.erase(&store, &id("a")).await.unwrap();
    let now = start.as_millisecond() + 3 * 86_400_000;
    // (Another run's older days may go with them.)
    assert!(figures.purge(&store, now).await.unwrap() >= 8, "b to h, and c's wait in the queue");
    offer("e", 3 * 24 * 60, voted(false)).await;
    assert_eq!(n(&store, &day, "self_served").await, 4);
}

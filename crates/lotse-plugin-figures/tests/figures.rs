//! Each event is counted once, also when it is offered again (after a crash between the count
//! and the host's note of its position), on the city's local date.

use lotse_core::{Channel, ConversationId, Lang, ReplyKind};
use lotse_handoff::Store;
use lotse_handoff::log::{Event, Logged};
use lotse_plugin::Plugin;
use lotse_plugin_figures::Figures;
use sqlx::Row;

async fn n(store: &Store, day: &str, name: &str) -> i64 {
    sqlx::query("SELECT COALESCE(SUM(n), 0) FROM figures_daily WHERE day = $1 AND name = $2")
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

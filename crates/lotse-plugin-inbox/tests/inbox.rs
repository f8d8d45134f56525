//! The inbox over the Jena knowledge's search and a real store: declined questions from the
//! event log are kept and grouped, staff map a group to a service (and get a synonym line) or
//! mark it as a gap, the retention drops them (moved clock), and a citizen's deletion erases
//! theirs.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use lotse_core::{Channel, ConversationId, Lang};
use lotse_handoff::Store;
use lotse_handoff::log::Event;
use lotse_plugin::Host;
use lotse_plugin_inbox::{Decided, Groups, Inbox};
use serde_json::{Value, json};
use tower::ServiceExt;

const DAY: i64 = 86_400_000;

async fn call(router: &axum::Router, method: &str, uri: &str, body: Option<Value>) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(uri);
    if body.is_some() {
        req = req.header("content-type", "application/json");
    }
    let req = req.body(body.map_or_else(Body::empty, |b| Body::from(b.to_string()))).unwrap();
    let res = router.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 20).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declined_questions_are_grouped_decided_purged_and_erased() {
    let dir = std::env::temp_dir().join(format!("lotse-inbox-{}", uuid::Uuid::new_v4().simple()));
    let store = Store::open(&format!("sqlite:{}/lotse.db", dir.display())).await.unwrap();
    let kb =
        lotse_knowledge::load_dir(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../knowledge")).unwrap();
    let services = kb.services.iter().map(|s| (s.id.to_string(), s.name.clone())).collect();
    let index = Arc::new(lotse_search::SearchIndex::build(&kb).unwrap());
    let inbox = Inbox::new(store.clone(), index, services, 30);
    let router = lotse_plugin::Plugin::staff_routes(&*inbox).unwrap();
    let host = Host::start(store.clone(), vec![inbox], 0).await.unwrap();
    let now = lotse_handoff::store::now_ms();
    let ask = |conversation: &str, question: &str| {
        let (store, c, q) = (store.clone(), ConversationId::new(conversation.to_string()), question.to_string());
        async move {
            let e = Event::Unanswered { channel: Channel::Web, lang: Lang::De, turn: 1, question: q };
            store.append_event(now, Some(&c), &e).await.unwrap();
        }
    };
    ask("a", "Wann fährt der Bus zum Paradies?").await;
    ask("b", "Wie wird das Wetter morgen?").await;
    ask("c", "Wann fährt ein Bus zum Paradiesbahnhof?").await;
    ask("d", "Wo melde ich meinen Dackel an?").await;
    // Another kind of event is not the inbox's.
    store
        .append_event(now, Some(&ConversationId::new("e".to_string())), &Event::Relayed { channel: Channel::Web })
        .await
        .unwrap();
    assert_eq!(host.dispatch().await.unwrap(), 4);
    // Offered again (a crash before the position was noted): kept once.
    store.set_plugin_position("inbox", 0).await.unwrap();
    host.dispatch().await.unwrap();

    let (status, body) = call(&router, "GET", "/groups", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let open: Groups = serde_json::from_value(body).unwrap();
    assert_eq!(open.questions, 4);
    let texts: Vec<Vec<&str>> =
        open.groups.iter().map(|g| g.questions.iter().map(|q| q.text.as_str()).collect()).collect();
    assert_eq!(texts[0], ["Wann fährt ein Bus zum Paradiesbahnhof?", "Wann fährt der Bus zum Paradies?"], "{texts:?}");
    assert_eq!(texts.len(), 3, "the two bus questions together, the others alone: {texts:?}");
    assert!(open.services.iter().any(|(id, _)| id == "hundesteuer"));
    let ids = |text: &str| -> Vec<i64> {
        let g = open.groups.iter().find(|g| g.questions.iter().any(|q| q.text.starts_with(text))).unwrap();
        g.questions.iter().map(|q| q.id).collect()
    };

    // Refused: no such service, no questions, an unknown decision, a mapping without a service.
    for bad in [
        json!({"questions": ids("Wo melde"), "decision": "service", "service": "gibt-es-nicht"}),
        json!({"questions": [], "decision": "gap"}),
        json!({"questions": ids("Wo melde"), "decision": "loeschen"}),
        json!({"questions": ids("Wo melde"), "decision": "service"}),
        json!({"questions": ids("Wo melde"), "decision": "gap", "service": "hundesteuer"}),
    ] {
        assert_eq!(
            call(&router, "POST", "/editor/decide", Some(bad.clone())).await.0,
            StatusCode::BAD_REQUEST,
            "{bad}"
        );
    }
    assert_eq!(
        call(&router, "POST", "/editor/decide", Some(json!({"questions": [9999], "decision": "gap"}))).await.0,
        StatusCode::NOT_FOUND
    );

    // The dachshund is about the dog tax: the word the knowledge lacks becomes a synonym line.
    let (status, body) = call(
        &router,
        "POST",
        "/editor/decide",
        Some(json!({"questions": ids("Wo melde"), "decision": "service", "service": "hundesteuer"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let decided: Decided = serde_json::from_value(body).unwrap();
    assert_eq!(decided, Decided { decided: 1, synonym_lines: vec!["\"dackel\" = [\"Hund\", \"Hundesteuer\"]".into()] });
    // Bus times are not the city's knowledge yet: a gap; the weather is dismissed.
    let (status, _) =
        call(&router, "POST", "/editor/decide", Some(json!({"questions": ids("Wann fährt"), "decision": "gap"}))).await;
    assert_eq!(status, StatusCode::OK);
    call(&router, "POST", "/editor/decide", Some(json!({"questions": ids("Wie wird"), "decision": "dismissed"}))).await;

    let groups = |status: &'static str| {
        let router = router.clone();
        async move {
            let (code, body) = call(&router, "GET", &format!("/groups?status={status}"), None).await;
            assert_eq!(code, StatusCode::OK, "{body}");
            serde_json::from_value::<Groups>(body).unwrap()
        }
    };
    assert!(groups("open").await.groups.is_empty());
    let mapped = groups("service").await;
    assert_eq!(mapped.groups.len(), 1);
    assert_eq!(mapped.groups[0].service.as_ref().map(|s| s.0.as_str()), Some("hundesteuer"));
    assert_eq!(mapped.groups[0].synonym_lines, ["\"dackel\" = [\"Hund\", \"Hundesteuer\"]"]);
    assert_eq!(groups("gap").await.questions, 2);
    assert_eq!(call(&router, "GET", "/groups?status=vielleicht", None).await.0, StatusCode::BAD_REQUEST);
    // A decision taken back: open again.
    call(&router, "POST", "/editor/decide", Some(json!({"questions": ids("Wie wird"), "decision": "open"}))).await;
    assert_eq!(groups("open").await.questions, 1);

    // The citizen who asked about the weather deletes the conversation: gone from the inbox and
    // from the log.
    host.erase(&ConversationId::new("b".to_string())).await.unwrap();
    assert!(groups("open").await.groups.is_empty());
    // 29 days on, the rest is still kept; 31 days on, neither the inbox nor the log has it.
    host.purge(now + 29 * DAY, 365).await.unwrap();
    assert_eq!(groups("gap").await.questions, 2);
    assert_eq!(store.events_after(0, 100).await.unwrap().len(), 4, "three questions and the relayed message");
    host.purge(now + 31 * DAY, 365).await.unwrap();
    for status in ["open", "service", "gap", "dismissed"] {
        assert_eq!(groups(status).await.questions, 0, "{status}");
    }
    let left = store.events_after(0, 100).await.unwrap();
    assert_eq!(left.len(), 1, "the log keeps the relayed message, not the questions: {left:?}");

    // Switched off, the inbox leaves nothing of the questions behind, in its table or the log.
    ask("f", "Wo ist der nächste Hundestrand?").await;
    host.dispatch().await.unwrap();
    assert_eq!(groups("open").await.questions, 1);
    assert_eq!(lotse_plugin_inbox::forget(&store).await.unwrap(), 2);
    assert_eq!(groups("open").await.questions, 0);
    assert_eq!(store.events_after(0, 100).await.unwrap().len(), 1);
    let _ = std::fs::remove_dir_all(dir);
}

//! The staff handoff over real HTTP on loopback: a real server (axum on a TCP port), the real
//! curated knowledge, a real SQLite file, and a plain HTTP client — the citizen's API and events
//! stream on one side, the staff console's API on the other.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use jiff::{Timestamp, ToSpan};
use lotse_handoff::{Desk, Exception, HandoffConfig, Role, Schedule, Store};
use serde_json::{Value, json};

fn knowledge() -> Arc<lotse_knowledge::KnowledgeBase> {
    static KB: std::sync::OnceLock<Arc<lotse_knowledge::KnowledgeBase>> = std::sync::OnceLock::new();
    KB.get_or_init(|| {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../knowledge");
        Arc::new(lotse_knowledge::load_dir(&dir).expect("curated knowledge loads"))
    })
    .clone()
}

fn berlin() -> lotse_core::calendar::Zone {
    lotse_core::calendar::Zone {
        tz: jiff::tz::TimeZone::get("Europe/Berlin").unwrap(),
        state: lotse_core::calendar::State::Thueringen,
    }
}

/// Reachable around the clock from yesterday to tomorrow (exceptions beat holidays).
fn open_schedule() -> Schedule {
    let mut s = Schedule::default();
    let today = Timestamp::now().to_zoned(berlin().tz).date();
    for d in [-1i64, 0, 1] {
        s.exceptions.push(Exception {
            date: today.checked_add(d.days()).unwrap().to_string(),
            hours: Some("00:00-24:00".into()),
            team: None,
            note: None,
        });
    }
    s
}

/// Nobody reachable until the day after tomorrow, 09:00–12:00.
fn closed_schedule() -> Schedule {
    let mut s = Schedule::default();
    for t in &mut s.teams {
        t.hours = Default::default();
    }
    let today = Timestamp::now().to_zoned(berlin().tz).date();
    s.exceptions.push(Exception {
        date: today.checked_add(2.days()).unwrap().to_string(),
        hours: Some("09:00-12:00".into()),
        team: None,
        note: None,
    });
    s
}

struct Server {
    addr: SocketAddr,
    desk: Desk,
    state: Arc<lotse_web::AppState>,
    rt: tokio::runtime::Runtime,
    _stop: tokio::sync::oneshot::Sender<()>,
    /// The SQLite store's folder, removed with the server (last: after the runtime).
    _dir: Option<tempfile::TempDir>,
}

fn server(config: HandoffConfig) -> Server {
    server_plugged(config, &[])
}

/// [`server`] with the named plug-ins switched on.
fn server_plugged(config: HandoffConfig, plugins: &[&str]) -> Server {
    server_full(config, lotse_web::Limits { requests_per_minute: 1_000_000, ..Default::default() }, plugins)
}

fn server_with(config: HandoffConfig, limits: lotse_web::Limits) -> Server {
    server_full(config, limits, &[])
}

/// A server with the named plug-ins switched on.
fn server_full(mut config: HandoffConfig, limits: lotse_web::Limits, plugins: &[&str]) -> Server {
    let dir = (!config.database.starts_with("postgres"))
        .then(|| tempfile::Builder::new().prefix("lotse-web-handoff-").tempdir().unwrap());
    if let Some(dir) = &dir {
        config.database = format!("sqlite:{}/lotse.db", dir.path().display());
    }
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let kb = knowledge();
    let (state, desk, listener) = rt.block_on(async {
        let store = Store::open(&config.database).await.unwrap();
        let desk = Desk::new(store, config, kb.clone(), berlin()).await.unwrap();
        let index = Arc::new(lotse_search::SearchIndex::build(&kb).unwrap());
        let (kb_for_plugins, index_for_plugins) = (kb.clone(), index.clone());
        let engine = lotse_dialog::Engine::new(kb, index, lotse_dialog::EngineConfig::default());
        let state = lotse_web::AppState::with_desk(Arc::new(engine), limits, false, Some(desk.clone()));
        let mut on: Vec<Arc<dyn lotse_plugin::Plugin>> = Vec::new();
        if plugins.contains(&"feedback") {
            let services = kb_for_plugins.services.iter().map(|s| s.id.to_string()).collect();
            on.push(lotse_plugin_feedback::Feedback::new(
                desk.store.clone(),
                90,
                services,
                desk.zone().tz.clone(),
                Some("besuch-2027".into()),
            ));
        }
        if plugins.contains(&"figures") {
            on.push(lotse_plugin_figures::Figures::new(desk.store.clone(), desk.zone().tz.clone()));
        }
        if plugins.contains(&"inbox") {
            let services = kb_for_plugins.services.iter().map(|s| (s.id.to_string(), s.name.clone())).collect();
            on.push(lotse_plugin_inbox::Inbox::new(desk.store.clone(), index_for_plugins.clone(), services, 30));
        }
        if !on.is_empty() {
            let host = lotse_plugin::Host::start(desk.store.clone(), on, 0).await.unwrap();
            state.use_plugins(Arc::new(host), desk.store.clone());
            state.count_campaigns(vec!["plakat-bus".into()]);
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        (state, desk, listener)
    });
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    rt.spawn(lotse_web::serve_on(state.clone(), listener, async {
        let _ = stopped.await;
    }));
    Server { addr, desk, state, rt, _stop: stop, _dir: dir }
}

fn uuid_like() -> String {
    format!("{}-{}", std::process::id(), Timestamp::now().as_nanosecond())
}

fn config(schedule: Schedule) -> HandoffConfig {
    HandoffConfig { schedule, secure_cookies: false, sweep_millis: 100, ..Default::default() }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .into()
}

/// A staff member's session: cookie and CSRF token.
#[derive(Clone)]
struct Staff {
    cookie: String,
    csrf: String,
}

impl Server {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn post(&self, path: &str, body: Value, staff: Option<&Staff>) -> (u16, Value) {
        let mut req = agent().post(self.url(path)).header("content-type", "application/json");
        if let Some(s) = staff {
            req = req.header("cookie", &s.cookie).header("x-csrf-token", &s.csrf);
        }
        let mut res = req.send(body.to_string()).unwrap();
        let status = res.status().as_u16();
        let text = res.body_mut().read_to_string().unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    fn get(&self, path: &str, staff: Option<&Staff>) -> (u16, Value) {
        let mut req = agent().get(self.url(path));
        if let Some(s) = staff {
            req = req.header("cookie", &s.cookie);
        }
        let mut res = req.call().unwrap();
        let status = res.status().as_u16();
        let text = res.body_mut().read_to_string().unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    fn add_staff(&self, name: &str, role: Role) {
        let hash = lotse_handoff::auth::hash_password("ein gutes Passwort").unwrap();
        self.rt.block_on(self.desk.store.put_staff(name, &format!("{name} (Team)"), &hash, role)).unwrap();
    }

    fn login_raw(&self, name: &str, password: &str, origin: Option<&str>) -> ureq::http::Response<ureq::Body> {
        let mut req =
            agent().post(self.url("/staff/login")).header("content-type", "application/x-www-form-urlencoded");
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        req.send(format!("name={name}&password={}", password.replace(' ', "+"))).unwrap()
    }

    fn login(&self, name: &str) -> Staff {
        let res = self.login_raw(name, "ein gutes Passwort", Some(&format!("http://{}", self.addr)));
        assert_eq!(res.status().as_u16(), 303, "login of {name}");
        let set = res.headers().get("set-cookie").unwrap().to_str().unwrap().to_string();
        for attr in ["HttpOnly", "SameSite=Strict", "Path=/staff"] {
            assert!(set.contains(attr), "{set}");
        }
        let cookie = set.split(';').next().unwrap().to_string();
        let mut staff = Staff { cookie, csrf: String::new() };
        let (status, me) = self.get("/staff/api/me", Some(&staff));
        assert_eq!(status, 200);
        staff.csrf = me["csrf"].as_str().unwrap().to_string();
        staff
    }

    fn conversation(&self) -> String {
        let (status, body) = self.post("/api/v1/conversations", json!({"lang": "de"}), None);
        assert_eq!(status, 201);
        body["id"].as_str().unwrap().to_string()
    }

    fn say(&self, id: &str, text: &str) -> Value {
        let (status, body) = self.post(&format!("/api/v1/conversations/{id}/messages"), json!({"text": text}), None);
        assert_eq!(status, 200, "{body}");
        body
    }

    /// The id of the waiting handoff whose transcript holds `mark` (a database shared with
    /// other tests holds theirs too).
    fn waiting_handoff_with(&self, staff: &Staff, mark: &str) -> String {
        let (_, q) = self.get("/staff/api/queue", Some(staff));
        q["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["state"] == "waiting")
            .map(|i| i["id"].as_str().unwrap().to_string())
            .find(|h| self.get(&format!("/staff/api/handoffs/{h}"), Some(staff)).1.to_string().contains(mark))
            .expect("the test's handoff is queued")
    }

    /// Server-sent events, as (event, data) pairs, read on a thread.
    fn events(&self, path: &str, staff: Option<&Staff>) -> Receiver<(String, Value)> {
        let numbered = self.numbered_events(path, staff, None);
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            while let Ok((_, event, data)) = numbered.recv() {
                if tx.send((event, data)).is_err() {
                    return;
                }
            }
        });
        rx
    }

    /// Server-sent events with their numbers (`id:`), as (number, event, data), read on a
    /// thread; `last_event_id` is sent as the browser would after a break.
    fn numbered_events(
        &self,
        path: &str,
        staff: Option<&Staff>,
        last_event_id: Option<&str>,
    ) -> Receiver<(Option<u64>, String, Value)> {
        let mut req = ureq::Agent::config_builder().http_status_as_error(false).build().new_agent().get(self.url(path));
        if let Some(s) = staff {
            req = req.header("cookie", &s.cookie);
        }
        if let Some(last) = last_event_id {
            req = req.header("last-event-id", last);
        }
        let res = req.call().unwrap();
        assert_eq!(res.status().as_u16(), 200, "{path}");
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            let reader = BufReader::new(res.into_body().into_reader());
            let (mut event, mut id) = (String::new(), None);
            for line in reader.lines() {
                let Ok(line) = line else { return };
                if line.is_empty() {
                    // The end of an event: a number belongs to its event alone.
                    id = None;
                } else if let Some(e) = line.strip_prefix("event: ") {
                    event = e.to_string();
                } else if let Some(n) = line.strip_prefix("id: ") {
                    id = n.parse().ok();
                } else if let Some(d) = line.strip_prefix("data: ") {
                    let v = serde_json::from_str(d).unwrap_or(Value::Null);
                    if tx.send((id, event.clone(), v)).is_err() {
                        return;
                    }
                }
            }
        });
        rx
    }
}

/// The next event matching `pred` within a few seconds, skipping others.
fn wait_for(rx: &Receiver<(String, Value)>, what: &str, pred: impl Fn(&str, &Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((e, v)) if pred(&e, &v) => return v,
            Ok(_) => continue,
            Err(_) => panic!("no {what} event arrived"),
        }
    }
}

/// Everything that arrives within `d`.
fn drain(rx: &Receiver<(String, Value)>, d: Duration) -> Vec<(String, Value)> {
    let deadline = Instant::now() + d;
    let mut out = Vec::new();
    while let Ok(x) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        out.push(x);
    }
    out
}

fn queue_item(s: &Server, staff: &Staff, pred: impl Fn(&Value) -> bool) -> Value {
    let (status, q) = s.get("/staff/api/queue", Some(staff));
    assert_eq!(status, 200);
    q["items"].as_array().unwrap().iter().find(|i| pred(i)).cloned().expect("the conversation is in the queue")
}

#[test]
fn within_hours_staff_take_over_the_bot_is_silent_and_hand_back() {
    let s = server(config(open_schedule()));
    s.add_staff("anna", Role::Staff);
    let id = s.conversation();
    let answer = s.say(&id, "Was kostet ein Personalausweis?");
    assert_eq!(answer["reply"]["kind"], "answer");
    let citizen = s.events(&format!("/api/v1/conversations/{id}/events"), None);
    let r = s.say(&id, "Ich möchte mit einem Menschen sprechen");
    let h = &r["reply"]["handoff"];
    assert_eq!((h["state"].as_str(), h["position"].as_u64()), (Some("queued"), Some(1)), "{r}");
    assert_eq!(h["team"], "Bürgerservice");
    assert!(r["reply"]["text"].as_str().unwrap().contains("nicht sicher sagen"), "no invented estimate: {r}");

    let anna = s.login("anna");
    let staff_events = s.events("/staff/api/events", Some(&anna));
    wait_for(&staff_events, "hello", |e, _| e == "hello");
    let item = queue_item(&s, &anna, |i| i["state"] == "waiting");
    assert_eq!(item["service"], "Personalausweis beantragen");
    assert_eq!(item["lang"], "de");
    let hid = item["id"].as_str().unwrap().to_string();

    // The transcript carries what the citizen asked and what the bot answered, with its sources.
    let (_, d) = s.get(&format!("/staff/api/handoffs/{hid}"), Some(&anna));
    // Staff never see the citizen's key to the conversation, only the handoff's id.
    let (_, q) = s.get("/staff/api/queue", Some(&anna));
    assert!(!d.to_string().contains(&id) && !q.to_string().contains(&id), "the conversation id is shown to staff");
    let lines = d["transcript"].as_array().unwrap();
    assert!(lines.iter().any(|m| m["author"] == "citizen" && m["text"] == "Was kostet ein Personalausweis?"));
    let bot = lines.iter().find(|m| m["author"] == "bot" && m["text"].as_str().unwrap().contains("46,00 €")).unwrap();
    assert_eq!(bot["sources"][0]["id"], "personalausweis");

    let (status, _) = s.post(&format!("/staff/api/handoffs/{hid}/claim"), json!({}), Some(&anna));
    assert_eq!(status, 200);
    let joined = wait_for(&citizen, "handoff connected", |e, v| e == "handoff" && v["handoff"]["state"] == "connected");
    assert_eq!(joined["handoff"]["staff"], "anna (Team)");
    assert!(joined["text"].as_str().unwrap().contains("anna (Team) ist jetzt für Sie da"));

    let (status, _) = s.post(&format!("/staff/api/handoffs/{hid}/typing"), json!({"typing": true}), Some(&anna));
    assert_eq!(status, 204);
    wait_for(&citizen, "typing", |e, v| e == "typing" && v["typing"] == true);
    let (status, _) =
        s.post(&format!("/staff/api/handoffs/{hid}/reply"), json!({"text": "Guten Tag, hier ist Anna."}), Some(&anna));
    assert_eq!(status, 200);
    let m = wait_for(&citizen, "staff message", |e, _| e == "staff");
    assert_eq!((m["name"].as_str(), m["text"].as_str()), (Some("anna (Team)"), Some("Guten Tag, hier ist Anna.")));
    // A long reply arrives whole (up to the console's 4,000 characters); a longer one is
    // refused, not cut short.
    let long = "Wort ".repeat(600).trim_end().to_string();
    assert_eq!(s.post(&format!("/staff/api/handoffs/{hid}/reply"), json!({ "text": long }), Some(&anna)).0, 200);
    let m = wait_for(&citizen, "long staff message", |e, _| e == "staff");
    assert_eq!(m["text"].as_str().map(|t| t.chars().count()), Some(long.chars().count()));
    let (status, body) =
        s.post(&format!("/staff/api/handoffs/{hid}/reply"), json!({ "text": "x".repeat(4001) }), Some(&anna));
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("bad_text")), "{body}");

    // The citizen writes: it goes to Anna, and the bot says nothing — not even to a question
    // it could answer.
    let r = s.say(&id, "Was kostet ein Reisepass?");
    assert_eq!(r, json!({"reply": null, "relayed": true}));
    let relayed = wait_for(&staff_events, "relayed message", |e, v| {
        e == "staff" && v["type"] == "message" && v["author"] == "citizen"
    });
    assert_eq!(relayed["text"], "Was kostet ein Reisepass?");
    let after = drain(&citizen, Duration::from_millis(600));
    assert!(after.iter().all(|(e, _)| e != "reply" && e != "facts" && e != "delta"), "the bot spoke: {after:?}");

    // Suggestions from the knowledge for the citizen's questions.
    let (_, sg) = s.get(&format!("/staff/api/handoffs/{hid}/suggestions"), Some(&anna));
    let first = &sg["suggestions"][0];
    assert_eq!(first["question"], "Was kostet ein Reisepass?");
    assert!(!first["sources"].as_array().unwrap().is_empty());

    // Hand back: the citizen is told, and the bot answers again.
    let (status, _) = s.post(&format!("/staff/api/handoffs/{hid}/handback"), json!({}), Some(&anna));
    assert_eq!(status, 200);
    wait_for(&citizen, "handoff closed", |e, v| e == "handoff" && v["handoff"]["state"] == "closed");
    let r = s.say(&id, "Was kostet ein Personalausweis?");
    assert_eq!(r["reply"]["kind"], "answer");
    let (_, d) = s.get(&format!("/staff/api/handoffs/{hid}"), Some(&anna));
    assert_eq!(
        (d["handoff"]["state"].as_str(), d["handoff"]["outcome"].as_str()),
        (Some("closed"), Some("handed_back"))
    );
    let authors: Vec<&str> =
        d["transcript"].as_array().unwrap().iter().map(|m| m["author"].as_str().unwrap()).collect();
    assert!(authors.contains(&"staff") && authors.contains(&"system"));
}

#[test]
fn the_queue_moves_live_and_one_claim_wins() {
    let s = server(config(open_schedule()));
    s.add_staff("anna", Role::Staff);
    s.add_staff("bert", Role::Staff);
    let (a, b) = (s.conversation(), s.conversation());
    s.say(&a, "Ich möchte mit einem Menschen sprechen");
    let r = s.say(&b, "Bitte verbinden Sie mich mit einem Mitarbeiter");
    assert_eq!(r["reply"]["handoff"]["position"], 2, "{r}");
    // A client that connects learns its place at once.
    let b_events = s.events(&format!("/api/v1/conversations/{b}/events"), None);
    let first = wait_for(&b_events, "current state", |e, _| e == "handoff");
    assert_eq!(first["handoff"]["position"], 2);

    let (anna, bert) = (s.login("anna"), s.login("bert"));
    let ha = queue_item(&s, &anna, |i| i["state"] == "waiting")["id"].as_str().unwrap().to_string();
    let (s1, s2) = std::thread::scope(|sc| {
        let x = sc.spawn(|| s.post(&format!("/staff/api/handoffs/{ha}/claim"), json!({}), Some(&anna)).0);
        let y = sc.spawn(|| s.post(&format!("/staff/api/handoffs/{ha}/claim"), json!({}), Some(&bert)).0);
        (x.join().unwrap(), y.join().unwrap())
    });
    let mut got = [s1, s2];
    got.sort();
    assert_eq!(got, [200, 409], "exactly one claim wins");
    let moved = wait_for(&b_events, "new position", |e, v| e == "handoff" && v["handoff"]["position"] == 1);
    assert!(moved["text"].as_str().unwrap().contains("Nächste"));
    // Only the one who claimed may reply.
    let winner = if s1 == 200 { &anna } else { &bert };
    let loser = if s1 == 200 { &bert } else { &anna };
    let (status, body) = s.post(&format!("/staff/api/handoffs/{ha}/reply"), json!({"text": "Hallo"}), Some(loser));
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("not_yours")));
    // Staff choose among their outcomes; the system's ("handed_back", "deleted") are not theirs.
    for bad in ["handed_back", "deleted", "erledigt", ""] {
        let (status, body) = s.post(&format!("/staff/api/handoffs/{ha}/close"), json!({"outcome": bad}), Some(winner));
        assert_eq!((status, body["error"]["code"].as_str()), (400, Some("bad_outcome")), "{bad}: {body}");
    }
    let (status, _) = s.post(
        &format!("/staff/api/handoffs/{ha}/close"),
        json!({"outcome": "resolved", "note": "Termin vereinbart"}),
        Some(winner),
    );
    assert_eq!(status, 200);
    let (status, body) =
        s.post(&format!("/staff/api/handoffs/{ha}/close"), json!({"outcome": "resolved"}), Some(winner));
    assert_eq!(status, 409, "{body}");
}

#[test]
fn outside_hours_a_callback_request_is_stored_with_consent() {
    let s = server(config(closed_schedule()));
    s.add_staff("anna", Role::Staff);
    let id = s.conversation();
    s.say(&id, "Wie beantrage ich einen Personalausweis?");
    let r = s.say(&id, "Ich möchte mit einem Menschen sprechen");
    let h = &r["reply"]["handoff"];
    assert_eq!(h["state"], "callback_offered", "{r}");
    let slot = h["callback"]["slot"].as_str().unwrap().to_string();
    assert!(slot.contains("09:00–12:00 Uhr"), "{slot}");
    assert!(h["callback"]["consent"].as_str().unwrap().contains("30 Tage"), "{h}");
    assert!(r["reply"]["text"].as_str().unwrap().contains(&slot));

    let path = format!("/api/v1/conversations/{id}/callback");
    for (body, code) in [
        (json!({"contact_kind": "phone", "contact": "03641 49-0", "consent": false}), "consent_required"),
        (json!({"contact_kind": "phone", "contact": "ruf mich an", "consent": true}), "invalid_contact"),
        (json!({"contact_kind": "email", "contact": "a@b", "consent": true}), "invalid_contact"),
        (json!({"contact_kind": "email", "contact": "<script>@x.de", "consent": true}), "invalid_contact"),
    ] {
        let (status, v) = s.post(&path, body, None);
        assert_eq!((status, v["error"]["code"].as_str()), (400, Some(code)));
    }
    let (status, v) = s.post(
        &format!("/api/v1/conversations/{}/callback", "0".repeat(32)),
        json!({"contact_kind": "phone", "contact": "03641 123456", "consent": true}),
        None,
    );
    assert_eq!(status, 404, "{v}");
    let (status, v) = s.post(
        &path,
        json!({"contact_kind": "phone", "contact": "03641 123456", "name": "M. Muster", "consent": true}),
        None,
    );
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["handoff"]["state"], "callback_scheduled");
    assert_eq!(v["handoff"]["callback"]["slot"], slot.as_str());
    assert!(v["text"].as_str().unwrap().contains("Wir melden uns"));
    // Asking again does not store a second request.
    let (status, _) =
        s.post(&path, json!({"contact_kind": "email", "contact": "m@example.org", "consent": true}), None);
    assert_eq!(status, 200);

    let anna = s.login("anna");
    let (_, list) = s.get("/staff/api/callbacks", Some(&anna));
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    let cb = &items[0];
    assert_eq!(
        (cb["contact"].as_str(), cb["contact_kind"].as_str(), cb["state"].as_str()),
        (Some("03641 123456"), Some("phone"), Some("open"))
    );
    assert_eq!(cb["topic"], "Personalausweis beantragen");
    assert!(cb["consent"].as_str().unwrap().starts_with("Ich bin einverstanden"));
    let cid = cb["id"].as_str().unwrap();
    let (status, v) = s.post(&format!("/staff/api/callbacks/{cid}/schedule"), json!({}), Some(&anna));
    assert_eq!((status, v["callback"]["state"].as_str()), (200, Some("scheduled")));
    let (status, _) =
        s.post(&format!("/staff/api/callbacks/{cid}/done"), json!({"note": "zurückgerufen"}), Some(&anna));
    assert_eq!(status, 200);
    let (_, list) = s.get("/staff/api/callbacks", Some(&anna));
    assert!(list["items"].as_array().unwrap().is_empty());
}

#[test]
fn the_console_needs_a_session_a_csrf_token_and_the_right_role() {
    let s = server(config(open_schedule()));
    s.add_staff("anna", Role::Staff);
    s.add_staff("chef", Role::Admin);
    let x = "0123456789abcdef0123456789abcdef";
    let gets = [
        "/staff/api/me",
        "/staff/api/queue",
        "/staff/api/events",
        &format!("/staff/api/handoffs/{x}"),
        &format!("/staff/api/handoffs/{x}/suggestions"),
        "/staff/api/callbacks",
        "/staff/api/admin/settings",
        "/staff/api/admin/figures",
    ];
    let posts = [
        "/staff/api/logout",
        &format!("/staff/api/handoffs/{x}/claim"),
        &format!("/staff/api/handoffs/{x}/reply"),
        &format!("/staff/api/handoffs/{x}/typing"),
        &format!("/staff/api/handoffs/{x}/release"),
        &format!("/staff/api/handoffs/{x}/handback"),
        &format!("/staff/api/handoffs/{x}/close"),
        &format!("/staff/api/callbacks/{x}/schedule"),
        &format!("/staff/api/callbacks/{x}/done"),
        "/staff/api/admin/schedule",
        "/staff/api/admin/retention",
    ];
    for p in gets {
        assert_eq!(s.get(p, None).0, 401, "GET {p}");
    }
    for p in posts {
        assert_eq!(s.post(p, json!({}), None).0, 401, "POST {p}");
    }
    let forged = Staff { cookie: format!("lotse_staff={}", "a".repeat(64)), csrf: "x".into() };
    assert_eq!(s.get("/staff/api/me", Some(&forged)).0, 401);
    let res = agent().get(s.url("/staff")).call().unwrap();
    assert_eq!((res.status().as_u16(), res.headers()["location"].to_str().unwrap()), (303, "/staff/login"));

    // With a session but without (or with a wrong) CSRF token, nothing changes.
    let anna = s.login("anna");
    let no_csrf = Staff { csrf: String::new(), ..anna.clone() };
    let wrong_csrf = Staff { csrf: "f".repeat(64), ..anna.clone() };
    for p in posts {
        assert_eq!(s.post(p, json!({}), Some(&no_csrf)).0, 403, "POST {p} without CSRF");
        assert_eq!(s.post(p, json!({}), Some(&wrong_csrf)).0, 403, "POST {p} with a wrong CSRF token");
    }
    // Staff are not admins.
    assert_eq!(s.get("/staff/api/admin/figures", Some(&anna)).0, 403);
    assert_eq!(s.post("/staff/api/admin/retention", json!({"days": 5}), Some(&anna)).0, 403);
    let chef = s.login("chef");
    assert_eq!(s.get("/staff/api/admin/figures", Some(&chef)).0, 200);
    let res = agent().get(s.url("/staff")).header("cookie", &chef.cookie).call().unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert!(res.headers()["content-security-policy"].to_str().unwrap().contains("frame-ancestors 'none'"));

    // A login from another site is refused; wrong passwords are limited per name.
    assert_eq!(s.login_raw("anna", "ein gutes Passwort", Some("http://evil.example")).status().as_u16(), 403);
    for _ in 0..5 {
        assert_eq!(s.login_raw("chef", "falsch falsch", None).status().as_u16(), 401);
    }
    assert_eq!(s.login_raw("chef", "ein gutes Passwort", None).status().as_u16(), 429, "locked after five failures");
    assert_eq!(s.login_raw("nobody", "ein gutes Passwort", None).status().as_u16(), 401);

    // Logging out ends the session for good.
    assert_eq!(s.post("/staff/api/logout", json!({}), Some(&anna)).0, 204);
    assert_eq!(s.get("/staff/api/me", Some(&anna)).0, 401);
}

#[test]
fn sessions_expire_after_inactivity() {
    let s = server(HandoffConfig { session_idle_minutes: 0, ..config(open_schedule()) });
    s.add_staff("anna", Role::Staff);
    let res = s.login_raw("anna", "ein gutes Passwort", None);
    assert_eq!(res.status().as_u16(), 303);
    let cookie = res.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
    std::thread::sleep(Duration::from_millis(20));
    let (status, v) = s.get("/staff/api/me", Some(&Staff { cookie, csrf: String::new() }));
    assert_eq!((status, v["error"]["code"].as_str()), (401, Some("session_expired")));
}

#[test]
fn a_citizen_reaches_only_their_own_conversation() {
    let s = server(config(open_schedule()));
    s.add_staff("anna", Role::Staff);
    let (a, b) = (s.conversation(), s.conversation());
    for id in [&a, &b] {
        assert!(id.len() == 32 && id.bytes().all(|c| c.is_ascii_hexdigit()), "{id}");
    }
    assert_ne!(a, b);
    // A neighbour of A's id: its last digit changed, so it differs from A whatever A ends in.
    let last = if a.ends_with('0') { '1' } else { '0' };
    let guessed = format!("{}{last}", &a[..31]);
    assert_ne!(guessed, a);
    assert_eq!(s.get(&format!("/api/v1/conversations/{guessed}/events"), None).0, 404);
    assert_eq!(s.post(&format!("/api/v1/conversations/{guessed}/typing"), json!({"typing": true}), None).0, 404);
    let del = agent().delete(s.url(&format!("/api/v1/conversations/{guessed}"))).call().unwrap();
    assert_eq!(del.status().as_u16(), 404);

    // What staff write to B never reaches A's stream.
    let a_events = s.events(&format!("/api/v1/conversations/{a}/events"), None);
    s.say(&b, "Ich möchte mit einem Menschen sprechen");
    let anna = s.login("anna");
    let hb = queue_item(&s, &anna, |_| true)["id"].as_str().unwrap().to_string();
    s.post(&format!("/staff/api/handoffs/{hb}/claim"), json!({}), Some(&anna));
    s.post(&format!("/staff/api/handoffs/{hb}/reply"), json!({"text": "Nur für B"}), Some(&anna));
    let seen = drain(&a_events, Duration::from_millis(500));
    assert!(seen.iter().all(|(_, v)| !v.to_string().contains("Nur für B")), "{seen:?}");

    // B ends and deletes the conversation: gone from the queue and the store.
    let del = agent().delete(s.url(&format!("/api/v1/conversations/{b}"))).call().unwrap();
    assert_eq!(del.status().as_u16(), 204);
    let (_, q) = s.get("/staff/api/queue", Some(&anna));
    assert!(q["items"].as_array().unwrap().is_empty(), "{q}");
    let t = s.rt.block_on(s.desk.store.transcript(&b.as_str().into())).unwrap();
    assert!(t.is_empty(), "the transcript is deleted");
    assert_eq!(s.post(&format!("/api/v1/conversations/{b}/messages"), json!({"text": "Hallo"}), None).0, 404);
}

#[test]
fn a_citizen_who_leaves_is_abandoned_and_absent_staff_lose_the_conversation() {
    let s = server_plugged(
        HandoffConfig { abandon_after_seconds: 1, staff_timeout_seconds: 1, ..config(open_schedule()) },
        &["figures"],
    );
    s.add_staff("anna", Role::Staff);
    let (gone, stays) = (s.conversation(), s.conversation());
    s.say(&gone, "Ich möchte mit einem Menschen sprechen");
    s.say(&stays, "Ich möchte mit einem Menschen sprechen");
    // The second citizen keeps the events stream open; the first has none.
    let stays_events = s.events(&format!("/api/v1/conversations/{stays}/events"), None);
    let anna = s.login("anna");
    let hid = queue_item(&s, &anna, |_| true)["id"].as_str().unwrap().to_string();
    let first = s.rt.block_on(s.desk.store.handoff(&hid.as_str().into())).unwrap();
    assert_eq!(first.conversation_id.as_str(), gone);
    std::thread::sleep(Duration::from_millis(1800));
    let h = s.rt.block_on(s.desk.store.handoff(&hid.as_str().into())).unwrap();
    assert_eq!(h.state, lotse_handoff::QueueState::Abandoned);
    // The figures hear of it (the handoff's state "abandoned" in the plug-ins' log).
    let deadline = Instant::now() + Duration::from_secs(5);
    while !s.rt.block_on(s.desk.store.events_after(0, 1000)).unwrap().iter().any(|e| {
        e.conversation_id.as_ref().is_some_and(|c| c.as_str() == gone)
            && matches!(&e.event, lotse_handoff::log::Event::Handoff { state, .. } if state == "abandoned")
    }) {
        assert!(Instant::now() < deadline, "no abandoned event");
        std::thread::sleep(Duration::from_millis(50));
    }
    let open =
        s.rt.block_on(s.desk.store.open_handoff(&stays.as_str().into()))
            .unwrap()
            .expect("a present citizen stays queued");
    // Anna claims without a console stream open, and is gone: back to the queue.
    assert_eq!(s.post(&format!("/staff/api/handoffs/{}/claim", open.id), json!({}), Some(&anna)).0, 200);
    wait_for(&stays_events, "connected", |e, v| e == "handoff" && v["handoff"]["state"] == "connected");
    // The figures keep the wait (queued to claimed, about two seconds here) as a number.
    s.add_staff("chef", Role::Admin);
    let chef = s.login("chef");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, f) = s.get("/staff/p/figures/admin/daily", Some(&chef));
        if let Some(wait) = f["derived"]["wait_median_s"].as_i64() {
            assert!((1..=10).contains(&wait), "{f}");
            assert_eq!(f["totals"]["handoff.claimed"], 1, "{f}");
            break;
        }
        assert!(Instant::now() < deadline, "{f}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let back = wait_for(&stays_events, "back in the queue", |e, v| e == "handoff" && v["handoff"]["state"] == "queued");
    assert_eq!(back["handoff"]["position"], 1);
}

#[test]
fn admins_edit_hours_and_retention_and_read_figures() {
    let s = server(config(open_schedule()));
    s.add_staff("chef", Role::Admin);
    let chef = s.login("chef");
    let (status, v) = s.get("/staff/api/admin/settings", Some(&chef));
    assert_eq!(status, 200);
    assert_eq!(v["retention_days"], 30);
    assert!(v["teams"].as_array().unwrap().iter().all(|t| t["open"] == true));
    let (status, v) =
        s.post("/staff/api/admin/schedule", json!({"toml": "general = \"nobody\"\nteams = []"}), Some(&chef));
    assert_eq!((status, v["error"]["code"].as_str()), (400, Some("bad_schedule")));
    // Closing everything: a request for a person now gets the callback offer.
    let closed = closed_schedule().to_toml();
    assert_eq!(s.post("/staff/api/admin/schedule", json!({"toml": closed}), Some(&chef)).0, 200);
    let id = s.conversation();
    let r = s.say(&id, "Ich möchte mit einem Menschen sprechen");
    assert_eq!(r["reply"]["handoff"]["state"], "callback_offered");
    assert_eq!(s.post("/staff/api/admin/retention", json!({"days": 0}), Some(&chef)).0, 400);
    assert_eq!(s.post("/staff/api/admin/retention", json!({"days": 14}), Some(&chef)).0, 200);
    let (_, v) = s.get("/staff/api/admin/settings", Some(&chef));
    assert_eq!(v["retention_days"], 14);
    // The consent text names the period in force.
    let id = s.conversation();
    let r = s.say(&id, "Ich möchte mit einem Menschen sprechen");
    assert!(r["reply"]["handoff"]["callback"]["consent"].as_str().unwrap().contains("14 Tage"), "{r}");
    let (status, f) = s.get("/staff/api/admin/figures?days=7", Some(&chef));
    assert_eq!(status, 200);
    assert!(f["queued"].is_u64() && f["callbacks_open"].is_u64(), "{f}");
}

/// 200 citizens waiting, 20 staff consoles open and polling: the console stays responsive,
/// and 20 staff racing for the same conversations never claim one twice.
#[test]
fn load_200_waiting_and_20_staff() {
    let s = server(config(open_schedule()));
    let ids: Vec<String> = (0..200).map(|_| s.conversation()).collect();
    std::thread::scope(|sc| {
        let s = &s;
        for chunk in ids.chunks(50) {
            sc.spawn(move || {
                for id in chunk {
                    s.say(id, "Ich möchte mit einem Menschen sprechen");
                }
            });
        }
    });
    let staff: Vec<Staff> = (0..20)
        .map(|i| {
            let name = format!("staff{i}");
            s.add_staff(&name, Role::Staff);
            s.login(&name)
        })
        .collect();
    let streams: Vec<_> = staff.iter().map(|st| s.events("/staff/api/events", Some(st))).collect();
    let started = Instant::now();
    let mut latencies: Vec<Duration> = std::thread::scope(|sc| {
        let handles: Vec<_> = staff
            .iter()
            .map(|st| {
                sc.spawn(|| {
                    let mut out = Vec::new();
                    for _ in 0..10 {
                        let t = Instant::now();
                        let (status, q) = s.get("/staff/api/queue", Some(st));
                        out.push(t.elapsed());
                        assert_eq!(status, 200);
                        assert_eq!(q["items"].as_array().unwrap().len(), 200);
                    }
                    out
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    latencies.sort();
    let p50 = latencies[latencies.len() / 2];
    let p95 = latencies[latencies.len() * 95 / 100];
    eprintln!(
        "queue of 200 read by 20 staff, 200 requests in {:.2} s: p50 {:.1} ms, p95 {:.1} ms",
        started.elapsed().as_secs_f64(),
        p50.as_secs_f64() * 1000.0,
        p95.as_secs_f64() * 1000.0
    );
    assert!(p95 < Duration::from_secs(1), "the console got slow: p95 {p95:?}");

    // Everyone tries to claim the same ten conversations.
    let (_, q) = s.get("/staff/api/queue", Some(&staff[0]));
    let targets: Vec<String> =
        q["items"].as_array().unwrap()[..10].iter().map(|i| i["id"].as_str().unwrap().to_string()).collect();
    let wins: Vec<usize> = std::thread::scope(|sc| {
        let handles: Vec<_> = staff
            .iter()
            .map(|st| {
                let (targets, s) = (&targets, &s);
                sc.spawn(move || {
                    targets
                        .iter()
                        .filter(|h| s.post(&format!("/staff/api/handoffs/{h}/claim"), json!({}), Some(st)).0 == 200)
                        .count()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(wins.iter().sum::<usize>(), 10, "each conversation is claimed exactly once: {wins:?}");
    // Every console heard of the changes.
    for rx in &streams {
        wait_for(rx, "queue change", |e, v| e == "staff" && v["type"] == "queue");
    }
}

/// A request of a SIP bridge on another node: its token (if any) and a JSON body (if any).
fn bridge(s: &Server, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
    let url = s.url(path);
    let mut res = match (method, body) {
        ("GET", _) => {
            let mut req = agent().get(url);
            if let Some(t) = token {
                req = req.header("authorization", &format!("Bearer {t}"));
            }
            req.call().unwrap()
        }
        (_, body) => {
            let mut req = agent().post(url).header("content-type", "application/json");
            if let Some(t) = token {
                req = req.header("authorization", &format!("Bearer {t}"));
            }
            req.send(body.unwrap_or(json!({})).to_string()).unwrap()
        }
    };
    let status = res.status().as_u16();
    let text = res.body_mut().read_to_string().unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[test]
fn conversations_outside_staff_hours_are_counted_as_such() {
    let s = server_plugged(config(closed_schedule()), &["figures"]);
    s.add_staff("chef", Role::Admin);
    let chef = s.login("chef");
    s.conversation();
    s.conversation();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, f) = s.get("/staff/p/figures/admin/daily", Some(&chef));
        if f["totals"]["conversations"] == 2 {
            assert_eq!(f["totals"]["conversations.outside_hours"], 2, "{f}");
            break;
        }
        assert!(Instant::now() < deadline, "{f}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn administrators_change_a_plugins_settings_in_the_console_and_they_outlast_a_restart() {
    let s = server_plugged(config(open_schedule()), &["feedback", "inbox"]);
    s.add_staff("anna", Role::Staff);
    s.add_staff("chef", Role::Admin);
    let (anna, chef) = (s.login("anna"), s.login("chef"));
    assert_eq!(s.get("/staff/api/admin/plugins", Some(&anna)).0, 403);
    let (status, list) = s.get("/staff/api/admin/plugins", Some(&chef));
    assert_eq!(status, 200);
    let plugin = |list: &Value, name: &str| {
        list["plugins"].as_array().unwrap().iter().find(|p| p["name"] == name).cloned().unwrap_or(Value::Null)
    };
    let feedback = plugin(&list, "feedback");
    assert_eq!(feedback["settings"][0]["value"], 90, "{feedback}");
    assert_eq!(feedback["settings"][1]["value"], "besuch-2027");
    assert_eq!(plugin(&list, "inbox")["free_text"]["retention_days"], 30);
    let set = |name: &str, setting: &str, value: Value| {
        s.post(&format!("/staff/api/admin/plugins/{name}"), json!({"setting": setting, "value": value}), Some(&chef))
    };
    assert_eq!(set("inbox", "inbox_days", json!(0)).0, 400);
    assert_eq!(set("inbox", "inbox_days", json!("sieben")).0, 400);
    assert_eq!(set("inbox", "colour", json!(1)).0, 404);
    assert_eq!(set("figures", "inbox_days", json!(7)).0, 404, "not switched on");
    assert_eq!(set("feedback", "chat_survey", json!("Nicht gültig!")).0, 400);
    assert_eq!(
        s.post("/staff/api/admin/plugins/inbox", json!({"setting": "inbox_days", "value": 7}), Some(&anna)).0,
        403
    );
    assert_eq!(set("inbox", "inbox_days", json!(7)).0, 200);
    assert_eq!(set("feedback", "chat_survey", json!("")).0, 200);
    // In effect at once.
    let (_, list) = s.get("/staff/api/admin/plugins", Some(&chef));
    assert_eq!(plugin(&list, "inbox")["free_text"]["retention_days"], 7);
    assert_eq!(plugin(&list, "feedback")["settings"][1]["value"], Value::Null);
    // The change is in the audit trail.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !s.get("/staff/api/admin/audit", Some(&chef)).1["audit"]
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l["action"] == "admin.plugins" && l["target"] == "inbox")
    {
        assert!(Instant::now() < deadline, "no audit line");
        std::thread::sleep(Duration::from_millis(50));
    }
    // A restart reads the stored values over the configuration's.
    let kb = knowledge();
    let index = Arc::new(lotse_search::SearchIndex::build(&kb).unwrap());
    let services = kb.services.iter().map(|s| (s.id.to_string(), s.name.clone())).collect();
    let inbox = lotse_plugin_inbox::Inbox::new(s.desk.store.clone(), index, services, 30);
    let host = s.rt.block_on(lotse_plugin::Host::start(s.desk.store.clone(), vec![inbox], 0)).unwrap();
    assert_eq!(host.plugins()[0].settings()[0].value, 7);
    assert_eq!(host.plugins()[0].text_days(), Some(7));
}

#[test]
fn a_callers_key_on_the_last_answer_is_a_vote_the_plugins_keep() {
    let s = server_plugged(config(open_schedule()), &["feedback", "figures"]);
    s.add_staff("chef", Role::Admin);
    s.state.allow_bridges("the-bridge-token-of-thirty-two-chars").unwrap();
    let t = Some("the-bridge-token-of-thirty-two-chars");
    let fingerprint = lotse_session::bridge::fingerprint(&knowledge());
    let (status, started) =
        bridge(&s, "POST", "/bridge/v1/calls", t, Some(json!({"lang": "de", "knowledge": fingerprint})));
    assert_eq!((status, started["votes"].as_bool()), (201, Some(true)), "the plug-ins hear votes: {started}");
    let id = started["id"].as_str().unwrap().to_string();
    let vote = |helpful: bool| {
        bridge(&s, "POST", &format!("/bridge/v1/calls/{id}/vote"), t, Some(json!({"helpful": helpful})))
    };
    // Nothing answered yet: no vote.
    assert_eq!(vote(true), (200, json!({"turn": null})));
    let kb = knowledge();
    let index = Arc::new(lotse_search::SearchIndex::build(&kb).unwrap());
    let engine = lotse_dialog::Engine::new(kb, index, lotse_dialog::EngineConfig::default());
    let mut conv: lotse_dialog::Conversation = serde_json::from_value(started["conversation"].clone()).unwrap();
    for text in ["Was kostet ein Personalausweis?", "Danke, tschüss"] {
        let reply = engine.respond(&mut conv, lotse_dialog::TurnRequest::new(text));
        let commit = json!({"conversation": conv, "reply": reply, "knowledge": fingerprint});
        assert_eq!(bridge(&s, "POST", &format!("/bridge/v1/calls/{id}/commit"), t, Some(commit)).0, 200);
    }
    // The key goes to the answer (the first message), not to the goodbye.
    assert_eq!(vote(true), (200, json!({"turn": 1})));
    let chef = s.login("chef");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, summary) = s.get("/staff/p/feedback/summary", Some(&chef));
        let (_, figures) = s.get("/staff/p/figures/admin/daily", Some(&chef));
        if summary["helpful"] == 1 && figures["totals"]["feedback.thumbs_up"] == 1 {
            assert_eq!(summary["services"][0][0], "personalausweis", "{summary}");
            break;
        }
        assert!(Instant::now() < deadline, "{summary} {figures}");
        std::thread::sleep(Duration::from_millis(50));
    }
    // A web conversation is not a bridge's to vote on.
    let web = s.conversation();
    assert_eq!(bridge(&s, "POST", &format!("/bridge/v1/calls/{web}/vote"), t, Some(json!({"helpful": false}))).0, 404);
    // Without the feedback plug-in a call asks for no vote.
    let plain = server(config(open_schedule()));
    plain.state.allow_bridges("the-bridge-token-of-thirty-two-chars").unwrap();
    let (_, started) =
        bridge(&plain, "POST", "/bridge/v1/calls", t, Some(json!({"lang": "de", "knowledge": fingerprint})));
    assert_eq!(started["votes"], false);
}

#[test]
fn a_bridge_on_another_node_needs_its_token_and_writes_only_its_calls() {
    let s = server(config(open_schedule()));
    s.add_staff("anna", Role::Staff);
    // Not allowed by the configuration: there is no bridge API.
    assert_eq!(bridge(&s, "GET", "/bridge/v1/hello", Some("x"), None).0, 404);
    assert!(s.state.allow_bridges("short-token").is_err(), "a guessable token is refused");
    s.state.allow_bridges("the-bridge-token-of-thirty-two-chars").unwrap();
    assert_eq!(bridge(&s, "GET", "/bridge/v1/hello", None, None).0, 401);
    assert_eq!(bridge(&s, "GET", "/bridge/v1/hello", Some("the-bridge-token-of-thirty-two-char"), None).0, 401);
    let (status, hello) = bridge(&s, "GET", "/bridge/v1/hello", Some("the-bridge-token-of-thirty-two-chars"), None);
    assert_eq!(status, 200);
    let fingerprint = lotse_session::bridge::fingerprint(&knowledge());
    assert_eq!(hello["knowledge"], fingerprint.as_str());
    let t = Some("the-bridge-token-of-thirty-two-chars");

    // A bridge with other knowledge (its topics would point at other services) is refused.
    let (status, _) = bridge(&s, "POST", "/bridge/v1/calls", t, Some(json!({"lang": "de", "knowledge": "0123"})));
    assert_eq!(status, 409);
    let (status, started) =
        bridge(&s, "POST", "/bridge/v1/calls", t, Some(json!({"lang": "de", "knowledge": fingerprint})));
    assert_eq!(status, 201, "{started}");
    assert_eq!(started["conversation"]["channel"], "phone");
    let id = started["id"].as_str().unwrap().to_string();

    // The bridge's engine answers a caller who asks for a person, on its copy of the
    // conversation; the server's session takes it back and queues the caller.
    let kb = knowledge();
    let index = Arc::new(lotse_search::SearchIndex::build(&kb).unwrap());
    let engine = lotse_dialog::Engine::new(kb, index, lotse_dialog::EngineConfig::default());
    let mut conv: lotse_dialog::Conversation = serde_json::from_value(started["conversation"].clone()).unwrap();
    engine.respond(&mut conv, lotse_dialog::TurnRequest::new("Was kostet ein Personalausweis?"));
    let reply = engine.respond(&mut conv, lotse_dialog::TurnRequest::new("Ich möchte mit einem Menschen sprechen"));
    let commit = json!({"conversation": conv, "reply": reply, "knowledge": fingerprint});
    let (status, committed) = bridge(&s, "POST", &format!("/bridge/v1/calls/{id}/commit"), t, Some(commit.clone()));
    assert_eq!(status, 200, "{committed}");
    assert_eq!(committed["reply"]["handoff"]["state"], "queued", "{committed}");
    // The console shows the call, with what the caller asked.
    let anna = s.login("anna");
    let item = queue_item(&s, &anna, |i| i["channel"] == "phone");
    let (_, d) = s.get(&format!("/staff/api/handoffs/{}", item["id"].as_str().unwrap()), Some(&anna));
    let lines = d["transcript"].as_array().unwrap();
    assert!(lines.iter().any(|m| m["author"] == "citizen" && m["text"] == "Was kostet ein Personalausweis?"), "{d}");
    let (status, target) = bridge(&s, "GET", "/bridge/v1/teams/B%C3%BCrgerservice/transfer", t, None);
    assert_eq!((status, target["target"].clone()), (200, Value::Null), "no line configured for the team");
    let (status, consent) = bridge(&s, "GET", "/bridge/v1/consent/de", t, None);
    assert_eq!(status, 200);
    assert!(consent["text"].as_str().unwrap().contains("Sind Sie einverstanden?"));

    // A conversation a bridge did not start is not a bridge's to write: neither the web's nor
    // one a citizen's client opened on the phone channel.
    let web = s.conversation();
    let (_, phone) = s.post("/api/v1/conversations", json!({"channel": "phone"}), None);
    for other_id in [web.as_str(), phone["id"].as_str().unwrap()] {
        let mut other = commit.clone();
        other["conversation"]["id"] = json!(other_id);
        assert_eq!(bridge(&s, "POST", &format!("/bridge/v1/calls/{other_id}/commit"), t, Some(other)).0, 404);
        assert_eq!(bridge(&s, "POST", &format!("/bridge/v1/calls/{other_id}/put-through"), t, None).0, 404);
    }
    assert_eq!(bridge(&s, "POST", "/bridge/v1/calls/unknown/commit", t, Some(commit.clone())).0, 404);
    // Nor can a commit to the call move it to another id.
    let mut moved = commit.clone();
    moved["conversation"]["id"] = json!(web);
    let (status, kept) = bridge(&s, "POST", &format!("/bridge/v1/calls/{id}/commit"), t, Some(moved));
    assert_eq!((status, kept["conversation"]["id"].as_str()), (200, Some(id.as_str())), "{kept}");
    // A conversation that does not carry the stored one on is refused: events taken back (the
    // store has them), or a topic that is no service of this knowledge.
    let mut shorter = commit.clone();
    shorter["conversation"]["events"] = json!([]);
    assert_eq!(bridge(&s, "POST", &format!("/bridge/v1/calls/{id}/commit"), t, Some(shorter)).0, 409);
    let mut beyond = commit.clone();
    beyond["conversation"]["topic"] = json!(100_000);
    assert_eq!(bridge(&s, "POST", &format!("/bridge/v1/calls/{id}/commit"), t, Some(beyond)).0, 409);
    // Garbage is a 4xx, and so is a body beyond the bridge's 1 MiB (a long call's fits).
    let (status, _) = bridge(&s, "POST", &format!("/bridge/v1/calls/{id}/commit"), t, Some(json!({"conversation": 1})));
    assert!((400..500).contains(&status), "{status}");
    let mut long = commit.clone();
    long["reply"]["text"] = json!("Ja. ".repeat(50_000));
    assert_eq!(bridge(&s, "POST", &format!("/bridge/v1/calls/{id}/commit"), t, Some(long)).0, 200);
    let mut huge = commit.clone();
    huge["reply"]["text"] = json!("Ja. ".repeat(300_000));
    assert_eq!(bridge(&s, "POST", &format!("/bridge/v1/calls/{id}/commit"), t, Some(huge)).0, 413);

    // Put through by the line: the caller leaves the queue.
    assert_eq!(bridge(&s, "POST", &format!("/bridge/v1/calls/{id}/put-through"), t, None).0, 204);
    let (_, q) = s.get("/staff/api/queue", Some(&anna));
    assert!(q["items"].as_array().unwrap().iter().all(|i| i["channel"] != "phone" || i["state"] != "waiting"), "{q}");
}

/// A POST to `to` from another loopback address (another machine), with `headers`: the
/// status code.
#[cfg(target_os = "linux")]
fn post_from(to: SocketAddr, from: &str, path: &str, headers: &[(&str, &str)], body: &str) -> u16 {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::from({
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        socket.bind(&format!("{from}:0").parse::<SocketAddr>().unwrap().into()).unwrap();
        socket.connect(&to.into()).unwrap();
        socket
    });
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let extra: String = headers.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {to}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0)
}

/// A login posted from another loopback address (another machine): the status code.
#[cfg(target_os = "linux")]
fn login_from(s: &Server, from: &str, name: &str, password: &str) -> u16 {
    let body = format!("name={name}&password={}", password.replace(' ', "+"));
    post_from(s.addr, from, "/staff/login", &[("Content-Type", "application/x-www-form-urlencoded")], &body)
}

#[cfg(target_os = "linux")]
#[test]
fn wrong_passwords_from_elsewhere_do_not_lock_staff_out_of_their_own_desk() {
    let s = server(config(open_schedule()));
    s.add_staff("anna", Role::Staff);
    for _ in 0..5 {
        assert_eq!(login_from(&s, "127.0.0.2", "anna", "geraten"), 401);
    }
    // The guesser is locked out, even with the right password.
    assert_eq!(login_from(&s, "127.0.0.2", "anna", "ein gutes Passwort"), 429);
    // Anna at her own desk gets in, after a short wait at most.
    let started = Instant::now();
    let res = s.login_raw("anna", "ein gutes Passwort", Some(&format!("http://{}", s.addr)));
    assert_eq!(res.status().as_u16(), 303);
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    // A name longer than any account's is refused without being checked or kept.
    assert_eq!(login_from(&s, "127.0.0.3", &"a".repeat(5_000), "x"), 401);
}

#[test]
fn a_staff_events_stream_ends_with_its_session() {
    let s = server(config(open_schedule()));
    s.add_staff("anna", Role::Staff);
    let anna = s.login("anna");
    let events = s.events("/staff/api/events", Some(&anna));
    wait_for(&events, "hello", |e, _| e == "hello");
    let (status, _) = s.post("/staff/api/logout", json!({}), Some(&anna));
    assert_eq!(status, 204);
    // The server ends the stream within a few seconds: the reader's channel closes.
    let deadline = Instant::now() + Duration::from_secs(8);
    loop {
        match events.recv_timeout(Duration::from_millis(200)) {
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            _ => assert!(Instant::now() < deadline, "the events stream outlived the logout"),
        }
    }
}

/// nginx (Debian's package) as the reverse proxy README recommends, in front of `upstream`,
/// with the forwarded headers it documents; stopped when dropped.
#[cfg(target_os = "linux")]
struct Nginx {
    child: std::process::Child,
    addr: SocketAddr,
    dir: std::path::PathBuf,
}

#[cfg(target_os = "linux")]
impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(target_os = "linux")]
fn nginx(upstream: SocketAddr) -> Option<Nginx> {
    let bin = ["/usr/sbin/nginx", "/usr/bin/nginx"].into_iter().find(|p| std::path::Path::new(p).is_file())?;
    let dir = std::env::temp_dir().join(format!("lotse-nginx-{}", uuid_like()));
    std::fs::create_dir_all(&dir).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let d = dir.display();
    let conf = format!(
        "daemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\nevents {{}}\nhttp {{\n\
         access_log off;\nclient_body_temp_path {d}/body;\nproxy_temp_path {d}/proxy;\n\
         fastcgi_temp_path {d}/fastcgi;\nuwsgi_temp_path {d}/uwsgi;\nscgi_temp_path {d}/scgi;\n\
         server {{\nlisten 127.0.0.1:{port};\nlocation / {{\nproxy_pass http://{upstream};\n\
         proxy_http_version 1.1;\nproxy_buffering off;\n\
         proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n\
         proxy_set_header X-Forwarded-Host $http_host;\nproxy_set_header X-Forwarded-Proto $scheme;\n}}\n}}\n}}\n"
    );
    std::fs::write(dir.join("nginx.conf"), conf).unwrap();
    let child = std::process::Command::new(bin)
        .args(["-p", &d.to_string(), "-e", &format!("{d}/error.log"), "-c", &format!("{d}/nginx.conf")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let proxy = Nginx { child, addr, dir };
    let started = Instant::now();
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(started.elapsed() < Duration::from_secs(10), "nginx did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(proxy)
}

#[cfg(target_os = "linux")]
#[test]
fn behind_a_trusted_proxy_each_citizen_and_each_desk_has_its_own_budget() {
    let s = server_with(
        config(open_schedule()),
        lotse_web::Limits {
            requests_per_minute: 6,
            trusted_proxies: vec![std::net::Ipv4Addr::LOCALHOST.into()],
            ..Default::default()
        },
    );
    let Some(proxy) = nginx(s.addr) else {
        assert!(std::env::var_os("LOTSE_REQUIRE_MODELS").is_none(), "nginx missing");
        eprintln!("skipped: nginx missing");
        return;
    };
    s.add_staff("anna", Role::Staff);
    let json = [("Content-Type", "application/json")];
    let start =
        |from: &str, headers: &[(&str, &str)]| post_from(proxy.addr, from, "/api/v1/conversations", headers, "{}");
    // One citizen behind the proxy uses up their budget …
    for _ in 0..6 {
        assert_eq!(start("127.0.0.2", &json), 201);
    }
    assert_eq!(start("127.0.0.2", &json), 429);
    // … and cannot get another by writing an address of their own into the header: the proxy
    // appends the real one, and only that counts.
    assert_eq!(start("127.0.0.2", &[json[0], ("X-Forwarded-For", "198.51.100.1")]), 429);
    // Another citizen behind the same proxy still has all of theirs.
    assert_eq!(start("127.0.0.3", &json), 201);
    // A client that talks to the server directly cannot claim to be a proxy's citizen: its
    // header is ignored, and it has a budget of its own, not 127.0.0.3's.
    for _ in 0..6 {
        assert_eq!(
            post_from(s.addr, "127.0.0.4", "/api/v1/conversations", &[json[0], ("X-Forwarded-For", "127.0.0.3")], "{}"),
            201
        );
    }
    assert_eq!(start("127.0.0.3", &json), 201);

    // Wrong passwords from one machine behind the proxy lock out that machine, not every desk
    // behind it; and the login's origin check reads the host the browser asked for.
    let origin = format!("http://{}", proxy.addr);
    let form = [("Content-Type", "application/x-www-form-urlencoded"), ("Origin", origin.as_str())];
    for _ in 0..5 {
        assert_eq!(post_from(proxy.addr, "127.0.0.5", "/staff/login", &form, "name=anna&password=geraten"), 401);
    }
    assert_eq!(post_from(proxy.addr, "127.0.0.5", "/staff/login", &form, "name=anna&password=ein+gutes+Passwort"), 429);
    assert_eq!(post_from(proxy.addr, "127.0.0.6", "/staff/login", &form, "name=anna&password=ein+gutes+Passwort"), 303);
    // A page of another origin is still refused.
    let foreign = [form[0], ("Origin", "http://evil.example")];
    assert_eq!(
        post_from(proxy.addr, "127.0.0.7", "/staff/login", &foreign, "name=anna&password=ein+gutes+Passwort"),
        403
    );
}

#[test]
fn a_new_password_ends_other_sessions_a_disabled_account_is_out_and_changes_are_audited() {
    let s = server(config(open_schedule()));
    s.add_staff("anna", Role::Staff);
    s.add_staff("chef", Role::Admin);
    let (desk_one, desk_two) = (s.login("anna"), s.login("anna"));
    let change = |staff: &Staff, current: &str, new: &str| {
        s.post("/staff/api/password", json!({"current": current, "new": new}), Some(staff)).0
    };
    assert_eq!(change(&desk_one, "geraten", "ein ganz neues Passwort"), 403, "the current password is needed");
    assert_eq!(change(&desk_one, "ein gutes Passwort", "kurz"), 400, "too short");
    assert_eq!(change(&desk_one, "ein gutes Passwort", "ein ganz neues Passwort"), 200);
    // The other desk is logged out, this one stays; only the new password logs in.
    assert_eq!(s.get("/staff/api/me", Some(&desk_two)).0, 401);
    assert_eq!(s.get("/staff/api/me", Some(&desk_one)).0, 200);
    let origin = format!("http://{}", s.addr);
    assert_eq!(s.login_raw("anna", "ein gutes Passwort", Some(&origin)).status().as_u16(), 401);
    assert_eq!(s.login_raw("anna", "ein ganz neues Passwort", Some(&origin)).status().as_u16(), 303);

    // A staff member's reply is audited without its text.
    let id = s.conversation();
    s.say(&id, "Ich möchte mit einem Menschen sprechen");
    let hid = queue_item(&s, &desk_one, |i| i["state"] == "waiting")["id"].as_str().unwrap().to_string();
    assert_eq!(s.post(&format!("/staff/api/handoffs/{hid}/claim"), json!({}), Some(&desk_one)).0, 200);
    let secret = "Ihre Vorgangsnummer ist 4711-GEHEIM";
    assert_eq!(s.post(&format!("/staff/api/handoffs/{hid}/reply"), json!({"text": secret}), Some(&desk_one)).0, 200);

    // An admin disables the account: its sessions end at once, and the right password no
    // longer logs in. An admin cannot lock themselves out; staff cannot manage accounts.
    let chef = s.login("chef");
    assert_eq!(s.get("/staff/api/admin/accounts", Some(&desk_one)).0, 403);
    assert_eq!(s.post("/staff/api/admin/accounts/chef/disable", json!({}), Some(&chef)).0, 409);
    assert_eq!(s.post("/staff/api/admin/accounts/niemand/disable", json!({}), Some(&chef)).0, 404);
    assert_eq!(s.post("/staff/api/admin/accounts/anna/disable", json!({}), Some(&chef)).0, 200);
    assert_eq!(s.get("/staff/api/me", Some(&desk_one)).0, 401);
    assert_eq!(s.login_raw("anna", "ein ganz neues Passwort", Some(&origin)).status().as_u16(), 403);
    let (_, accounts) = s.get("/staff/api/admin/accounts", Some(&chef));
    let anna = accounts["accounts"].as_array().unwrap().iter().find(|a| a["name"] == "anna").unwrap().clone();
    assert!(anna["disabled_ms"].is_i64() && anna.get("password_hash").is_none(), "{anna}");
    assert_eq!(s.post("/staff/api/admin/accounts/anna/enable", json!({}), Some(&chef)).0, 200);
    assert_eq!(s.login_raw("anna", "ein ganz neues Passwort", Some(&origin)).status().as_u16(), 303);

    // The trail: who did what to which handoff or account, newest first, never the text.
    let (status, trail) = s.get("/staff/api/admin/audit", Some(&chef));
    assert_eq!(status, 200);
    let lines: Vec<(String, String, String)> = trail["audit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["actor"].as_str().unwrap().into(),
                l["action"].as_str().unwrap().into(),
                l["target"].as_str().unwrap().into(),
            )
        })
        .collect();
    let has = |actor: &str, action: &str, target: &str| {
        lines.iter().any(|l| (l.0.as_str(), l.1.as_str(), l.2.as_str()) == (actor, action, target))
    };
    assert!(has("anna", "login", "") && has("anna", "password", ""), "{lines:?}");
    assert!(has("anna", "handoffs.claim", &hid) && has("anna", "handoffs.reply", &hid), "{lines:?}");
    assert!(has("chef", "admin.accounts.disable", "anna") && has("chef", "admin.accounts.enable", "anna"), "{lines:?}");
    assert!(!has("chef", "admin.accounts.disable", "chef"), "a refused change is no change: {lines:?}");
    assert!(!trail.to_string().contains("4711"), "message text in the audit trail");
    let newest: Vec<(&str, &str)> = lines.iter().take(2).map(|l| (l.0.as_str(), l.1.as_str())).collect();
    assert_eq!(newest, [("anna", "login"), ("chef", "admin.accounts.enable")], "newest first");
}

#[test]
fn a_citizen_who_reconnects_gets_the_staff_messages_it_missed() {
    let s = server(config(open_schedule()));
    s.add_staff("anna", Role::Staff);
    let id = s.conversation();
    s.say(&id, "Ich möchte mit einem Menschen sprechen");
    let anna = s.login("anna");
    let hid = queue_item(&s, &anna, |i| i["state"] == "waiting")["id"].as_str().unwrap().to_string();
    assert_eq!(s.post(&format!("/staff/api/handoffs/{hid}/claim"), json!({}), Some(&anna)).0, 200);
    let path = format!("/api/v1/conversations/{id}/events");
    let reply = |text: &str| {
        assert_eq!(s.post(&format!("/staff/api/handoffs/{hid}/reply"), json!({"text": text}), Some(&anna)).0, 200);
    };
    let staff_texts = |rx: &Receiver<(Option<u64>, String, Value)>, wait: Duration| {
        let mut texts = Vec::new();
        while let Ok((n, event, data)) = rx.recv_timeout(wait) {
            if event == "staff" {
                assert!(n.is_some(), "a staff message is numbered");
                texts.push((n.unwrap(), data["text"].as_str().unwrap().to_string()));
            }
        }
        texts
    };

    // The citizen sees the first message, then the connection breaks (a tunnel) while Anna
    // goes on writing.
    let before = s.numbered_events(&path, None, None);
    reply("Guten Tag, ich sehe mir das an.");
    let first = staff_texts(&before, Duration::from_millis(500));
    assert_eq!(first.len(), 1, "{first:?}");
    let last_seen = first[0].0;
    drop(before);
    reply("Ihr Antrag ist eingegangen.");
    reply("Sie bekommen Post in zwei Wochen.");

    // Back with the number of the last event seen: what was missed, in order, and nothing twice.
    let missed = ["Ihr Antrag ist eingegangen.", "Sie bekommen Post in zwei Wochen."];
    let after = s.numbered_events(&path, None, Some(&last_seen.to_string()));
    let again = staff_texts(&after, Duration::from_millis(500));
    assert_eq!(again.iter().map(|(_, t)| t.as_str()).collect::<Vec<_>>(), missed);
    assert!(again[0].0 > last_seen && again[0].0 < again[1].0, "{again:?}");
    // A new EventSource cannot set the header: the number may come in the address.
    let by_query = s.numbered_events(&format!("{path}?last_event_id={last_seen}"), None, None);
    assert_eq!(staff_texts(&by_query, Duration::from_millis(500)).len(), 2);
    // A client that saw nothing before gets no replay, only what comes next.
    let fresh = s.numbered_events(&path, None, None);
    reply("Noch etwas?");
    let next = staff_texts(&fresh, Duration::from_millis(500));
    assert_eq!(next.iter().map(|(_, t)| t.as_str()).collect::<Vec<_>>(), ["Noch etwas?"]);
}

#[test]
fn a_reloaded_page_gets_the_conversation_from_the_server_with_staff_lines_and_answers_numbered() {
    let s = server(config(open_schedule()));
    s.add_staff("anna", Role::Staff);
    let id = s.conversation();
    let answered = s.say(&id, "Was kostet ein Personalausweis?");
    let (status, t) = s.get(&format!("/api/v1/conversations/{id}"), None);
    assert_eq!(status, 200, "{t}");
    let lines = t["lines"].as_array().unwrap();
    // The greeting, the question, the answer: numbered as the message's answer was.
    assert_eq!(lines.iter().map(|l| l["author"].as_str().unwrap()).collect::<Vec<_>>(), ["bot", "citizen", "bot"]);
    assert_eq!(lines[1]["text"], "Was kostet ein Personalausweis?");
    assert_eq!(lines[2]["text"], answered["reply"]["text"]);
    assert_eq!(lines[2]["turn"], answered["turn"]);
    assert_eq!(lines[2]["kind"], "answer");
    assert!(lines[2]["sources"][0]["id"].is_string(), "{t}");
    assert!(t["last_event"].as_u64().is_some(), "{t}");

    // Handed over: the stored lines, the staff's with their name, not the staff's own notes.
    s.say(&id, "Ich möchte mit einem Menschen sprechen");
    let anna = s.login("anna");
    let hid = s.waiting_handoff_with(&anna, "Personalausweis");
    assert_eq!(s.post(&format!("/staff/api/handoffs/{hid}/claim"), json!({}), Some(&anna)).0, 200);
    assert_eq!(s.post(&format!("/staff/api/handoffs/{hid}/reply"), json!({"text": "Guten Tag!"}), Some(&anna)).0, 200);
    s.say(&id, "Danke, ich warte.");
    let (_, t) = s.get(&format!("/api/v1/conversations/{id}"), None);
    let lines = t["lines"].as_array().unwrap();
    let authors: Vec<_> = lines.iter().map(|l| l["author"].as_str().unwrap()).collect();
    assert_eq!(authors, ["bot", "citizen", "bot", "citizen", "bot", "staff", "citizen"], "{t}");
    assert_eq!(lines[5]["staff"], "anna (Team)");
    assert_eq!(lines[2]["turn"], answered["turn"], "an answer keeps its number once stored");
    assert_eq!(lines[2]["kind"], "answer", "and its kind");
    assert!(!t.to_string().contains("nach einem Menschen gefragt"), "no line of the staff's own: {t}");

    // After staff hand back, what follows is in it too, after the stored lines.
    assert_eq!(s.post(&format!("/staff/api/handoffs/{hid}/handback"), json!({}), Some(&anna)).0, 200);
    let after = s.say(&id, "Was kostet ein Reisepass?");
    let (_, t) = s.get(&format!("/api/v1/conversations/{id}"), None);
    let lines = t["lines"].as_array().unwrap();
    let last = lines.last().unwrap();
    assert_eq!(last["text"], after["reply"]["text"], "{t}");
    assert_eq!(last["turn"], after["turn"], "{t}");
    assert_eq!(lines[lines.len() - 2]["text"], "Was kostet ein Reisepass?");

    // Never cached; unknown or deleted conversations are not found.
    let res = agent().get(s.url(&format!("/api/v1/conversations/{id}"))).call().unwrap();
    assert_eq!(res.headers().get("cache-control").unwrap(), "no-store");
    assert_eq!(s.get(&format!("/api/v1/conversations/{}", uuid_like()), None).0, 404);
    let res = agent().delete(s.url(&format!("/api/v1/conversations/{id}"))).call().unwrap();
    assert_eq!(res.status().as_u16(), 204);
    assert_eq!(s.get(&format!("/api/v1/conversations/{id}"), None).0, 404);
}

/// The throw-away PostgreSQL server of `scripts/test` paused (stopped, its data kept) or
/// resumed on its port.
/// The tests on the throw-away PostgreSQL server take turns: one of them stops the server.
static POSTGRES: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn postgres(action: &str) {
    let dir = std::env::var("LOTSE_TEST_POSTGRES_DIR").unwrap();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/postgres-test-server");
    let out = std::process::Command::new(script).args([action, &dir]).output().unwrap();
    assert!(out.status.success(), "postgres {action}: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn postgres_restarted_mid_conversation_answers_503_meanwhile_loses_nothing_and_recovers() {
    let (Ok(url), Ok(_)) = (std::env::var("LOTSE_TEST_POSTGRES"), std::env::var("LOTSE_TEST_POSTGRES_DIR")) else {
        assert!(std::env::var_os("LOTSE_REQUIRE_MODELS").is_none(), "LOTSE_TEST_POSTGRES(_DIR) missing");
        eprintln!("skipped: no throw-away PostgreSQL server (scripts/test starts one)");
        return;
    };
    let _turn = POSTGRES.lock().unwrap_or_else(|p| p.into_inner());
    let mut config = config(open_schedule());
    config.database = url;
    let s = server_with(config, lotse_web::Limits { requests_per_minute: 1_000_000, ..Default::default() });
    s.add_staff("anna", Role::Staff);
    let id = s.conversation();
    // The database is shared with the store's tests: this conversation is known by its line.
    let mark = format!("Vorgang {}: Was kostet ein Personalausweis?", uuid_like());
    s.say(&id, &mark);
    s.say(&id, "Ich möchte mit einem Menschen sprechen");
    let anna = s.login("anna");
    let hid = s.waiting_handoff_with(&anna, &mark);
    assert_eq!(s.post(&format!("/staff/api/handoffs/{hid}/claim"), json!({}), Some(&anna)).0, 200);

    // The citizen writes on, every 50 ms, while the database goes away and comes back.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (url, stop) = (s.url(&format!("/api/v1/conversations/{id}/messages")), stop.clone());
        std::thread::spawn(move || {
            let mut seen = Vec::new();
            for i in 0.. {
                if stop.load(std::sync::atomic::Ordering::SeqCst) {
                    return seen;
                }
                let text = format!("Nachricht {i}");
                let started = Instant::now();
                let mut res = agent().post(&url).send_json(json!({ "text": text })).unwrap();
                let status = res.status().as_u16();
                let body: Value = res.body_mut().read_json().unwrap_or(Value::Null);
                seen.push((text, status, body["error"]["code"].as_str().unwrap_or("").to_string(), started.elapsed()));
                std::thread::sleep(Duration::from_millis(50));
            }
            seen
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    // Longer than a request waits for a connection (3 s).
    postgres("--pause");
    std::thread::sleep(Duration::from_secs(8));
    postgres("--resume");
    // Back by itself: a write is acknowledged again within 15 s.
    let back = Instant::now();
    loop {
        let (status, _) =
            s.post(&format!("/staff/api/handoffs/{hid}/reply"), json!({"text": "Wieder da."}), Some(&anna));
        if status == 200 {
            break;
        }
        assert_eq!(status, 503, "a store that is away is 503");
        assert!(back.elapsed() < Duration::from_secs(15), "the server did not recover");
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let seen = writer.join().unwrap();

    let refused: Vec<_> = seen.iter().filter(|(_, status, _, _)| *status != 200).collect();
    assert!(!refused.is_empty(), "no write fell into the pause: {seen:?}");
    for (text, status, code, took) in &refused {
        assert_eq!((*status, code.as_str()), (503, "store_unavailable"), "{text}");
        assert!(*took < Duration::from_secs(5), "{text} was held {took:?}");
    }
    let acked: Vec<&String> = seen.iter().filter(|(_, status, _, _)| *status == 200).map(|(t, ..)| t).collect();
    assert!(seen.last().is_some_and(|(_, status, ..)| *status == 200), "the citizen writes again");
    let (_, d) = s.get(&format!("/staff/api/handoffs/{hid}"), Some(&anna));
    let stored: Vec<&str> = d["transcript"].as_array().unwrap().iter().filter_map(|m| m["text"].as_str()).collect();
    for text in acked {
        assert!(stored.contains(&text.as_str()), "acknowledged {text} is lost");
    }
}

#[test]
fn a_citizen_says_an_answer_did_not_help_and_staff_see_why_until_it_is_deleted() {
    let s = server_plugged(config(open_schedule()), &["feedback"]);
    s.add_staff("anna", Role::Staff);
    let id = s.conversation();
    let answer = s.say(&id, "Was kostet ein Reisepass?");
    assert_eq!(answer["turn"], 1, "{answer}");
    let source = answer["reply"]["sources"][0]["id"].as_str().unwrap().to_string();
    let vote = |body: Value| s.post("/p/feedback/thumbs", body, None);
    // The plug-in learns of the answer from the event log, within moments.
    let down = json!({"conversation_id": id, "turn": 1, "helpful": false, "reason": "outdated",
        "comment": "Stimmt nicht mehr, schreiben Sie mir: max.muster@example.org"});
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = vote(down.clone());
        if status == 204 {
            break;
        }
        assert_eq!(status, 404, "{body}");
        assert!(Instant::now() < deadline, "the answer never reached the plug-in");
        std::thread::sleep(Duration::from_millis(50));
    }
    // What is not a vote on an answer of this conversation is refused.
    assert_eq!(vote(json!({"conversation_id": id, "turn": 7, "helpful": true})).0, 404);
    assert_eq!(vote(json!({"conversation_id": "x", "turn": 1, "helpful": true})).0, 404);
    assert_eq!(vote(json!({"conversation_id": id, "turn": 1, "helpful": false, "reason": "weil"})).0, 400);
    assert_eq!(vote(json!({"conversation_id": id, "turn": 0, "helpful": true})).0, 400);
    assert_eq!(vote(json!({"conversation_id": id})).0, 400);

    // Staff only, and they see the vote with its reason and service, the comment redacted.
    assert_eq!(s.get("/staff/p/feedback/summary", None).0, 401);
    let anna = s.login("anna");
    let (status, summary) = s.get("/staff/p/feedback/summary", Some(&anna));
    assert_eq!(status, 200, "{summary}");
    assert_eq!((summary["helpful"].as_i64(), summary["not_helpful"].as_i64()), (Some(0), Some(1)), "{summary}");
    assert!(summary["reasons"].as_array().unwrap().iter().any(|r| r[0] == "outdated" && r[1] == 1), "{summary}");
    assert_eq!(summary["services"][0][0], source.as_str(), "{summary}");
    let comment = summary["comments"][0][4].as_str().unwrap();
    assert!(comment.contains("Stimmt nicht mehr") && !comment.contains("muster"), "{comment}");

    // A city page's rating of a service: stars and a redacted comment, nothing of the person.
    let rate = |body: Value| s.post("/p/feedback/rating", body, None);
    assert_eq!(rate(json!({"service": "reisepass", "stars": 4})).0, 204);
    assert_eq!(
        rate(json!({"service": "reisepass", "stars": 1, "comment": "Kein Termin frei, ruft mich an: 0176 1234567"})).0,
        204
    );
    assert_eq!(rate(json!({"service": "reisepass", "stars": 6})).0, 400);
    assert_eq!(rate(json!({"service": "reisepass", "stars": 0})).0, 400);
    assert_eq!(rate(json!({"service": "gibt-es-nicht", "stars": 3})).0, 404);
    assert_eq!(rate(json!({"service": "reisepass"})).0, 400);
    let (_, summary) = s.get("/staff/p/feedback/summary", Some(&anna));
    assert_eq!(summary["ratings"], json!([["reisepass", 2, 2.5, [1, 0, 0, 1, 0]]]), "{summary}");
    let rated = summary["rating_comments"][0][3].as_str().unwrap();
    assert!(rated.starts_with("Kein Termin frei") && !rated.contains("1234567"), "{rated}");

    // A second vote on the same answer replaces the first.
    assert_eq!(vote(json!({"conversation_id": id, "turn": 1, "helpful": true})).0, 204);
    let (_, summary) = s.get("/staff/p/feedback/summary", Some(&anna));
    assert_eq!((summary["helpful"].as_i64(), summary["not_helpful"].as_i64()), (Some(1), Some(0)), "{summary}");

    // The citizen's deletion takes the vote and the conversation's events with it.
    let res = agent().delete(s.url(&format!("/api/v1/conversations/{id}"))).call().unwrap();
    assert_eq!(res.status().as_u16(), 204);
    let (_, summary) = s.get("/staff/p/feedback/summary", Some(&anna));
    assert_eq!((summary["helpful"].as_i64(), summary["not_helpful"].as_i64()), (Some(0), Some(0)), "{summary}");
    let events = s.rt.block_on(s.desk.store.events_after(0, 1000)).unwrap();
    assert!(events.iter().all(|e| e.conversation_id.as_ref().is_none_or(|c| c.as_str() != id)), "{events:?}");

    // Comments go after the comment retention (90 days), moved on by the clock the purge is
    // given; the votes and the stars stay.
    let other = s.conversation();
    s.say(&other, "Was kostet ein Reisepass?");
    let down =
        json!({"conversation_id": other, "turn": 1, "helpful": false, "reason": "unclear", "comment": "Zu lang"});
    let deadline = Instant::now() + Duration::from_secs(10);
    while vote(down.clone()).0 != 204 {
        assert!(Instant::now() < deadline, "the answer never reached the plug-in");
        std::thread::sleep(Duration::from_millis(50));
    }
    let host = s.state.plugins().unwrap().clone();
    let now = lotse_handoff::store::now_ms();
    let texts = || {
        let (_, summary) = s.get("/staff/p/feedback/summary", Some(&anna));
        (summary["comments"].to_string(), summary["rating_comments"].to_string(), summary)
    };
    s.rt.block_on(host.purge(now + 89 * 86_400_000, 366)).unwrap();
    let (comments, rated, _) = texts();
    assert!(comments.contains("Zu lang") && rated.contains("Kein Termin frei"), "kept for 90 days: {comments} {rated}");
    s.rt.block_on(host.purge(now + 91 * 86_400_000, 366)).unwrap();
    let (comments, rated, summary) = texts();
    assert!(!comments.contains("Zu lang") && !rated.contains("Kein Termin frei"), "{summary}");
    assert_eq!(summary["not_helpful"].as_i64(), Some(1), "the vote stays: {summary}");
    assert_eq!(summary["ratings"][0][1], 2, "the stars stay: {summary}");

    // Without the plug-in there is no such route.
    let plain = server(config(open_schedule()));
    assert_eq!(plain.post("/p/feedback/thumbs", json!({}), None).0, 404);
}

#[test]
fn a_suggestion_is_sent_triaged_by_an_administrator_and_answered_in_public() {
    let s = server_plugged(config(open_schedule()), &["feedback"]);
    s.add_staff("anna", Role::Staff);
    s.add_staff("chef", Role::Admin);
    let send = |body: Value| s.post("/p/feedback/suggestions", body, None);
    let text = "Bitte Termine auch am Samstag anbieten, Rückfragen an 0176 1234567";
    // An address only with consent; a topic of the list; some text.
    assert_eq!(send(json!({"category": "service", "text": text, "email": "erika@example.org"})).0, 400);
    assert_eq!(send(json!({"category": "service", "text": text, "email": "keine adresse", "consent": true})).0, 400);
    assert_eq!(send(json!({"category": "wetter", "text": text})).0, 400);
    assert_eq!(send(json!({"category": "service", "text": " ! "})).0, 400);
    let (status, created) =
        send(json!({"category": "service", "text": text, "email": "erika@example.org", "consent": true}));
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(
        send(json!({"category": "digital", "text": "Ein Problem für den Hackathon: Formulare ausdrucken"})).0,
        201
    );

    // Administrators only.
    let anna = s.login("anna");
    assert_eq!(s.get("/staff/p/feedback/admin/suggestions", Some(&anna)).0, 403);
    let chef = s.login("chef");
    let (status, list) = s.get("/staff/p/feedback/admin/suggestions", Some(&chef));
    assert_eq!(status, 200, "{list}");
    let mine = list["suggestions"].as_array().unwrap().iter().find(|x| x["id"] == id.as_str()).unwrap().clone();
    assert_eq!((mine["status"].as_str(), mine["email"].as_str()), (Some("received"), Some("erika@example.org")));
    assert!(!mine["text"].as_str().unwrap().contains("1234567"), "redacted: {mine}");

    // Nothing public until an administrator answers it and says so.
    assert_eq!(s.get("/p/feedback/suggestions", None).1["suggestions"], json!([]));
    let triage = |body: Value| s.post(&format!("/staff/p/feedback/admin/suggestions/{id}"), body, Some(&chef));
    assert_eq!(triage(json!({"status": "done", "public": true})).0, 400, "public needs an answer");
    assert_eq!(triage(json!({"status": "vielleicht"})).0, 400);
    assert_eq!(
        s.post("/staff/p/feedback/admin/suggestions/gibt-es-nicht1", json!({"status": "done"}), Some(&chef)).0,
        404
    );
    let answer = "Seit März gibt es Samstagstermine, Telefon 03641 49-0.";
    assert_eq!(triage(json!({"status": "done", "answer": answer, "public": true})).0, 204);
    let (_, public) = s.get("/p/feedback/suggestions", None);
    assert_eq!(public["suggestions"].as_array().unwrap().len(), 1, "{public}");
    assert_eq!(public["suggestions"][0]["answer"], answer, "the city's own number stays in its answer");
    assert!(
        !public.to_string().contains("erika") && !public.to_string().contains("Samstag anbieten"),
        "neither the address nor the citizen's words in public: {public}"
    );
    let (_, done) = s.get("/staff/p/feedback/admin/suggestions?status=done", Some(&chef));
    assert_eq!(done["suggestions"].as_array().unwrap().len(), 1);
    // The triage is in the audit trail with the suggestion as its target.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !s.get("/staff/api/admin/audit", Some(&chef)).1["audit"]
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l["action"] == "plugin.feedback.admin.suggestions" && l["target"] == id.as_str())
    {
        assert!(Instant::now() < deadline, "no audit line");
        std::thread::sleep(Duration::from_millis(50));
    }

    // The address goes after the retention of free texts (90 days), the suggestion stays.
    let host = s.state.plugins().unwrap().clone();
    let email = |days: i64| {
        s.rt.block_on(host.purge(lotse_handoff::store::now_ms() + days * 86_400_000, 366)).unwrap();
        let (_, list) = s.get("/staff/p/feedback/admin/suggestions", Some(&chef));
        list["suggestions"].as_array().unwrap().iter().find(|x| x["id"] == id.as_str()).map(|x| x["email"].clone())
    };
    assert_eq!(email(89), Some(json!("erika@example.org")));
    assert_eq!(email(91), Some(Value::Null), "the address is gone, the suggestion kept");

    // A plug-in switched off has no routes, and the console is told only of those on (it
    // shows their sections and tabs by that list).
    assert_eq!(s.get("/staff/p/figures/admin/daily", Some(&chef)).0, 404);
    assert_eq!(s.get("/staff/p/inbox/groups", Some(&chef)).0, 404);
    assert_eq!(s.get("/staff/api/me", Some(&chef)).1["plugins"], json!(["feedback"]));
}

/// Sends `body` with `method` as `staff` (or as a citizen); the status and the raw body.
fn send_raw(s: &Server, method: &str, path: &str, body: Option<Value>, staff: Option<&Staff>) -> (u16, String) {
    let url = s.url(path);
    let mut res = match (method, body) {
        ("PUT", Some(b)) => {
            let mut req = agent().put(&url).header("content-type", "application/json");
            if let Some(st) = staff {
                req = req.header("cookie", &st.cookie).header("x-csrf-token", &st.csrf);
            }
            req.send(b.to_string()).unwrap()
        }
        ("DELETE", _) => {
            let mut req = agent().delete(&url);
            if let Some(st) = staff {
                req = req.header("cookie", &st.cookie).header("x-csrf-token", &st.csrf);
            }
            req.call().unwrap()
        }
        _ => {
            let mut req = agent().get(&url);
            if let Some(st) = staff {
                req = req.header("cookie", &st.cookie);
            }
            req.call().unwrap()
        }
    };
    (res.status().as_u16(), res.body_mut().read_to_string().unwrap_or_default())
}

const SURVEY: &str = r#"
title.de = "Ihr Besuch im Bürgerservice <2027>"
title.en = "Your visit"
max_responses = 7
[[sections]]
[[sections.questions]]
id = "weg"
kind = "single"
text.de = "Wie haben Sie uns erreicht?"
required = true
options = [{ id = "online", label.de = "Online" }, { id = "vor_ort", label.de = "Vor Ort" }]
[[sections.questions]]
id = "warum"
kind = "short_text"
text.de = "Warum nicht online?"
show_if = { question = "weg", any_of = ["vor_ort"] }
[[sections.questions]]
id = "note"
kind = "rating"
text.de = "Ihre Note"
"#;

#[test]
fn an_administrator_runs_a_survey_and_reads_and_exports_its_results() {
    let s = server_plugged(config(open_schedule()), &["feedback", "figures"]);
    s.add_staff("anna", Role::Staff);
    s.add_staff("chef", Role::Admin);
    let (anna, chef) = (s.login("anna"), s.login("chef"));
    let put = |def: &str, who: &Staff| {
        send_raw(&s, "PUT", "/staff/p/feedback/editor/surveys/besuch-2027", Some(json!({"definition": def})), Some(who))
    };
    assert_eq!(put(SURVEY, &anna).0, 403, "administrators only");
    let (status, body) = put(&SURVEY.replace("any_of = [\"vor_ort\"]", "any_of = [\"bus\"]"), &chef);
    assert_eq!(status, 400);
    assert!(body.contains("any_of"), "the mistake is named: {body}");
    assert_eq!(put(SURVEY, &chef).0, 201);
    assert_eq!(put(SURVEY, &chef).0, 204, "a second write changes it");
    let (status, body) = send_raw(
        &s,
        "PUT",
        "/staff/p/feedback/editor/surveys/besuch-2027",
        Some(json!({"definition": SURVEY, "create": true})),
        Some(&chef),
    );
    assert_eq!(status, 409, "a new survey does not replace one with its id: {body}");

    let (status, offer) = s.get("/p/feedback/chat-survey?lang=en", None);
    assert_eq!((status, offer["title"].as_str()), (200, Some("Your visit")), "{offer}");
    assert_eq!(offer["url"], "/p/feedback/surveys/besuch-2027/form?channel=chat&lang=en");

    // A citizen's form; answers checked against it; one submission per device.
    let (status, form) = s.get("/p/feedback/surveys/besuch-2027", None);
    assert_eq!((status, form["open"].as_str()), (200, Some("open")), "{form}");
    assert_eq!(form["survey"]["sections"][0]["questions"][1]["show_if"]["question"], "weg");
    let answer = |token: &str, answers: Value| {
        s.post(
            "/p/feedback/surveys/besuch-2027/responses",
            json!({"token": token, "channel": "link", "answers": answers}),
            None,
        )
    };
    let token = |i: usize| format!("geraet-{i:02}-abcdefghijkl");
    let (status, body) = answer(&token(0), json!({"note": 3}));
    assert_eq!((status, body["error"]["question"].as_str()), (400, Some("weg")), "a required question: {body}");
    assert_eq!(answer(&token(0), json!({"weg": "online", "note": 6})).0, 400);
    assert_eq!(answer("kurz", json!({"weg": "online"})).0, 400, "no token");
    assert_eq!(
        answer(&token(0), json!({"weg": "vor_ort", "warum": "Kein Termin frei, ruf an: 0176 1234567", "note": 2})).0,
        201
    );
    assert_eq!(answer(&token(0), json!({"weg": "online"})).0, 409, "the same device again");
    assert_eq!(s.get("/p/feedback/surveys/nicht-da", None).0, 404);

    // Below five responses only the count.
    let results = || s.get("/staff/p/feedback/editor/surveys/besuch-2027/results", Some(&chef)).1;
    let r = results();
    assert_eq!((r["responses"].as_i64(), r["withheld"].as_bool()), (Some(1), Some(true)), "{r}");
    assert_eq!(r["questions"], json!([]));
    for i in 1..7 {
        assert_eq!(
            answer(&token(i), json!({"weg": if i % 3 == 0 { "vor_ort" } else { "online" }, "note": 1 + i as i64 % 5}))
                .0,
            201
        );
    }
    // The key figures count the responses (the log's events, read by the figures plug-in).
    let deadline = Instant::now() + Duration::from_secs(10);
    while s.get("/staff/p/figures/admin/daily", Some(&chef)).1["totals"]["feedback.survey_response"] != 7 {
        assert!(Instant::now() < deadline, "{}", s.get("/staff/p/figures/admin/daily", Some(&chef)).1);
        std::thread::sleep(Duration::from_millis(100));
    }
    // The cap: seven responses.
    let (status, body) = answer(&token(7), json!({"weg": "online"}));
    assert_eq!((status, body["error"]["open"].as_str()), (410, Some("full")), "{body}");
    let r = results();
    assert_eq!(r["withheld"], false, "{r}");
    let weg = &r["questions"][0];
    assert_eq!(
        (weg["answered"].as_i64(), weg["counts"][0]["n"].as_i64(), weg["counts"][1]["n"].as_i64()),
        (Some(7), Some(4), Some(3))
    );
    assert_eq!(r["questions"][2]["mean"].as_f64(), Some((2 + 2 + 3 + 4 + 5 + 1 + 2) as f64 / 7.0));
    let texts = r["questions"][1]["texts"].as_array().unwrap();
    assert_eq!(texts.len(), 1);
    assert!(!texts[0].as_str().unwrap().contains("1234567"), "free text redacted: {texts:?}");

    // Published only when the survey says so, and never with the free texts.
    assert_eq!(s.get("/p/feedback/surveys/besuch-2027/results", None).0, 404);
    // Rewording after answers is fine; changing the questions is not.
    assert_eq!(put(&SURVEY.replace("max_responses = 7", "max_responses = 7\npublic_results = true"), &chef).0, 204);
    let (status, public) = s.get("/p/feedback/surveys/besuch-2027/results", None);
    assert_eq!(status, 200);
    assert_eq!(public["questions"][0]["counts"][0]["n"], 4);
    assert_eq!(public["questions"][1]["texts"], json!([]), "{public}");
    // The conditional question, answered once: published without a breakdown.
    assert_eq!(
        (public["questions"][1]["withheld"].as_bool(), public["questions"][1]["answered"].as_i64()),
        (Some(true), Some(1))
    );
    let (status, page) = send_raw(&s, "GET", "/p/feedback/surveys/besuch-2027/results/page", None, None);
    assert_eq!(status, 200);
    assert!(page.contains("<th scope=\"row\">Online</th><td>4</td>") && page.contains("7 Antworten"), "{page}");
    assert!(!page.contains("Kein Termin"), "no free text on the public page");
    assert_eq!(put(&SURVEY.replace("kind = \"rating\"", "kind = \"nps\""), &chef).0, 409);

    // Exports: CSV for German spreadsheets (semicolons, a byte order mark) and JSON.
    let (status, csv) =
        send_raw(&s, "GET", "/staff/p/feedback/editor/surveys/besuch-2027/export?sep=semicolon", None, Some(&chef));
    assert_eq!(status, 200);
    assert!(csv.starts_with("\u{feff}submitted;lang;channel;weg;warum;note\n"), "{csv}");
    assert_eq!(csv.lines().count(), 8);
    assert!(csv.lines().nth(1).unwrap().contains(";de;link;vor_ort;"), "{csv}");
    let (status, json_export) =
        send_raw(&s, "GET", "/staff/p/feedback/editor/surveys/besuch-2027/export?format=json", None, Some(&chef));
    let json_export: Value = serde_json::from_str(&json_export).unwrap();
    assert_eq!((status, json_export["responses"].as_array().map(Vec::len)), (200, Some(7)));
    assert!(!json_export.to_string().contains("geraet"), "no device token in the export");
    assert_eq!(send_raw(&s, "GET", "/staff/p/feedback/editor/surveys/besuch-2027/export", None, Some(&anna)).0, 403);

    // The link page and its QR code.
    let (status, page) = send_raw(&s, "GET", "/p/feedback/surveys/besuch-2027/form", None, None);
    assert_eq!(status, 200);
    assert!(
        page.contains("data-survey=\"besuch-2027\"") && page.contains("&lt;2027&gt;") && !page.contains("<2027>"),
        "{page}"
    );
    assert!(page.contains("data-channel=\"link\""));
    let (_, kiosk) = send_raw(&s, "GET", "/p/feedback/surveys/besuch-2027/form?channel=kiosk&lang=en", None, None);
    assert!(kiosk.contains("data-channel=\"kiosk\"") && kiosk.contains("<title>Your visit</title>"), "{kiosk}");
    let (status, svg) = send_raw(
        &s,
        "GET",
        "/staff/p/feedback/editor/surveys/besuch-2027/qr.svg?base=https%3A%2F%2Flotse.jena.de",
        None,
        Some(&chef),
    );
    assert!(status == 200 && svg.contains("<svg"), "{status}");
    assert_eq!(
        send_raw(
            &s,
            "GET",
            "/staff/p/feedback/editor/surveys/besuch-2027/qr.svg?base=javascript%3Ax",
            None,
            Some(&chef)
        )
        .0,
        400
    );

    // Free texts go after the comment retention (90 days here); the choices stay.
    let host = s.state.plugins().unwrap().clone();
    let later = lotse_handoff::store::now_ms() + 91 * 86_400_000;
    s.rt.block_on(host.purge(later, 366)).unwrap();
    let r = results();
    assert_eq!(r["questions"][1]["texts"], json!([]), "{r}");
    assert_eq!(r["questions"][0]["answered"], 7);

    // Offered after a conversation while it runs: not once it is full.
    assert_eq!(s.get("/p/feedback/chat-survey", None).0, 404, "full");

    // Answers at once against a cap of three: three taken, the rest refused as full.
    let capped = "title.de = \"Kurz\"\nmax_responses = 3\n[[sections]]\n[[sections.questions]]\nid = \"a\"\nkind = \"yes_no\"\ntext.de = \"?\"\n";
    assert_eq!(
        send_raw(&s, "PUT", "/staff/p/feedback/editor/surveys/kurz", Some(json!({"definition": capped})), Some(&chef))
            .0,
        201
    );
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let s = &s;
                scope.spawn(move || {
                    let body = json!({"token": format!("gleichzeitig-{i:02}-abcdefgh"), "answers": {"a": true}});
                    s.post("/p/feedback/surveys/kurz/responses", body, None).0
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(statuses.iter().filter(|c| **c == 201).count(), 3, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|c| **c == 410).count(), 5, "{statuses:?}");

    // The list, a survey that ended, and deletion with its answers.
    let (_, list) = s.get("/staff/p/feedback/editor/surveys", Some(&chef));
    let besuch = list["surveys"].as_array().unwrap().iter().find(|x| x["id"] == "besuch-2027").unwrap().clone();
    assert_eq!((besuch["responses"].as_i64(), besuch["open"].as_str()), (Some(7), Some("full")), "{list}");
    let ended = "title.de = \"Alt\"\nends = \"2020-01-31\"\n[[sections]]\n[[sections.questions]]\nid = \"a\"\nkind = \"yes_no\"\ntext.de = \"?\"\n";
    assert_eq!(
        send_raw(&s, "PUT", "/staff/p/feedback/editor/surveys/alt", Some(json!({"definition": ended})), Some(&chef)).0,
        201
    );
    let (status, body) =
        s.post("/p/feedback/surveys/alt/responses", json!({"token": token(1), "answers": {"a": true}}), None);
    assert_eq!((status, body["error"]["open"].as_str()), (410, Some("ended")));
    assert_eq!(send_raw(&s, "DELETE", "/staff/p/feedback/editor/surveys/besuch-2027", None, Some(&chef)).0, 204);
    assert_eq!(s.get("/p/feedback/surveys/besuch-2027", None).0, 404);
    assert_eq!(put(SURVEY, &chef).0, 201);
    assert_eq!(results()["responses"], 0, "the answers went with the survey");
}

#[test]
fn a_declined_question_reaches_the_inbox_and_an_editor_maps_it_to_a_service() {
    let s = server_plugged(config(open_schedule()), &["inbox"]);
    s.add_staff("anna", Role::Staff);
    s.add_staff("eva", Role::Editor);
    s.add_staff("chef", Role::Admin);
    let id = s.conversation();
    let answered = s.say(&id, "Was kostet ein Reisepass?");
    assert_eq!(answered["reply"]["kind"], "answer", "{answered}");
    let declined = s.say(&id, "Wo melde ich meinen Dackel an? Meine Nummer ist 0176 1234567.");
    assert_eq!(declined["reply"]["kind"], "out_of_scope", "{declined}");

    assert_eq!(s.get("/staff/p/inbox/groups", None).0, 401);
    let anna = s.login("anna");
    // The plug-in reads it from the event log within moments; only the declined question.
    let deadline = Instant::now() + Duration::from_secs(10);
    let groups = loop {
        let (status, body) = s.get("/staff/p/inbox/groups", Some(&anna));
        assert_eq!(status, 200, "{body}");
        if body["questions"] == 1 {
            break body;
        }
        assert!(Instant::now() < deadline, "the question never reached the inbox: {body}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let question = &groups["groups"][0]["questions"][0];
    let text = question["text"].as_str().unwrap();
    assert!(text.starts_with("Wo melde ich meinen Dackel an?") && !text.contains("1234567"), "redacted: {text}");
    let decision = json!({"questions": [question["id"]], "decision": "service", "service": "hundesteuer"});
    // A change needs the CSRF token, and an editor (staff read the questions, editors decide).
    let eva = s.login("eva");
    let no_token = Staff { cookie: eva.cookie.clone(), csrf: "falsch".into() };
    assert_eq!(s.post("/staff/p/inbox/editor/decide", decision.clone(), Some(&no_token)).0, 403);
    assert_eq!(s.post("/staff/p/inbox/editor/decide", decision.clone(), Some(&anna)).0, 403);
    // An editor is no administrator.
    assert_eq!(s.get("/staff/api/admin/audit", Some(&eva)).0, 403);
    let (status, decided) = s.post("/staff/p/inbox/editor/decide", decision, Some(&eva));
    assert_eq!(status, 200, "{decided}");
    assert_eq!(decided["synonym_lines"][0], "\"dackel\" = [\"Hund\", \"Hundesteuer\"]", "{decided}");
    assert_eq!(s.get("/staff/p/inbox/groups", Some(&anna)).1["questions"], 0);
    // The decision is in the audit trail, by name, without the question.
    let chef = s.login("chef");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, trail) = s.get("/staff/api/admin/audit", Some(&chef));
        let lines = trail["audit"].as_array().unwrap();
        if lines.iter().any(|l| l["actor"] == "eva" && l["action"] == "plugin.inbox.editor.decide") {
            assert!(!trail.to_string().contains("Dackel"), "{trail}");
            break;
        }
        assert!(Instant::now() < deadline, "no audit line: {trail}");
        std::thread::sleep(Duration::from_millis(50));
    }
    // The staff's "me" names the plug-in (the console shows its tab); without it, no route.
    assert!(s.get("/staff/api/me", Some(&anna)).1["plugins"].as_array().unwrap().iter().any(|p| p == "inbox"));
    let plain = server(config(open_schedule()));
    plain.add_staff("anna", Role::Staff);
    assert_eq!(plain.get("/staff/p/inbox/groups", Some(&plain.login("anna"))).0, 404);
}

#[test]
fn the_figures_of_a_day_of_scripted_conversations_match_a_count_of_our_own() {
    let s = server_plugged(config(open_schedule()), &["figures", "feedback"]);
    let started_in = jiff::Timestamp::now().to_zoned(berlin().tz).strftime("%Y-%m").to_string();
    s.add_staff("chef", Role::Admin);
    s.add_staff("anna", Role::Staff);
    // Our own count, from what the API answered.
    let mut ours: std::collections::BTreeMap<String, i64> = Default::default();
    let mut count = |k: String| *ours.entry(k).or_default() += 1;
    // Votes under the answers: (conversation, turn, helpful).
    let mut votes: Vec<(String, i64, bool)> = Vec::new();
    let questions = [
        "Was kostet ein Personalausweis?",
        "Wie wird das Wetter morgen?",
        "Ausweis",
        "Where do I register my address?",
        "Hallo",
        "Ich möchte mit einem Menschen sprechen",
    ];
    // Conversations the assistant served alone: (id, answered from the records, went to staff).
    let mut served: Vec<(String, bool, bool)> = Vec::new();
    for round in 0..3 {
        let id = s.conversation();
        count("conversations".into());
        served.push((id.clone(), false, false));
        // The last conversation does not ask for a person.
        let asked = questions.len() - usize::from(round == 2);
        for q in questions.iter().take(asked).skip(round) {
            let body = s.say(&id, q);
            if body["relayed"] == true {
                count("relayed".into());
                continue;
            }
            let reply = &body["reply"];
            count("answers".into());
            count(format!("reply.{}", reply["kind"].as_str().unwrap()));
            if reply["kind"] == "answer" {
                count(format!("service.{}", reply["sources"][0]["id"].as_str().unwrap()));
                votes.push((id.clone(), body["turn"].as_i64().unwrap(), votes.len() % 3 != 2));
                served.last_mut().unwrap().1 = true;
            }
            if let Some(state) = reply["handoff"]["state"].as_str() {
                let state = if state == "callback_scheduled" { "callback" } else { state };
                count(format!("handoff.{state}"));
                served.last_mut().unwrap().2 = true;
            }
        }
    }
    // Campaign codes (a poster's QR code) are counted with the start; one the city does not
    // count is not kept (nor anything else someone writes there).
    for campaign in ["plakat-bus", "0176-1234567", "plakat-bus"] {
        let (status, _) = s.post("/api/v1/conversations", json!({"lang": "de", "campaign": campaign}), None);
        assert_eq!(status, 201);
        count("conversations".into());
        if campaign == "plakat-bus" {
            count("campaign.plakat-bus".into());
        }
    }
    // The votes, once the feedback plug-in knows the answers they are for.
    for (id, turn, helpful) in &votes {
        let deadline = Instant::now() + Duration::from_secs(10);
        let body = json!({"conversation_id": id, "turn": turn, "helpful": helpful});
        while s.post("/p/feedback/thumbs", body.clone(), None).0 != 204 {
            assert!(Instant::now() < deadline, "the vote on {id}/{turn} is never taken");
            std::thread::sleep(Duration::from_millis(50));
        }
        count(format!("feedback.{}", if *helpful { "thumbs_up" } else { "thumbs_down" }));
    }
    // Served alone: an answer, no handoff, no thumbs down.
    let alone = served
        .iter()
        .filter(|(id, answered, handed)| *answered && !handed && !votes.iter().any(|v| &v.0 == id && !v.2))
        .count() as i64;
    assert!(alone > 0, "the script has a conversation served alone: {served:?} {votes:?}");
    ours.insert("self_served".into(), alone);
    assert!(ours.get("reply.answer").copied().unwrap_or(0) >= 3, "{ours:?}");
    assert!(ours.keys().any(|k| k.starts_with("handoff.")), "{ours:?}");

    // A member of staff may not read them; an administrator may, once the events are counted.
    let anna = s.login("anna");
    assert_eq!(s.get("/staff/p/figures/admin/daily", Some(&anna)).0, 403);
    let chef = s.login("chef");
    let today = jiff::Zoned::now().date();
    let period =
        format!("/staff/p/figures/admin/daily?from={}&to={}", today.yesterday().unwrap(), today.tomorrow().unwrap());
    let deadline = Instant::now() + Duration::from_secs(10);
    let figures = loop {
        let (status, figures) = s.get(&period, Some(&chef));
        assert_eq!(status, 200, "{figures}");
        let theirs: std::collections::BTreeMap<String, i64> =
            serde_json::from_value(figures["totals"].clone()).unwrap_or_default();
        if theirs == ours || Instant::now() > deadline {
            break figures;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut theirs: std::collections::BTreeMap<String, i64> =
        serde_json::from_value(figures["totals"].clone()).unwrap();
    // Each conversation counted once by the hour it began (which hour, the server's clock says).
    let hours: i64 = theirs.iter().filter(|(k, _)| k.starts_with("hour.")).map(|(_, v)| v).sum();
    assert_eq!(hours, ours["conversations"], "{figures}");
    let by_hour: Vec<i64> = serde_json::from_value(figures["derived"]["by_hour"].clone()).unwrap();
    assert_eq!((by_hour.len(), by_hour.iter().sum::<i64>()), (24, hours), "{figures}");
    theirs.retain(|k, _| !k.starts_with("hour."));
    assert_eq!(theirs, ours, "{figures}");
    // The services answered about most: ours, most first.
    let top: Vec<(String, i64)> = serde_json::from_value(figures["derived"]["top_services"].clone()).unwrap();
    let most = ours.iter().filter(|(k, _)| k.starts_with("service.")).map(|(_, v)| *v).max().unwrap();
    assert_eq!(top[0].1, most, "{figures}");
    assert!(top.iter().all(|(id, n)| ours.get(&format!("service.{id}")) == Some(n)), "{figures}");
    let share = figures["derived"]["answered_share"].as_f64().unwrap();
    let expected = ours["reply.answer"] as f64 / ours["answers"] as f64;
    assert!((share - expected).abs() < 0.001, "{share} vs {expected}");
    let rate = figures["derived"]["self_service_rate"].as_f64().unwrap();
    assert!((rate - alone as f64 / ours["conversations"] as f64).abs() < 0.001, "{rate}");
    let satisfaction = figures["derived"]["satisfaction"].as_f64().unwrap();
    let up = votes.iter().filter(|v| v.2).count() as f64;
    assert!((satisfaction - up / votes.len() as f64).abs() < 0.001, "{satisfaction}");
    // Per channel: all of it on the web.
    assert!(figures["rows"].as_array().unwrap().iter().all(|r| r["channel"] == "web"), "{figures}");

    // The same as CSV for a spreadsheet.
    let mut res = agent().get(s.url(&format!("{period}&format=csv"))).header("cookie", &chef.cookie).call().unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let csv = res.body_mut().read_to_string().unwrap();
    assert!(csv.starts_with("\u{feff}Tag;Kanal;Sprache;Kennzahl;Anzahl"), "{csv}");
    assert!(csv.contains(";web;de;conversations;6\r\n"), "{csv}");
    assert_eq!(s.get("/staff/p/figures/admin/daily?from=gestern", Some(&chef)).0, 400);

    // One channel: all of it was on the web, none on the phone.
    let (_, web) = s.get(&format!("{period}&channel=web"), Some(&chef));
    assert_eq!(web["totals"], figures["totals"]);
    let (_, phone) = s.get(&format!("{period}&channel=phone"), Some(&chef));
    assert_eq!(phone["totals"], json!({}), "{phone}");
    assert_eq!(s.get(&format!("{period}&channel=fax"), Some(&chef)).0, 400);

    // The monthly report: the plan's key figures beside the month before, to print or as CSV.
    // The city's month (a run across its midnight at a month's end cannot compare).
    let month = jiff::Timestamp::now().to_zoned(berlin().tz).strftime("%Y-%m").to_string();
    let report = |format: &str| {
        let mut res = agent()
            .get(s.url(&format!("/staff/p/figures/admin/report?month={month}&format={format}")))
            .header("cookie", &chef.cookie)
            .call()
            .unwrap();
        (res.status().as_u16(), res.body_mut().read_to_string().unwrap())
    };
    let (status, csv) = report("csv");
    assert_eq!(status, 200);
    assert!(
        month != started_in || csv.contains(&format!("Interaktionen: Gespräche;{};0\r\n", ours["conversations"])),
        "{csv}"
    );
    assert!(
        month != started_in
            || csv.contains(&format!("Interaktionen: beantwortete Nachrichten;{};0\r\n", ours["answers"])),
        "{csv}"
    );
    let up = ours.get("feedback.thumbs_up").copied().unwrap_or(0) as f64;
    let voted = up + ours.get("feedback.thumbs_down").copied().unwrap_or(0) as f64;
    let satisfied = format!("{:.1}", 100.0 * up / voted).replace('.', ",");
    assert!(
        month != started_in
            || csv.contains(&format!("Zufriedenheit („hat geholfen“ der Bewertungen) (%);{satisfied};\r\n")),
        "{csv}"
    );
    assert!(month != started_in || csv.contains("Kampagne „plakat-bus“: Gespräche;2;0\r\n"), "{csv}");
    assert!(month != started_in || csv.contains("davon am Infoterminal (Kiosk);0;0\r\n"), "{csv}");
    let (status, html) = report("html");
    assert!(
        status == 200 && html.contains("<caption>Kennzahlen") && html.contains("Meistgefragte Leistungen"),
        "{html}"
    );
    assert_eq!(s.get("/staff/p/figures/admin/report?month=letzten", Some(&chef)).0, 400);
    assert_eq!(s.get("/staff/p/figures/admin/report", Some(&anna)).0, 403);
}

#[test]
fn two_nodes_on_one_postgresql_carry_the_live_conversation_between_them() {
    let Ok(url) = std::env::var("LOTSE_TEST_POSTGRES") else {
        assert!(std::env::var_os("LOTSE_REQUIRE_MODELS").is_none(), "LOTSE_TEST_POSTGRES missing");
        eprintln!("skipped: no throw-away PostgreSQL server (scripts/test starts one)");
        return;
    };
    let _turn = POSTGRES.lock().unwrap_or_else(|p| p.into_inner());
    let on_postgres = || {
        let mut config = config(open_schedule());
        config.database = url.clone();
        server_with(config, lotse_web::Limits { requests_per_minute: 1_000_000, ..Default::default() })
    };
    // Two nodes behind one address: the citizen's requests reach A, the member of staff's B.
    let (a, b) = (on_postgres(), on_postgres());
    let started = Instant::now();
    while a.state.sessions.relays() != (true, true) || b.state.sessions.relays() != (true, true) {
        assert!(started.elapsed() < Duration::from_secs(10), "the nodes do not listen to each other");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The database is shared with other tests: this test's account and conversation are its own.
    let name = format!("knoten{}", std::process::id());
    b.add_staff(&name, Role::Staff);
    let id = a.conversation();
    let mark = format!("Vorgang {}: Was kostet ein Personalausweis?", uuid_like());
    a.say(&id, &mark);
    let citizen = a.events(&format!("/api/v1/conversations/{id}/events"), None);
    let staff = b.login(&name);
    let console = b.events("/staff/api/events", Some(&staff));
    wait_for(&console, "hello", |e, _| e == "hello");

    // A's citizen asks for a person: B's console hears of it.
    let r = a.say(&id, "Ich möchte mit einem Menschen sprechen");
    assert_eq!(r["reply"]["handoff"]["state"], "queued", "{r}");
    wait_for(&console, "queue (from node A)", |e, v| e == "staff" && v["type"] == "queue");
    let hid = b.waiting_handoff_with(&staff, &mark);

    // B's staff take it, type and write: A's citizen sees each.
    assert_eq!(b.post(&format!("/staff/api/handoffs/{hid}/claim"), json!({}), Some(&staff)).0, 200);
    let joined = wait_for(&citizen, "handoff connected (from node B)", |e, v| {
        e == "handoff" && v["handoff"]["state"] == "connected"
    });
    assert_eq!(joined["handoff"]["staff"], format!("{name} (Team)"));
    assert_eq!(b.post(&format!("/staff/api/handoffs/{hid}/typing"), json!({"typing": true}), Some(&staff)).0, 204);
    wait_for(&citizen, "typing (from node B)", |e, v| e == "typing" && v["typing"] == true);
    let text = "Guten Tag, hier ist das Bürgerservice-Team – wie kann ich helfen? 👋";
    assert_eq!(b.post(&format!("/staff/api/handoffs/{hid}/reply"), json!({ "text": text }), Some(&staff)).0, 200);
    let m = wait_for(&citizen, "staff message (from node B)", |e, _| e == "staff");
    assert_eq!(m["text"], text);

    // A's citizen answers: it goes to B's console, and A's assistant stays silent.
    let r = a.say(&id, "Ich brauche einen neuen Ausweis.");
    assert_eq!(r, json!({"reply": null, "relayed": true}));
    let relayed = wait_for(&console, "citizen message (from node A)", |e, v| {
        e == "staff" && v["type"] == "message" && v["author"] == "citizen" && v["handoff_id"] == hid.as_str()
    });
    assert_eq!(relayed["text"], "Ich brauche einen neuen Ausweis.");

    // A staff message too long for PostgreSQL's NOTIFY (8,000 bytes) is read from the store.
    let long = "👋".repeat(2000);
    assert_eq!(b.post(&format!("/staff/api/handoffs/{hid}/reply"), json!({ "text": long }), Some(&staff)).0, 200);
    let m = wait_for(&citizen, "long staff message (from node B)", |e, _| e == "staff");
    assert_eq!(m["name"], format!("{name} (Team)"));
    let got = m["text"].as_str().unwrap();
    assert!(got == long, "{} characters arrived of {}", got.chars().count(), long.chars().count());

    // B hands back: A's citizen is told, once, and A's assistant answers again.
    assert_eq!(b.post(&format!("/staff/api/handoffs/{hid}/handback"), json!({}), Some(&staff)).0, 200);
    wait_for(&citizen, "handoff closed (from node B)", |e, v| e == "handoff" && v["handoff"]["state"] == "closed");
    let again = drain(&citizen, Duration::from_millis(500));
    assert!(!again.iter().any(|(e, v)| e == "handoff" && v["handoff"]["state"] == "closed"), "told twice: {again:?}");
    assert_eq!(a.say(&id, "Was kostet ein Personalausweis?")["reply"]["kind"], "answer");
}

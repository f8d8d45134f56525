//! `lotse bench api --staff N`: the chat API under the load of a working day, on loopback. Many
//! conversations at once ask questions; every k-th of them keeps its events stream open and asks
//! for a person; staff members, each with the console's events stream open, take the waiting
//! ones from the queue, write to the citizen and close. Citizens hear the staff's messages on
//! their streams. Reported: p50/p95 per kind of request, errors, messages that never arrived;
//! with `--minutes`, rounds of it for that long (a soak) and the resident memory after each.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

type Http = Client<HttpConnector, Full<Bytes>>;

/// The load of one round.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    pub conversations: usize,
    pub turns: usize,
    pub staff: usize,
    /// Every `handoff_every`-th conversation asks for a person.
    pub handoff_every: usize,
}

/// Latencies by kind of request, and what went wrong.
#[derive(Default)]
struct Tally {
    by_kind: std::collections::BTreeMap<&'static str, Vec<Duration>>,
    errors: std::collections::BTreeMap<&'static str, usize>,
}

impl Tally {
    fn took(&mut self, kind: &'static str, d: Duration) {
        self.by_kind.entry(kind).or_default().push(d);
    }
    fn failed(&mut self, kind: &'static str) {
        *self.errors.entry(kind).or_default() += 1;
    }
    /// The time since `since` when `ok`, otherwise an error.
    fn record(&mut self, kind: &'static str, ok: bool, since: Instant) {
        if ok { self.took(kind, since.elapsed()) } else { self.failed(kind) }
    }
    fn merge(&mut self, other: Tally) {
        for (k, v) in other.by_kind {
            self.by_kind.entry(k).or_default().extend(v);
        }
        for (k, n) in other.errors {
            *self.errors.entry(k).or_default() += n;
        }
    }
}

/// One request: (status, headers, body); a connection error is status 599.
async fn send(
    http: &Http,
    method: Method,
    uri: String,
    headers: &[(header::HeaderName, String)],
    body: String,
) -> (StatusCode, HeaderMap, Bytes) {
    let mut req = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        req = req.header(k, v);
    }
    let req = req.body(Full::new(Bytes::from(body))).expect("a valid request");
    match http.request(req).await {
        Ok(r) => {
            let (parts, body) = r.into_parts();
            let bytes = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
            (parts.status, parts.headers, bytes)
        }
        Err(_) => (StatusCode::from_u16(599).expect("a status"), HeaderMap::new(), Bytes::new()),
    }
}

fn json_headers() -> Vec<(header::HeaderName, String)> {
    vec![(header::CONTENT_TYPE, "application/json".into())]
}

/// Opens an events stream and reads it in the background until `stop`, counting the
/// `event: staff` messages it carries. Returns once the server has answered (so that nothing
/// said after this is missed); false when it refused the stream.
async fn stream(
    http: &Http,
    uri: String,
    heard: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    cookie: Option<String>,
) -> bool {
    let mut req = Request::get(uri);
    if let Some(c) = cookie {
        req = req.header(header::COOKIE, c);
    }
    let Ok(res) = http.request(req.body(Full::new(Bytes::new())).expect("a valid request")).await else { return false };
    if res.status() != StatusCode::OK {
        return false;
    }
    let mut body = res.into_body();
    tokio::spawn(async move {
        let mut rest = String::new();
        while !stop.load(Ordering::SeqCst) {
            let frame = match tokio::time::timeout(Duration::from_millis(200), body.frame()).await {
                Err(_) => continue,
                Ok(Some(Ok(frame))) => frame,
                // The stream ended or broke.
                Ok(_) => return,
            };
            if let Some(data) = frame.data_ref() {
                rest.push_str(&String::from_utf8_lossy(data));
                while let Some(end) = rest.find('\n') {
                    if rest[..end].trim() == "event: staff" {
                        heard.fetch_add(1, Ordering::SeqCst);
                    }
                    rest.drain(..=end);
                }
            }
        }
    });
    true
}

/// A citizen: questions, and (`person`) a stream, a request for a person, and the wait for a
/// staff message on the stream (30 s at most).
async fn citizen(http: Http, base: String, questions: Arc<Vec<String>>, c: usize, load: Load, person: bool) -> Tally {
    let mut t = Tally::default();
    let start = Instant::now();
    let (status, _, body) =
        send(&http, Method::POST, format!("{base}/api/v1/conversations"), &json_headers(), "{}".into()).await;
    let id = (status == StatusCode::CREATED)
        .then(|| serde_json::from_slice::<serde_json::Value>(&body).ok()?["id"].as_str().map(String::from))
        .flatten();
    let Some(id) = id else {
        t.failed("start");
        return t;
    };
    t.took("start", start.elapsed());
    let (heard, stop) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicBool::new(false)));
    let uri = format!("{base}/api/v1/conversations/{id}/events");
    if person && !stream(&http, uri, heard.clone(), stop.clone(), None).await {
        t.failed("events stream");
    }
    let say = |text: String| {
        let (http, uri) = (http.clone(), format!("{base}/api/v1/conversations/{id}/messages"));
        async move { send(&http, Method::POST, uri, &json_headers(), serde_json::json!({ "text": text }).to_string()).await }
    };
    for k in 0..load.turns {
        let q = questions[(c * load.turns + k) % questions.len()].clone();
        let s = Instant::now();
        let (status, _, _) = say(q).await;
        t.record("question", status == StatusCode::OK, s);
    }
    if person {
        let s = Instant::now();
        let (status, _, body) = say("Ich möchte mit einem Menschen sprechen".into()).await;
        // Queued; or already with staff (a question of the set asked for a person before),
        // when the message goes to them.
        let queued = serde_json::from_slice::<serde_json::Value>(&body).is_ok_and(|v| {
            v["relayed"] == true || ["queued", "connected"].iter().any(|s| v["reply"]["handoff"]["state"] == *s)
        });
        t.record("ask for a person", status == StatusCode::OK && queued, s);
        let waited = Instant::now();
        while heard.load(Ordering::SeqCst) == 0 && waited.elapsed() < Duration::from_secs(30) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if heard.load(Ordering::SeqCst) > 0 {
            t.took("queued → staff message heard", waited.elapsed());
            let s = Instant::now();
            let (status, _, _) = say("Danke, das hilft mir.".into()).await;
            t.record("message to staff", status == StatusCode::OK, s);
        } else {
            t.failed("staff message never heard");
        }
        stop.store(true, Ordering::SeqCst);
    }
    t
}

/// Logs `name` in: the session cookie and the CSRF token.
async fn login(http: &Http, base: &str, name: &str, t: &mut Tally) -> Option<(String, String)> {
    let s = Instant::now();
    let form = vec![(header::CONTENT_TYPE, "application/x-www-form-urlencoded".to_string())];
    let (status, headers, _) = send(
        http,
        Method::POST,
        format!("{base}/staff/login"),
        &form,
        format!("name={name}&password=ein+gutes+Passwort"),
    )
    .await;
    let cookie = headers.get(header::SET_COOKIE).and_then(|v| v.to_str().ok()).and_then(|v| v.split(';').next());
    let Some(cookie) = cookie.map(String::from).filter(|_| status == StatusCode::SEE_OTHER) else {
        t.failed("staff login");
        return None;
    };
    let (_, _, me) =
        send(http, Method::GET, format!("{base}/staff/api/me"), &[(header::COOKIE, cookie.clone())], String::new())
            .await;
    let csrf = serde_json::from_slice::<serde_json::Value>(&me).ok().and_then(|v| v["csrf"].as_str().map(String::from));
    let Some(csrf) = csrf else {
        t.failed("staff login");
        return None;
    };
    t.took("staff login", s.elapsed());
    Some((cookie, csrf))
}

/// A member of staff, logged in: keeps the console's stream open, and until `done` takes the
/// first waiting conversation, writes to the citizen, waits a moment for the answer, and closes.
async fn staff(http: Http, base: String, (cookie, csrf): (String, String), done: Arc<AtomicBool>) -> Tally {
    let mut t = Tally::default();
    let stop = Arc::new(AtomicBool::new(false));
    if !stream(&http, format!("{base}/staff/api/events"), Arc::default(), stop.clone(), Some(cookie.clone())).await {
        t.failed("console stream");
    }
    let mut auth = json_headers();
    auth.extend([(header::COOKIE, cookie.clone()), (header::HeaderName::from_static("x-csrf-token"), csrf)]);
    while !done.load(Ordering::SeqCst) {
        let s = Instant::now();
        let (status, _, q) = send(&http, Method::GET, format!("{base}/staff/api/queue"), &auth, String::new()).await;
        if status != StatusCode::OK {
            t.failed("queue");
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        t.took("queue", s.elapsed());
        let waiting = serde_json::from_slice::<serde_json::Value>(&q).ok().and_then(|v| {
            v["items"]
                .as_array()?
                .iter()
                .find(|i| i["state"] == "waiting")
                .and_then(|i| i["id"].as_str().map(String::from))
        });
        let Some(h) = waiting else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let post = |what: &str, body: serde_json::Value| {
            let (http, uri, auth) = (http.clone(), format!("{base}/staff/api/handoffs/{h}/{what}"), auth.clone());
            async move { send(&http, Method::POST, uri, &auth, body.to_string()).await.0 }
        };
        let s = Instant::now();
        match post("claim", serde_json::json!({})).await {
            StatusCode::OK => t.took("claim", s.elapsed()),
            // Another member of staff was quicker: as in the console.
            StatusCode::CONFLICT => continue,
            _ => {
                t.failed("claim");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        }
        let s = Instant::now();
        let text = "Guten Tag, hier ist das Team Bürgerservice. Ich sehe mir Ihr Anliegen an.";
        let status = post("reply", serde_json::json!({ "text": text })).await;
        t.record("staff reply", status == StatusCode::OK, s);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let s = Instant::now();
        let status = post("close", serde_json::json!({ "outcome": "resolved" })).await;
        t.record("close", status == StatusCode::OK, s);
    }
    stop.store(true, Ordering::SeqCst);
    t
}

/// Runs `rounds` of the load against the server at `base` (a desk with `load.staff` accounts
/// `mitarbeiter0…`), or rounds until `minutes` have passed; prints the figures. Whether no
/// request failed.
pub async fn run(base: String, questions: Vec<String>, load: Load, minutes: Option<f64>) -> Result<bool> {
    let http: Http = Client::builder(TokioExecutor::new()).pool_max_idle_per_host(1024).build_http();
    let questions = Arc::new(questions);
    let started = Instant::now();
    let rss_start = crate::rss_mib();
    let mut total = Tally::default();
    // Logged in once, as at the start of a shift.
    let mut sessions = Vec::new();
    for s in 0..load.staff {
        sessions.extend(login(&http, &base, &format!("mitarbeiter{s}"), &mut total).await);
    }
    let mut round = 0;
    loop {
        round += 1;
        let done = Arc::new(AtomicBool::new(false));
        let staff_tasks: Vec<_> =
            sessions.iter().map(|a| tokio::spawn(staff(http.clone(), base.clone(), a.clone(), done.clone()))).collect();
        let citizens: Vec<_> = (0..load.conversations)
            .map(|c| {
                let person = !sessions.is_empty() && load.handoff_every > 0 && c % load.handoff_every == 0;
                tokio::spawn(citizen(http.clone(), base.clone(), questions.clone(), c, load, person))
            })
            .collect();
        let mut finished = Vec::new();
        for c in citizens {
            finished.push(c.await);
        }
        // Staff stop even when a citizen's task failed.
        done.store(true, Ordering::SeqCst);
        for c in finished {
            total.merge(c?);
        }
        for s in staff_tasks {
            total.merge(s.await?);
        }
        let rss = crate::rss_mib().map_or("?".into(), |m| format!("{m:.0} MiB"));
        println!("round {round} done after {:.0} s; resident memory {rss}", started.elapsed().as_secs_f64());
        if minutes.is_none_or(|m| started.elapsed().as_secs_f64() >= m * 60.0) {
            break;
        }
    }
    let wall = started.elapsed().as_secs_f64();
    // Waits for a message are measurements, not requests.
    let wait = |k: &&str| k.contains("heard");
    let requests: usize = total.by_kind.iter().filter(|(k, _)| !wait(k)).map(|(_, v)| v.len()).sum::<usize>()
        + total.errors.iter().filter(|(k, _)| !wait(k)).map(|(_, n)| n).sum::<usize>();
    println!(
        "mixed load: {} conversations at once x {} questions, every {}th asks for a person, {} staff; {round} round(s), {requests} requests in {wall:.1} s",
        load.conversations, load.turns, load.handoff_every, load.staff
    );
    println!("| request | n | p50 ms | p95 ms | max ms | errors |\n|---|---:|---:|---:|---:|---:|");
    let kinds: std::collections::BTreeSet<&str> = total.by_kind.keys().chain(total.errors.keys()).copied().collect();
    for kind in kinds {
        let mut l = total.by_kind.remove(kind).unwrap_or_default();
        l.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let p = |q: f64| crate::percentile(&l, q);
        println!(
            "| {kind} | {} | {:.1} | {:.1} | {:.1} | {} |",
            l.len(),
            ms(p(0.5)),
            ms(p(0.95)),
            ms(l.last().copied().unwrap_or_default()),
            total.errors.get(kind).copied().unwrap_or(0)
        );
    }
    if let (Some(a), Some(b)) = (rss_start, crate::rss_mib()) {
        println!("resident memory (server and load in one process): {a:.0} MiB at the start, {b:.0} MiB at the end");
    }
    Ok(total.errors.is_empty())
}

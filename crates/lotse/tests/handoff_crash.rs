//! Crash safety of the staff handoff: the real `lotse serve` process with its SQLite database
//! is killed (SIGKILL) while conversations are queued, claimed and being written to, then
//! started again; everything the server had acknowledged must still be there, and the
//! conversations go on.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Reachable around the clock from yesterday to tomorrow, whatever day CI runs on.
fn config(dir: &Path) -> PathBuf {
    let today = jiff::Zoned::now().with_time_zone(jiff::tz::TimeZone::get("Europe/Berlin").unwrap()).date();
    let mut exceptions = String::new();
    for d in [-1i64, 0, 1] {
        let date = today.checked_add(jiff::Span::new().days(d)).unwrap();
        exceptions
            .push_str(&format!("[[handoff.schedule.exceptions]]\ndate = \"{date}\"\nhours = \"00:00-24:00\"\n\n"));
    }
    let text = format!(
        "[handoff]\ndatabase = \"sqlite:{}/lotse.db\"\nsweep_millis = 200\n\n[handoff.schedule]\ngeneral = \"buergerservice\"\n\n\
         [[handoff.schedule.teams]]\nid = \"buergerservice\"\nname = \"Bürgerservice\"\n\n{exceptions}",
        dir.display()
    );
    let path = dir.join("lotse.toml");
    std::fs::write(&path, text).unwrap();
    path
}

struct Server {
    child: Child,
    base: String,
}

fn start(config: &Path, port: u16) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lotse"))
        .args(["--no-embeddings", "--config"])
        .arg(config)
        .args(["serve", "--addr", &format!("127.0.0.1:{port}"), "--rate-per-minute", "100000"])
        .current_dir(repo())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(mut r) = agent().get(format!("{base}/health")).call()
            && r.status() == 200
            && r.body_mut().read_to_string().is_ok()
        {
            return Server { child, base };
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("lotse serve did not come up on port {port}");
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

/// (status, body); a connection error (the server is gone) is status 0.
fn post(url: &str, body: Value, staff: Option<&(String, String)>) -> (u16, Value) {
    let mut req = agent().post(url).header("content-type", "application/json");
    if let Some((cookie, csrf)) = staff {
        req = req.header("cookie", cookie).header("x-csrf-token", csrf);
    }
    match req.send(body.to_string()) {
        Ok(mut r) => {
            let status = r.status().as_u16();
            let text = r.body_mut().read_to_string().unwrap_or_default();
            (status, serde_json::from_str(&text).unwrap_or(Value::Null))
        }
        Err(_) => (0, Value::Null),
    }
}

fn get(url: &str, staff: &(String, String)) -> (u16, Value) {
    let mut r = agent().get(url).header("cookie", &staff.0).call().unwrap();
    let status = r.status().as_u16();
    (status, serde_json::from_str(&r.body_mut().read_to_string().unwrap_or_default()).unwrap_or(Value::Null))
}

fn login(base: &str) -> (String, String) {
    let r = agent()
        .post(format!("{base}/staff/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .send("name=anna&password=ein+gutes+Passwort")
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
    let (_, me) = get(&format!("{base}/staff/api/me"), &(cookie.clone(), String::new()));
    (cookie, me["csrf"].as_str().unwrap().to_string())
}

#[test]
fn sigkill_while_queued_claimed_and_writing_loses_nothing_acknowledged() {
    let dir = std::env::temp_dir().join(format!("lotse-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let config = config(&dir);
    let added = Command::new(env!("CARGO_BIN_EXE_lotse"))
        .arg("--config")
        .arg(&config)
        .args(["staff", "add", "anna", "--display-name", "Anna"])
        .env("LOTSE_STAFF_PASSWORD", "ein gutes Passwort")
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));

    let port = free_port();
    let mut server = start(&config, port);
    let base = server.base.clone();
    let mut convs = Vec::new();
    for _ in 0..4 {
        let (status, v) = post(&format!("{base}/api/v1/conversations"), json!({}), None);
        assert_eq!(status, 201);
        let id = v["id"].as_str().unwrap().to_string();
        let (status, r) = post(
            &format!("{base}/api/v1/conversations/{id}/messages"),
            json!({"text": "Ich möchte mit einem Menschen sprechen"}),
            None,
        );
        assert_eq!((status, r["reply"]["handoff"]["state"].as_str()), (200, Some("queued")), "{r}");
        convs.push(id);
    }
    let staff = login(&base);
    let (_, q) = get(&format!("{base}/staff/api/queue"), &staff);
    let items = q["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 4);
    let claimed: Vec<String> = items[..2].iter().map(|i| i["id"].as_str().unwrap().to_string()).collect();
    for h in &claimed {
        assert_eq!(post(&format!("{base}/staff/api/handoffs/{h}/claim"), json!({}), Some(&staff)).0, 200);
    }
    let conv_of = |h: &str| -> String {
        let (_, d) = get(&format!("{base}/staff/api/handoffs/{h}"), &staff);
        d["handoff"]["conversation_id"].as_str().unwrap().to_string()
    };
    let claimed_convs: Vec<String> = claimed.iter().map(|h| conv_of(h)).collect();

    // Writers: the citizens of the claimed conversations and their staff member, as fast as the
    // server answers. Every acknowledged line is remembered.
    let acked: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for (h, c) in claimed.iter().cloned().zip(claimed_convs.iter().cloned()) {
        for who in ["citizen", "staff"] {
            let (acked, stop, base, staff, h, c) =
                (acked.clone(), stop.clone(), base.clone(), staff.clone(), h.clone(), c.clone());
            writers.push(std::thread::spawn(move || {
                for i in 0.. {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let text = format!("{who} {i} in {c}");
                    let ok = if who == "citizen" {
                        let (s, v) =
                            post(&format!("{base}/api/v1/conversations/{c}/messages"), json!({"text": text}), None);
                        s == 200 && v["relayed"] == true
                    } else {
                        post(&format!("{base}/staff/api/handoffs/{h}/reply"), json!({"text": text}), Some(&staff)).0
                            == 200
                    };
                    if !ok {
                        return;
                    }
                    acked.lock().unwrap().push((c.clone(), text));
                }
            }));
        }
    }
    std::thread::sleep(Duration::from_millis(1500));
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();
    stop.store(true, Ordering::SeqCst);
    for w in writers {
        w.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 20, "the writers wrote too little before the kill: {}", acked.len());

    let server2 = start(&config, port);
    // The session survived too.
    let (status, q) = get(&format!("{base}/staff/api/queue"), &staff);
    assert_eq!(status, 200, "the staff session survives a restart");
    let states: Vec<&str> = q["items"].as_array().unwrap().iter().map(|i| i["state"].as_str().unwrap()).collect();
    assert_eq!(states.len(), 4, "{q}");
    assert_eq!(states.iter().filter(|s| **s == "waiting").count(), 2, "{states:?}");
    assert_eq!(states.iter().filter(|s| **s == "active").count(), 2, "{states:?}");
    for (h, c) in claimed.iter().zip(&claimed_convs) {
        let (_, d) = get(&format!("{base}/staff/api/handoffs/{h}"), &staff);
        let lines: Vec<String> =
            d["transcript"].as_array().unwrap().iter().map(|m| m["text"].as_str().unwrap().to_string()).collect();
        for (conv, text) in acked.iter().filter(|(conv, _)| conv == c) {
            assert!(lines.contains(text), "acknowledged line lost in {conv}: {text}");
        }
        // Lines are numbered without gaps.
        let seqs: Vec<i64> = d["transcript"].as_array().unwrap().iter().map(|m| m["seq"].as_i64().unwrap()).collect();
        assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>());
    }
    // The citizen goes on after the restart: still with staff, the bot still silent.
    let (status, v) = post(
        &format!("{base}/api/v1/conversations/{}/messages", claimed_convs[0]),
        json!({"text": "Sind Sie noch da?"}),
        None,
    );
    assert_eq!((status, v["relayed"].as_bool()), (200, Some(true)), "{v}");
    drop(server2);
    eprintln!("{} acknowledged lines before SIGKILL, all there after the restart", acked.len());
    let _ = std::fs::remove_dir_all(&dir);
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

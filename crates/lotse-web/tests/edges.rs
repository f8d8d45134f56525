//! The server's edges under abuse, over real TCP on loopback: half-open connections that never
//! finish their request (slowloris) and a flood of event streams, while a citizen asks a
//! question. The slowloris comes from another loopback address (127.0.0.2, which Linux
//! routes like 127.0.0.1), as another machine would; the citizen's side (127.0.0.1) is
//! counted as a proxy's, so that only the server's own limits decide.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

struct Server {
    addr: SocketAddr,
    rt: tokio::runtime::Runtime,
    _stop: tokio::sync::oneshot::Sender<()>,
}

fn server(limits: lotse_web::Limits) -> Server {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../knowledge");
    let kb = Arc::new(lotse_knowledge::load_dir(&dir).expect("curated knowledge loads"));
    let index = Arc::new(lotse_search::SearchIndex::build(&kb).unwrap());
    let engine = Arc::new(lotse_dialog::Engine::new(kb, index, lotse_dialog::EngineConfig::default()));
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let state = lotse_web::AppState::new(engine, limits, false);
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    rt.spawn(lotse_web::serve_on(state, listener, async {
        let _ = stopped.await;
    }));
    Server { addr, rt, _stop: stop }
}

/// A TCP connection to the server from another loopback address.
fn connect_from(s: &Server, from: &str) -> std::net::TcpStream {
    let stream = s.rt.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
        socket.connect(s.addr).await.unwrap()
    });
    let stream = stream.into_std().unwrap();
    stream.set_nonblocking(false).unwrap();
    stream
}

/// Whether the server has closed the connection (reading ends) rather than waiting for more.
fn closed(mut stream: &std::net::TcpStream) -> bool {
    stream.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    let mut buf = [0u8; 512];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            // A response (a timeout's 408, say) before the close: read on.
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return false;
            }
            Err(_) => return true,
        }
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

/// A citizen's question from 127.0.0.1: the answer and how long it took.
fn ask(s: &Server) -> (Value, Duration) {
    let started = Instant::now();
    let mut res = agent().post(format!("http://{}/api/v1/conversations", s.addr)).send_json(json!({})).unwrap();
    assert_eq!(res.status().as_u16(), 201);
    let id = res.body_mut().read_json::<Value>().unwrap()["id"].as_str().unwrap().to_string();
    let mut res = agent()
        .post(format!("http://{}/api/v1/conversations/{id}/messages", s.addr))
        .send_json(json!({"text": "Was kostet ein Personalausweis?"}))
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    (res.body_mut().read_json::<Value>().unwrap(), started.elapsed())
}

#[cfg(target_os = "linux")]
#[test]
fn a_slowloris_and_an_event_stream_flood_leave_a_citizen_answered() {
    // Without a share per client, the slowloris's 100 connections would fill all 40.
    let s = server(lotse_web::Limits {
        requests_per_minute: 1_000_000,
        header_timeout: Duration::from_secs(1),
        max_connections: 40,
        max_connections_per_client: 16,
        trusted_proxies: vec![std::net::Ipv4Addr::LOCALHOST.into()],
        max_streams: 6,
        max_streams_per_conversation: 2,
        ..Default::default()
    });

    // Slowloris: 100 connections from one machine, each with half a request head.
    let mut loris: Vec<std::net::TcpStream> = (0..100).map(|_| connect_from(&s, "127.0.0.2")).collect();
    for c in &mut loris {
        // A connection the server already closed may refuse the write: that is the point.
        let _ = c.write_all(b"GET /health HTTP/1.1\r\nHost: lotse\r\n");
    }
    std::thread::sleep(Duration::from_millis(300));
    let open = loris.iter().filter(|c| !closed(c)).count();
    assert!(open <= 16, "one client keeps at most its share of connections open: {open}");
    // A citizen elsewhere is answered meanwhile, within a second.
    let (reply, took) = ask(&s);
    assert_eq!(reply["reply"]["kind"], "answer", "{reply}");
    assert!(took < Duration::from_secs(1), "answered in {took:?}");
    // And no half-open connection outlives the time a request's head may take.
    std::thread::sleep(Duration::from_millis(1500));
    let open = loris.iter().filter(|c| !closed(c)).count();
    assert_eq!(open, 0, "half-open connections left open");

    // An event stream flood on one conversation, then on many: each beyond the limits is
    // refused with 429, and the ones open keep their place.
    let mut res = agent().post(format!("http://{}/api/v1/conversations", s.addr)).send_json(json!({})).unwrap();
    let id = res.body_mut().read_json::<Value>().unwrap()["id"].as_str().unwrap().to_string();
    let stream = |id: &str| agent().get(format!("http://{}/api/v1/conversations/{id}/events", s.addr)).call().unwrap();
    let mut held = Vec::new();
    let statuses: Vec<u16> = (0..4)
        .map(|_| {
            let r = stream(&id);
            let status = r.status().as_u16();
            held.push(r);
            status
        })
        .collect();
    assert_eq!(statuses, [200, 200, 429, 429], "two streams per conversation");
    let mut others = Vec::new();
    for _ in 0..6 {
        let mut res = agent().post(format!("http://{}/api/v1/conversations", s.addr)).send_json(json!({})).unwrap();
        let other = res.body_mut().read_json::<Value>().unwrap()["id"].as_str().unwrap().to_string();
        let r = stream(&other);
        others.push(r.status().as_u16());
        held.push(r);
    }
    assert_eq!(others, [200, 200, 200, 200, 429, 429], "six streams in all");
    let (reply, took) = ask(&s);
    assert_eq!(reply["reply"]["kind"], "answer", "{reply}");
    assert!(took < Duration::from_secs(1), "answered in {took:?}");
    // A stream given up frees its place.
    held.clear();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(stream(&id).status().as_u16(), 200, "the places are free again");
}

//! The bridge with kamailio (Debian's package). As the city's SIP proxy
//! (`kamailio/dispatcher.cfg`) it dispatches calls from sipp to two bridge instances, round
//! robin; in-dialog requests follow the Record-Route to the bridge that has the call. When one
//! bridge stops, new calls go to the other; a full bridge's 503 sends the call on as well. As a
//! PBX that wants the bridge as an extension (`tests/kamailio-registrar.cfg`) it takes the
//! bridge's REGISTER only with the right digest credentials and routes the extension's calls to
//! it. The bridges' conversations play nothing (no models): this is about the signalling.
//! `scripts/test` installs kamailio and sipp.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use lotse_sip_bridge::probe::{self, HEAD, KAMAILIO, invite};
use lotse_sip_bridge::{Bridge, Calls, Config, Line, Register, Registered};

fn required(what: &str) {
    assert!(std::env::var_os("LOTSE_REQUIRE_MODELS").is_none(), "{what} missing");
    eprintln!("skipped: {what} missing");
}

fn have(cmd: &str) -> bool {
    Command::new("sh").arg("-c").arg(format!("command -v {cmd}")).output().is_ok_and(|o| o.status.success())
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("lotse-kamailio-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

/// The tests take turns: they share the directory of kamailio's files.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A line that counts its calls and plays nothing.
#[derive(Default)]
struct Counted {
    calls: Arc<AtomicUsize>,
}

impl Calls for Counted {
    fn run(&self, line: Line) {
        self.calls.fetch_add(1, Ordering::SeqCst);
        (line.on_player)(Arc::default());
        while line.inbound.recv().is_ok() {}
    }
}

/// The project's dispatcher configuration, which a city's proxy starts from.
fn dispatcher_cfg() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("kamailio/dispatcher.cfg")
}

fn free_port() -> u16 {
    probe::free_port().unwrap()
}

/// A call through the proxy: INVITE, 200 (its Record-Route kept), ACK and BYE along the
/// route to the bridge that answered, after `secs` seconds.
fn call_through(secs: f32) -> String {
    call_to("lotse", secs)
}

/// [`call_through`] for the SIP user `user` (an extension).
fn call_to(user: &str, secs: f32) -> String {
    format!(
        r#"{HEAD}
{}  <recv response="200" rrs="true"/>
{}  <pause milliseconds="{}"/>
{}  <recv response="200"/>
</scenario>
"#,
        invite("      m=audio 16000 RTP/AVP 0 101\n      a=rtpmap:101 telephone-event/8000")
            .replace("INVITE sip:lotse@", &format!("INVITE sip:{user}@")),
        probe::routed("ACK", 1),
        (secs * 1000.0) as u64,
        probe::routed("BYE", 2),
    )
}

fn sipp(proxy: SocketAddr, name: &str, scenario: &str) -> bool {
    probe::sipp(proxy, &tmp(""), name, scenario, Duration::from_secs(30)).expect("sipp runs")
}

fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !ok() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A test's turn (the tests share kamailio's folder), its log and runtime; none where sipp or
/// kamailio is missing (an error where the tests must run).
fn setup() -> Option<(std::sync::MutexGuard<'static, ()>, tokio::runtime::Runtime)> {
    let one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    if !have("sipp") || !Path::new(KAMAILIO).exists() {
        required("sipp or kamailio (apt install sip-tester kamailio)");
        return None;
    }
    let _ = tracing_subscriber::fmt().with_test_writer().with_env_filter("info,rsipstack=warn").try_init();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    Some((one, rt))
}

#[test]
fn the_proxy_spreads_calls_over_two_bridges_and_skips_a_stopped_or_full_one() {
    let Some((_one, rt)) = setup() else { return };
    let (one, two) = (Counted::default(), Counted::default());
    let (calls_one, calls_two) = (one.calls.clone(), two.calls.clone());
    let config = Config { listen: "127.0.0.1:0".parse().unwrap(), max_calls: 1, ..Default::default() };
    let first = rt.block_on(Bridge::start(config.clone(), Arc::new(one))).unwrap();
    let second = rt.block_on(Bridge::start(config, Arc::new(two))).unwrap();
    let at: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    // Up when an OPTIONS through it is answered (by a bridge).
    let _proxy =
        probe::dispatcher(&dispatcher_cfg(), at, &[first.local_addr(), second.local_addr()], &tmp("")).unwrap();

    // Round robin: of four calls one after the other, each bridge takes two; BYE reaches the
    // bridge that has the call (its line is free again).
    let before = (calls_one.load(Ordering::SeqCst), calls_two.load(Ordering::SeqCst));
    for i in 0..4 {
        assert!(sipp(at, &format!("call{i}"), &call_through(1.0)), "call {i} through the proxy");
        wait_for("the line is free after BYE", || first.calls() == 0 && second.calls() == 0);
    }
    let spread = (calls_one.load(Ordering::SeqCst) - before.0, calls_two.load(Ordering::SeqCst) - before.1);
    assert_eq!(spread, (2, 2), "calls per bridge");

    // A full bridge (its one line busy) answers 503: the proxy sends the call to the other.
    // Of two calls while the long one lasts, round robin offers one to the full bridge.
    let long = std::thread::spawn(move || sipp(at, "long", &call_through(8.0)));
    wait_for("the long call is up", || first.calls() + second.calls() == 1);
    let full_one = first.calls() == 1;
    let counts = || (calls_one.load(Ordering::SeqCst), calls_two.load(Ordering::SeqCst));
    let during = counts();
    for i in 0..2 {
        assert!(sipp(at, &format!("while-full{i}"), &call_through(0.5)), "call {i} while one bridge is full");
        wait_for("the free bridge's line is free", || first.calls() + second.calls() == 1);
    }
    let after = counts();
    let taken = if full_one { (0, 2) } else { (2, 0) };
    assert_eq!((after.0 - during.0, after.1 - during.1), taken, "both went to the free bridge");
    assert!(long.join().unwrap(), "the long call ended by BYE");
    wait_for("both lines free", || first.calls() == 0 && second.calls() == 0);

    // The first bridge stops (a node taken down): new calls all go to the second.
    let on_second = calls_two.load(Ordering::SeqCst);
    rt.block_on(first.shutdown());
    for i in 0..3 {
        assert!(sipp(at, &format!("after-stop{i}"), &call_through(0.5)), "call {i} after one bridge stopped");
        wait_for("the line is free", || second.calls() == 0);
    }
    assert_eq!(calls_two.load(Ordering::SeqCst) - on_second, 3, "the stopped bridge's calls went to the other");
    rt.block_on(second.shutdown());
    let _ = std::fs::remove_dir_all(tmp(""));
}

#[test]
fn the_bridge_registers_as_an_extension_with_digest_credentials_and_takes_its_calls() {
    let Some((_one, rt)) = setup() else { return };
    let at: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let _pbx = probe::kamailio(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kamailio-registrar.cfg"),
        &[("LISTEN", &at.to_string()), ("EXTENSION", "4900"), ("PASSWORD", "Hotline-2026")],
        &tmp(""),
    )
    .unwrap();
    // The PBX answers OPTIONS for itself.
    probe::answers(at, &tmp(""), Duration::from_secs(20)).unwrap();
    let extension = |password: &str| Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        max_calls: 1,
        register: Some(Register {
            registrar: format!("sip:{at}"),
            user: "4900".into(),
            auth_user: None,
            password: password.into(),
            expires: 300,
        }),
        ..Default::default()
    };
    let state = |bridge: &Bridge, want: fn(Registered) -> bool| {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let now = bridge.registered();
            if want(now) {
                return now;
            }
            assert!(Instant::now() < deadline, "the registration is {now:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };

    // A wrong password: refused, and no call reaches that bridge.
    let wrong = rt.block_on(Bridge::start(extension("falsch"), Arc::new(Counted::default()))).unwrap();
    let refused = state(&wrong, |r| matches!(r, Registered::Failed(_)));
    assert!(matches!(refused, Registered::Failed(401 | 403)), "{refused:?}");
    let unanswered = format!(
        "{HEAD}\n{}  <recv response=\"404\"/>\n{}</scenario>\n",
        invite("      m=audio 16000 RTP/AVP 0").replace("INVITE sip:lotse@", "INVITE sip:4900@"),
        probe::request("ACK", 1, true)
    );
    assert!(sipp(at, "unregistered", &unanswered), "no registration, no route to the extension: 404");
    rt.block_on(wrong.shutdown());

    // The right one: registered, and a call for the extension reaches the bridge.
    let counted = Counted::default();
    let calls = counted.calls.clone();
    let bridge = rt.block_on(Bridge::start(extension("Hotline-2026"), Arc::new(counted))).unwrap();
    state(&bridge, |r| r == Registered::Yes);
    assert!(sipp(at, "extension", &call_to("4900", 1.0)), "a call for 4900 through the PBX");
    wait_for("the line is free after BYE", || bridge.calls() == 0);
    assert_eq!(calls.load(Ordering::SeqCst), 1, "the registered bridge took the call");
    // Another extension is not the bridge's.
    let other = unanswered.replace("INVITE sip:4900@", "INVITE sip:4901@");
    assert!(sipp(at, "other", &other), "another extension: 404");

    // Stopped, the bridge takes its registration back: the PBX no longer routes there.
    rt.block_on(bridge.shutdown());
    assert!(sipp(at, "after-stop", &unanswered), "after the bridge stopped: 404");
    let _ = std::fs::remove_dir_all(tmp(""));
}

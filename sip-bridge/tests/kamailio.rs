//! Several bridges behind the city's SIP proxy: kamailio (Debian's package, `tests/kamailio.cfg`)
//! dispatches calls from sipp to two bridge instances, round robin; in-dialog requests follow
//! the Record-Route to the bridge that has the call. When one bridge stops, new calls go to the
//! other; a full bridge's 503 sends the call on as well. The bridges' conversations play
//! nothing (no models): this is about the signalling. `scripts/test` installs kamailio and sipp.

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use lotse_sip_bridge::probe::{self, HEAD, invite};
use lotse_sip_bridge::{Bridge, Calls, Config, Line};

const KAMAILIO: &str = "/usr/sbin/kamailio";

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

/// kamailio, stopped when dropped.
struct Proxy(Child);

impl Drop for Proxy {
    fn drop(&mut self) {
        // SIGTERM: kamailio's main process then stops the workers it forked (SIGKILL would
        // leave them holding the port).
        let stopped = Command::new("kill").arg("-TERM").arg(self.0.id().to_string()).status();
        if !stopped.is_ok_and(|s| s.success()) {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// kamailio on `at` in front of `bridges`, with the project's configuration.
fn proxy(at: SocketAddr, bridges: &[SocketAddr]) -> Proxy {
    let list = tmp("dispatcher.list");
    let lines: Vec<String> = bridges.iter().map(|b| format!("1 sip:{b}\n")).collect();
    std::fs::write(&list, lines.concat()).unwrap();
    let cfg = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kamailio.cfg"))
        .unwrap()
        .replace("LISTEN", &at.to_string())
        .replace("DISPATCHER_LIST", &list.display().to_string());
    let file = tmp("kamailio.cfg");
    std::fs::write(&file, cfg).unwrap();
    let run = tmp("run");
    std::fs::create_dir_all(&run).unwrap();
    let log = std::fs::File::create(tmp("kamailio.log")).unwrap();
    let child = Command::new(KAMAILIO)
        .arg("-f")
        .arg(&file)
        .args(["-DD", "-E", "-m", "32", "-M", "8"])
        .arg("-Y")
        .arg(&run)
        .arg("-w")
        .arg(tmp(""))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("kamailio starts");
    Proxy(child)
}

/// A call through the proxy: INVITE, 200 (its Record-Route kept), ACK and BYE along the
/// route to the bridge that answered, after `secs` seconds.
fn call_through(secs: f32) -> String {
    let in_dialog = |method: &str, cseq: u32| {
        format!(
            r#"  <send{}><![CDATA[
      {method} [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "Test" <sip:caller@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:lotse@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: {cseq} {method}
      Contact: <sip:caller@[local_ip]:[local_port]>
      [routes]
      Max-Forwards: 70
      Content-Length: 0
    ]]></send>
"#,
            if method == "ACK" { "" } else { r#" retrans="500""# }
        )
    };
    format!(
        r#"{HEAD}
{}  <recv response="200" rrs="true"/>
{}  <pause milliseconds="{}"/>
{}  <recv response="200"/>
</scenario>
"#,
        invite("      m=audio 16000 RTP/AVP 0 101\n      a=rtpmap:101 telephone-event/8000"),
        in_dialog("ACK", 1),
        (secs * 1000.0) as u64,
        in_dialog("BYE", 2),
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

#[test]
fn the_proxy_spreads_calls_over_two_bridges_and_skips_a_stopped_or_full_one() {
    if !have("sipp") || !Path::new(KAMAILIO).exists() {
        return required("sipp or kamailio (apt install sip-tester kamailio)");
    }
    let _ = tracing_subscriber::fmt().with_test_writer().with_env_filter("info,rsipstack=warn").try_init();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (one, two) = (Counted::default(), Counted::default());
    let (calls_one, calls_two) = (one.calls.clone(), two.calls.clone());
    let config = Config { listen: "127.0.0.1:0".parse().unwrap(), max_calls: 1 };
    let first = rt.block_on(Bridge::start(config.clone(), Arc::new(one))).unwrap();
    let second = rt.block_on(Bridge::start(config, Arc::new(two))).unwrap();
    let at: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let _proxy = proxy(at, &[first.local_addr(), second.local_addr()]);
    // The proxy is up when an OPTIONS through it is answered (by a bridge).
    let options = format!(
        "{HEAD}\n{}  <recv response=\"200\"/>\n</scenario>\n",
        lotse_sip_bridge::probe::request("OPTIONS", 1, false)
    );
    let up = Instant::now();
    while !probe::sipp(at, &tmp(""), "options", &options, Duration::from_secs(3)).unwrap_or(false) {
        assert!(up.elapsed() < Duration::from_secs(20), "kamailio answers (see {})", tmp("kamailio.log").display());
    }

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

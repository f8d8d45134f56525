//! baresip (Debian's baresip-core), a softphone, calls the bridge and is driven over its
//! `ctrl_tcp` module as a city's IT would drive it from a script: dial, send keys, hang up.
//! The bridge's conversation plays nothing and keeps the keys it gets (no models): this is
//! about a second, independent SIP and RTP stack meeting the bridge. `scripts/test` installs
//! baresip.

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lotse_sip_bridge::{Bridge, Calls, Config, Line};

/// Where Debian's baresip-core puts its modules (baresip has no default of its own).
const MODULES: &str = "/usr/lib/baresip/modules";

fn required(what: &str) {
    assert!(std::env::var_os("LOTSE_REQUIRE_MODELS").is_none(), "{what} missing");
    eprintln!("skipped: {what} missing");
}

fn have(cmd: &str) -> bool {
    Command::new("sh").arg("-c").arg(format!("command -v {cmd}")).output().is_ok_and(|o| o.status.success())
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("lotse-baresip-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A line that plays nothing and keeps the keys it gets.
#[derive(Default)]
struct Keys {
    keys: Arc<Mutex<String>>,
}

impl Calls for Keys {
    fn run(&self, line: Line) {
        (line.on_player)(Arc::default());
        while let Ok(input) = line.inbound.recv() {
            if let lotse_call::Inbound::Key(k) = input {
                self.keys.lock().unwrap().push(k);
            }
        }
    }
}

/// baresip, stopped when dropped.
struct Phone(Child);

impl Drop for Phone {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// baresip's control connection: commands and events as JSON in netstrings.
struct Control {
    tcp: TcpStream,
    buf: Vec<u8>,
    /// Events read while waiting for a command's response, for [`Control::event`].
    events: std::collections::VecDeque<serde_json::Value>,
}

impl Control {
    fn connect(port: u16) -> Control {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match TcpStream::connect(("127.0.0.1", port)) {
                Ok(tcp) => {
                    tcp.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
                    return Control { tcp, buf: Vec::new(), events: Default::default() };
                }
                Err(e) => {
                    assert!(Instant::now() < deadline, "baresip's ctrl_tcp answers: {e}");
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }

    fn send(&mut self, command: &str, params: &str) {
        let json = serde_json::json!({ "command": command, "params": params, "token": command }).to_string();
        self.tcp.write_all(format!("{}:{json},", json.len()).as_bytes()).unwrap();
    }

    /// The next message within `wait`, if any.
    fn next(&mut self, wait: Duration) -> Option<serde_json::Value> {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(colon) = self.buf.iter().position(|&b| b == b':') {
                let len: usize = std::str::from_utf8(&self.buf[..colon]).ok()?.parse().ok()?;
                // "LEN:" + payload + ",": whole only with its trailing comma.
                if self.buf.len() >= colon + 2 + len {
                    let msg = serde_json::from_slice(&self.buf[colon + 1..colon + 1 + len]).ok();
                    self.buf.drain(..colon + 2 + len);
                    return msg;
                }
            }
            if Instant::now() > deadline {
                return None;
            }
            let mut chunk = [0u8; 4096];
            if let Ok(n) = self.tcp.read(&mut chunk) {
                self.buf.extend_from_slice(&chunk[..n]);
            }
        }
    }

    /// Waits for the event of `kind` (other messages are passed over).
    fn event(&mut self, kind: &str, wait: Duration) -> serde_json::Value {
        if let Some(i) = self.events.iter().position(|m| m["type"] == kind) {
            return self.events.remove(i).expect("found");
        }
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
            if let Some(m) = self.next(deadline.saturating_duration_since(Instant::now()))
                && m["event"] == true
                && m["type"] == kind
            {
                return m;
            }
        }
        panic!("no {kind} from baresip in {wait:?}");
    }

    /// Sends a command and waits for its response: whether it went through.
    fn command(&mut self, command: &str, params: &str) -> bool {
        self.send(command, params);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            match self.next(Duration::from_millis(500)) {
                Some(m) if m["response"] == true && m["token"] == command => return m["ok"] == true,
                Some(m) if m["event"] == true => self.events.push_back(m),
                _ => {}
            }
        }
        false
    }
}

fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !ok() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn baresip_dials_sends_keys_and_hangs_up() {
    if !have("baresip") || !std::path::Path::new(MODULES).join("ctrl_tcp.so").exists() {
        return required("baresip (apt install baresip-core)");
    }
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let line = Keys::default();
    let keys = line.keys.clone();
    let config = Config { listen: "127.0.0.1:0".parse().unwrap(), max_calls: 1, ..Default::default() };
    let bridge = rt.block_on(Bridge::start(config, Arc::new(line))).unwrap();

    // A softphone with no sound device: it sends a silent WAV and plays into nothing.
    let silence = tmp("silence.wav");
    lotse_speech::wav::write(&silence, &vec![0.0; 8000 * 10], 8000).unwrap();
    let (sip, ctrl) = (free_port(), free_port());
    std::fs::write(
        tmp("config"),
        format!(
            "poll_method epoll\nsip_listen 127.0.0.1:{sip}\naudio_player aubridge,nil\n\
             audio_source aufile,{}\naudio_alert aubridge,nil\nmodule_path {MODULES}\n\
             module account.so\nmodule g711.so\nmodule aufile.so\nmodule aubridge.so\n\
             module_app menu.so\nmodule_app ctrl_tcp.so\nctrl_tcp_listen 127.0.0.1:{ctrl}\n",
            silence.display()
        ),
    )
    .unwrap();
    std::fs::write(tmp("accounts"), "<sip:caller@127.0.0.1>;regint=0\n").unwrap();
    let log = std::fs::File::create(tmp("baresip.log")).unwrap();
    let _phone = Phone(
        Command::new("baresip")
            .arg("-f")
            .arg(tmp(""))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("baresip starts"),
    );
    let mut control = Control::connect(ctrl);

    assert!(control.command("dial", &format!("sip:lotse@{}", bridge.local_addr())), "dial");
    control.event("CALL_ESTABLISHED", Duration::from_secs(10));
    assert_eq!(bridge.calls(), 1);
    // Keys, one at a time as a caller presses them: RFC 4733 events (the bridge's answer kept
    // telephone-event), each heard once. baresip names its network interface's address in its
    // offer but sends from loopback, as a phone behind NAT would: the bridge takes RTP from
    // elsewhere only after a second without any from the offered address.
    std::thread::sleep(Duration::from_millis(1500));
    for k in ["0", "5", "#", "*"] {
        assert!(control.command("sndcode", k), "key {k}");
        std::thread::sleep(Duration::from_millis(400));
    }
    wait_for("the keys reached the call", || keys.lock().unwrap().len() >= 4);
    assert_eq!(*keys.lock().unwrap(), "05#*");
    assert!(control.command("hangup", ""), "hang up");
    control.event("CALL_CLOSED", Duration::from_secs(10));
    wait_for("the line is free after the hang-up", || bridge.calls() == 0);
    rt.block_on(bridge.shutdown());
    let _ = std::fs::remove_dir_all(tmp(""));
}

//! A caller for the bridge's tests and `lotse bench sip`: sipp (Debian's sip-tester) places
//! the call and plays the caller's audio as RTP; the bot's RTP comes to a socket of the
//! probe's own (the offer names it as the caller's media address), where it is timed by its
//! arrival. The caller's words are SVOX pico's voice (`pico2wave`), as in `lotse eval voice`.

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};

pub const HEAD: &str = r#"<?xml version="1.0" encoding="UTF-8" ?>
<scenario name="lotse">"#;

/// An INVITE with the given media lines (the offer's address and formats), and the
/// provisional answers it may get.
pub fn invite(media: &str) -> String {
    format!(
        r#"  <send retrans="500"><![CDATA[
      INVITE sip:lotse@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "Test" <sip:caller@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:lotse@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:caller@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=user1 53655765 2353687637 IN IP4 [local_ip]
      s=-
      c=IN IP4 127.0.0.1
      t=0 0
{media}
    ]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
"#
    )
}

/// [`invite`] from the SIP user `from` (a phone number, `anonymous`).
pub fn invite_as(media: &str, from: &str) -> String {
    invite(media)
        .replace("<sip:caller@[local_ip]:[local_port]>;tag", &format!("<sip:{from}@[local_ip]:[local_port]>;tag"))
}

/// A request of the caller's side, in the dialog (with the bridge's tag) or outside it.
pub fn request(method: &str, cseq: u32, dialog: bool) -> String {
    let to_tag = if dialog { "[peer_tag_param]" } else { "" };
    // An ACK is never answered: it is sent once.
    let retrans = if method == "ACK" { "" } else { r#" retrans="500""# };
    format!(
        r#"  <send{retrans}><![CDATA[
      {method} sip:lotse@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "Test" <sip:caller@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:lotse@[remote_ip]:[remote_port]>{to_tag}
      Call-ID: [call_id]
      CSeq: {cseq} {method}
      Contact: <sip:caller@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Length: 0
    ]]></send>
"#
    )
}

/// A request of the caller's side in the dialog, along its route set: to the Contact of the
/// answer, through the proxies that record-routed (the INVITE's 200 must be received with
/// `rrs="true"`). Straight to a bridge there is no route set and it goes to the bridge.
pub fn routed(method: &str, cseq: u32) -> String {
    let retrans = if method == "ACK" { "" } else { r#" retrans="500""# };
    format!(
        r#"  <send{retrans}><![CDATA[
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
"#
    )
}

/// Runs a sipp scenario (one call) against the bridge, in `dir`: whether sipp saw every
/// message it expected. What went wrong is in `dir/NAME-errors.log`.
pub fn sipp(bridge: SocketAddr, dir: &Path, name: &str, scenario: &str, timeout: Duration) -> Result<bool> {
    sipp_with(bridge, dir, name, scenario, timeout, &[])
}

/// [`sipp`] with more of sipp's options.
fn sipp_with(
    bridge: SocketAddr,
    dir: &Path,
    name: &str,
    scenario: &str,
    timeout: Duration,
    more: &[&str],
) -> Result<bool> {
    let file = dir.join(format!("{name}.xml"));
    std::fs::write(&file, scenario)?;
    let errors = dir.join(format!("{name}-errors.log"));
    let status = Command::new("sipp")
        .arg(bridge.to_string())
        .arg("-sf")
        .arg(&file)
        .args(["-m", "1", "-i", "127.0.0.1", "-p", "0", "-mi", "127.0.0.1"])
        .args(["-timeout", &format!("{}s", timeout.as_secs().max(1)), "-timeout_error", "-nostdin"])
        .arg("-trace_err")
        .arg("-error_file")
        .arg(&errors)
        .args(more)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .context("running sipp (Debian: apt install sip-tester)")?;
    if !status.success() {
        let log = std::fs::read_to_string(&errors).unwrap_or_default();
        eprintln!("sipp {name}: {status}\n{log}");
    }
    Ok(status.success())
}

/// pico's voice at 8 kHz as a µ-law WAV for sipp's `rtp_stream`, with `lead` seconds of
/// silence before and three after; returns when the speech starts and ends in it (s).
pub fn question(text: &str, lang: &str, lead: f32, dir: &Path, path: &Path) -> Result<(f32, f32)> {
    let narrow = pico(text, lang, dir)?;
    let voiced = |v: &f32| v.abs() > 0.02;
    let first = narrow.iter().position(voiced).unwrap_or(0);
    let last = narrow.iter().rposition(voiced).unwrap_or(narrow.len());
    let mut x = vec![0.0f32; (lead * 8000.0) as usize];
    x.extend(narrow);
    x.extend(vec![0.0f32; 8000 * 3]);
    mulaw_wav(path, &x)?;
    Ok((lead + first as f32 / 8000.0, lead + last as f32 / 8000.0))
}

/// `text` in SVOX pico's voice (`lang`: `de-DE`, `en-US`), at 8 kHz.
pub fn pico(text: &str, lang: &str, dir: &Path) -> Result<Vec<f32>> {
    let wide = dir.join("pico.wav");
    let ok = Command::new("pico2wave")
        .args(["-l", lang, "-w"])
        .arg(&wide)
        .args(["--", text])
        .status()
        .context("running pico2wave (Debian: libttspico-utils)")?;
    ensure!(ok.success(), "pico2wave failed");
    let (samples, rate) = lotse_speech::wav::read(&wide)?;
    Ok(lotse_speech::resample::convert(&samples, rate, 8000)?)
}

/// 8 kHz audio as a µ-law WAV (format 7), which sipp's `rtp_stream` sends as it is.
pub fn mulaw_wav(path: &Path, samples: &[f32]) -> Result<()> {
    let codes = lotse_speech::g711::Law::Mu.encode(&lotse_speech::resample::to_i16(samples));
    let mut wav = Vec::with_capacity(44 + codes.len());
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + codes.len() as u32).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.extend_from_slice(&16u32.to_le_bytes());
    wav.extend_from_slice(&7u16.to_le_bytes());
    wav.extend_from_slice(&1u16.to_le_bytes());
    wav.extend_from_slice(&8000u32.to_le_bytes());
    wav.extend_from_slice(&8000u32.to_le_bytes());
    wav.extend_from_slice(&1u16.to_le_bytes());
    wav.extend_from_slice(&8u16.to_le_bytes());
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&(codes.len() as u32).to_le_bytes());
    wav.extend_from_slice(&codes);
    std::fs::write(path, wav)?;
    Ok(())
}

/// Frames of audio (8 kHz, 20 ms) by their arrival, in seconds.
type Frames = Vec<(f32, Vec<f32>)>;

/// What a caller heard in one call: 20 ms frames (8 kHz) by their arrival (s after the
/// first packet; the caller's own audio starts with the call too).
pub struct Heard {
    pub frames: Vec<(f32, Vec<f32>)>,
}

/// The level of some audio (root mean square, full scale 1).
pub fn rms(f: &[f32]) -> f32 {
    (f.iter().map(|v| v * v).sum::<f32>() / f.len().max(1) as f32).sqrt()
}

/// A frame with sound in it (above the line's silence).
const SOUND: f32 = 0.01;

impl Heard {
    pub fn rms(&self, from: f32, to: f32) -> f32 {
        let x: Vec<f32> =
            self.frames.iter().filter(|(t, _)| *t >= from && *t < to).flat_map(|(_, f)| f.iter().copied()).collect();
        rms(&x)
    }

    /// The first frame with sound after `t`.
    pub fn sound_after(&self, t: f32) -> Option<f32> {
        self.frames.iter().find(|(at, f)| *at > t && rms(f) > SOUND).map(|(at, _)| *at)
    }

    /// When the bot's audio between `from` and `to` last had sound (the end of its last frame
    /// with sound): where it stopped talking and stayed silent until `to`.
    pub fn quiet_from(&self, from: f32, to: f32) -> f32 {
        self.frames
            .iter()
            .filter(|(at, f)| *at >= from && *at < to && rms(f) > SOUND)
            .map(|(at, _)| at + 0.02)
            .fold(from, f32::max)
    }

    /// Everything from `t` on.
    pub fn from(&self, t: f32) -> Vec<f32> {
        self.frames.iter().filter(|(at, _)| *at >= t).flat_map(|(_, f)| f.iter().copied()).collect()
    }

    pub fn all(&self) -> Vec<f32> {
        self.from(0.0)
    }
}

/// One call from sipp: the WAV played from the start as PCMU, `listen` seconds, BYE. The
/// bot's audio as the caller heard it.
pub fn call(bridge: SocketAddr, dir: &Path, name: &str, wav: &Path, listen: f32) -> Result<Heard> {
    call_as(bridge, dir, name, wav, listen, "caller", true)
}

/// [`call`] from the SIP user `from` (a phone number, say), offering RFC 4733 key events or
/// not (keys are then tones in the WAV).
pub fn call_as(
    bridge: SocketAddr,
    dir: &Path,
    name: &str,
    wav: &Path,
    listen: f32,
    from: &str,
    events: bool,
) -> Result<Heard> {
    let ear = UdpSocket::bind("127.0.0.1:0")?;
    ear.set_read_timeout(Some(Duration::from_millis(200)))?;
    let ear_port = ear.local_addr()?.port();
    let scenario = format!(
        r#"{HEAD}
{}  <recv response="200" rrs="true"/>
{}  <nop><action><exec rtp_stream="{},1,0"/></action></nop>
  <pause milliseconds="{}"/>
{}  <recv response="200"/>
</scenario>
"#,
        invite_as(
            &if events {
                format!("      m=audio {ear_port} RTP/AVP 0 101\n      a=rtpmap:101 telephone-event/8000")
            } else {
                format!("      m=audio {ear_port} RTP/AVP 0")
            },
            from
        ),
        routed("ACK", 1),
        wav.display(),
        (listen * 1000.0) as u64,
        routed("BYE", 2)
    );
    let (dir2, name2) = (dir.to_path_buf(), name.to_string());
    let caller =
        std::thread::spawn(move || sipp(bridge, &dir2, &name2, &scenario, Duration::from_secs_f32(listen + 20.0)));
    let mut frames: Vec<(f32, Vec<f32>)> = Vec::new();
    let mut start: Option<Instant> = None;
    let mut buf = [0u8; 2048];
    let begun = Instant::now();
    while start.is_none_or(|s| s.elapsed().as_secs_f32() < listen) {
        match ear.recv(&mut buf) {
            Ok(n) => {
                let s = *start.get_or_insert_with(Instant::now);
                let Ok(p) = crate::rtp::parse(&buf[..n]) else { continue };
                ensure!(p.payload_type == 0, "the bridge sent payload type {}, not the offered PCMU", p.payload_type);
                let pcm = lotse_speech::resample::to_f32(&lotse_speech::g711::Law::Mu.decode(p.payload));
                frames.push((s.elapsed().as_secs_f32(), pcm));
            }
            Err(_) if start.is_some() || begun.elapsed().as_secs() < 20 => continue,
            Err(e) => bail!("no RTP from the bridge in 20 s: {e}"),
        }
    }
    let ok = caller.join().map_err(|_| anyhow::anyhow!("the sipp thread panicked"))??;
    ensure!(ok, "sipp's call {name} failed (see {})", dir.join(format!("{name}-errors.log")).display());
    Ok(Heard { frames })
}

/// A call in which the caller speaks over the answer. sipp places the call; the caller's RTP
/// (PCMU, every 20 ms) comes from this probe's own socket, the one the offer names, so the
/// caller can react to what they hear: `question` (8 kHz) from 1 s on, then, once the answer has
/// sounded for `into` seconds (mid-sentence), `interruption`. What the caller heard and when
/// the interruption's speech began, on one clock (s from the bot's first packet); none when
/// no answer sounded that long in `listen` seconds.
pub fn interrupt(
    bridge: SocketAddr,
    dir: &Path,
    name: &str,
    question: &[f32],
    interruption: &[f32],
    into: f32,
    listen: f32,
) -> Result<(Heard, Option<f32>)> {
    use std::sync::{Arc, Mutex};
    let ear = UdpSocket::bind("127.0.0.1:0")?;
    ear.set_read_timeout(Some(Duration::from_millis(200)))?;
    let port = ear.local_addr()?.port();
    let scenario = format!(
        "{HEAD}\n{}  <recv response=\"200\"/>\n{}  <pause milliseconds=\"{}\"/>\n{}  <recv response=\"200\"/>\n</scenario>\n",
        invite(&format!("      m=audio {port} RTP/AVP 0")),
        request("ACK", 1, true),
        (listen * 1000.0) as u64,
        request("BYE", 2, true)
    );
    let (dir2, name2) = (dir.to_path_buf(), name.to_string());
    let caller =
        std::thread::spawn(move || sipp(bridge, &dir2, &name2, &scenario, Duration::from_secs_f32(listen + 20.0)));
    // The bot's first packet starts the clock and names where the caller's RTP goes.
    let mut buf = [0u8; 2048];
    let begun = Instant::now();
    let (n, media) = loop {
        match ear.recv_from(&mut buf) {
            Ok(got) => break got,
            Err(_) if begun.elapsed().as_secs() < 20 => continue,
            Err(e) => bail!("no RTP from the bridge in 20 s: {e}"),
        }
    };
    let start = Instant::now();
    let decode = |data: &[u8]| -> Option<Vec<f32>> {
        let p = crate::rtp::parse(data).ok()?;
        (p.payload_type == 0).then(|| lotse_speech::resample::to_f32(&lotse_speech::g711::Law::Mu.decode(p.payload)))
    };
    let frames: Arc<Mutex<Frames>> = Arc::default();
    frames.lock().unwrap_or_else(|e| e.into_inner()).extend(decode(&buf[..n]).map(|f| (0.0, f)));
    let ear2 = ear.try_clone()?;
    let heard = frames.clone();
    let listening = std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while start.elapsed().as_secs_f32() < listen {
            if let Ok(n) = ear2.recv(&mut buf)
                && let Some(f) = decode(&buf[..n])
            {
                heard.lock().unwrap_or_else(|e| e.into_inner()).push((start.elapsed().as_secs_f32(), f));
            }
        }
    });
    // The caller's side: the question from 1 s on, then silence, and the interruption once
    // the answer has sounded for `into` seconds after the question.
    let mut out: std::collections::VecDeque<f32> =
        std::iter::repeat_n(0.0, 8000).chain(question.iter().copied()).collect();
    let question_end = out.len() as f32 / 8000.0;
    let lead = interruption.iter().position(|v| v.abs() > 0.02).unwrap_or(0) as f32 / 8000.0;
    let mut barge = None;
    let mut packet = Vec::new();
    let mut seq = 0u16;
    let frame_of = |t: f32| (t * 50.0) as usize;
    for tick in 0usize.. {
        let due = Duration::from_millis(20 * tick as u64);
        std::thread::sleep(due.saturating_sub(start.elapsed()));
        let now = start.elapsed().as_secs_f32();
        if now >= listen {
            break;
        }
        if barge.is_none() && now > question_end {
            let recent = frames.lock().unwrap_or_else(|e| e.into_inner());
            let wanted = frame_of(into);
            // Mid-sentence: most of the last `into` seconds sounded (a word's stops may dip),
            // and so did the last two frames.
            let sounding = recent.len() >= wanted && {
                let last = &recent[recent.len() - wanted..];
                let loud = |(t, f): &(f32, Vec<f32>)| *t > question_end && rms(f) > SOUND;
                last.iter().filter(|x| loud(x)).count() * 5 >= wanted * 4 && last.iter().rev().take(2).all(loud)
            };
            drop(recent);
            if sounding {
                barge = Some(now + lead);
                out.extend(interruption.iter().copied());
            }
        }
        let samples: Vec<f32> = (0..160).map(|_| out.pop_front().unwrap_or(0.0)).collect();
        let codes = lotse_speech::g711::Law::Mu.encode(&lotse_speech::resample::to_i16(&samples));
        let p = crate::rtp::Packet {
            marker: tick == 0,
            payload_type: 0,
            sequence: seq,
            timestamp: (tick * 160) as u32,
            ssrc: 0x4361_6c6c,
            payload: &codes,
        };
        crate::rtp::build(&p, &mut packet);
        ear.send_to(&packet, media)?;
        seq = seq.wrapping_add(1);
    }
    let _ = listening.join();
    let ok = caller.join().map_err(|_| anyhow::anyhow!("the sipp thread panicked"))??;
    ensure!(ok, "sipp's call {name} failed (see {})", dir.join(format!("{name}-errors.log")).display());
    let mut frames = std::mem::take(&mut *frames.lock().unwrap_or_else(|e| e.into_inner()));
    frames.sort_by(|a, b| a.0.total_cmp(&b.0));
    Ok((Heard { frames }, barge))
}

/// A key's two tones (8 kHz, -10 dBFS each), `ms` long: an in-band key press for a WAV.
pub fn key_tone(key: char, ms: u32) -> Vec<f32> {
    let rows = [697.0f32, 770.0, 852.0, 941.0];
    let cols = [1209.0f32, 1336.0, 1477.0, 1633.0];
    let pad = ["123A", "456B", "789C", "*0#D"];
    let Some((r, c)) = pad.iter().enumerate().find_map(|(r, row)| row.find(key).map(|c| (r, c))) else {
        return Vec::new();
    };
    (0..ms * 8)
        .map(|i| {
            let t = i as f32 / 8000.0;
            0.3 * (2.0 * std::f32::consts::PI * rows[r] * t).sin()
                + 0.3 * (2.0 * std::f32::consts::PI * cols[c] * t).sin()
        })
        .collect()
}

/// A phone's side of a call as a capture for sipp's `play_pcap_audio`: PCMU silence every
/// 20 ms for `secs` seconds from one source, with RFC 4733 events (payload type 101) for the
/// keys at their times (a key's event lasts 100 ms, ends with three end packets, and replaces
/// the audio meanwhile). One file for the whole call keeps the stream continuous, as a phone's
/// is (the bridge ends calls without RTP for 30 s), and from one source port.
pub fn keys_pcap(path: &Path, secs: f32, keys: &[(f32, char)]) -> Result<()> {
    const SSRC: u32 = 0x4c6f_7473;
    let mut out = Vec::new();
    // The global header: microsecond timestamps, Ethernet frames.
    for v in [0xa1b2_c3d4u32.to_le_bytes().as_slice(), &2u16.to_le_bytes(), &4u16.to_le_bytes()] {
        out.extend_from_slice(v);
    }
    out.extend_from_slice(&[0u8; 8]);
    out.extend_from_slice(&65_535u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    let mut packet = |at_ms: u64, rtp: &[u8]| {
        let udp_len = 8 + rtp.len();
        let ip_len = 20 + udp_len;
        let mut frame = Vec::with_capacity(14 + ip_len);
        frame.extend_from_slice(&[0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 2, 0x08, 0x00]);
        frame.extend_from_slice(&[0x45, 0]);
        frame.extend_from_slice(&(ip_len as u16).to_be_bytes());
        frame.extend_from_slice(&[0, 0, 0, 0, 64, 17, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1]);
        frame.extend_from_slice(&40_000u16.to_be_bytes());
        frame.extend_from_slice(&10_000u16.to_be_bytes());
        frame.extend_from_slice(&(udp_len as u16).to_be_bytes());
        frame.extend_from_slice(&[0, 0]);
        frame.extend_from_slice(rtp);
        out.extend_from_slice(&((at_ms / 1000) as u32).to_le_bytes());
        out.extend_from_slice(&(((at_ms % 1000) * 1000) as u32).to_le_bytes());
        out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        out.extend_from_slice(&frame);
    };
    let silence = lotse_speech::g711::Law::Mu.encode(&[0i16; 160]);
    let code = |k: char| -> Option<u8> {
        Some(match k {
            '0'..='9' => k as u8 - b'0',
            '*' => 10,
            '#' => 11,
            'A'..='D' => 12 + (k as u8 - b'A'),
            _ => return None,
        })
    };
    let mut rtp = Vec::new();
    let frames = (secs * 50.0) as u64;
    let mut seq = 1u16;
    let mut f = 0u64;
    while f < frames {
        let at = f * 20;
        let ts = (f * 160) as u32;
        if let Some((_, key)) = keys.iter().find(|(t, _)| (t * 1000.0) as u64 / 20 == f) {
            let event = code(*key).context("no such key")?;
            // 100 ms of the event, then its three end packets, all with its start's timestamp.
            for i in 0..8u64 {
                let end = i >= 5;
                let duration = (((i.min(4)) + 1) * 160) as u16;
                let payload = [event, if end { 0x80 } else { 0 } | 10, (duration >> 8) as u8, duration as u8];
                let p = crate::rtp::Packet {
                    marker: i == 0,
                    payload_type: 101,
                    sequence: seq,
                    timestamp: ts,
                    ssrc: SSRC,
                    payload: &payload,
                };
                crate::rtp::build(&p, &mut rtp);
                packet(at + i.min(5) * 20, &rtp);
                seq = seq.wrapping_add(1);
            }
            f += 6;
            continue;
        }
        let p = crate::rtp::Packet {
            marker: f == 0,
            payload_type: 0,
            sequence: seq,
            timestamp: ts,
            ssrc: SSRC,
            payload: &silence,
        };
        crate::rtp::build(&p, &mut rtp);
        packet(at, &rtp);
        seq = seq.wrapping_add(1);
        f += 1;
    }
    std::fs::write(path, out)?;
    Ok(())
}

/// The caller's side's answer `code` ("202 Accepted") to the request it got last.
pub fn reply(code: &str) -> String {
    format!(
        r#"  <send><![CDATA[
      SIP/2.0 {code}
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:caller@[local_ip]:[local_port]>
      Content-Length: 0
    ]]></send>
"#
    )
}

/// The caller's side reports a transfer's outcome (`outcome`: "200 OK", "486 Busy Here") in a
/// NOTIFY of the refer event (RFC 3515), in the dialog whose bridge tag sipp keeps in `btag`;
/// and gets its 200.
pub fn refer_outcome(outcome: &str) -> String {
    format!(
        r#"  <send retrans="500"><![CDATA[
      NOTIFY sip:lotse@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "Test" <sip:caller@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:lotse@[remote_ip]:[remote_port]>;tag=[$btag]
      Call-ID: [call_id]
      CSeq: 2 NOTIFY
      Contact: <sip:caller@[local_ip]:[local_port]>
      Event: refer
      Subscription-State: terminated;reason=noresource
      Max-Forwards: 70
      Content-Type: message/sipfrag
      Content-Length: [len]

      SIP/2.0 {outcome}
    ]]></send>
  <recv response="200"/>
"#
    )
}

/// A caller who presses 0 within staff hours and is put through: sipp plays the key (RFC 4733)
/// 1.5 s into the call, takes the bridge's REFER (202), reports the transfer connected
/// (NOTIFY 200) and gets the bridge's BYE. Returns key pressed → REFER received, on sipp's own
/// clock (the bridge first tells the caller that it connects them, then refers).
pub fn put_through(bridge: SocketAddr, dir: &Path, name: &str) -> Result<Duration> {
    const KEY_AT: f32 = 1.5;
    let pcap = dir.join(format!("{name}.pcap"));
    keys_pcap(&pcap, 20.0, &[(KEY_AT, '0')])?;
    let scenario = format!(
        r#"{HEAD}
{}  <recv response="200">
    <action><ereg regexp=";tag=([^;> ]+)" search_in="hdr" header="To:" assign_to="junk,btag"/></action>
  </recv>
{}  <nop><action><log message="played [clock_tick]"/><exec play_pcap_audio="{}"/></action></nop>
  <recv request="REFER" timeout="20000">
    <action><log message="referred [clock_tick]"/></action>
  </recv>
{}{}  <recv request="BYE" timeout="5000"/>
{}  <Reference variables="junk"/>
</scenario>
"#,
        invite("      m=audio 16000 RTP/AVP 0 101\n      a=rtpmap:101 telephone-event/8000"),
        request("ACK", 1, true),
        pcap.display(),
        reply("202 Accepted"),
        refer_outcome("200 OK"),
        reply("200 OK"),
    );
    let log = dir.join(format!("{name}-ticks.log"));
    let _ = std::fs::remove_file(&log);
    ensure!(
        sipp_with(
            bridge,
            dir,
            name,
            &scenario,
            Duration::from_secs(30),
            &["-trace_logs", "-log_file", &log.display().to_string()]
        )?,
        "sipp's call {name} failed (see {})",
        dir.join(format!("{name}-errors.log")).display()
    );
    let text = std::fs::read_to_string(&log).with_context(|| format!("sipp's log {}", log.display()))?;
    let tick = |what: &str| -> Result<u64> {
        let line = text.lines().find(|l| l.starts_with(what)).with_context(|| format!("no `{what}` in sipp's log"))?;
        Ok(line[what.len()..].trim().parse()?)
    };
    let (played, referred) = (tick("played")?, tick("referred")?);
    let key = played + (KEY_AT * 1000.0) as u64;
    ensure!(referred >= key, "the REFER came before the key");
    Ok(Duration::from_millis(referred - key))
}

/// A folder of the probe's files (scenarios, WAVs, sipp's logs).
pub fn workdir(name: &str) -> Result<PathBuf> {
    let d = std::env::temp_dir().join(format!("lotse-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d)?;
    Ok(d)
}

/// Where Debian's package puts kamailio.
pub const KAMAILIO: &str = "/usr/sbin/kamailio";

/// kamailio running, stopped when dropped.
pub struct Kamailio(Child);

impl Drop for Kamailio {
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

/// kamailio with the configuration `cfg`, its place-holders filled in (`fill`: name, value),
/// its files and its log (`kamailio.log`) in `dir`.
pub fn kamailio(cfg: &Path, fill: &[(&str, &str)], dir: &Path) -> Result<Kamailio> {
    let mut text = std::fs::read_to_string(cfg).with_context(|| format!("reading {}", cfg.display()))?;
    for (name, value) in fill {
        text = text.replace(name, value);
    }
    let file = dir.join(cfg.file_name().context("a configuration file")?);
    std::fs::write(&file, text)?;
    let run = dir.join("run");
    std::fs::create_dir_all(&run)?;
    let log = std::fs::File::create(dir.join("kamailio.log"))?;
    let child = Command::new(KAMAILIO)
        .arg("-f")
        .arg(&file)
        .args(["-DD", "-E", "-m", "32", "-M", "8"])
        .arg("-Y")
        .arg(&run)
        .arg("-w")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .context("starting kamailio (Debian: apt install kamailio)")?;
    Ok(Kamailio(child))
}

/// kamailio on `at` in front of the `bridges` (round robin, the project's dispatcher
/// configuration), answering once it is up.
pub fn dispatcher(cfg: &Path, at: SocketAddr, bridges: &[SocketAddr], dir: &Path) -> Result<Kamailio> {
    let list = dir.join("dispatcher.list");
    let lines: Vec<String> = bridges.iter().map(|b| format!("1 sip:{b}\n")).collect();
    std::fs::write(&list, lines.concat())?;
    let proxy = kamailio(cfg, &[("LISTEN", &at.to_string()), ("DISPATCHER_LIST", &list.display().to_string())], dir)?;
    answers(at, dir, Duration::from_secs(20))?;
    Ok(proxy)
}

/// Waits until an OPTIONS to `at` is answered 200 (by the proxy, or by a bridge behind it).
pub fn answers(at: SocketAddr, dir: &Path, within: Duration) -> Result<()> {
    let options = format!("{HEAD}\n{}  <recv response=\"200\"/>\n</scenario>\n", request("OPTIONS", 1, false));
    let up = Instant::now();
    while !sipp(at, dir, "options", &options, Duration::from_secs(3)).unwrap_or(false) {
        ensure!(up.elapsed() < within, "nothing answers on {at} (see {})", dir.join("kamailio.log").display());
    }
    Ok(())
}

/// A UDP port free on loopback now.
pub fn free_port() -> Result<u16> {
    Ok(UdpSocket::bind("127.0.0.1:0")?.local_addr()?.port())
}

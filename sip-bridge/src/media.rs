//! One call's media: RTP in and out on the call's own UDP port, on a 20 ms clock. Caller
//! frames go through the jitter buffer, up to 16 kHz, and to the call's thread; keys (RFC
//! 4733) go there too. Each tick sends 20 ms of the bot's playback (silence when it has
//! nothing to say), so the caller's side never starves and the timestamps run evenly.

use std::net::SocketAddr;
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lotse_call::Inbound;
use lotse_speech::call::Player;
use lotse_speech::g711::Law;
use lotse_speech::resample::{Stream, to_f32, to_i16};
use rsipstack::platform::CancellationToken;
use tokio::net::UdpSocket;
use tokio::sync::{oneshot, watch};

use crate::dtmf::Events;
use crate::jitter::Jitter;
use crate::rtp;
use crate::sdp::Codec;
use crate::tones::Tones;

/// Samples per 20 ms frame at 8 kHz.
const FRAME: usize = 160;
/// No RTP from the caller for this long: the line is dead.
pub const RTP_TIMEOUT: Duration = Duration::from_secs(30);
/// Frames the call's thread may fall behind (10 s) before frames are dropped.
pub const BACKLOG: usize = 500;

/// Where and how to send, as the latest offer said (a re-INVITE changes it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    /// `None`: on hold, nothing is sent.
    pub remote: Option<SocketAddr>,
    pub codec: Codec,
    /// The codec's payload type as offered.
    pub payload_type: u8,
    pub events: Option<u8>,
}

impl Target {
    /// Where an offer asks the bridge to send: nowhere while the caller holds the call.
    pub fn of(offer: &crate::sdp::Offer) -> Target {
        Target {
            remote: offer.remote.filter(|_| offer.direction.bridge_sends()),
            codec: offer.codec,
            payload_type: offer.payload_type,
            events: offer.events,
        }
    }
}

/// Why the media ended on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Told to stop (the call ended in signalling).
    Stopped,
    /// No RTP for [`RTP_TIMEOUT`].
    Timeout,
    /// The call's thread is gone.
    CallGone,
    /// The caller's side held the call longer than [`HOLD_LIMIT`].
    HeldTooLong,
}

fn law(c: Codec) -> Law {
    match c {
        Codec::Pcmu => Law::Mu,
        Codec::Pcma => Law::A,
    }
}

/// How long a caller's side may hold the call before the bridge ends it.
pub const HOLD_LIMIT: Duration = Duration::from_secs(10 * 60);
/// How long RTP only from the offer's address is taken before the first packet from any
/// address is (a caller behind NAT, a PBX whose media leaves from another interface).
const LATCH_WAIT: Duration = Duration::from_secs(1);
/// Packets read ahead of each tick at most (what waited in the socket while the task was
/// not running), so a flood cannot stall the clock.
const DRAIN: usize = 32;

/// The caller's side of the media: where it is taken from, and what it has become.
struct Receiving {
    jitter: Jitter,
    events: Events,
    /// The source the stream is taken from (latched on its first packet).
    source: Option<SocketAddr>,
    /// When the current offer took effect (latching waits for its address first).
    since: tokio::time::Instant,
    /// The offer the source was latched under.
    latched_for: Option<Target>,
    /// The SSRC of the key events (a new stream's timestamps start anywhere).
    events_ssrc: Option<u32>,
    /// In-band keys, where the offer has no telephone-event.
    tones: Tones,
    last_heard: tokio::time::Instant,
}

impl Receiving {
    /// A new offer (a re-INVITE: another address or port) takes effect: the source is latched
    /// afresh, and the second of waiting for the offered address runs from now (checked on
    /// every tick, so it does not wait for the first packet).
    fn follow(&mut self, t: &Target) {
        if self.latched_for != Some(*t) {
            self.latched_for = Some(*t);
            self.source = None;
            self.since = tokio::time::Instant::now();
        }
    }

    /// One datagram from `from`: audio into the jitter buffer, a key to the call.
    fn take(&mut self, data: &[u8], from: SocketAddr, t: &Target, to_call: &SyncSender<Inbound>) -> Result<(), Ended> {
        self.follow(t);
        match self.source {
            Some(s) if s != from => return Ok(()),
            Some(_) => {}
            None if t.remote.is_some_and(|r| r.ip() != from.ip()) && self.since.elapsed() < LATCH_WAIT => {
                return Ok(());
            }
            None => self.source = Some(from),
        }
        let Ok(packet) = rtp::parse(data) else { return Ok(()) };
        self.last_heard = tokio::time::Instant::now();
        if packet.payload_type == t.payload_type {
            let samples = to_f32(&law(t.codec).decode(packet.payload));
            self.jitter.push(packet.ssrc, packet.sequence, samples);
        } else if Some(packet.payload_type) == t.events {
            if self.events_ssrc != Some(packet.ssrc) {
                self.events = Events::new();
                self.events_ssrc = Some(packet.ssrc);
            }
            if let Some(key) = self.events.push(packet.timestamp, packet.payload)
                && let Err(TrySendError::Disconnected(_)) = to_call.try_send(Inbound::Key(key))
            {
                return Err(Ended::CallGone);
            }
        }
        // Anything else (comfort noise, another codec) is not for this call.
        Ok(())
    }
}

/// Runs the media of one call until `stop`, an RTP timeout, a hold that lasts too long, or
/// the end of the call's thread.
pub async fn run(
    socket: UdpSocket,
    target: watch::Receiver<Target>,
    to_call: SyncSender<Inbound>,
    player: oneshot::Receiver<Arc<Mutex<Player>>>,
    stop: CancellationToken,
) -> Ended {
    let mut player = player;
    let mut playback: Option<Arc<Mutex<Player>>> = None;
    let now = tokio::time::Instant::now();
    let mut rx = Receiving {
        jitter: Jitter::new(2),
        events: Events::new(),
        source: None,
        // The second of waiting for the offer's address runs from the call's start, not from
        // the first packet: a phone that sends from elsewhere (NAT, another interface) and
        // only when there is something to send (a key) is heard at once after it.
        since: now,
        latched_for: Some(*target.borrow()),
        events_ssrc: None,
        tones: Tones::new(),
        last_heard: now,
    };
    let Ok(mut up) = Stream::new(8_000, 16_000, FRAME) else { return Ended::Stopped };
    // Ticks missed while the machine was busy are made up at once (Burst): each one takes a
    // frame out and sends one, so neither the caller's audio nor the call's time falls behind.
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut dropped = 0u64;
    let mut held_since: Option<tokio::time::Instant> = None;
    let mut buf = vec![0u8; rtp::MAX_PACKET + 1];
    let mut out = Vec::with_capacity(12 + FRAME);
    let ssrc: u32 = rand_u32();
    let mut seq: u16 = rand_u32() as u16;
    let mut ts: u32 = rand_u32();
    let mut first = true;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return Ended::Stopped,
            p = &mut player, if playback.is_none() => {
                match p {
                    Ok(p) => playback = Some(p),
                    Err(_) => return Ended::CallGone,
                }
            }
            r = socket.recv_from(&mut buf) => {
                let Ok((n, from)) = r else { continue };
                let t = *target.borrow();
                if let Err(e) = rx.take(&buf[..n], from, &t, &to_call) {
                    return e;
                }
            }
            _ = tick.tick() => {
                let t = *target.borrow();
                rx.follow(&t);
                // What waited in the socket comes first: after a stall, the frames that did
                // arrive are played rather than concealed.
                for _ in 0..DRAIN {
                    let Ok((n, from)) = socket.try_recv_from(&mut buf) else { break };
                    if let Err(e) = rx.take(&buf[..n], from, &t, &to_call) {
                        return e;
                    }
                }
                if t.remote.is_none() {
                    // On hold: the caller sends nothing, and the call's time stands still,
                    // for a while.
                    let since = *held_since.get_or_insert_with(tokio::time::Instant::now);
                    if since.elapsed() > HOLD_LIMIT {
                        return Ended::HeldTooLong;
                    }
                    rx.last_heard = tokio::time::Instant::now();
                } else {
                    held_since = None;
                    if rx.last_heard.elapsed() > RTP_TIMEOUT {
                        return Ended::Timeout;
                    }
                    let mut frame = rx.jitter.pop();
                    // Without RFC 4733 events, keys come as tones in the audio: a key is sent
                    // to the call, and the tone is not speech.
                    if t.events.is_none() {
                        let (tone, key) = rx.tones.push(&frame);
                        if let Some(key) = key
                            && let Err(TrySendError::Disconnected(_)) = to_call.try_send(Inbound::Key(key))
                        {
                            return Ended::CallGone;
                        }
                        if tone {
                            frame.fill(0.0);
                        }
                    }
                    if let Ok(wide) = up.process(&frame) {
                        match to_call.try_send(Inbound::Audio(wide)) {
                            Ok(()) => {}
                            Err(TrySendError::Full(_)) => {
                                dropped += 1;
                                if dropped.is_power_of_two() {
                                    tracing::warn!(dropped, "a call's thread is behind: caller audio dropped");
                                }
                            }
                            Err(TrySendError::Disconnected(_)) => return Ended::CallGone,
                        }
                    }
                }
                let bot = match &playback {
                    Some(p) => p.lock().unwrap_or_else(|e| e.into_inner()).pull(FRAME),
                    None => vec![0.0; FRAME],
                };
                if let Some(remote) = t.remote {
                    let payload = law(t.codec).encode(&to_i16(&bot));
                    let packet = rtp::Packet {
                        marker: first,
                        payload_type: t.payload_type,
                        sequence: seq,
                        timestamp: ts,
                        ssrc,
                        payload: &payload,
                    };
                    rtp::build(&packet, &mut out);
                    let _ = socket.send_to(&out, remote).await;
                    first = false;
                }
                seq = seq.wrapping_add(1);
                ts = ts.wrapping_add(FRAME as u32);
            }
        }
    }
}

/// A random number for the stream's SSRC and starting points (RFC 3550 asks for them to be
/// unpredictable); the standard library's hasher is seeded randomly per process.
fn rand_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
    h.finish() as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_call_is_sent_nothing() {
        let offer = |dir: &str| {
            crate::sdp::parse_offer(&format!("v=0\r\nc=IN IP4 10.1.1.1\r\nm=audio 7000 RTP/AVP 8\r\n{dir}")).unwrap()
        };
        assert_eq!(Target::of(&offer("")).remote, Some("10.1.1.1:7000".parse().unwrap()));
        assert_eq!(Target::of(&offer("a=sendonly\r\n")).remote, None, "on hold");
        assert_eq!(Target::of(&offer("a=inactive\r\n")).remote, None);
        assert_eq!(Target::of(&offer("a=recvonly\r\n")).codec, Codec::Pcma);
        assert!(Target::of(&offer("a=recvonly\r\n")).remote.is_some());
    }
}

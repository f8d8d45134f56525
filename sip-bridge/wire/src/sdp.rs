//! SDP offer/answer (RFC 3264) for one audio stream of G.711 at 8 kHz with RFC 4733 keys.
//! The bridge reads only what it needs of an offer (the address, the audio port, the
//! formats, the direction) and writes a complete answer. Written here, not taken from a
//! crate: the part of SDP a PCMU/PCMA bridge uses is a dozen lines of text, and the offer's
//! other lines are kept out of the answer anyway.

use std::net::{IpAddr, SocketAddr};

/// The largest offer the bridge reads.
pub const MAX_SDP: usize = 8 * 1024;

/// Why an offer cannot be answered (the bridge answers `488 Not Acceptable Here`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    #[error("the offer is larger than {MAX_SDP} bytes")]
    TooLarge,
    #[error("the offer has no audio stream")]
    NoAudio,
    #[error("the audio stream offers neither PCMU nor PCMA at 8 kHz")]
    NoCodec,
    #[error("the audio stream has no usable address")]
    NoAddress,
    #[error("the audio stream is not RTP/AVP")]
    Transport,
    #[error("a media line is malformed")]
    Malformed,
}

/// The G.711 law of the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Pcmu,
    Pcma,
}

impl Codec {
    pub fn payload_type(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
        }
    }
}

/// Which way audio flows, from the offerer's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    SendRecv,
    /// The offerer only sends: the call is on hold (music on hold, or nothing).
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    /// The answer's direction to this offer.
    fn answer(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "recvonly",
            Direction::RecvOnly => "sendonly",
            Direction::Inactive => "inactive",
        }
    }

    /// Whether the bridge sends audio to the offerer.
    pub fn bridge_sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }
}

/// What the bridge takes from an offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    /// Where the offerer receives audio (`None`: on hold with the old `c=0.0.0.0`).
    pub remote: Option<SocketAddr>,
    pub codec: Codec,
    /// The codec's payload type in the offer (0 or 8, or a dynamic number mapped to it).
    pub payload_type: u8,
    /// The payload type of `telephone-event/8000`, when offered.
    pub events: Option<u8>,
    pub direction: Direction,
    /// The offer's media lines, each answered: the first audio one is the stream, the others
    /// are refused with port 0.
    media: Vec<(String, bool)>,
}

/// Parses an offer.
pub fn parse_offer(sdp: &str) -> Result<Offer, SdpError> {
    if sdp.len() > MAX_SDP {
        return Err(SdpError::TooLarge);
    }
    let mut session_addr: Option<IpAddr> = None;
    let mut session_dir = Direction::SendRecv;
    let mut media: Vec<(String, bool)> = Vec::new();
    // The chosen audio stream: port, formats, address, rtpmaps, direction.
    struct Audio {
        port: u16,
        formats: Vec<u8>,
        addr: Option<IpAddr>,
        held: bool,
        maps: Vec<(u8, String)>,
        dir: Option<Direction>,
    }
    let mut audio: Option<Audio> = None;
    let mut in_audio = false;
    let mut secure_audio = false;
    for line in sdp.lines() {
        let line = line.trim_end_matches('\r');
        let Some((kind, value)) = line.split_once('=') else { continue };
        match kind {
            "m" => {
                let mut parts = value.split_whitespace();
                let (Some(kind), Some(port), Some(proto)) = (parts.next(), parts.next(), parts.next()) else {
                    // The answer must have as many media lines as the offer: a line that
                    // cannot be read cannot be answered.
                    return Err(SdpError::Malformed);
                };
                let formats: Vec<&str> = parts.collect();
                let port: Option<u16> = port.split('/').next().and_then(|p| p.parse().ok());
                let plain = proto == "RTP/AVP" || proto == "RTP/AVPF";
                let wanted = kind == "audio" && audio.is_none() && port.is_some_and(|p| p != 0);
                // Audio the bridge cannot take (SRTP) is refused on its line; a later plain
                // audio line may still be taken.
                secure_audio |= wanted && !plain;
                let take = wanted && plain;
                in_audio = take;
                if take {
                    audio = Some(Audio {
                        port: port.unwrap_or(0),
                        formats: formats.iter().filter_map(|f| f.parse().ok()).collect(),
                        addr: None,
                        held: false,
                        maps: Vec::new(),
                        dir: None,
                    });
                }
                media.push((format!("{kind} 0 {proto} {}", formats.join(" ")), take));
            }
            "c" => {
                let addr = value.split_whitespace().nth(2).and_then(|a| a.split('/').next());
                let parsed = addr.and_then(|a| a.parse::<IpAddr>().ok());
                match audio.as_mut().filter(|_| in_audio) {
                    Some(a) => {
                        a.held = parsed.is_some_and(|p| p.is_unspecified());
                        a.addr = parsed;
                    }
                    None if media.is_empty() => session_addr = parsed,
                    None => {}
                }
            }
            "a" => {
                let dir = match value {
                    "sendrecv" => Some(Direction::SendRecv),
                    "sendonly" => Some(Direction::SendOnly),
                    "recvonly" => Some(Direction::RecvOnly),
                    "inactive" => Some(Direction::Inactive),
                    _ => None,
                };
                match (audio.as_mut().filter(|_| in_audio), dir) {
                    (Some(a), Some(d)) => a.dir = Some(d),
                    (None, Some(d)) if media.is_empty() => session_dir = d,
                    (Some(a), None) => {
                        if let Some(map) = value.strip_prefix("rtpmap:") {
                            let mut it = map.splitn(2, ' ');
                            if let (Some(pt), Some(name)) = (it.next().and_then(|p| p.parse().ok()), it.next()) {
                                a.maps.push((pt, name.trim().to_ascii_lowercase()));
                            }
                        }
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
    let a = audio.ok_or(if secure_audio { SdpError::Transport } else { SdpError::NoAudio })?;
    let named = |pt: u8| a.maps.iter().find(|(p, _)| *p == pt).map(|(_, n)| n.as_str());
    let (codec, payload_type) = a
        .formats
        .iter()
        .find_map(|&pt| match (pt, named(pt)) {
            (0, None) => Some((Codec::Pcmu, pt)),
            (8, None) => Some((Codec::Pcma, pt)),
            (_, Some("pcmu/8000" | "pcmu/8000/1")) => Some((Codec::Pcmu, pt)),
            (_, Some("pcma/8000" | "pcma/8000/1")) => Some((Codec::Pcma, pt)),
            _ => None,
        })
        .ok_or(SdpError::NoCodec)?;
    let events = a.formats.iter().copied().find(|&pt| named(pt).is_some_and(|n| n.starts_with("telephone-event/8000")));
    let addr = a.addr.or(session_addr).ok_or(SdpError::NoAddress)?;
    let held = a.held || (a.addr.is_none() && session_addr.is_some_and(|s| s.is_unspecified()));
    let mut direction = a.dir.unwrap_or(session_dir);
    if held && direction == Direction::SendRecv {
        direction = Direction::SendOnly;
    }
    Ok(Offer {
        remote: (!held).then_some(SocketAddr::new(addr, a.port)),
        codec,
        payload_type,
        events,
        direction,
        media,
    })
}

/// The answer: one audio stream at `local` with the offer's codec (and keys, if offered);
/// every other media line refused. `version` goes up with each new answer in a dialog.
pub fn answer(offer: &Offer, local: SocketAddr, session: u64, version: u64) -> String {
    let ip = match local.ip() {
        IpAddr::V4(_) => "IP4",
        IpAddr::V6(_) => "IP6",
    };
    let addr = local.ip();
    let mut s =
        format!("v=0\r\no=lotse {session} {version} IN {ip} {addr}\r\ns=Lotse\r\nc=IN {ip} {addr}\r\nt=0 0\r\n");
    for (line, audio) in &offer.media {
        if !audio {
            s.push_str(&format!("m={line}\r\n"));
            continue;
        }
        let pt = offer.payload_type;
        match offer.events {
            Some(ev) => {
                s.push_str(&format!("m=audio {} RTP/AVP {pt} {ev}\r\n", local.port()));
                s.push_str(&format!("a=rtpmap:{pt} {}/8000\r\n", offer.codec.name()));
                s.push_str(&format!("a=rtpmap:{ev} telephone-event/8000\r\na=fmtp:{ev} 0-16\r\n"));
            }
            None => {
                s.push_str(&format!("m=audio {} RTP/AVP {pt}\r\n", local.port()));
                s.push_str(&format!("a=rtpmap:{pt} {}/8000\r\n", offer.codec.name()));
            }
        }
        s.push_str(&format!("a=ptime:20\r\na={}\r\n", offer.direction.answer()));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SIPP: &str = "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n\
        t=0 0\r\nm=audio 6000 RTP/AVP 8 0 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\n\
        a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n";

    #[test]
    fn the_first_g711_codec_of_the_offer_is_taken_with_its_keys() {
        let o = parse_offer(SIPP).unwrap();
        assert_eq!(o.codec, Codec::Pcma);
        assert_eq!(o.events, Some(101));
        assert_eq!(o.remote, Some("127.0.0.1:6000".parse().unwrap()));
        assert_eq!(o.direction, Direction::SendRecv);
        let a = answer(&o, "127.0.0.1:20000".parse().unwrap(), 1, 1);
        assert!(a.contains("m=audio 20000 RTP/AVP 8 101\r\n"), "{a}");
        assert!(a.contains("a=rtpmap:101 telephone-event/8000") && a.contains("a=sendrecv"));
        // The answer is itself an offer the bridge understands.
        assert_eq!(parse_offer(&a).unwrap().codec, Codec::Pcma);
    }

    #[test]
    fn other_streams_are_refused_and_the_audio_has_its_own_address() {
        let sdp = "v=0\r\nc=IN IP4 10.0.0.1\r\nm=video 5000 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n\
            m=audio 7000 RTP/AVP 18 0\r\nc=IN IP4 10.0.0.2\r\na=sendonly\r\n";
        let o = parse_offer(sdp).unwrap();
        assert_eq!(o.codec, Codec::Pcmu);
        assert_eq!(o.events, None);
        assert_eq!(o.remote, Some("10.0.0.2:7000".parse().unwrap()));
        assert_eq!(o.direction, Direction::SendOnly);
        assert!(!o.direction.bridge_sends());
        let a = answer(&o, "10.0.0.9:30000".parse().unwrap(), 5, 2);
        let video = a.find("m=video 0 RTP/AVP 96").unwrap();
        let audio = a.find("m=audio 30000 RTP/AVP 0\r\n").unwrap();
        assert!(video < audio, "media lines keep the offer's order: {a}");
        assert!(a.contains("a=recvonly"));
    }

    #[test]
    fn a_dynamic_number_for_g711_is_kept_and_srtp_is_refused_on_its_line() {
        let sdp = "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 5000 RTP/SAVP 0\r\nm=audio 6000 RTP/AVP 96 101\r\n\
            a=rtpmap:96 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n";
        let o = parse_offer(sdp).unwrap();
        assert_eq!((o.codec, o.payload_type), (Codec::Pcmu, 96));
        assert_eq!(o.remote, Some("10.0.0.1:6000".parse().unwrap()));
        let a = answer(&o, "10.0.0.9:30000".parse().unwrap(), 1, 1);
        assert!(a.contains("m=audio 0 RTP/SAVP 0\r\n"), "the SRTP line is refused: {a}");
        assert!(a.contains("m=audio 30000 RTP/AVP 96 101\r\na=rtpmap:96 PCMU/8000"), "{a}");
    }

    #[test]
    fn the_old_hold_has_no_address() {
        let o = parse_offer("v=0\r\nc=IN IP4 0.0.0.0\r\nm=audio 7000 RTP/AVP 0\r\n").unwrap();
        assert_eq!(o.remote, None);
        assert_eq!(o.direction, Direction::SendOnly);
    }

    #[test]
    fn offers_the_bridge_cannot_take_are_refused() {
        assert_eq!(parse_offer("v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 7000 RTP/AVP 9 18\r\n"), Err(SdpError::NoCodec));
        assert_eq!(parse_offer("v=0\r\nc=IN IP4 1.2.3.4\r\nm=video 7000 RTP/AVP 0\r\n"), Err(SdpError::NoAudio));
        assert_eq!(parse_offer("v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 7000 RTP/SAVP 0\r\n"), Err(SdpError::Transport));
        assert_eq!(parse_offer("v=0\r\nm=audio 7000 RTP/AVP 0\r\n"), Err(SdpError::NoAddress));
        // A dynamic type that is not G.711 under the name of one.
        assert_eq!(
            parse_offer("v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 7000 RTP/AVP 0\r\na=rtpmap:0 opus/48000/2\r\n"),
            Err(SdpError::NoCodec)
        );
        assert_eq!(parse_offer(&"a".repeat(MAX_SDP + 1)), Err(SdpError::TooLarge));
    }

    proptest! {
        #[test]
        fn any_text_is_parsed_or_refused(s in "(([cmao]=)?[a-zA-Z0-9 ./:-]{0,30}\r\n){0,12}") {
            let _ = parse_offer(&s);
        }
    }
}

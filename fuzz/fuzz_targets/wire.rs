//! What a caller's network sends the SIP bridge, arbitrary: the first byte picks the parser,
//! the rest is its input. SDP offers (an answer is written for any offer taken, and reads
//! back as the same offer), RTP datagrams (a packet parsed builds back to a packet with the
//! same fields), RFC 4733 key events (a stream of timestamped payloads) and in-band tones
//! (arbitrary audio frames): an answer or a refusal, never a panic, and bounded memory.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lotse_sip_wire::{dtmf, rtp, sdp, tones};

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else { return };
    match which % 4 {
        0 => {
            let Ok(text) = std::str::from_utf8(rest) else { return };
            if let Ok(offer) = sdp::parse_offer(text) {
                let local = "127.0.0.1:40000".parse().expect("an address");
                let answer = sdp::answer(&offer, local, 1, 1);
                let again = sdp::parse_offer(&answer).expect("the bridge's own answer parses");
                assert_eq!((again.codec, again.payload_type), (offer.codec, offer.payload_type));
            }
        }
        1 => {
            if let Ok(p) = rtp::parse(rest) {
                let mut out = Vec::new();
                rtp::build(&p, &mut out);
                let q = rtp::parse(&out).expect("a built packet parses");
                assert_eq!(
                    (q.marker, q.payload_type, q.sequence, q.timestamp, q.ssrc, q.payload),
                    (p.marker, p.payload_type, p.sequence, p.timestamp, p.ssrc, p.payload)
                );
            }
        }
        2 => {
            // Records of 8 bytes: a timestamp and a payload.
            let mut events = dtmf::Events::new();
            for chunk in rest.chunks(8) {
                let ts = u32::from_be_bytes([chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0), *chunk.get(3).unwrap_or(&0)]);
                let _ = events.push(ts, chunk.get(4..).unwrap_or(&[]));
            }
        }
        _ => {
            // 16-bit samples, 20 ms frames at 8 kHz (and a short last one).
            let samples: Vec<f32> =
                rest.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]]) as f32 / 32768.0).collect();
            let mut t = tones::Tones::new();
            for frame in samples.chunks(160) {
                let _ = t.push(frame);
            }
        }
    }
});

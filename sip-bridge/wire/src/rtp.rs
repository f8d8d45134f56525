//! RTP packets (RFC 3550) as a G.711 telephone bridge meets them: parsed without trusting any
//! length in them, and built for the bridge's own stream. Written here because the format is a
//! twelve-byte header; the RTP crates on offer bring a whole media stack (SRTP, RTCP, codecs)
//! that a PCMU/PCMA bridge does not use.

/// The largest packet the bridge reads: a 20 ms G.711 frame is 172 bytes; nothing a peer
/// sends over UDP needs more than one Ethernet frame.
pub const MAX_PACKET: usize = 1500;

/// Why a datagram is not an RTP packet the bridge takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RtpError {
    #[error("shorter than an RTP header")]
    Short,
    #[error("RTP version {0}, not 2")]
    Version(u8),
    #[error("the CSRC list or the header extension runs past the packet")]
    Header,
    #[error("the padding is longer than the payload")]
    Padding,
    #[error("larger than {MAX_PACKET} bytes")]
    TooLarge,
}

/// One RTP packet; the payload borrows the datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<'a> {
    pub marker: bool,
    pub payload_type: u8,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    pub payload: &'a [u8],
}

/// Parses a datagram. Every length is checked against the datagram; nothing is allocated.
pub fn parse(data: &[u8]) -> Result<Packet<'_>, RtpError> {
    if data.len() > MAX_PACKET {
        return Err(RtpError::TooLarge);
    }
    if data.len() < 12 {
        return Err(RtpError::Short);
    }
    let version = data[0] >> 6;
    if version != 2 {
        return Err(RtpError::Version(version));
    }
    let padding = data[0] & 0x20 != 0;
    let extension = data[0] & 0x10 != 0;
    let csrcs = (data[0] & 0x0f) as usize;
    let mut start = 12 + 4 * csrcs;
    if extension {
        let words = data.get(start + 2..start + 4).ok_or(RtpError::Header)?;
        start += 4 + 4 * u16::from_be_bytes([words[0], words[1]]) as usize;
    }
    if start > data.len() {
        return Err(RtpError::Header);
    }
    let mut end = data.len();
    if padding {
        let pad = data[end - 1] as usize;
        if pad == 0 || pad > end - start {
            return Err(RtpError::Padding);
        }
        end -= pad;
    }
    Ok(Packet {
        marker: data[1] & 0x80 != 0,
        payload_type: data[1] & 0x7f,
        sequence: u16::from_be_bytes([data[2], data[3]]),
        timestamp: u32::from_be_bytes([data[4], data[5], data[6], data[7]]),
        ssrc: u32::from_be_bytes([data[8], data[9], data[10], data[11]]),
        payload: &data[start..end],
    })
}

/// Writes a packet without CSRCs, extension or padding.
pub fn build(p: &Packet<'_>, out: &mut Vec<u8>) {
    out.clear();
    out.push(0x80);
    out.push(if p.marker { 0x80 } else { 0 } | (p.payload_type & 0x7f));
    out.extend_from_slice(&p.sequence.to_be_bytes());
    out.extend_from_slice(&p.timestamp.to_be_bytes());
    out.extend_from_slice(&p.ssrc.to_be_bytes());
    out.extend_from_slice(p.payload);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_built_packet_parses_back() {
        let payload = [0xffu8; 160];
        let p =
            Packet { marker: true, payload_type: 8, sequence: 65535, timestamp: 1 << 31, ssrc: 7, payload: &payload };
        let mut out = Vec::new();
        build(&p, &mut out);
        assert_eq!(out.len(), 172);
        assert_eq!(parse(&out), Ok(p));
    }

    #[test]
    fn csrcs_extension_and_padding_are_skipped() {
        let mut d = vec![0x80 | 0x20 | 0x10 | 0x01, 0, 0, 1, 0, 0, 0, 160, 0, 0, 0, 9];
        d.extend_from_slice(&[1, 2, 3, 4]); // one CSRC
        d.extend_from_slice(&[0xbe, 0xde, 0, 1, 9, 9, 9, 9]); // extension of one word
        d.extend_from_slice(&[10, 20, 30]); // payload
        d.extend_from_slice(&[0, 0, 3]); // padding of three
        let p = parse(&d).unwrap();
        assert_eq!(p.payload, &[10, 20, 30]);
        assert_eq!(p.sequence, 1);
    }

    #[test]
    fn broken_packets_are_refused() {
        assert_eq!(parse(&[0x80; 11]), Err(RtpError::Short));
        assert_eq!(parse(&[0x40; 12]), Err(RtpError::Version(1)));
        let mut d = vec![0x8f; 12];
        d[1] = 0;
        assert_eq!(parse(&d), Err(RtpError::Header), "fifteen CSRCs in a bare header");
        let mut d = vec![0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 200];
        assert_eq!(parse(&d), Err(RtpError::Padding));
        d[13] = 0;
        assert_eq!(parse(&d), Err(RtpError::Padding), "a padding count of zero");
        assert_eq!(parse(&vec![0x80; MAX_PACKET + 1]), Err(RtpError::TooLarge));
    }

    proptest! {
        #[test]
        fn any_datagram_parses_or_is_refused(data in proptest::collection::vec(any::<u8>(), 0..400)) {
            if let Ok(p) = parse(&data) {
                prop_assert!(p.payload.len() <= data.len() - 12);
            }
        }
    }
}

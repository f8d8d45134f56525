//! ITU-T G.711: µ-law (North America, Japan) and A-law (Europe, also the German telephone
//! network) companding of 16-bit linear PCM into 8-bit code words.
//!
//! Written here: each direction is a dozen lines of bit arithmetic fixed by the standard, and the
//! crates that offer it wrap whole telephony stacks.

const ULAW_BIAS: i32 = 0x84;
const ULAW_CLIP: i32 = 32635;

/// One 16-bit sample to a µ-law code word.
pub fn ulaw_encode(sample: i16) -> u8 {
    let mut s = sample as i32;
    let sign = if s < 0 {
        s = -s;
        0x80
    } else {
        0
    };
    s = s.min(ULAW_CLIP) + ULAW_BIAS;
    // The segment is the position of the highest set bit from bit 7 (segment 0) to bit 14.
    let mut exponent = 7;
    while exponent > 0 && s & (0x80 << exponent) == 0 {
        exponent -= 1;
    }
    let mantissa = (s >> (exponent + 3)) & 0x0F;
    !((sign | (exponent << 4) | mantissa) as u8)
}

/// A µ-law code word to a 16-bit sample.
pub fn ulaw_decode(code: u8) -> i16 {
    let u = !code as i32;
    let exponent = (u >> 4) & 0x07;
    let mantissa = u & 0x0F;
    let magnitude = (((mantissa << 3) + ULAW_BIAS) << exponent) - ULAW_BIAS;
    (if u & 0x80 != 0 { -magnitude } else { magnitude }) as i16
}

/// One 16-bit sample to an A-law code word.
pub fn alaw_encode(sample: i16) -> u8 {
    // A-law works on 13 bits.
    let mut v = (sample as i32) >> 3;
    let mask = if v >= 0 {
        0xD5
    } else {
        v = -v - 1;
        0x55
    };
    let segment = (0..8).find(|&seg| v < (0x20 << seg)).unwrap_or(8);
    let code = if segment >= 8 {
        0x7F
    } else {
        let shift = if segment < 2 { 1 } else { segment };
        (segment << 4) | ((v >> shift) & 0x0F)
    };
    (code ^ mask) as u8
}

/// An A-law code word to a 16-bit sample.
pub fn alaw_decode(code: u8) -> i16 {
    let a = (code ^ 0x55) as i32;
    let mut t = (a & 0x0F) << 4;
    let segment = (a & 0x70) >> 4;
    match segment {
        0 => t += 8,
        1 => t += 0x108,
        _ => {
            t += 0x108;
            t <<= segment - 1;
        }
    }
    (if a & 0x80 != 0 { t } else { -t }) as i16
}

/// The codec of a telephone stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Law {
    /// PCMU, RTP payload type 0.
    Mu,
    /// PCMA, RTP payload type 8.
    A,
}

impl Law {
    pub fn decode(self, codes: &[u8]) -> Vec<i16> {
        match self {
            Law::Mu => codes.iter().map(|&c| ulaw_decode(c)).collect(),
            Law::A => codes.iter().map(|&c| alaw_decode(c)).collect(),
        }
    }

    pub fn encode(self, samples: &[i16]) -> Vec<u8> {
        match self {
            Law::Mu => samples.iter().map(|&s| ulaw_encode(s)).collect(),
            Law::A => samples.iter().map(|&s| alaw_encode(s)).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_and_the_standard_code_words() {
        assert_eq!(ulaw_encode(0), 0xFF);
        assert_eq!(ulaw_decode(0xFF), 0);
        assert_eq!(alaw_encode(0), 0xD5);
        assert_eq!(alaw_decode(0xD5), 8);
        // Full scale lands in the last segment.
        assert_eq!(ulaw_encode(i16::MAX), 0x80);
        assert_eq!(ulaw_encode(i16::MIN), 0x00);
        assert_eq!(alaw_encode(i16::MAX), 0xAA);
        assert_eq!(alaw_encode(i16::MIN), 0x2A);
    }

    #[test]
    fn every_code_word_survives_decode_then_encode() {
        for c in 0..=255u8 {
            // µ-law has two zeros (0x7F and 0xFF); both decode to 0, which encodes as 0xFF.
            let back = ulaw_encode(ulaw_decode(c));
            assert!(back == c || (ulaw_decode(c) == 0 && back == 0xFF), "µ-law {c:#x} → {back:#x}");
            assert_eq!(alaw_encode(alaw_decode(c)), c, "A-law {c:#x}");
        }
    }

    #[test]
    fn the_error_is_logarithmic() {
        for s in (-32000i32..32000).step_by(97) {
            let s = s as i16;
            for (name, back) in [("µ", ulaw_decode(ulaw_encode(s))), ("A", alaw_decode(alaw_encode(s)))] {
                let err = (back as i32 - s as i32).abs();
                // At most about 1/16 of the magnitude, and a few steps near zero.
                assert!(err <= (s as i32).abs() / 16 + 16, "{name}-law {s} → {back}");
                assert!(back == 0 || (back >= 0) == (s >= 0) || (s as i32).abs() < 16, "{name}-law sign of {s}");
            }
        }
    }
}

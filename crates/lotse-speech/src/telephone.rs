//! What a caller's audio goes through on its way to Lotse: the phone network's 8 kHz G.711
//! µ-law, and for the evaluation white noise. One simulation for the evaluation and the tests,
//! so that they hear the same telephone.

use crate::conceal::{Concealer, FRAME};
use crate::g711::Law;
use crate::resample::{ResampleError, convert, to_f32, to_i16};

/// 8 kHz audio after µ-law coding there and back (the network's quantisation).
pub fn mu_law(narrow: &[f32]) -> Vec<f32> {
    to_f32(&Law::Mu.decode(&Law::Mu.encode(&to_i16(narrow))))
}

/// Audio at `rate` as it arrives from a telephone, at `rate` again: band-limited to 8 kHz
/// sampling and µ-law coded.
pub fn through(samples: &[f32], rate: u32) -> Result<Vec<f32>, ResampleError> {
    let narrow = convert(samples, rate, 8000)?;
    convert(&mu_law(&narrow), 8000, rate)
}

/// A seeded xorshift generator: noise and packet loss that a run can repeat exactly.
struct Xorshift(u32);

impl Xorshift {
    fn new(seed: u32) -> Xorshift {
        Xorshift(seed.wrapping_mul(2_654_435_761).max(1))
    }

    fn next(&mut self) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 17;
        self.0 ^= self.0 << 5;
        self.0
    }
}

/// Adds white noise at `snr_db` below the signal's RMS, from a fixed `seed` (xorshift), so
/// that a run can be repeated exactly.
pub fn add_noise(samples: &mut [f32], signal_rms: f32, snr_db: f32, seed: u32) {
    // Uniform noise in [-a, a] has RMS a / √3.
    let amp = signal_rms / 10f32.powf(snr_db / 20.0) * 3f32.sqrt();
    let mut rng = Xorshift::new(seed);
    for v in samples {
        *v += amp * ((rng.next() as f32 / u32::MAX as f32) * 2.0 - 1.0);
    }
}

/// 8 kHz audio after a network that lost `loss` (0 to 1) of its 20 ms packets at random (from a
/// fixed `seed`), with the concealment a phone bridge applies ([`Concealer`]). Returns the
/// audio and the number of packets lost.
pub fn lose_packets(narrow: &[f32], loss: f64, seed: u32) -> (Vec<f32>, usize) {
    let mut rng = Xorshift::new(seed);
    let mut concealer = Concealer::new();
    let mut out = Vec::with_capacity(narrow.len());
    let mut lost = 0;
    for frame in narrow.chunks(FRAME) {
        if (rng.next() as f64 / u32::MAX as f64) < loss {
            lost += 1;
            out.extend(concealer.lost(frame.len()));
        } else {
            out.extend(concealer.received(frame));
        }
    }
    (out, lost)
}

/// The root mean square of `samples` (0 for none).
pub fn rms(samples: &[f32]) -> f32 {
    (samples.iter().map(|v| v * v).sum::<f32>() / samples.len().max(1) as f32).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_keeps_a_tone_and_noise_has_the_asked_level() {
        let tone: Vec<f32> =
            (0..16_000).map(|i| 0.5 * (i as f32 * 440.0 * std::f32::consts::TAU / 16_000.0).sin()).collect();
        let heard = through(&tone, 16_000).unwrap();
        assert_eq!(heard.len(), tone.len());
        // µ-law and the band limit change a 440 Hz tone by little.
        let err: Vec<f32> = tone.iter().zip(&heard).skip(200).take(15_000).map(|(a, b)| a - b).collect();
        assert!(rms(&err) < 0.05 * rms(&tone), "error {} of {}", rms(&err), rms(&tone));
        let mut silence = vec![0.0f32; 8000];
        add_noise(&mut silence, 0.1, 20.0, 7);
        let level = rms(&silence);
        assert!((level - 0.01).abs() < 0.002, "noise at {level}, wanted 0.01");
        let mut again = vec![0.0f32; 8000];
        add_noise(&mut again, 0.1, 20.0, 7);
        assert_eq!(silence, again, "the same seed gives the same noise");
    }

    #[test]
    fn packets_are_lost_at_the_asked_rate_and_concealed() {
        let tone: Vec<f32> =
            (0..80_000).map(|i| 0.5 * (i as f32 * 200.0 * std::f32::consts::TAU / 8000.0).sin()).collect();
        let (heard, lost) = lose_packets(&tone, 0.02, 3);
        assert_eq!(heard.len(), tone.len());
        // 500 packets, 2 % of them: about 10.
        assert!((4..=20).contains(&lost), "{lost} lost");
        // A steady tone is concealed by its own period: the line sounds nearly the same.
        let err: Vec<f32> = tone.iter().zip(&heard).map(|(a, b)| a - b).collect();
        assert!(rms(&err) < 0.1 * rms(&tone), "error {} of {}", rms(&err), rms(&tone));
        assert_eq!(lose_packets(&tone, 0.0, 3), (tone.clone(), 0));
    }
}

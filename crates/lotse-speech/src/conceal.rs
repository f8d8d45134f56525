//! Packet loss concealment for 8 kHz telephone audio: what a phone bridge plays in place of an
//! RTP packet that never arrived (or came too late for the jitter buffer).
//!
//! The method is the one G.711 Appendix I describes, in a small form: a lost 20 ms frame is
//! filled by repeating the last pitch period of the audio before it (found by autocorrelation);
//! each further lost frame is quieter, and after
//! 60 ms of loss the line goes silent. The first frame that arrives again is faded in over the
//! concealed signal, so neither edge clicks. G.711 has no concealment of its own and no
//! maintained crate provides one (Opus's is inside its decoder), hence this module.

/// Samples in one 20 ms frame at 8 kHz.
pub const FRAME: usize = 160;
/// Pitch periods considered: 2.5 ms (400 Hz) to 15 ms (67 Hz).
const MIN_PERIOD: usize = 20;
const MAX_PERIOD: usize = 120;
/// The history kept: enough for the autocorrelation over two of the longest periods.
const HISTORY: usize = 3 * MAX_PERIOD;
/// Samples of cross-fade at each join (1 ms).
const FADE: usize = 8;
/// Lost frames after which the concealment is silence (60 ms).
const MAX_CONCEALED: usize = 3;

/// The concealment state of one stream.
#[derive(Debug, Clone, Default)]
pub struct Concealer {
    /// The last audio played, received or concealed.
    history: Vec<f32>,
    /// The pitch period being repeated, while frames are lost.
    period: Option<usize>,
    /// Consecutive lost frames so far.
    lost: usize,
}

impl Concealer {
    pub fn new() -> Concealer {
        Concealer::default()
    }

    /// A frame that arrived: returned as it is, or, right after a loss, faded in over the
    /// concealment's continuation.
    pub fn received(&mut self, frame: &[f32]) -> Vec<f32> {
        let mut out = frame.to_vec();
        if self.lost > 0 {
            let tail = self.synthesize(FADE.min(out.len()));
            for (i, (o, t)) in out.iter_mut().zip(&tail).enumerate() {
                let w = (i + 1) as f32 / (FADE + 1) as f32;
                *o = w * *o + (1.0 - w) * t;
            }
        }
        self.lost = 0;
        self.period = None;
        self.remember(&out);
        out
    }

    /// A frame of `len` samples that was lost: its concealment.
    pub fn lost(&mut self, len: usize) -> Vec<f32> {
        self.lost += 1;
        if self.lost > MAX_CONCEALED || self.history.len() < 2 * MIN_PERIOD {
            self.remember(&vec![0.0; len]);
            return vec![0.0; len];
        }
        if self.period.is_none() {
            self.period = Some(pitch_period(&self.history));
        }
        // From the second lost frame on, quieter by a fifth per frame: the period repeated is
        // the frame before, already that much quieter, so the fade ramps within the frame
        // (from its level to four fifths of it) and does not step at the frame's edge.
        let mut out = self.synthesize(len);
        if self.lost > 1 {
            let n = out.len().max(1) as f32;
            for (i, o) in out.iter_mut().enumerate() {
                *o *= 1.0 - 0.2 * (i + 1) as f32 / n;
            }
        }
        self.remember(&out);
        out
    }

    /// `len` samples continuing the history by repeating its last pitch period. A voiced
    /// sound is nearly periodic, so the repetition joins the audio before it without a jump;
    /// while a loss lasts, the history ends in concealed audio, itself that period repeated.
    fn synthesize(&self, len: usize) -> Vec<f32> {
        let period = self.period.unwrap_or_else(|| pitch_period(&self.history)).max(1);
        let n = self.history.len();
        if n < period {
            return vec![0.0; len];
        }
        let start = n - period;
        (0..len).map(|i| self.history[start + i % period]).collect()
    }

    fn remember(&mut self, samples: &[f32]) {
        self.history.extend_from_slice(samples);
        if self.history.len() > HISTORY {
            self.history.drain(..self.history.len() - HISTORY);
        }
    }
}

/// The lag in `MIN_PERIOD..=MAX_PERIOD` at which the end of `x` best matches itself
/// (normalised autocorrelation): the first peak near the best, so that a multiple of the period
/// does not win by rounding. The longest period when `x` is too
/// short or silent.
fn pitch_period(x: &[f32]) -> usize {
    let window = MAX_PERIOD.min(x.len().saturating_sub(MAX_PERIOD));
    if window < MIN_PERIOD {
        return (x.len() / 2).clamp(MIN_PERIOD, MAX_PERIOD);
    }
    let end = &x[x.len() - window..];
    let end_energy = end.iter().map(|a| a * a).sum::<f32>().sqrt();
    let scores: Vec<(usize, f32)> = (MIN_PERIOD..=MAX_PERIOD.min(x.len() - window))
        .map(|lag| {
            let before = &x[x.len() - window - lag..x.len() - lag];
            let dot: f32 = end.iter().zip(before).map(|(a, b)| a * b).sum();
            let energy = before.iter().map(|b| b * b).sum::<f32>().sqrt() * end_energy;
            (lag, if energy > 0.0 { dot / energy } else { 0.0 })
        })
        .collect();
    let best = scores.iter().map(|s| s.1).fold(f32::MIN, f32::max);
    if best <= 0.0 {
        return MAX_PERIOD;
    }
    // The first peak (a lag scoring at least its neighbours) near the best.
    (0..scores.len())
        .find(|&i| {
            let s = scores[i].1;
            s >= best - 0.05 && (i == 0 || s >= scores[i - 1].1) && scores.get(i + 1).is_none_or(|next| s >= next.1)
        })
        .map_or(MAX_PERIOD, |i| scores[i].0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(hz: f32, n: usize, offset: usize) -> Vec<f32> {
        (offset..offset + n).map(|i| 0.5 * (i as f32 * hz * std::f32::consts::TAU / 8000.0).sin()).collect()
    }

    #[test]
    fn a_lost_frame_of_a_vowel_is_filled_with_its_own_period() {
        // 200 Hz: a period of 40 samples.
        let mut c = Concealer::new();
        for f in 0..5 {
            c.received(&tone(200.0, FRAME, f * FRAME));
        }
        assert_eq!(pitch_period(&c.history), 40);
        let filled = c.lost(FRAME);
        let truth = tone(200.0, FRAME, 5 * FRAME);
        // After the cross-fade the concealment follows the tone it replaces.
        let err: f32 = filled[FADE..].iter().zip(&truth[FADE..]).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        assert!(err < 0.05, "largest error {err}");
    }

    #[test]
    fn a_long_loss_fades_to_silence_and_the_return_does_not_click() {
        let mut c = Concealer::new();
        for f in 0..5 {
            c.received(&tone(150.0, FRAME, f * FRAME));
        }
        let frames: Vec<Vec<f32>> = (0..5).map(|_| c.lost(FRAME)).collect();
        let peak = |v: &[f32]| v.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        assert!(peak(&frames[1]) < peak(&frames[0]), "the second lost frame is quieter");
        assert_eq!(peak(&frames[3]), 0.0, "silent after 60 ms");
        let back = c.received(&tone(150.0, FRAME, 10 * FRAME));
        // The first sample back is pulled towards the silence before it.
        assert!(back[0].abs() <= tone(150.0, 1, 10 * FRAME)[0].abs());
        assert_eq!(back[FADE..], tone(150.0, FRAME, 10 * FRAME)[FADE..]);
    }

    #[test]
    fn loss_at_the_start_of_a_stream_is_silence() {
        let mut c = Concealer::new();
        assert_eq!(c.lost(FRAME), vec![0.0; FRAME]);
        assert_eq!(c.received(&[0.25; FRAME]).len(), FRAME);
    }
}

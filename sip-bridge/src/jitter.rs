//! The jitter buffer: the caller's RTP frames put back in order and taken out one per 20 ms
//! tick of the bridge's media clock, a little behind their arrival so that a late packet still
//! finds its place. A frame that is missing when its turn comes is concealed
//! ([`lotse_speech::conceal`]); one that comes after its turn is dropped. The buffer holds at
//! most one second: a huge sequence jump (a new source, a broken peer) starts it afresh, and a
//! sender whose clock runs fast loses its oldest frames, so the delay stays bounded.

use std::collections::BTreeMap;

use lotse_speech::conceal::{Concealer, FRAME};

/// Frames kept at most (one second).
const CAPACITY: u64 = 50;

pub struct Jitter {
    /// Frames waiting, by extended sequence number.
    frames: BTreeMap<u64, Vec<f32>>,
    /// The extended sequence number of the frame due next, once playout has begun.
    next: Option<u64>,
    /// The highest extended sequence number seen (for wrap-around).
    highest: Option<u64>,
    /// Frames held before playout begins.
    depth: usize,
    conceal: Concealer,
    /// Frames concealed and frames dropped as late, for the call's record.
    pub concealed: u64,
    pub late: u64,
}

impl Jitter {
    /// A buffer that holds `depth` frames (20 ms each) before it plays.
    pub fn new(depth: usize) -> Jitter {
        Jitter {
            frames: BTreeMap::new(),
            next: None,
            highest: None,
            depth: depth.max(1),
            conceal: Concealer::new(),
            concealed: 0,
            late: 0,
        }
    }

    /// The 16-bit sequence number extended to the one nearest the highest seen.
    fn extend(&self, seq: u16) -> u64 {
        let Some(h) = self.highest else { return (1 << 32) + seq as u64 };
        let base = h & !0xffff;
        [base.wrapping_sub(1 << 16), base, base + (1 << 16)]
            .into_iter()
            .map(|b| b + seq as u64)
            .min_by_key(|c| c.abs_diff(h))
            .unwrap_or(base + seq as u64)
    }

    /// A frame arrived (8 kHz samples).
    pub fn push(&mut self, seq: u16, samples: Vec<f32>) {
        let ext = self.extend(seq);
        if self.highest.is_some_and(|h| ext.abs_diff(h) > CAPACITY * 4) {
            // A jump of seconds: a new stream. Start again.
            self.frames.clear();
            self.next = None;
            self.highest = Some(ext);
        }
        if self.next.is_some_and(|n| ext < n) {
            self.late += 1;
            return;
        }
        self.highest = Some(self.highest.map_or(ext, |h| h.max(ext)));
        self.frames.insert(ext, samples);
        while self.frames.len() as u64 > CAPACITY {
            self.frames.pop_first();
        }
    }

    /// The next 20 ms for the call: a frame, its concealment, or silence before playout began.
    pub fn pop(&mut self) -> Vec<f32> {
        let next = match self.next {
            Some(n) => n,
            None if self.frames.len() >= self.depth => *self.frames.keys().next().expect("not empty"),
            None => return vec![0.0; FRAME],
        };
        // Far behind the newest frame (a fast sender, or a burst after a stall): skip ahead.
        let next = match self.highest {
            Some(h) if h >= next + CAPACITY / 2 => {
                self.frames.retain(|&k, _| k + self.depth as u64 > h);
                *self.frames.keys().next().unwrap_or(&h)
            }
            _ => next,
        };
        self.next = Some(next + 1);
        match self.frames.remove(&next) {
            Some(f) => self.conceal.received(&f),
            None => {
                self.concealed += 1;
                self.conceal.lost(FRAME)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(v: f32) -> Vec<f32> {
        vec![v; FRAME]
    }

    #[test]
    fn frames_come_out_in_order_after_the_depth() {
        let mut j = Jitter::new(2);
        j.push(11, frame(0.2));
        assert_eq!(j.pop(), frame(0.0), "not yet: one frame held");
        j.push(10, frame(0.1));
        let a = j.pop();
        let b = j.pop();
        assert!((a[80] - 0.1).abs() < 1e-6 && (b[80] - 0.2).abs() < 1e-6);
        j.push(9, frame(0.9));
        assert_eq!(j.late, 1, "a frame after its turn is dropped");
    }

    #[test]
    fn a_missing_frame_is_concealed_and_sequence_numbers_wrap() {
        let mut j = Jitter::new(1);
        let tone: Vec<f32> = (0..FRAME).map(|i| (i as f32 * 0.3).sin() * 0.5).collect();
        j.push(65534, tone.clone());
        j.push(65535, tone.clone());
        j.push(1, tone.clone()); // 0 is lost
        j.pop();
        j.pop();
        let hidden = j.pop();
        assert_eq!(j.concealed, 1);
        assert!(hidden.iter().any(|v| v.abs() > 0.1), "the concealment repeats the tone");
        let after = j.pop();
        assert!((after[100] - tone[100]).abs() < 1e-3, "sequence 1 follows 65535");
    }

    #[test]
    fn a_jump_starts_afresh_and_the_buffer_stays_bounded() {
        let mut j = Jitter::new(1);
        j.push(100, frame(0.1));
        j.pop();
        j.push(30_000, frame(0.3));
        assert!((j.pop()[80] - 0.3).abs() < 1e-6, "the new stream plays at once");
        for s in 0..500u16 {
            j.push(30_001 + s, frame(0.2));
        }
        assert!(j.frames.len() as u64 <= CAPACITY);
        j.pop();
        assert!(j.frames.len() < 5, "far behind: the oldest frames are skipped");
    }
}

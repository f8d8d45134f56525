//! The jitter buffer: the caller's RTP frames put back in order and taken out one per 20 ms
//! tick of the bridge's media clock, a little behind their arrival so that a late packet still
//! finds its place. A frame that is missing when its turn comes is concealed
//! ([`lotse_speech::conceal`]); one that comes after its turn is dropped.
//!
//! The buffer follows the sender rather than trusting it: when it runs dry (the caller paused
//! sending, or their clock is slower than the bridge's) playout starts again from the next
//! frames that come; a new source (SSRC) or a jump of seconds starts it afresh; it holds at
//! most one second, and a sender far ahead of playout (a fast clock, a burst after a stall)
//! loses its oldest frames, so the delay stays bounded.

use std::collections::BTreeMap;

use lotse_speech::conceal::{Concealer, FRAME};

/// Frames kept at most (one second).
const CAPACITY: u64 = 50;
/// A forward jump of more than this many frames is a new stream.
const JUMP: u64 = 4 * CAPACITY;
/// Ticks without a frame after which playout waits to fill again (60 ms).
const DRY: u32 = 3;

pub struct Jitter {
    /// Frames waiting, by extended sequence number.
    frames: BTreeMap<u64, Vec<f32>>,
    /// The extended sequence number of the frame due next, while playing out.
    next: Option<u64>,
    /// The highest extended sequence number seen (for wrap-around).
    highest: Option<u64>,
    /// The stream's source.
    ssrc: Option<u32>,
    /// Frames held before playout begins.
    depth: usize,
    /// Ticks in a row that found no frame.
    dry: u32,
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
            ssrc: None,
            depth: depth.max(1),
            dry: 0,
            conceal: Concealer::new(),
            concealed: 0,
            late: 0,
        }
    }

    /// The 16-bit sequence number extended to the one nearest the highest seen.
    fn extend(&self, seq: u16) -> u64 {
        let Some(h) = self.highest else { return (1 << 32) + seq as u64 };
        let base = h & !0xffff;
        [base.saturating_sub(1 << 16), base, base + (1 << 16)]
            .into_iter()
            .map(|b| b + seq as u64)
            .min_by_key(|c| c.abs_diff(h))
            .unwrap_or(base + seq as u64)
    }

    fn restart(&mut self) {
        self.frames.clear();
        self.next = None;
        self.highest = None;
        self.dry = 0;
    }

    /// A frame arrived (8 kHz samples) from the source `ssrc`.
    pub fn push(&mut self, ssrc: u32, seq: u16, samples: Vec<f32>) {
        if self.ssrc != Some(ssrc) {
            // A new source: its numbers have nothing to do with the old one's.
            self.restart();
            self.ssrc = Some(ssrc);
        }
        let ext = self.extend(seq);
        if self.highest.is_some_and(|h| ext > h + JUMP) {
            self.restart();
        }
        let mut ext = self.extend(seq);
        if let Some(n) = self.next
            && ext < n
        {
            if self.frames.is_empty() && n - ext > self.depth as u64 {
                // Playout ran ahead of a sender that fell behind (or jumped back): follow the
                // sender, from its numbers.
                self.restart();
                ext = self.extend(seq);
            } else {
                self.late += 1;
                return;
            }
        }
        self.highest = Some(self.highest.map_or(ext, |h| h.max(ext)));
        self.frames.insert(ext, samples);
        while self.frames.len() as u64 > CAPACITY {
            self.frames.pop_first();
        }
    }

    /// The next 20 ms for the call: a frame, its concealment, or silence while playout waits.
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
                self.frames.keys().next().copied().unwrap_or(h)
            }
            _ => next,
        };
        self.next = Some(next + 1);
        match self.frames.remove(&next) {
            Some(f) => {
                self.dry = 0;
                self.conceal.received(&f)
            }
            None => {
                self.concealed += 1;
                if self.frames.is_empty() {
                    self.dry += 1;
                    if self.dry >= DRY {
                        // Nothing is coming: wait to fill again, from wherever the sender is.
                        self.next = None;
                        self.dry = 0;
                    }
                }
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
        j.push(1, 11, frame(0.2));
        assert_eq!(j.pop(), frame(0.0), "not yet: one frame held");
        j.push(1, 10, frame(0.1));
        let a = j.pop();
        let b = j.pop();
        assert!((a[80] - 0.1).abs() < 1e-6 && (b[80] - 0.2).abs() < 1e-6);
        j.push(1, 12, frame(0.3));
        j.push(1, 9, frame(0.9));
        assert_eq!(j.late, 1, "a frame after its turn is dropped");
    }

    #[test]
    fn a_missing_frame_is_concealed_and_sequence_numbers_wrap() {
        let mut j = Jitter::new(1);
        let tone: Vec<f32> = (0..FRAME).map(|i| (i as f32 * 0.3).sin() * 0.5).collect();
        j.push(1, 65534, tone.clone());
        j.push(1, 65535, tone.clone());
        j.push(1, 1, tone.clone()); // 0 is lost
        j.pop();
        j.pop();
        let hidden = j.pop();
        assert_eq!(j.concealed, 1);
        assert!(hidden.iter().any(|v| v.abs() > 0.1), "the concealment repeats the tone");
        let after = j.pop();
        assert!((after[100] - tone[100]).abs() < 1e-3, "sequence 1 follows 65535");
    }

    #[test]
    fn a_jump_or_a_new_source_starts_afresh_and_the_buffer_stays_bounded() {
        let mut j = Jitter::new(1);
        j.push(1, 100, frame(0.1));
        j.pop();
        j.push(1, 30_000, frame(0.3));
        assert!((j.pop()[80] - 0.3).abs() < 1e-6, "the new stream plays at once");
        j.push(2, 5, frame(0.4));
        assert!((j.pop()[80] - 0.4).abs() < 1e-6, "a new source plays at once");
        for s in 0..500u16 {
            j.push(2, 6 + s, frame(0.2));
        }
        assert!(j.frames.len() as u64 <= CAPACITY);
        j.pop();
        assert!(j.frames.len() < 5, "far behind: the oldest frames are skipped");
        // One stray packet of long ago is dropped, and the stream goes on.
        j.push(2, 3, frame(0.9));
        j.push(2, 506, frame(0.5));
        assert!(j.frames.contains_key(&j.extend(506)));
    }

    #[test]
    fn a_sender_that_pauses_or_falls_behind_is_heard_again() {
        // The sender stops for a second (silence suppression, hold) and resumes with the next
        // number: playout has run on, and must follow.
        let mut j = Jitter::new(2);
        for s in 0..10u16 {
            j.push(7, s, frame(0.1));
            j.pop();
        }
        for _ in 0..50 {
            j.pop();
        }
        for s in 10..14u16 {
            j.push(7, s, frame(0.6));
        }
        let out: Vec<f32> = (0..4).map(|_| j.pop()[80]).collect();
        assert!(out.iter().filter(|v| (**v - 0.6).abs() < 1e-6).count() >= 2, "heard again: {out:?}");
        // A sender whose clock is slower than the bridge's: one frame in 20 goes missing on
        // the bridge's side; every frame still arrives in time to be played or concealed.
        let mut j = Jitter::new(2);
        let mut heard = 0;
        let mut seq = 0u16;
        for tick in 0..3_000u32 {
            if tick % 20 != 19 {
                j.push(9, seq, frame(0.5));
                seq = seq.wrapping_add(1);
            }
            if (j.pop()[80] - 0.5).abs() < 1e-6 {
                heard += 1;
            }
        }
        assert!(heard > 2_700, "{heard} of 2,850 frames heard");
        // A sender that jumps back by thousands within its stream is heard from there on.
        let mut j = Jitter::new(2);
        for s in 10_000..10_010u16 {
            j.push(3, s, frame(0.1));
            j.pop();
        }
        for _ in 0..5 {
            j.pop();
        }
        let mut out = Vec::new();
        for s in 5_000..5_020u16 {
            j.push(3, s, frame(0.7));
            out.push(j.pop()[80]);
        }
        assert!(out.iter().filter(|v| (**v - 0.7).abs() < 1e-6).count() >= 15, "heard after the jump back: {out:?}");
    }
}

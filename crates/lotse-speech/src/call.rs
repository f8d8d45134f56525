//! One call's audio, without I/O: caller audio in (16 kHz), bot audio out (any rate), with the
//! end of each caller turn, barge-in and DTMF as events. The SIP bridge and the offline
//! `lotse voice` move audio in and out of it; recognition, the dialog and synthesis run outside,
//! on what the events hand over.
//!
//! Time is counted in input samples, so the same audio gives the same events, offline and live.
//!
//! Barge-in: while bot audio is playing, the caller's speech start (96 ms of speech by default,
//! reported within one 32 ms chunk) stops the playback at once, raises the turn's cancel flag
//! (which stops generation), and reports what the caller actually heard: every sentence played
//! to the end and the words of the cut sentence in proportion to the part played.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::endpoint::{EndpointConfig, Endpointer, Turn};
use crate::vad::{Activity, CHUNK, RATE, Vad, VadError};

/// What happened in the audio just pushed.
#[derive(Debug, Clone, PartialEq)]
pub enum CallEvent {
    /// The caller started speaking.
    SpeechStarted { at: Duration },
    /// The caller paused: the utterance so far. Recognition may start on it during the hangover;
    /// if the turn then ends without more speech, its utterance is this same audio.
    Paused { audio: Vec<f32>, at: Duration },
    /// The caller spoke again after a pause: work started at the pause is void.
    Resumed { at: Duration },
    /// The caller finished a turn: the utterance (16 kHz); `at` is when the end was decided,
    /// `speech_end` when the caller stopped (before the hangover), both in input time.
    Utterance { audio: Vec<f32>, at: Duration, speech_end: Duration, capped: bool },
    /// The caller spoke (or pressed a key) over the bot; playback stopped. `heard` is what was
    /// played of the turn's reply.
    BargeIn { at: Duration, heard: String },
    /// A key (priority lane: reported at once, ahead of any audio event).
    Dtmf { at: Duration, digit: char },
}

/// A sentence queued for playback.
struct Queued {
    text: String,
    samples: Vec<f32>,
    played: usize,
}

/// The bot's audio waiting to be played, and what of the current reply has been. Offline the
/// call pulls it frame by frame; on a live line the media clock pulls it through
/// [`Call::player`], so that the audio goes on while the call's thread recognises or
/// synthesises.
#[derive(Default)]
pub struct Player {
    queue: VecDeque<Queued>,
    /// What has been played of the current reply, sentence by sentence.
    heard: Vec<String>,
}

impl Player {
    pub fn is_playing(&self) -> bool {
        self.queue.iter().any(|q| q.played < q.samples.len())
    }

    /// Output samples still queued.
    pub fn queued_samples(&self) -> usize {
        self.queue.iter().map(|q| q.samples.len() - q.played).sum()
    }

    /// The next `n` output samples (silence when nothing is queued).
    pub fn pull(&mut self, n: usize) -> Vec<f32> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let Some(q) = self.queue.front_mut() else { break };
            let take = (n - out.len()).min(q.samples.len() - q.played);
            out.extend_from_slice(&q.samples[q.played..q.played + take]);
            q.played += take;
            if q.played == q.samples.len() {
                let done = self.queue.pop_front().expect("front exists");
                self.heard.push(done.text);
            }
        }
        out.resize(n, 0.0);
        out
    }

    /// Drops everything queued (what was played of it stays heard).
    pub fn clear(&mut self) {
        if let Some(q) = self.queue.front().filter(|q| q.played > 0) {
            let part = partial_words(&q.text, q.played as f32 / q.samples.len().max(1) as f32);
            self.heard.push(part);
        }
        self.queue.clear();
    }

    /// What the caller has heard of the current reply so far.
    pub fn heard(&self) -> String {
        let mut parts = self.heard.clone();
        if let Some(q) = self.queue.front().filter(|q| q.played > 0) {
            parts.push(partial_words(&q.text, q.played as f32 / q.samples.len().max(1) as f32));
        }
        parts.retain(|p| !p.is_empty());
        parts.join(" ")
    }
}

/// One call, with its voice activity detector (the real [`Vad`] unless a test gives another).
pub struct Call<V: Activity = Vad> {
    vad: V,
    endpointer: Endpointer,
    pending: Vec<f32>,
    /// Input samples consumed (the call's clock).
    clock: u64,
    player: Arc<Mutex<Player>>,
    cancel: Arc<AtomicBool>,
    barge_in: bool,
    output_rate: u32,
}

/// Whether the characters are a DTMF key.
pub fn is_dtmf(c: char) -> bool {
    matches!(c, '0'..='9' | '*' | '#' | 'A'..='D')
}

impl<V: Activity> Call<V> {
    pub fn new(vad: V, endpoint: EndpointConfig, output_rate: u32) -> Call<V> {
        Call {
            vad,
            endpointer: Endpointer::new(endpoint, (CHUNK as u32 * 1000) / RATE),
            pending: Vec::with_capacity(CHUNK),
            clock: 0,
            player: Arc::default(),
            cancel: Arc::new(AtomicBool::new(false)),
            barge_in: true,
            output_rate,
        }
    }

    /// Barge-in on or off (off: the caller's speech during playback is kept for the next turn,
    /// the playback goes on).
    pub fn set_barge_in(&mut self, on: bool) {
        self.barge_in = on;
    }

    /// Numbers or spelling expected: the end of turn waits longer.
    pub fn set_dictation(&mut self, on: bool) {
        self.endpointer.set_dictation(on);
    }

    /// The words so far are unfinished: the end of turn waits longer (until the turn ends).
    pub fn set_unfinished(&mut self, on: bool) {
        self.endpointer.set_unfinished(on);
    }

    /// The call's time: input consumed so far.
    pub fn now(&self) -> Duration {
        Duration::from_secs_f64(self.clock as f64 / RATE as f64)
    }

    /// The playback, for a media clock of its own (a live line).
    pub fn player(&self) -> Arc<Mutex<Player>> {
        self.player.clone()
    }

    fn playback(&self) -> MutexGuard<'_, Player> {
        // A panic elsewhere while holding the lock leaves a queue that is still whole.
        self.player.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts a new reply: the flag its generation watches (raised by a barge-in).
    pub fn begin_reply(&mut self) -> Arc<AtomicBool> {
        self.cancel = Arc::new(AtomicBool::new(false));
        self.playback().heard.clear();
        self.cancel.clone()
    }

    /// Stops the current reply before it plays (its generation watches the flag).
    pub fn cancel_reply(&self) {
        self.cancel.store(true, Ordering::Relaxed);
    }

    /// Whether the current reply was stopped (by a barge-in or [`Call::cancel_reply`]).
    pub fn reply_cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    /// Queues a synthesised sentence (at the output rate). Ignored after a barge-in of this
    /// reply: generation may still deliver a sentence it had nearly finished.
    pub fn play(&mut self, text: &str, samples: Vec<f32>) {
        if self.cancel.load(Ordering::Relaxed) {
            return;
        }
        self.playback().queue.push_back(Queued { text: text.to_string(), samples, played: 0 });
    }

    pub fn is_playing(&self) -> bool {
        self.playback().is_playing()
    }

    /// Output samples still queued.
    pub fn queued_samples(&self) -> usize {
        self.playback().queued_samples()
    }

    /// The next `n` output samples (silence when nothing is queued).
    pub fn pull(&mut self, n: usize) -> Vec<f32> {
        self.playback().pull(n)
    }

    /// What the caller has heard of the current reply so far.
    pub fn heard(&self) -> String {
        self.playback().heard()
    }

    fn interrupt(&mut self) -> Option<CallEvent> {
        let heard = {
            let mut player = self.playback();
            if !self.barge_in || !player.is_playing() {
                return None;
            }
            let heard = player.heard();
            player.queue.clear();
            heard
        };
        self.cancel.store(true, Ordering::Relaxed);
        Some(CallEvent::BargeIn { at: self.now(), heard })
    }

    /// A key pressed: reported at once; during playback it also interrupts.
    pub fn push_dtmf(&mut self, digit: char) -> Vec<CallEvent> {
        let mut events = vec![CallEvent::Dtmf { at: self.now(), digit }];
        if let Some(b) = self.interrupt() {
            events.insert(0, b);
        }
        events
    }

    /// The caller's utterance so far while they speak (16 kHz); none between turns.
    pub fn utterance_so_far(&self) -> Option<&[f32]> {
        self.endpointer.so_far()
    }

    /// Caller audio at 16 kHz, any amount.
    pub fn push_audio(&mut self, mut samples: &[f32]) -> Result<Vec<CallEvent>, VadError> {
        let mut events = Vec::new();
        while !samples.is_empty() {
            let take = (CHUNK - self.pending.len()).min(samples.len());
            self.pending.extend_from_slice(&samples[..take]);
            samples = &samples[take..];
            if self.pending.len() < CHUNK {
                break;
            }
            // Out-of-range input (clipping, a broken codec) is clamped, never passed on.
            for v in &mut self.pending {
                *v = if v.is_finite() { v.clamp(-1.0, 1.0) } else { 0.0 };
            }
            let p = self.vad.probability(&self.pending)?;
            self.clock += CHUNK as u64;
            match self.endpointer.push(&self.pending, p) {
                Turn::Idle => {}
                Turn::Started => {
                    if let Some(b) = self.interrupt() {
                        events.push(b);
                    }
                    events.push(CallEvent::SpeechStarted { at: self.now() });
                }
                Turn::Paused { audio } => events.push(CallEvent::Paused { audio, at: self.now() }),
                Turn::Resumed => events.push(CallEvent::Resumed { at: self.now() }),
                Turn::Ended { audio, capped, trailing_ms } => {
                    let at = self.now();
                    let speech_end = at.saturating_sub(Duration::from_millis(trailing_ms as u64));
                    events.push(CallEvent::Utterance { audio, at, speech_end, capped })
                }
            }
            self.pending.clear();
        }
        Ok(events)
    }

    /// The call is over: its detector, for the next call (after [`Activity::reset`]).
    pub fn into_vad(self) -> V {
        self.vad
    }

    pub fn output_rate(&self) -> u32 {
        self.output_rate
    }
}

/// The first words of a sentence, in proportion to the share played.
fn partial_words(text: &str, share: f32) -> String {
    let words: Vec<&str> = text.split_whitespace().collect();
    let n = ((words.len() as f32) * share.clamp(0.0, 1.0)).floor() as usize;
    if n == 0 {
        return String::new();
    }
    let mut s = words[..n].join(" ");
    if n < words.len() {
        s.push_str(" …");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_heard_part_is_proportional() {
        assert_eq!(partial_words("Der Ausweis kostet 46 Euro.", 0.5), "Der Ausweis …");
        assert_eq!(partial_words("Der Ausweis kostet 46 Euro.", 1.0), "Der Ausweis kostet 46 Euro.");
        assert_eq!(partial_words("Der Ausweis", 0.1), "");
        assert!(is_dtmf('#') && is_dtmf('0') && !is_dtmf('x'));
    }
}

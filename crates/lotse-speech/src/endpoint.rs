//! The end of a caller's turn, from per-chunk speech probabilities: speech starts after a short
//! run of speech chunks and ends after a hangover of silence (300 ms by default; longer while
//! the caller dictates digits or spells, so a pause between digit groups does not cut them off,
//! and while the words so far are not yet a question the bot can answer, so a pause between two
//! sentences of one question does not cut it in two).
//! An utterance is capped in length, so a caller who never stops is still answered.

/// The hangover while the words so far are unfinished: people pause 0.3 to 0.7 s between the
/// sentences of one turn ("Ich bin nach Jena gezogen. Was muss ich mitbringen?"); SVOX pico,
/// the evaluation's German voice, pauses 0.55 s between sentences and 0.37 s at a comma.
pub const UNFINISHED_MS: u32 = 700;

/// Settings of the end-of-turn detector.
#[derive(Debug, Clone)]
pub struct EndpointConfig {
    /// Probability above which a chunk counts as speech.
    pub on: f32,
    /// Probability below which a chunk counts as silence (between the two: unchanged).
    pub off: f32,
    /// Speech this long starts an utterance (ms).
    pub min_speech_ms: u32,
    /// Silence this long ends it (ms).
    pub hangover_ms: u32,
    /// Silence this long ends it while the caller dictates numbers or spells (ms).
    pub dictation_hangover_ms: u32,
    /// Silence this long ends it while the words so far are unfinished (ms).
    pub unfinished_hangover_ms: u32,
    /// Audio kept from before the start, so the first syllable is not lost (ms).
    pub pre_roll_ms: u32,
    /// The longest utterance (ms); then it ends regardless.
    pub max_utterance_ms: u32,
}

impl Default for EndpointConfig {
    fn default() -> Self {
        EndpointConfig {
            on: 0.5,
            off: 0.35,
            min_speech_ms: 96,
            hangover_ms: 300,
            dictation_hangover_ms: 900,
            unfinished_hangover_ms: UNFINISHED_MS,
            pre_roll_ms: 192,
            max_utterance_ms: 15_000,
        }
    }
}

/// What the detector reports for a chunk.
#[derive(Debug, Clone, PartialEq)]
pub enum Turn {
    /// Nothing new.
    Idle,
    /// The caller started speaking (barge-in point during playback).
    Started,
    /// The caller paused (the first silent chunk): the utterance so far, without it. If the
    /// turn ends without further speech, its utterance is exactly this audio, so recognition
    /// may start now, during the hangover.
    Paused { audio: Vec<f32> },
    /// Speech again after a pause: what started at the pause is void.
    Resumed,
    /// The caller finished: the utterance, from the pre-roll to the last speech chunk.
    Ended { audio: Vec<f32>, capped: bool, trailing_ms: u32 },
}

/// The detector: feed it chunks of audio with their speech probability.
pub struct Endpointer {
    config: EndpointConfig,
    chunk_ms: u32,
    speaking: bool,
    speech_run: u32,
    silence_run: u32,
    dictation: bool,
    unfinished: bool,
    audio: Vec<f32>,
    /// The utterance's length at its last speech chunk.
    speech_len: usize,
    pre_roll: std::collections::VecDeque<Vec<f32>>,
}

impl Endpointer {
    /// `chunk_ms`: the duration of the chunks that will be pushed (32 ms for Silero at 16 kHz).
    pub fn new(config: EndpointConfig, chunk_ms: u32) -> Endpointer {
        Endpointer {
            config,
            chunk_ms: chunk_ms.max(1),
            speaking: false,
            speech_run: 0,
            silence_run: 0,
            dictation: false,
            unfinished: false,
            audio: Vec::new(),
            speech_len: 0,
            pre_roll: Default::default(),
        }
    }

    /// While the partial transcript shows digits or spelled letters, wait longer before ending.
    pub fn set_dictation(&mut self, on: bool) {
        self.dictation = on;
    }

    /// While the words so far are not a question the bot can answer (a story's first
    /// sentence, a greeting), wait longer before ending: the caller is likely to go on. Until
    /// the caller speaks again or the turn ends.
    pub fn set_unfinished(&mut self, on: bool) {
        self.unfinished = on;
    }

    pub fn is_speaking(&self) -> bool {
        self.speaking
    }

    /// The utterance so far while the caller speaks (from the pre-roll to the last speech
    /// chunk); none between turns.
    pub fn so_far(&self) -> Option<&[f32]> {
        self.speaking.then(|| &self.audio[..self.speech_len.min(self.audio.len())])
    }

    pub fn push(&mut self, chunk: &[f32], probability: f32) -> Turn {
        let c = &self.config;
        let speech = probability >= c.on;
        let silence = probability < c.off;
        if !self.speaking {
            self.pre_roll.push_back(chunk.to_vec());
            while self.pre_roll.len() as u32 * self.chunk_ms > c.pre_roll_ms + c.min_speech_ms {
                self.pre_roll.pop_front();
            }
            self.speech_run = if speech { self.speech_run + 1 } else { 0 };
            if self.speech_run * self.chunk_ms >= c.min_speech_ms {
                self.speaking = true;
                self.silence_run = 0;
                self.audio = self.pre_roll.drain(..).flatten().collect();
                self.speech_len = self.audio.len();
                return Turn::Started;
            }
            return Turn::Idle;
        }
        self.audio.extend_from_slice(chunk);
        let mut resumed = false;
        if silence {
            self.silence_run += 1;
        } else if speech {
            resumed = self.silence_run > 0;
            self.silence_run = 0;
            // The judgement was about the words before the pause; new words need a new one.
            if resumed {
                self.unfinished = false;
            }
        }
        if speech {
            self.speech_len = self.audio.len();
        }
        let hangover = if self.dictation {
            c.dictation_hangover_ms
        } else if self.unfinished {
            c.unfinished_hangover_ms
        } else {
            c.hangover_ms
        };
        let capped =
            self.audio.len() as u64 * self.chunk_ms as u64 / chunk.len().max(1) as u64 >= c.max_utterance_ms as u64;
        if self.silence_run * self.chunk_ms >= hangover || capped {
            // What follows the last speech chunk (silence, and chunks between the thresholds)
            // is not part of the utterance.
            let mut audio = std::mem::take(&mut self.audio);
            let trailing = if capped { 0 } else { audio.len() - self.speech_len.min(audio.len()) };
            audio.truncate(audio.len() - trailing);
            self.speaking = false;
            self.speech_run = 0;
            self.dictation = false;
            self.unfinished = false;
            let trailing_ms = (trailing as u64 * self.chunk_ms as u64 / chunk.len().max(1) as u64) as u32;
            self.silence_run = 0;
            return Turn::Ended { audio, capped, trailing_ms };
        }
        if silence && self.silence_run == 1 {
            let n = self.speech_len.min(self.audio.len());
            return Turn::Paused { audio: self.audio[..n].to_vec() };
        }
        if resumed {
            return Turn::Resumed;
        }
        Turn::Idle
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Starts and ends (pauses and resumptions left out).
    fn run(probs: &[f32], e: &mut Endpointer) -> Vec<(usize, Turn)> {
        probs
            .iter()
            .enumerate()
            .map(|(i, &p)| (i, e.push(&[p; 512], p)))
            .filter(|(_, t)| matches!(t, Turn::Started | Turn::Ended { .. }))
            .collect()
    }

    #[test]
    fn a_pause_hands_over_the_utterance_that_the_end_then_confirms() {
        let mut e = Endpointer::new(EndpointConfig::default(), 32);
        let mut probs = vec![0.05; 10];
        probs.extend(vec![0.9; 20]);
        probs.extend(vec![0.05; 4]); // a short pause: speech again before the hangover
        probs.extend(vec![0.9; 10]);
        probs.extend(vec![0.05; 20]);
        let events: Vec<(usize, Turn)> = probs
            .iter()
            .enumerate()
            .map(|(i, &p)| (i, e.push(&[p; 512], p)))
            .filter(|(_, t)| *t != Turn::Idle)
            .collect();
        let kinds: Vec<&str> = events
            .iter()
            .map(|(_, t)| match t {
                Turn::Started => "started",
                Turn::Paused { .. } => "paused",
                Turn::Resumed => "resumed",
                Turn::Ended { .. } => "ended",
                Turn::Idle => "idle",
            })
            .collect();
        assert_eq!(kinds, ["started", "paused", "resumed", "paused", "ended"]);
        let (Turn::Paused { audio: at_pause }, Turn::Ended { audio: at_end, .. }) = (&events[3].1, &events[4].1) else {
            panic!()
        };
        assert_eq!(at_pause, at_end, "the audio handed over at the pause is the utterance");

        // A chunk between the thresholds after the pause: still the same utterance, and the
        // end of speech is counted from the last speech chunk.
        let mut e = Endpointer::new(EndpointConfig::default(), 32);
        let mut probs = vec![0.9; 10];
        probs.extend([0.05, 0.4]);
        probs.extend(vec![0.05; 12]);
        let mut paused = None;
        let mut ended = None;
        for &p in &probs {
            match e.push(&[p; 512], p) {
                Turn::Paused { audio } => paused = Some(audio),
                Turn::Ended { audio, trailing_ms, .. } => ended = Some((audio, trailing_ms)),
                _ => {}
            }
        }
        let (audio, trailing_ms) = ended.expect("ended");
        assert_eq!(Some(&audio), paused.as_ref());
        assert_eq!(trailing_ms, 11 * 32, "ten silent chunks and the one between");
    }

    #[test]
    fn a_turn_starts_on_speech_and_ends_after_the_hangover() {
        let mut e = Endpointer::new(EndpointConfig::default(), 32);
        // 10 chunks of silence, 20 of speech, then silence.
        let mut probs = vec![0.05; 10];
        probs.extend(vec![0.9; 20]);
        probs.extend(vec![0.05; 20]);
        let events = run(&probs, &mut e);
        assert_eq!(events.len(), 2, "{events:?}");
        assert_eq!((events[0].0, &events[0].1), (12, &Turn::Started));
        // 300 ms hangover at 32 ms per chunk: the 10th silent chunk ends it (index 30 + 9).
        assert_eq!(events[1].0, 39);
        let Turn::Ended { audio, capped, .. } = &events[1].1 else { panic!() };
        assert!(!capped);
        // Pre-roll (192 ms + the start run) plus the speech, no trailing silence.
        // The pre-roll (6 chunks of silence before the 3 that started it) and the 20 of speech.
        assert_eq!(audio.len() / 512, 26);
    }

    #[test]
    fn short_noise_is_no_turn_and_dictation_waits_longer() {
        let mut e = Endpointer::new(EndpointConfig::default(), 32);
        let mut probs = vec![0.9, 0.9, 0.1, 0.9, 0.1, 0.1];
        probs.extend(vec![0.05; 20]);
        assert!(run(&probs, &mut e).is_empty(), "two chunks of noise started a turn");
        let mut e = Endpointer::new(EndpointConfig::default(), 32);
        let mut probs = vec![0.9; 10];
        probs.extend(vec![0.05; 15]); // 480 ms pause between digit groups
        probs.extend(vec![0.9; 10]);
        probs.extend(vec![0.05; 40]);
        let mut events = Vec::new();
        for (i, &p) in probs.iter().enumerate() {
            if i == 5 {
                e.set_dictation(true);
            }
            let t = e.push(&[0.0; 512], p);
            if matches!(t, Turn::Started | Turn::Ended { .. }) {
                events.push((i, t));
            }
        }
        assert_eq!(
            events.len(),
            2,
            "the pause cut the caller off: {:?}",
            events.iter().map(|e| e.0).collect::<Vec<_>>()
        );
        assert_eq!(events[1].0, 35 + 28, "ends after the 900 ms dictation hangover");
    }

    #[test]
    fn an_unfinished_turn_waits_for_the_next_sentence_and_then_ends_as_usual() {
        // Speech, a 544 ms pause between two sentences, speech, silence.
        let mut probs = vec![0.9; 20];
        probs.extend(vec![0.05; 17]);
        probs.extend(vec![0.9; 20]);
        probs.extend(vec![0.05; 30]);
        let ends = |unfinished: bool| {
            let mut e = Endpointer::new(EndpointConfig::default(), 32);
            let mut ends = Vec::new();
            for (i, &p) in probs.iter().enumerate() {
                match e.push(&[0.0; 512], p) {
                    // The words so far, judged at the pause (as the call does with its
                    // transcript): unfinished.
                    Turn::Paused { .. } if i == 20 => e.set_unfinished(unfinished),
                    Turn::Ended { .. } => ends.push(i),
                    _ => {}
                }
            }
            ends
        };
        assert_eq!(ends(false), vec![29, 66], "the 300 ms hangover cuts the turn in two");
        // One turn; after it, the 300 ms hangover again (the second sentence was not judged).
        assert_eq!(ends(true), vec![66]);
    }

    #[test]
    fn a_caller_who_never_stops_is_capped() {
        let mut e = Endpointer::new(EndpointConfig { max_utterance_ms: 3_200, ..Default::default() }, 32);
        let events = run(&vec![0.9; 200], &mut e);
        let ends: Vec<&(usize, Turn)> = events.iter().filter(|(_, t)| matches!(t, Turn::Ended { .. })).collect();
        assert!(!ends.is_empty());
        let Turn::Ended { audio, capped, .. } = &ends[0].1 else { panic!() };
        assert!(*capped && audio.len() <= 100 * 512, "{}", audio.len());
    }
}

//! In-band keys: DTMF tones in the caller's audio, for lines that send no RFC 4733 events
//! (an old gateway, a PBX set to in-band). Each 20 ms frame at 8 kHz is tested at the eight
//! DTMF frequencies with the Goertzel algorithm: a key is one row and one column tone that
//! together carry most of the frame's energy, neither much louder than the other (twist), with
//! no second tone near either. Two frames in a row (40 ms, the shortest tone a key sends) make
//! a key, once per press. Frames that hold a tone are not speech: the call gets silence instead,
//! so a key never reads as the caller speaking (barge-in, a turn).
//!
//! Written here: the Goertzel filter is a few lines, and the crates that detect DTMF bring
//! their own audio pipelines or work on whole recordings.

/// Row and column frequencies (Hz) of the keypad.
const ROWS: [f32; 4] = [697.0, 770.0, 852.0, 941.0];
const COLS: [f32; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
const KEYS: [[char; 4]; 4] = [['1', '2', '3', 'A'], ['4', '5', '6', 'B'], ['7', '8', '9', 'C'], ['*', '0', '#', 'D']];

const RATE: f32 = 8_000.0;
/// The quietest frame taken for a key (mean square; about -45 dBFS).
const FLOOR: f32 = 3e-5;
/// Share of the frame's energy the two tones must carry together, and each at least.
const DOMINANT: f32 = 0.7;
const EACH: f32 = 0.15;
/// Twist: the louder tone at most this many times the power of the other (8 dB).
const TWIST: f32 = 6.3;
/// The runner-up in a group at most this share of the winner's power.
const RUNNER_UP: f32 = 0.3;

/// The power at `freq` over the frame, as a share of what a full-scale sine of the frame's
/// energy would give (a pure tone at `freq` gives about 1).
fn share(frame: &[f32], freq: f32, energy: f32) -> f32 {
    let coeff = 2.0 * (2.0 * std::f32::consts::PI * freq / RATE).cos();
    let (mut s1, mut s2) = (0.0f32, 0.0f32);
    for &x in frame {
        let s = x + coeff * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    power / (energy * frame.len() as f32 / 2.0)
}

/// The strongest frequency of a group, its share, and the runner-up's share.
fn strongest(frame: &[f32], freqs: &[f32; 4], energy: f32) -> (usize, f32, f32) {
    let shares = freqs.map(|f| share(frame, f, energy));
    let best = (0..4).max_by(|&a, &b| shares[a].total_cmp(&shares[b])).unwrap_or(0);
    let runner = (0..4).filter(|&i| i != best).map(|i| shares[i]).fold(0.0, f32::max);
    (best, shares[best], runner)
}

/// The key whose tones fill this frame, if any.
pub fn tone(frame: &[f32]) -> Option<char> {
    if frame.is_empty() {
        return None;
    }
    let energy: f32 = frame.iter().map(|x| x * x).sum();
    if energy / (frame.len() as f32) < FLOOR {
        return None;
    }
    let (r, row, row2) = strongest(frame, &ROWS, energy);
    let (c, col, col2) = strongest(frame, &COLS, energy);
    let ok = row >= EACH
        && col >= EACH
        && row + col >= DOMINANT
        && row.max(col) <= TWIST * row.min(col)
        && row2 <= RUNNER_UP * row
        && col2 <= RUNNER_UP * col;
    ok.then_some(KEYS[r][c])
}

/// Keys from a stream of frames.
#[derive(Debug, Default)]
pub struct Tones {
    /// The tone of the frame before, and whether its key was reported.
    last: Option<char>,
    reported: bool,
}

impl Tones {
    pub fn new() -> Tones {
        Tones::default()
    }

    /// One frame (8 kHz): whether it holds a tone (the call gets silence then), and a key on
    /// its second frame.
    pub fn push(&mut self, frame: &[f32]) -> (bool, Option<char>) {
        let now = tone(frame);
        let key = match now {
            Some(k) if self.last == Some(k) && !self.reported => {
                self.reported = true;
                Some(k)
            }
            Some(k) if self.last == Some(k) => None,
            _ => {
                self.reported = false;
                None
            }
        };
        self.last = now;
        (now.is_some(), key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key's two tones at -10 dBFS each (a phone's level), through G.711 as on the line.
    fn key(k: char, ms: usize, offset: usize) -> Vec<f32> {
        let (r, c) = (0..16).map(|i| (i / 4, i % 4)).find(|&(r, c)| KEYS[r][c] == k).expect("a key");
        let n = ms * 8;
        let a = 0.3f32;
        let pcm: Vec<f32> = (offset..offset + n)
            .map(|i| {
                let t = i as f32 / RATE;
                a * (2.0 * std::f32::consts::PI * ROWS[r] * t).sin()
                    + a * (2.0 * std::f32::consts::PI * COLS[c] * t).sin()
            })
            .collect();
        through_the_line(&pcm)
    }

    fn through_the_line(pcm: &[f32]) -> Vec<f32> {
        let law = lotse_speech::g711::Law::Mu;
        lotse_speech::resample::to_f32(&law.decode(&law.encode(&lotse_speech::resample::to_i16(pcm))))
    }

    fn keys_of(audio: &[f32]) -> (String, usize) {
        let mut t = Tones::new();
        let mut keys = String::new();
        let mut toned = 0;
        for frame in audio.chunks(160) {
            let (tone, key) = t.push(frame);
            toned += tone as usize;
            keys.extend(key);
        }
        (keys, toned)
    }

    #[test]
    fn each_key_pressed_is_heard_once() {
        let mut audio = Vec::new();
        for (i, k) in "0123456789*#".chars().enumerate() {
            // Presses of 60 to 150 ms, not aligned with the frames, with gaps between.
            audio.extend(key(k, 60 + (i % 4) * 30, i * 37));
            audio.extend(vec![0.0; 8 * (50 + i * 7)]);
        }
        let (keys, _) = keys_of(&audio);
        assert_eq!(keys, "0123456789*#");
        // The same key twice, with a gap: twice.
        let mut audio = key('5', 100, 0);
        audio.extend(vec![0.0; 400]);
        audio.extend(key('5', 100, 0));
        assert_eq!(keys_of(&audio).0, "55");
    }

    #[test]
    fn a_key_over_noise_is_heard_and_a_short_click_is_not() {
        let mut seed = 7u32;
        let mut noise = || {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5
        };
        let tone = key('8', 100, 0);
        let noisy: Vec<f32> = tone.iter().map(|x| x + 0.02 * noise()).collect();
        assert_eq!(keys_of(&noisy).0, "8");
        assert_eq!(keys_of(&key('8', 25, 0)).0, "", "shorter than two frames");
    }

    #[test]
    fn speech_like_sound_music_and_single_tones_are_no_keys() {
        // A voice-like buzz: a 140 Hz fundamental with its harmonics, gliding.
        let buzz: Vec<f32> = (0..8000 * 3)
            .map(|i| {
                let t = i as f32 / RATE;
                let f0 = 140.0 + 30.0 * (t * 2.0).sin();
                (1..20).map(|h| (0.2 / h as f32) * (2.0 * std::f32::consts::PI * f0 * h as f32 * t).sin()).sum::<f32>()
            })
            .collect();
        let (keys, toned) = keys_of(&through_the_line(&buzz));
        assert_eq!((keys.as_str(), toned), ("", 0));
        // One tone alone (a dial tone's 425 Hz, a row tone alone) and a chord of two rows.
        let sine = |f: &[f32]| -> Vec<f32> {
            (0..8000)
                .map(|i| f.iter().map(|f| 0.3 * (2.0 * std::f32::consts::PI * f * i as f32 / RATE).sin()).sum())
                .collect()
        };
        for f in [&[425.0][..], &[770.0], &[697.0, 852.0], &[1209.0, 1477.0]] {
            assert_eq!(keys_of(&through_the_line(&sine(f))).0, "", "{f:?}");
        }
        // White noise.
        let mut seed = 1u32;
        let noise: Vec<f32> = (0..16000)
            .map(|_| {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                ((seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5) * 0.5
            })
            .collect();
        assert_eq!(keys_of(&noise).0, "");
    }
}

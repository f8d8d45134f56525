//! The voice stack of `lotse voice`, `lotse eval voice` and `lotse bench voice`: a recording
//! through one phone call (`lotse-call`), with the models loaded from `models/`, the clock of
//! this machine and, where the configuration has a staff desk, the staff queue. The call loop
//! itself is `lotse_call::run`; this module loads what it needs.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use lotse_core::Lang;
use lotse_dialog::Engine;
use lotse_speech::resample::convert;
use lotse_speech::stt::{Stt, SttSession};
use lotse_speech::tts::Tts;
use lotse_speech::vad::Vad;

pub use lotse_call::{Inbound, Key, Outcome, Staff, TurnRecord};

/// This machine's monotonic clock, from when the call began.
struct WallClock(Instant);

impl lotse_call::Clock for WallClock {
    fn now(&self) -> Duration {
        self.0.elapsed()
    }
}

/// The loaded models, shared by calls.
pub struct Stack {
    pub models: PathBuf,
    pub stt: Stt,
    pub tts: Tts,
    /// Detect German or English on a call's first turn (about 200 ms more on 2 cores).
    pub detect: bool,
    /// Recognisers and detectors of ended calls, for the next (their buffers are warm).
    spare: std::sync::Mutex<Vec<(SttSession, Vad)>>,
    /// Whether a spare is being made ([`Stack::ready_another`]).
    making: std::sync::atomic::AtomicBool,
    /// The city's name and how an English recogniser writes it.
    city: lotse_call::CityName,
    /// The knowledge's words, to correct what whisper heard.
    pub vocabulary: std::sync::Arc<lotse_call::Vocabulary>,
}

impl Stack {
    /// Loads VAD (checked), whisper and the voices; every missing or broken file is a clear
    /// error here.
    pub fn load(models: &Path, engine: &Engine, city: &crate::config::CityConfig) -> Result<Stack> {
        let vad = Vad::load(models).context("voice activity detection")?;
        // whisper decodes its prompt before every utterance, so it is kept short: the city's
        // words (`[city] recognition_words`) and the names of the first services of the
        // knowledge (its order: the most asked first), about 40 tokens. A prompt of all service
        // names (about 200 tokens) cost over a second per turn on 2 cores.
        let mut prompt = city.recognition_words().join(", ");
        for s in &engine.knowledge().services {
            let name = s.name.split([' ', '(', ',']).next().unwrap_or_default();
            if prompt.len() + name.len() > 160 {
                break;
            }
            if name.chars().count() > 4 && !prompt.contains(name) {
                if !prompt.is_empty() {
                    prompt.push_str(", ");
                }
                prompt.push_str(name);
            }
        }
        prompt.push('.');
        let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2).min(4);
        let stt = Stt::load(models, threads).context("speech recognition")?.with_prompt(&prompt);
        let tts = Tts::load(models).context("speech output")?;
        let city = lotse_call::CityName { name: city.name.clone(), heard_as: city.heard_as() };
        // The knowledge's words, against which what whisper heard is corrected.
        let vocabulary = std::sync::Arc::new(lotse_call::Vocabulary::of(engine.knowledge()));
        // The first call's recogniser is made now, not while its caller waits for the greeting
        // (a new session on a cold machine took about a second of silence at the call's start).
        let spare = std::sync::Mutex::new(vec![(stt.session().context("speech recognition")?, vad)]);
        Ok(Stack {
            models: models.to_path_buf(),
            stt,
            tts,
            detect: true,
            spare,
            making: Default::default(),
            city,
            vocabulary,
        })
    }
}

impl Stack {
    /// A recogniser and a voice activity detector for one call: an ended call's (warm) or new.
    fn take_pair(&self) -> Result<(SttSession, Vad)> {
        let spare = self.spare.lock().unwrap_or_else(|e| e.into_inner()).pop();
        Ok(match spare {
            Some(pair) => pair,
            None => (self.stt.session()?, Vad::load(&self.models)?),
        })
    }

    /// Makes a recogniser and detector for a further call in the background when the call about
    /// to start takes the last one spare, so that the next caller usually finds one ready (one
    /// arriving while it is being made, within about a second, makes its own as before).
    pub fn ready_another(self: &std::sync::Arc<Self>) {
        let spare = self.spare.lock().unwrap_or_else(|e| e.into_inner()).len();
        if spare > 1 || self.making.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        /// Lowers the flag however the making ends (a panic in whisper's session included).
        struct Made(std::sync::Arc<Stack>);
        impl Drop for Made {
            fn drop(&mut self) {
                self.0.making.store(false, std::sync::atomic::Ordering::SeqCst);
            }
        }
        let made = Made(self.clone());
        let started = std::thread::Builder::new().name("spare-recogniser".into()).spawn(move || {
            let stack = &made.0;
            match (stack.stt.session(), Vad::load(&stack.models)) {
                (Ok(stt), Ok(vad)) => stack.give_back(stt, vad),
                // The call that needs one makes its own (and names the error).
                _ => tracing::warn!("a spare recogniser could not be made"),
            }
        });
        if let Err(e) = started {
            // The closure, and with it the flag's guard, is dropped: the next call tries again.
            tracing::warn!(error = %e, "no thread for a spare recogniser");
        }
    }

    /// An ended call's recogniser and detector, for the next call.
    fn give_back(&self, stt: SttSession, vad: Vad) {
        self.spare.lock().unwrap_or_else(|e| e.into_inner()).push((stt, vad));
    }
}

/// Parses `--dtmf 3.5:0,8:*` (seconds:key).
pub fn parse_keys(s: &str) -> Result<Vec<Key>> {
    let mut keys = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (t, d) = part.split_once(':').with_context(|| format!("`{part}`: expected SECONDS:KEY"))?;
        let at: f64 = t.trim().parse().with_context(|| format!("`{part}`: bad time"))?;
        let mut chars = d.trim().chars();
        let (Some(digit), None) = (chars.next(), chars.next()) else { bail!("`{part}`: one key") };
        if !lotse_speech::call::is_dtmf(digit) || !(0.0..1e6).contains(&at) {
            bail!("`{part}`: keys are 0-9, *, #, A-D at a time in seconds");
        }
        keys.push(Key { at: Duration::from_secs_f64(at), digit });
    }
    keys.sort_by_key(|k| k.at);
    Ok(keys)
}

/// Runs the recording (16 kHz) through a call.
/// With `staff`, the call is a conversation of the staff queue (see [`Staff`]).
pub fn run(
    engine: &Engine,
    stack: &Stack,
    input: &[f32],
    keys: &[Key],
    output_rate: u32,
    staff: Option<&Staff>,
) -> Result<Outcome> {
    let options = lotse_call::Options {
        output_rate,
        lang: None,
        detect: stack.detect,
        whole: true,
        city: stack.city.clone(),
        vocabulary: stack.vocabulary.clone(),
        caller: None,
    };
    call(engine, stack, input, keys, options, staff)
}

/// [`run`] for measurements: the call's language known, and only the start of each reply made
/// (its first sentence), not played out to the end.
pub fn run_lang(
    engine: &Engine,
    stack: &Stack,
    input: &[f32],
    keys: &[Key],
    output_rate: u32,
    lang: Option<Lang>,
) -> Result<Outcome> {
    let options = lotse_call::Options {
        output_rate,
        lang,
        detect: stack.detect,
        whole: false,
        city: stack.city.clone(),
        vocabulary: stack.vocabulary.clone(),
        caller: None,
    };
    call(engine, stack, input, keys, options, None)
}

fn call(
    engine: &Engine,
    stack: &Stack,
    input: &[f32],
    keys: &[Key],
    options: lotse_call::Options,
    staff: Option<&Staff>,
) -> Result<Outcome> {
    let (mut stt, vad) = stack.take_pair()?;
    let clock = WallClock(Instant::now());
    let parts = lotse_call::Parts {
        engine,
        recognizer: &mut stt,
        synthesizer: &stack.tts,
        activity: vad,
        clock: &clock,
        staff,
    };
    let (outcome, vad) = lotse_call::run(parts, input, keys, options)?;
    stack.give_back(stt, vad);
    Ok(outcome)
}

/// The rate of a live line's audio (G.711).
pub const LINE_RATE: u32 = 8_000;

/// What a live line knows of the telephone: the number the caller rings from (none when
/// withheld), a team's transfer target (from the staff schedule; none: the caller stays,
/// queued as a chat is), and the transfer itself (blocking; whether the caller was put
/// through).
pub struct Phone<'a> {
    pub caller: Option<String>,
    pub target: &'a dyn Fn(&str) -> Option<String>,
    pub transfer: &'a dyn Fn(&str) -> bool,
}

impl Phone<'static> {
    /// A line with no caller identity that cannot put anyone through.
    pub fn nowhere() -> Phone<'static> {
        Phone { caller: None, target: &|_| None, transfer: &|_| false }
    }
}

/// A live call (the SIP bridge runs one per call, each on a thread of its own): the greeting,
/// then the caller's audio and keys as the line hands them over, until the line closes or
/// `hangup` is raised. The
/// playback goes to `on_player` first, for the line's media clock to pull (8 kHz). Returns the
/// turns (for the bridge's figures; they hold what was said, so they are never logged).
pub fn live(
    engine: &Engine,
    stack: &Stack,
    staff: Option<&Staff>,
    inbound: std::sync::mpsc::Receiver<Inbound>,
    on_player: impl FnOnce(std::sync::Arc<std::sync::Mutex<lotse_speech::call::Player>>),
    hangup: &std::sync::atomic::AtomicBool,
    phone: &Phone<'_>,
) -> Result<Vec<TurnRecord>> {
    let (mut stt, vad) = stack.take_pair()?;
    let clock = WallClock(Instant::now());
    let parts = lotse_call::Parts {
        engine,
        recognizer: &mut stt,
        synthesizer: &stack.tts,
        activity: vad,
        clock: &clock,
        staff,
    };
    let options = lotse_call::Options {
        output_rate: LINE_RATE,
        lang: None,
        detect: stack.detect,
        whole: true,
        city: stack.city.clone(),
        vocabulary: stack.vocabulary.clone(),
        caller: phone.caller.clone(),
    };
    let mut call = lotse_call::Live::start(parts, options)?;
    on_player(call.player());
    call.greet()?;
    // Until the line closes, the caller hangs up (nothing queued is worked on then), the call
    // has said goodbye (to silence, or at its longest), or the caller was put through.
    let mut transfer: Option<String> = None;
    while let Ok(input) = inbound.recv() {
        if hangup.load(std::sync::atomic::Ordering::SeqCst) {
            break;
        }
        match input {
            Inbound::Audio(frame) => call.push(&frame)?,
            Inbound::Key(digit) => call.key(digit)?,
        }
        if call.finished() {
            break;
        }
        // The staff queue took the caller: where the team has a line, they are told and put
        // through once the words have played.
        if let Some(team) = call.take_queued()
            && let Some(target) = (phone.target)(&team)
        {
            call.connecting(&team)?;
            transfer = Some(target);
        }
        if let Some(target) = transfer.as_deref()
            && !call.is_speaking()
        {
            if (phone.transfer)(target) {
                call.put_through();
                break;
            }
            transfer = None;
            // What the caller said or pressed while the transfer was tried is old now.
            while inbound.try_recv().is_ok() {}
            call.transfer_failed()?;
        }
    }
    let turns = call.turns().to_vec();
    let (_, vad) = call.finish();
    stack.give_back(stt, vad);
    Ok(turns)
}

/// Reads a WAV file (any rate, PCM or G.711) as 16 kHz mono.
pub fn read_input(path: &Path) -> Result<Vec<f32>> {
    let (samples, rate) = lotse_speech::wav::read(path)?;
    if samples.is_empty() {
        bail!("{}: the recording is empty", path.display());
    }
    convert(&samples, rate, 16_000).with_context(|| format!("{}: resampling from {rate} Hz", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_parsed_in_order_and_bad_ones_refused() {
        let keys = parse_keys("8:*, 3.5:0").unwrap();
        assert_eq!(keys.iter().map(|k| k.digit).collect::<String>(), "0*");
        assert!(parse_keys("3:x").is_err() && parse_keys("x:1").is_err() && parse_keys("3:12").is_err());
    }
}

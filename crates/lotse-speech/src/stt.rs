//! Speech to text: whisper (base, converted by [`crate::whisper_ggml`]) through whisper-rs.
//!
//! One finished utterance at a time, as the endpointer delivers it. The audio context is cut to
//! the utterance's length (plus a margin) instead of whisper's 30 seconds, which makes the
//! encoder several times faster on short questions. The decoder is prompted with the service
//! names of the knowledge, so that "Personalausweis" and "Ummeldung" come out spelled as the
//! retrieval expects them.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use whisper_rs::{FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters, WhisperState};

use lotse_core::Lang;

/// whisper's input rate.
pub const RATE: u32 = 16_000;

#[derive(Debug, thiserror::Error)]
pub enum SttError {
    #[error("{0} is missing: fetch it with `lotse models fetch whisper-base`")]
    Missing(PathBuf),
    #[error("{path} is not a whisper ggml file ({reason}); fetch it again with `lotse models fetch whisper-base`")]
    Corrupt { path: PathBuf, reason: String },
    #[error("speech recognition failed: {0}")]
    Run(String),
}

/// Where the fetched model is, under the models folder.
pub fn model_file(models: &Path) -> PathBuf {
    models.join("whisper-base/ggml-base.bin")
}

/// Which language to recognise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LangChoice {
    /// This language, no detection.
    Fixed(Lang),
    /// German or English, whichever whisper finds more likely (costs one more encoder pass).
    Detect,
}

/// One recognised utterance.
#[derive(Debug, Clone)]
pub struct Transcript {
    pub text: String,
    pub lang: Lang,
    /// whisper's probability that the audio held no speech.
    pub no_speech: f32,
    /// With detection: how much likelier English was than German (p(en) / p(de)).
    pub english_odds: Option<f32>,
    pub audio: Duration,
    pub elapsed: Duration,
}

/// The loaded model, shared by all calls.
#[derive(Clone)]
pub struct Stt {
    ctx: Arc<WhisperContext>,
    threads: i32,
    prompt: Arc<String>,
    /// Recognitions running now, over all the sessions of this model (calls at once).
    running: Arc<std::sync::atomic::AtomicUsize>,
}

/// Audio context frames per second of audio (whisper: 1500 frames for 30 s).
const FRAMES_PER_SECOND: f64 = 50.0;
/// Extra context beyond the utterance: whisper decodes badly when its context ends right at the
/// last word.
const CONTEXT_MARGIN: usize = 64;
const MIN_CONTEXT: usize = 192;
/// English only when whisper finds it this many times likelier than German. On unclear
/// (robotic, narrowband) German the detector leans to English: on espeak-ng questions through
/// 8 kHz µ-law, German ones reached odds of 129, English ones had 320 and more (`lotse eval
/// voice` lists them). A German caller answered in English is worse off than an English caller
/// who is asked in German and can say "English, please", so the bar is high.
const ENGLISH_ODDS: f32 = 200.0;

impl Stt {
    /// Loads the model; a missing or broken file is a clear error here, not in the middle of a
    /// call.
    pub fn load(models: &Path, threads: usize) -> Result<Stt, SttError> {
        let path = model_file(models);
        Self::load_file(&path, threads)
    }

    pub fn load_file(path: &Path, threads: usize) -> Result<Stt, SttError> {
        if !path.exists() {
            return Err(SttError::Missing(path.to_path_buf()));
        }
        let corrupt = |reason: String| SttError::Corrupt { path: path.to_path_buf(), reason };
        // whisper.cpp accepts some damaged files and fails later; the file's layout is checked
        // here first.
        crate::whisper_ggml::verify(path).map_err(|e| corrupt(e.to_string()))?;
        static HOOKS: Once = Once::new();
        // whisper.cpp logs to stderr by default; this sends its lines nowhere (no log features).
        HOOKS.call_once(whisper_rs::install_logging_hooks);
        let ctx = WhisperContext::new_with_params(path, WhisperContextParameters::default())
            .map_err(|e| corrupt(e.to_string()))?;
        Ok(Stt {
            ctx: Arc::new(ctx),
            threads: threads.max(1) as i32,
            prompt: Arc::new(String::new()),
            running: Default::default(),
        })
    }

    /// Words the decoder is prompted with (service names, place names).
    pub fn with_prompt(mut self, words: &str) -> Stt {
        self.prompt = Arc::new(words.to_string());
        self
    }

    /// A recogniser for one call (its own buffers).
    pub fn session(&self) -> Result<SttSession, SttError> {
        let state = self.ctx.create_state().map_err(|e| SttError::Run(e.to_string()))?;
        let mut session = SttSession { stt: self.clone(), state };
        // The first transcription allocates whisper's compute buffers; doing it here, on
        // silence, keeps that out of the caller's first turn and sets the context the language
        // detector uses.
        // (A faint tone: silence would stop at the level gate before whisper runs.)
        let tone: Vec<f32> = (0..RATE as usize).map(|i| 0.01 * (i as f32 * 0.05).sin()).collect();
        session.transcribe(&tone, LangChoice::Fixed(Lang::De))?;
        Ok(session)
    }
}

/// whisper's buffers for one call.
pub struct SttSession {
    stt: Stt,
    state: WhisperState,
}

impl SttSession {
    /// Transcribes one utterance of 16 kHz mono audio in [-1, 1].
    pub fn transcribe(&mut self, pcm: &[f32], lang: LangChoice) -> Result<Transcript, SttError> {
        let started = Instant::now();
        let counter = self.stt.running.clone();
        let running = Running::start(&counter);
        // The cores are shared by the calls recognising at once: whisper's threads wait for
        // each other by spinning, so more threads than cores make every call slow.
        let threads = (self.stt.threads / running.now as i32).max(1);
        let audio = Duration::from_secs_f64(pcm.len() as f64 / RATE as f64);
        let whole = padded(pcm);
        let pcm: &[f32] = &whole;
        // Below -50 dBFS there is nothing to recognise, and whisper would make up a sentence.
        let rms = (pcm.iter().map(|v| v * v).sum::<f32>() / pcm.len().max(1) as f32).sqrt();
        if rms < 0.003 {
            return Ok(Transcript {
                text: String::new(),
                lang: Lang::De,
                no_speech: 1.0,
                english_odds: None,
                audio,
                elapsed: started.elapsed(),
            });
        }
        let ctx = ((pcm.len() as f64 / RATE as f64 * FRAMES_PER_SECOND).ceil() as usize + CONTEXT_MARGIN)
            .clamp(MIN_CONTEXT, 1500);
        let (lang, english_odds) = match lang {
            LangChoice::Fixed(l) => (l, None),
            LangChoice::Detect => {
                let odds = self.english_odds(pcm, threads)?;
                (lang_of(odds), Some(odds))
            }
        };
        // Greedy: a beam of 4 took 1.5 to 4 times as long on 2 cores and did not recognise
        // espeak-ng's German better.
        let mut params = FullParams::new(SamplingStrategy::Greedy { best_of: 1 });
        params.set_n_threads(threads);
        params.set_language(Some(match lang {
            Lang::En => "en",
            _ => "de",
        }));
        params.set_audio_ctx(ctx as i32);
        params.set_no_context(true);
        params.set_single_segment(true);
        params.set_no_timestamps(true);
        params.set_print_progress(false);
        params.set_print_realtime(false);
        params.set_print_special(false);
        params.set_print_timestamps(false);
        params.set_suppress_blank(true);
        params.set_suppress_nst(true);
        // One pass, no temperature fallback: a second pass doubles the time on a bad utterance,
        // and the dialog asks again anyway.
        params.set_temperature_inc(0.0);
        // People say at most about four tokens a second; more is whisper repeating itself,
        // which on a short utterance otherwise runs to the token limit and costs a second.
        params.set_max_tokens((audio.as_secs_f32() * 5.0) as i32 + 8);
        let prompt = self.stt.prompt.clone();
        if !prompt.is_empty() {
            params.set_initial_prompt(&prompt);
        }
        self.state.full(params, pcm).map_err(|e| SttError::Run(e.to_string()))?;
        let mut text = String::new();
        let mut no_speech: f32 = 0.0;
        for segment in self.state.as_iter() {
            no_speech = no_speech.max(segment.no_speech_probability());
            if let Ok(s) = segment.to_str_lossy() {
                text.push_str(&s);
            }
        }
        Ok(Transcript { text: clean(&text), lang, no_speech, english_odds, audio, elapsed: started.elapsed() })
    }

    /// German or English, told from some speech alone (the first seconds of a caller's first
    /// turn while they go on speaking), with p(en) / p(de): the detection that
    /// [`LangChoice::Detect`] runs before a transcription, done ahead of it.
    pub fn language(&mut self, pcm: &[f32]) -> Result<(Lang, f32), SttError> {
        let counter = self.stt.running.clone();
        let running = Running::start(&counter);
        let threads = (self.stt.threads / running.now as i32).max(1);
        let whole = padded(pcm);
        let pcm: &[f32] = &whole;
        let odds = self.english_odds(pcm, threads)?;
        Ok((lang_of(odds), odds))
    }

    /// p(en) / p(de) from whisper's language detector, which runs the encoder with the audio
    /// context of the state's last transcription (at least [`MIN_CONTEXT`] frames since the
    /// warm-up): it covers the first seconds, enough to tell the language.
    fn english_odds(&mut self, pcm: &[f32], threads: i32) -> Result<f32, SttError> {
        let run = |e: whisper_rs::WhisperError| SttError::Run(e.to_string());
        self.state.pcm_to_mel(pcm, threads as usize).map_err(run)?;
        let (_, probs) = self.state.lang_detect(0, threads as usize).map_err(run)?;
        let p = |code: &str| whisper_rs::get_lang_id(code).and_then(|i| probs.get(i as usize).copied()).unwrap_or(0.0);
        Ok(p("en") / p("de").max(1e-6))
    }
}

/// whisper wants at least a second (and a quarter): shorter audio is padded with silence.
fn padded(pcm: &[f32]) -> std::borrow::Cow<'_, [f32]> {
    let least = RATE as usize + RATE as usize / 4;
    if pcm.len() >= least {
        return std::borrow::Cow::Borrowed(pcm);
    }
    let mut longer = pcm.to_vec();
    longer.resize(least, 0.0);
    std::borrow::Cow::Owned(longer)
}

/// English only when whisper finds it far likelier than German (p(en) / p(de)).
fn lang_of(english_odds: f32) -> Lang {
    if english_odds > ENGLISH_ODDS { Lang::En } else { Lang::De }
}

/// One recognition counted as running while it lives.
struct Running<'a> {
    count: &'a std::sync::atomic::AtomicUsize,
    /// Recognitions running when this one started, itself included.
    now: usize,
}

impl Running<'_> {
    fn start(count: &std::sync::atomic::AtomicUsize) -> Running<'_> {
        let now = count.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        Running { count, now }
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.count.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// whisper's text as a question: trimmed, without the noise tags it writes for non-speech
/// ("[Musik]", "(Lachen)", "*hustet*"); an unclosed bracket or a lone "*" is kept as text.
fn clean(text: &str) -> String {
    static TAG: std::sync::LazyLock<regex::Regex> =
        std::sync::LazyLock::new(|| regex::Regex::new(r"\[[^\]]*\]|\([^)]*\)|\*[^*\s][^*]*\*").expect("valid"));
    let out = TAG.replace_all(text, " ");
    if !out.chars().any(char::is_alphanumeric) {
        return String::new();
    }
    let words: Vec<&str> = out.split_whitespace().collect();
    collapse_repeats(&words).join(" ")
}

/// whisper's loop: the same phrase of two or more words, again and again at the end. Keeps
/// the first.
fn collapse_repeats<'a>(words: &[&'a str]) -> Vec<&'a str> {
    let norm = |w: &str| w.trim_matches(|c: char| !c.is_alphanumeric()).to_lowercase();
    let n = words.len();
    for len in 2..=n / 2 {
        let unit: Vec<String> = words[..len].iter().map(|w| norm(w)).collect();
        let mut start = len;
        let mut repeats = 0;
        while start < n {
            let end = (start + len).min(n);
            // The loop may stop inside its last word ("… Ausweis verl").
            let last = end == n && end - start <= len;
            let matches = words[start..end].iter().zip(&unit).enumerate().all(|(i, (w, u))| {
                let w = norm(w);
                w == *u || (last && start + i == n - 1 && !w.is_empty() && u.starts_with(&w))
            });
            if matches {
                repeats += 1;
                start = end;
            } else {
                break;
            }
        }
        if repeats > 0 && start == n {
            return words[..len].to_vec();
        }
    }
    // A loop after a first part: look for the longest tail made of one repeated phrase.
    for len in 2..=n / 3 {
        let tail = |k: usize| &words[n - k * len..n - (k - 1) * len];
        let same = |a: &[&str], b: &[&str]| a.iter().zip(b).all(|(x, y)| norm(x) == norm(y));
        let mut k = 1;
        while (k + 1) * len <= n && same(tail(k), tail(k + 1)) {
            k += 1;
        }
        if k >= 3 {
            return words[..n - (k - 1) * len].to_vec();
        }
    }
    words.to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noise_tags_are_dropped() {
        assert_eq!(clean(" [Musik] Was kostet ein Pass? "), "Was kostet ein Pass?");
        assert_eq!(clean("(Lachen) Hallo *hustet* Welt"), "Hallo Welt");
        assert_eq!(clean("  "), "");
        assert_eq!(clean("How much? How much? How much?"), "How much?");
        assert_eq!(clean("Ich möchte ummelden. Ich möchte ummelden. Ich möchte"), "Ich möchte ummelden.");
        assert_eq!(clean("Guten Tag, a b c a b c a b c"), "Guten Tag, a b c");
        assert_eq!(clean("ja ja"), "ja ja");
        assert_eq!(clean("Ich habe ihn verloren. Ich habe ihn verloren. Ich habe ihn verl"), "Ich habe ihn verloren.");
        assert_eq!(clean("..."), "");
        assert_eq!(clean("[Musik *laut*] Hallo"), "Hallo");
        assert_eq!(clean("2 * Ausweis"), "2 * Ausweis");
        assert_eq!(clean("Pass (verloren"), "Pass (verloren");
    }

    #[test]
    fn a_missing_or_foreign_file_is_a_clear_error() {
        let dir = std::env::temp_dir().join(format!("lotse-stt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let err = Stt::load(&dir, 1).err().expect("missing");
        assert!(err.to_string().contains("lotse models fetch whisper-base"), "{err}");
        let path = dir.join("bad.bin");
        std::fs::write(&path, b"GGUF and then some").unwrap();
        let err = Stt::load_file(&path, 1).err().expect("corrupt");
        assert!(matches!(err, SttError::Corrupt { .. }), "{err}");
        // Right magic, truncated body: whisper.cpp refuses it and we say so.
        std::fs::write(&path, 0x6767_6d6cu32.to_le_bytes()).unwrap();
        let err = Stt::load_file(&path, 1).err().expect("truncated");
        assert!(matches!(err, SttError::Corrupt { .. }), "{err}");
        std::fs::remove_dir_all(&dir).ok();
    }
}

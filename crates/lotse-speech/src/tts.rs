//! Text to speech, one sentence at a time (the caller hears the first while the next is made).
//!
//! Two kinds of voice:
//! - **Piper** (VITS, ONNX): the fetched English voice (`lotse models fetch piper-en-us-joe`) and
//!   any Piper voice an operator places in `models/` (a German one such as thorsten in
//!   production). Its phonemes come from espeak-ng, as Piper's own front end does, and the model
//!   runs on the ONNX Runtime the VAD already loads.
//! - **espeak-ng**: the German voice that can be shipped, and the fallback for any language
//!   without a Piper voice.
//!
//! espeak-ng runs as a child process per sentence (a few milliseconds). Its library keeps
//! process-wide state and is not re-entrant; a child process keeps concurrent calls apart and
//! cannot take the server down. The piper-rs crate was not used: it builds a second copy of
//! espeak-ng from source (with two build workarounds) for the phonemes this module gets from the
//! same espeak-ng that speaks German, and the model call is a few lines on the `ort` session.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

use ort::session::Session;
use ort::value::Tensor;

use lotse_core::Lang;

#[derive(Debug, thiserror::Error)]
pub enum TtsError {
    #[error("espeak-ng is not installed (Debian: apt-get install espeak-ng): {0}")]
    NoEspeak(String),
    #[error("the voice {path} could not be loaded: {reason}")]
    Voice { path: PathBuf, reason: String },
    #[error("speech synthesis failed: {0}")]
    Run(String),
}

/// Synthesised audio, mono.
#[derive(Debug, Clone)]
pub struct Audio {
    pub samples: Vec<f32>,
    pub rate: u32,
}

impl Audio {
    pub fn seconds(&self) -> f32 {
        self.samples.len() as f32 / self.rate as f32
    }
}

/// One voice.
pub enum Voice {
    Espeak { voice: String, speed: u32 },
    Piper(Box<Piper>),
}

impl Voice {
    /// espeak-ng in the language, at 150 words a minute (calmer than its default 175, for the
    /// phone).
    pub fn espeak(lang: Lang) -> Voice {
        let voice = if lang == Lang::En { "en-us" } else { "de" };
        Voice::Espeak { voice: voice.into(), speed: 150 }
    }

    pub fn name(&self) -> String {
        match self {
            Voice::Espeak { voice, .. } => format!("espeak-ng {voice}"),
            Voice::Piper(p) => format!("Piper {}", p.name),
        }
    }

    pub fn synthesize(&self, text: &str) -> Result<Audio, TtsError> {
        match self {
            Voice::Espeak { voice, speed } => espeak(voice, *speed, text),
            Voice::Piper(p) => p.synthesize(text),
        }
    }
}

/// The voices for German and English.
pub struct Tts {
    de: Voice,
    en: Voice,
}

impl Tts {
    /// Piper voices found in `models/` (by their configuration's espeak language), espeak-ng
    /// otherwise. espeak-ng must be installed either way (it also makes Piper's phonemes).
    pub fn load(models: &Path) -> Result<Tts, TtsError> {
        espeak_version()?;
        let mut de = None;
        let mut en = None;
        for (onnx, config) in piper_voices(models) {
            let lang = config_language(&config).unwrap_or_default();
            let slot = if lang.starts_with("de") {
                &mut de
            } else if lang.starts_with("en") {
                &mut en
            } else {
                continue;
            };
            if slot.is_none() {
                *slot = Some(Voice::Piper(Box::new(Piper::load(models, &onnx, &config)?)));
            }
        }
        Ok(Tts { de: de.unwrap_or_else(|| Voice::espeak(Lang::De)), en: en.unwrap_or_else(|| Voice::espeak(Lang::En)) })
    }

    /// espeak-ng for both languages (no models needed).
    pub fn espeak_only() -> Result<Tts, TtsError> {
        espeak_version()?;
        Ok(Tts { de: Voice::espeak(Lang::De), en: Voice::espeak(Lang::En) })
    }

    pub fn voice(&self, lang: Lang) -> &Voice {
        match lang {
            Lang::En => &self.en,
            _ => &self.de,
        }
    }

    pub fn synthesize(&self, text: &str, lang: Lang) -> Result<Audio, TtsError> {
        self.voice(lang).synthesize(text)
    }
}

fn espeak_version() -> Result<(), TtsError> {
    match Command::new("espeak-ng").arg("--version").stdin(Stdio::null()).output() {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(TtsError::NoEspeak(String::from_utf8_lossy(&o.stderr).trim().to_string())),
        Err(e) => Err(TtsError::NoEspeak(e.to_string())),
    }
}

/// Runs espeak-ng with the text on its standard input (never as an argument: a text starting
/// with "-" would be an option).
fn espeak_run(args: &[&str], text: &str) -> Result<Vec<u8>, TtsError> {
    let mut child = Command::new("espeak-ng")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| TtsError::NoEspeak(e.to_string()))?;
    // One line: espeak-ng reads its input up to the end; newlines would only add pauses.
    let line: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    child.stdin.take().expect("stdin is piped").write_all(line.as_bytes()).map_err(|e| TtsError::Run(e.to_string()))?;
    let out = child.wait_with_output().map_err(|e| TtsError::Run(e.to_string()))?;
    if !out.status.success() {
        return Err(TtsError::Run(format!("espeak-ng: {}", String::from_utf8_lossy(&out.stderr).trim())));
    }
    Ok(out.stdout)
}

fn espeak(voice: &str, speed: u32, text: &str) -> Result<Audio, TtsError> {
    if !text.chars().any(char::is_alphanumeric) {
        return Ok(Audio { samples: Vec::new(), rate: 22_050 });
    }
    let wav = espeak_run(&["-v", voice, "-s", &speed.to_string(), "--stdout"], text)?;
    parse_stream_wav(&wav)
}

/// espeak-ng's WAV on a pipe: a 44-byte header with "unknown" lengths, then 16-bit samples.
fn parse_stream_wav(wav: &[u8]) -> Result<Audio, TtsError> {
    if wav.len() < 44 || &wav[..4] != b"RIFF" || &wav[8..12] != b"WAVE" {
        return Err(TtsError::Run("espeak-ng wrote no WAV".into()));
    }
    let channels = u16::from_le_bytes([wav[22], wav[23]]);
    let rate = u32::from_le_bytes([wav[24], wav[25], wav[26], wav[27]]);
    let bits = u16::from_le_bytes([wav[34], wav[35]]);
    if channels != 1 || bits != 16 || &wav[36..40] != b"data" {
        return Err(TtsError::Run("espeak-ng wrote an unexpected WAV format".into()));
    }
    let samples = wav[44..].chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]]) as f32 / 32768.0).collect();
    Ok(Audio { samples, rate })
}

/// (model, configuration) of every Piper voice under `models/`: `X.onnx` with `X.onnx.json` in
/// the same folder or in a folder named like it with `-config` (as `lotse models fetch` puts
/// them).
pub fn piper_voices(models: &Path) -> Vec<(PathBuf, PathBuf)> {
    let mut out = Vec::new();
    let Ok(dirs) = std::fs::read_dir(models) else {
        return out;
    };
    let mut dirs: Vec<PathBuf> = dirs.filter_map(|d| d.ok().map(|d| d.path())).filter(|p| p.is_dir()).collect();
    dirs.sort();
    for dir in dirs {
        let Ok(files) = std::fs::read_dir(&dir) else { continue };
        let mut files: Vec<PathBuf> = files.filter_map(|f| f.ok().map(|f| f.path())).collect();
        files.sort();
        for onnx in files.into_iter().filter(|f| f.extension().is_some_and(|e| e == "onnx")) {
            let Some(file) = onnx.file_name().and_then(|f| f.to_str()) else { continue };
            let beside = onnx.with_file_name(format!("{file}.json"));
            let dir_name = dir.file_name().and_then(|d| d.to_str()).unwrap_or_default();
            let sibling = models.join(format!("{dir_name}-config")).join(format!("{file}.json"));
            if beside.exists() {
                out.push((onnx, beside));
            } else if sibling.exists() {
                out.push((onnx, sibling));
            }
        }
    }
    out
}

fn config_language(config: &Path) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(config).ok()?).ok()?;
    v.get("espeak")?.get("voice")?.as_str().map(str::to_string)
}

/// A Piper voice.
pub struct Piper {
    pub name: String,
    session: Mutex<Session>,
    espeak_voice: String,
    ids: HashMap<char, Vec<i64>>,
    rate: u32,
    scales: [f32; 3],
    speaker: Option<i64>,
}

impl Piper {
    pub fn load(models: &Path, onnx: &Path, config: &Path) -> Result<Piper, TtsError> {
        let bad = |reason: String| TtsError::Voice { path: onnx.to_path_buf(), reason };
        let (lib, _) = crate::vad::files(models);
        if !lib.exists() {
            return Err(bad(format!("{} is missing: fetch it with `lotse models fetch onnxruntime`", lib.display())));
        }
        crate::vad::runtime(&lib).map_err(|e| bad(e.to_string()))?;
        let cfg: serde_json::Value = std::fs::read_to_string(config)
            .map_err(|e| bad(format!("{}: {e}", config.display())))
            .and_then(|s| serde_json::from_str(&s).map_err(|e| bad(format!("{}: {e}", config.display()))))?;
        let rate = cfg["audio"]["sample_rate"].as_u64().ok_or_else(|| bad("no audio.sample_rate".into()))? as u32;
        let espeak_voice = cfg["espeak"]["voice"].as_str().ok_or_else(|| bad("no espeak.voice".into()))?.to_string();
        let map = cfg["phoneme_id_map"].as_object().ok_or_else(|| bad("no phoneme_id_map".into()))?;
        let mut ids = HashMap::new();
        for (k, v) in map {
            let mut chars = k.chars();
            let (Some(c), None) = (chars.next(), chars.next()) else { continue };
            let list: Vec<i64> =
                v.as_array().map(|a| a.iter().filter_map(|x| x.as_i64()).collect()).unwrap_or_default();
            ids.insert(c, list);
        }
        for needed in ['^', '$', '_'] {
            if !ids.contains_key(&needed) {
                return Err(bad(format!("the phoneme map has no {needed:?}")));
            }
        }
        let inf = &cfg["inference"];
        let scales = [
            inf["noise_scale"].as_f64().unwrap_or(0.667) as f32,
            inf["length_scale"].as_f64().unwrap_or(1.0) as f32,
            inf["noise_w"].as_f64().unwrap_or(0.8) as f32,
        ];
        let speaker = (cfg["num_speakers"].as_u64().unwrap_or(1) > 1).then_some(0);
        let session = Session::builder()
            .map_err(|e| bad(e.to_string()))?
            .with_intra_threads(2)
            .map_err(|e| bad(e.to_string()))?
            .commit_from_file(onnx)
            .map_err(|e| bad(e.to_string()))?;
        let name = onnx.file_stem().and_then(|s| s.to_str()).unwrap_or("voice").to_string();
        Ok(Piper { name, session: Mutex::new(session), espeak_voice, ids, rate, scales, speaker })
    }

    /// espeak-ng's IPA for the text: one line per clause, joined with the clause's pause.
    pub fn phonemes(&self, text: &str) -> Result<String, TtsError> {
        let out = espeak_run(&["-q", "-v", &self.espeak_voice, "--ipa"], text)?;
        let ipa = String::from_utf8_lossy(&out);
        let clauses: Vec<&str> = ipa.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
        let mut s = clauses.join(", ");
        let end = text.trim_end().chars().last().filter(|c| matches!(c, '.' | '?' | '!')).unwrap_or('.');
        s.push(end);
        Ok(s)
    }

    /// Piper's ids: start, each phoneme followed by the pad, end.
    fn ids(&self, phonemes: &str) -> Vec<i64> {
        let mut out = self.ids[&'^'].clone();
        out.extend(&self.ids[&'_']);
        for c in phonemes.chars() {
            if let Some(id) = self.ids.get(&c) {
                out.extend(id);
                out.extend(&self.ids[&'_']);
            }
        }
        out.extend(&self.ids[&'$']);
        out
    }

    pub fn synthesize(&self, text: &str) -> Result<Audio, TtsError> {
        let run = |e: ort::Error| TtsError::Run(e.to_string());
        if !text.chars().any(char::is_alphanumeric) {
            return Ok(Audio { samples: Vec::new(), rate: self.rate });
        }
        let ids = self.ids(&self.phonemes(text)?);
        let n = ids.len();
        let input = Tensor::from_array(([1usize, n], ids)).map_err(run)?;
        let lengths = Tensor::from_array(([1usize], vec![n as i64])).map_err(run)?;
        let scales = Tensor::from_array(([3usize], self.scales.to_vec())).map_err(run)?;
        let mut session = self.session.lock().unwrap_or_else(|e| e.into_inner());
        let outputs = match self.speaker {
            Some(sid) => {
                let sid = Tensor::from_array(([1usize], vec![sid])).map_err(run)?;
                session
                    .run(ort::inputs!["input" => input, "input_lengths" => lengths, "scales" => scales, "sid" => sid])
            }
            None => session.run(ort::inputs!["input" => input, "input_lengths" => lengths, "scales" => scales]),
        }
        .map_err(run)?;
        let (_, samples) = outputs[0].try_extract_tensor::<f32>().map_err(run)?;
        // VITS output is not normalised; keep it inside full scale.
        let peak = samples.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let gain = if peak > 0.99 { 0.99 / peak } else { 1.0 };
        Ok(Audio { samples: samples.iter().map(|v| v * gain).collect(), rate: self.rate })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pipe_wav_is_read_without_its_lengths() {
        let mut wav =
            b"RIFF\x24\xf0\xff\x7fWAVEfmt \x10\0\0\0\x01\0\x01\0\x22\x56\0\0\x44\xac\0\0\x02\0\x10\0data\0\xf0\xff\x7f"
                .to_vec();
        wav.extend([0x00, 0x40, 0x00, 0xc0]);
        let a = parse_stream_wav(&wav).unwrap();
        assert_eq!(a.rate, 22050);
        assert_eq!(a.samples, vec![0.5, -0.5]);
        assert!(parse_stream_wav(b"RIFF").is_err());
    }
}

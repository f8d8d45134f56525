//! Silero VAD and the end-of-turn detector on real speech: German sentences synthesised with
//! espeak-ng, placed between silences, also through the telephone path (8 kHz µ-law), and noise.
//! Needs `lotse models fetch silero-vad` and espeak-ng; `scripts/test` provides both and sets
//! LOTSE_REQUIRE_MODELS, so there the test cannot skip.

use std::path::{Path, PathBuf};
use std::time::Instant;

use lotse_speech::endpoint::{EndpointConfig, Endpointer, Turn};
use lotse_speech::resample::convert;
use lotse_speech::vad::{CHUNK, RATE, Vad};

fn models() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models")
}

fn ready() -> bool {
    let ok = lotse_speech::vad::available(&models())
        && std::process::Command::new("espeak-ng").arg("--version").output().is_ok_and(|o| o.status.success());
    if !ok {
        assert!(std::env::var_os("LOTSE_REQUIRE_MODELS").is_none(), "silero-vad or espeak-ng missing");
        eprintln!("skipped: fetch silero-vad (lotse models fetch silero-vad) and install espeak-ng");
    }
    ok
}

/// espeak-ng's German voice, as 16 kHz samples.
fn say(text: &str) -> Vec<f32> {
    let path = std::env::temp_dir().join(format!("lotse-vad-{}-{}.wav", std::process::id(), text.len()));
    let ok = std::process::Command::new("espeak-ng").args(["-v", "de", "-w"]).arg(&path).arg(text).status().unwrap();
    assert!(ok.success());
    let (x, rate) = lotse_speech::wav::read(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    convert(&x, rate, RATE).unwrap()
}

/// (start, end) in seconds of the events, run through VAD and endpointer.
fn turns(vad: &mut Vad, audio: &[f32]) -> Vec<(f32, f32, bool)> {
    let mut e = Endpointer::new(EndpointConfig::default(), 32);
    let mut out = Vec::new();
    let mut started = None;
    for (i, chunk) in audio.chunks_exact(CHUNK).enumerate() {
        let p = vad.probability(chunk).unwrap();
        let t = (i + 1) as f32 * 0.032;
        match e.push(chunk, p) {
            Turn::Started => started = Some(t),
            Turn::Ended { capped, .. } => out.push((started.take().unwrap_or(0.0), t, capped)),
            Turn::Idle | Turn::Paused { .. } | Turn::Resumed => {}
        }
    }
    out
}

fn between_silences(speech: &[f32], before: f32, after: f32) -> (Vec<f32>, f32, f32) {
    let pad = |s: f32| vec![0.0f32; (s * RATE as f32) as usize];
    let first = speech.iter().position(|v| v.abs() > 0.01).unwrap_or(0);
    let last = speech.iter().rposition(|v| v.abs() > 0.01).unwrap_or(speech.len());
    let mut audio = pad(before);
    audio.extend_from_slice(speech);
    audio.extend(pad(after));
    (audio, before + first as f32 / RATE as f32, before + last as f32 / RATE as f32)
}

#[test]
fn one_question_is_one_turn_ended_within_the_hangover() {
    if !ready() {
        return;
    }
    let mut vad = Vad::load(&models()).unwrap();
    let speech = say("Ich möchte einen Personalausweis beantragen. Was kostet das?");
    let (audio, onset, offset) = between_silences(&speech, 1.0, 1.5);
    let started = Instant::now();
    let found = turns(&mut vad, &audio);
    let secs = audio.len() as f32 / RATE as f32;
    eprintln!(
        "VAD: {secs:.1} s of audio in {:.0} ms (real-time factor {:.3}); turns {found:?}, speech {onset:.2}–{offset:.2} s",
        started.elapsed().as_secs_f32() * 1000.0,
        started.elapsed().as_secs_f32() / secs
    );
    assert_eq!(found.len(), 1, "one question, one turn: {found:?}");
    let (s, e, capped) = found[0];
    assert!(!capped);
    assert!(s >= onset - 0.05 && s <= onset + 0.3, "started at {s:.2} s, speech from {onset:.2} s");
    // End of speech to end of turn: the hangover (300 ms) and a chunk or two.
    assert!(e >= offset && e <= offset + 0.45, "ended at {e:.2} s, speech until {offset:.2} s");
}

#[test]
fn through_the_telephone_path_and_not_on_noise() {
    if !ready() {
        return;
    }
    let mut vad = Vad::load(&models()).unwrap();
    // 16 kHz → 8 kHz µ-law, as a caller's audio arrives, → 16 kHz again.
    let speech = say("Wann hat der Bürgerservice geöffnet?");
    let wide = lotse_speech::telephone::through(&speech, RATE).unwrap();
    let (audio, _, _) = between_silences(&wide, 0.8, 1.2);
    assert_eq!(turns(&mut vad, &audio).len(), 1, "the telephone path lost the turn");

    vad.reset();
    // Three seconds of hiss at -26 dBFS: no turn.
    let mut seed = 12345u32;
    let noise: Vec<f32> = (0..3 * RATE as usize)
        .map(|_| {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 8) as f32 / (1u32 << 24) as f32 * 0.1 - 0.05
        })
        .collect();
    assert!(turns(&mut vad, &noise).is_empty(), "noise was taken for speech");
    assert!(turns(&mut vad, &vec![0.0; 2 * RATE as usize]).is_empty(), "silence was taken for speech");
}

#[test]
fn a_missing_model_is_a_clear_error_at_load() {
    let Err(e) = Vad::load(Path::new("/nonexistent/models")) else { panic!("loaded without files") };
    assert!(e.to_string().contains("lotse models fetch silero-vad"), "{e}");
}

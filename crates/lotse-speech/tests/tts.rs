//! Speech output: espeak-ng German and the fetched Piper voice (English), sentence by sentence,
//! checked by ear's stand-in: whisper recognises what was synthesised. Needs espeak-ng and
//! `lotse models fetch piper-en-us-joe whisper-base`; `scripts/test` provides them and sets
//! LOTSE_REQUIRE_MODELS, so there the test cannot skip.

use std::path::{Path, PathBuf};
use std::time::Instant;

use lotse_core::Lang;
use lotse_speech::resample::convert;
use lotse_speech::stt::{LangChoice, Stt};
use lotse_speech::tts::{Tts, Voice};

fn models() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models")
}

fn ready() -> bool {
    let ok = lotse_speech::stt::model_file(&models()).exists()
        && models().join("piper-en-us-joe/en_US-joe-medium.onnx").exists()
        && lotse_speech::tts::Tts::espeak_only().is_ok();
    if !ok {
        assert!(
            std::env::var_os("LOTSE_REQUIRE_MODELS").is_none(),
            "piper-en-us-joe, whisper-base or espeak-ng missing"
        );
        eprintln!("skipped: lotse models fetch piper-en-us-joe whisper-base, and install espeak-ng");
    }
    ok
}

#[test]
fn both_voices_speak_what_they_are_given() {
    if !ready() {
        return;
    }
    let tts = Tts::load(&models()).unwrap();
    assert!(matches!(tts.voice(Lang::En), Voice::Piper(_)), "the fetched Piper voice speaks English");
    assert!(
        matches!(tts.voice(Lang::De), Voice::Espeak { .. }),
        "espeak-ng speaks German without a German Piper voice"
    );
    let stt = Stt::load(&models(), 2).unwrap();
    let mut ears = stt.session().unwrap();
    for (lang, text, must) in [
        (Lang::En, "The new passport costs seventy euros.", "passport"),
        (Lang::De, "Guten Tag, hier ist die Stadt Jena.", "tag"),
    ] {
        let started = Instant::now();
        let audio = tts.synthesize(text, lang).unwrap();
        let took = started.elapsed().as_secs_f32();
        eprintln!(
            "{}: {:.2} s of audio in {:.0} ms (real-time factor {:.3})",
            tts.voice(lang).name(),
            audio.seconds(),
            took * 1000.0,
            took / audio.seconds()
        );
        assert!(audio.seconds() > 1.0 && audio.seconds() < 6.0, "{} s", audio.seconds());
        let peak = audio.samples.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        assert!(peak > 0.05 && peak <= 1.0, "peak {peak}");
        let heard =
            ears.transcribe(&convert(&audio.samples, audio.rate, 16_000).unwrap(), LangChoice::Fixed(lang)).unwrap();
        eprintln!("  heard {:?}", heard.text);
        assert!(heard.text.to_lowercase().contains(must), "{must} not in {:?}", heard.text);
    }
}

#[test]
fn hostile_text_is_spoken_not_obeyed() {
    let Ok(tts) = Tts::espeak_only() else {
        assert!(std::env::var_os("LOTSE_REQUIRE_MODELS").is_none(), "espeak-ng missing");
        return;
    };
    // A text that looks like options, and control characters: spoken (or skipped), no error.
    // The file it names is relative: it would land in the test's own folder (the crate's), where
    // nothing else writes (another program may well have written /tmp/x.wav).
    let file = Path::new("hostile-x.wav");
    let options = "--help -w hostile-x.wav";
    for text in [options, "Zeile\neins\u{0}zwei", ""] {
        let audio = tts.synthesize(text, Lang::De).unwrap();
        assert!(audio.seconds() < 5.0);
    }
    assert!(!file.exists(), "espeak-ng took the text for its options");
}

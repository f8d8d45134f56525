//! `lotse voice`: whole offline calls through the real models (Silero VAD, whisper base, the
//! Piper voice, espeak-ng): one question answered, a caller who speaks over the answer, a key
//! pressed, bad recordings. The caller's audio is the fetched Piper voice (natural English
//! speech) through 8 kHz µ-law. `scripts/test` fetches the models and sets
//! LOTSE_REQUIRE_MODELS, so there the tests cannot skip.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use lotse_core::Lang;
use lotse_speech::resample::convert;
use lotse_speech::tts::Tts;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repo root exists")
}

/// The calls take turns: whisper's threads spin while they wait, and two at once on two
/// cores take many times as long.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn ready() -> Option<Tts> {
    let m = repo().join("models");
    let ok = m.join("whisper-base/ggml-base.bin").exists()
        && m.join("silero-vad/silero_vad.onnx").exists()
        && m.join("piper-en-us-joe/en_US-joe-medium.onnx").exists();
    let tts = if ok { Tts::load(&m).ok() } else { None };
    if tts.is_none() {
        assert!(std::env::var_os("LOTSE_REQUIRE_MODELS").is_none(), "voice models or espeak-ng missing");
        eprintln!("skipped: lotse models fetch whisper-base silero-vad piper-en-us-joe, and install espeak-ng");
    }
    tts
}

fn tmp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("lotse-voice-{}-{name}", std::process::id()))
}

/// Caller audio at 8 kHz: segments of silence (seconds) and English questions.
enum Part<'a> {
    Pause(f32),
    Say(&'a str),
}

/// Writes the call as an 8 kHz µ-law-degraded PCM WAV; returns the onset of each question (s).
fn caller(tts: &Tts, parts: &[Part], path: &Path) -> Vec<f32> {
    let mut x: Vec<f32> = Vec::new();
    let mut onsets = Vec::new();
    for p in parts {
        match p {
            Part::Pause(s) => x.extend(vec![0.0; (s * 8000.0) as usize]),
            Part::Say(text) => {
                let a = tts.synthesize(text, Lang::En).unwrap();
                let narrow = convert(&a.samples, a.rate, 8000).unwrap();
                let first = narrow.iter().position(|v| v.abs() > 0.02).unwrap_or(0);
                onsets.push((x.len() + first) as f32 / 8000.0);
                x.extend(narrow);
            }
        }
    }
    let phone = lotse_speech::telephone::mu_law(&x);
    lotse_speech::wav::write(path, &phone, 8000).unwrap();
    onsets
}

/// `lotse voice` without the staff queue (the tests below that reach staff bring their own).
fn voice(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lotse"))
        .arg("voice")
        .args(args)
        .arg("--no-staff")
        .current_dir(repo())
        .output()
        .expect("lotse runs")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn rms(x: &[f32]) -> f32 {
    (x.iter().map(|v| v * v).sum::<f32>() / x.len().max(1) as f32).sqrt()
}

#[test]
fn one_question_is_answered_on_the_phone() {
    let Some(tts) = ready() else { return };
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (input, output) = (tmp("q1.wav"), tmp("a1.wav"));
    caller(&tts, &[Part::Pause(0.5), Part::Say("How much does a passport cost?"), Part::Pause(1.5)], &input);
    let o = voice(&["--in", input.to_str().unwrap(), "--out", output.to_str().unwrap(), "--transcript"]);
    let t = text(&o);
    eprintln!("{t}");
    assert!(o.status.success(), "{t}");
    assert!(t.to_lowercase().contains("passport"), "the question was recognised: {t}");
    assert!(t.contains("lotse (answer"), "an answer: {t}");
    assert!(t.contains("70 Euro") || t.contains("70 euros") || t.contains("70 Euros"), "the fee, spoken: {t}");
    assert!(!t.contains("https://"), "no web address is spoken: {t}");
    assert!(t.contains("end of speech → first audio"), "{t}");
    let (out, rate) = lotse_speech::wav::read(&output).unwrap();
    assert_eq!(rate, 8000);
    // Silence while the caller speaks, the answer after.
    assert!(rms(&out[..8000]) < 1e-4, "the bot is silent while the caller speaks");
    assert!(rms(&out[8000 * 4..]) > 0.01, "the answer is audible");
    for p in [input, output] {
        std::fs::remove_file(p).ok();
    }
}

#[test]
fn a_vague_question_is_asked_back_and_a_spoken_yes_answers_it() {
    let Some(tts) = ready() else { return };
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (input, output) = (tmp("q-confirm.wav"), tmp("a-confirm.wav"));
    caller(
        &tts,
        &[
            Part::Pause(0.5),
            // Whose passport, and what about it? ("Something", "maybe" are words of no topic:
            // "Something about my passport" alone is the passport service, answered.)
            Part::Say("Something with the passport of my grandmother."),
            Part::Pause(7.0),
            Part::Say("Yes."),
            Part::Pause(2.0),
        ],
        &input,
    );
    let o = voice(&["--in", input.to_str().unwrap(), "--out", output.to_str().unwrap(), "--transcript"]);
    let t = text(&o);
    eprintln!("{t}");
    assert!(o.status.success(), "{t}");
    let asked = t.find("lotse (clarify").expect("the bot asks back");
    assert!(t[asked..].contains("Is it about: Apply for a passport?"), "{t}");
    assert!(!t[..asked].contains("euros"), "no fee before the caller confirms: {t}");
    let answered = t.find("lotse (answer").expect("the yes is answered");
    assert!(answered > asked && t[answered..].contains("70 euros"), "the fee after the yes: {t}");
    for p in [input, output] {
        std::fs::remove_file(p).ok();
    }
}

#[test]
fn speaking_over_the_answer_stops_it_within_200_ms() {
    let Some(tts) = ready() else { return };
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (input, output) = (tmp("q2.wav"), tmp("a2.wav"));
    // The answer to the first question takes far longer than the 5 s before the caller speaks
    // again.
    let onsets = caller(
        &tts,
        &[
            Part::Pause(0.5),
            Part::Say("How much does a passport cost?"),
            Part::Pause(5.0),
            Part::Say("Where is the citizens office?"),
            Part::Pause(1.5),
        ],
        &input,
    );
    let o = voice(&["--in", input.to_str().unwrap(), "--out", output.to_str().unwrap(), "--transcript"]);
    let t = text(&o);
    eprintln!("{t}");
    assert!(o.status.success(), "{t}");
    let line = t.lines().find(|l| l.contains("barge-in")).unwrap_or_else(|| panic!("no barge-in: {t}"));
    let at: f32 = line[1..line.find(']').unwrap()].parse().unwrap();
    let onset = onsets[1];
    eprintln!("second question starts at {onset:.2} s, barge-in at {at:.2} s");
    assert!(at >= onset && at - onset <= 0.2, "barge-in {:.0} ms after the caller began", (at - onset) * 1000.0);
    // What was heard is the start of the answer, and it is what the record keeps.
    let heard = line.split("heard \"").nth(1).unwrap_or_default();
    assert!(!heard.is_empty() && heard.len() < 400, "{line}");
    let (out, _) = lotse_speech::wav::read(&output).unwrap();
    let s = |t: f32| (t * 8000.0) as usize;
    assert!(rms(&out[s(onset - 0.5)..s(onset)]) > 0.01, "the answer was playing");
    assert!(rms(&out[s(onset + 0.2)..s(onset + 1.0)]) < 1e-4, "and stopped within 200 ms");
    // The second question is answered too.
    assert_eq!(t.matches("lotse (").count(), 2, "{t}");
    for p in [input, output] {
        std::fs::remove_file(p).ok();
    }
}

/// A configuration whose staff queue (its own SQLite file in `dir`) is open around the clock
/// from yesterday to tomorrow, or closed until the day after tomorrow, 09:00–12:00.
fn staff_config(dir: &Path, open: bool) -> PathBuf {
    let today = jiff::Zoned::now().with_time_zone(jiff::tz::TimeZone::get("Europe/Berlin").unwrap()).date();
    let days: &[(i64, &str)] =
        if open { &[(-1, "00:00-24:00"), (0, "00:00-24:00"), (1, "00:00-24:00")] } else { &[(2, "09:00-12:00")] };
    let mut exceptions = String::new();
    for (d, hours) in days {
        let date = today.checked_add(jiff::Span::new().days(*d)).unwrap();
        exceptions.push_str(&format!("[[handoff.schedule.exceptions]]\ndate = \"{date}\"\nhours = \"{hours}\"\n\n"));
    }
    std::fs::create_dir_all(dir).unwrap();
    let text = format!(
        "[handoff]\ndatabase = \"sqlite:{}/lotse.db\"\n\n[handoff.schedule]\ngeneral = \"buergerservice\"\n\n\
         [[handoff.schedule.teams]]\nid = \"buergerservice\"\nname = \"Bürgerservice\"\n\n{exceptions}",
        dir.display()
    );
    let path = dir.join("lotse.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// `lotse voice` with the staff queue of `config`.
fn voice_with(config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lotse"))
        .args(["--config", config.to_str().unwrap(), "voice"])
        .args(args)
        .current_dir(repo())
        .output()
        .expect("lotse runs")
}

/// The staff queue of the database in `dir`, each handoff with its transcript.
fn queue(dir: &Path) -> Vec<(lotse_handoff::Handoff, Vec<lotse_handoff::Message>)> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let store = lotse_handoff::Store::open(&format!("sqlite:{}/lotse.db", dir.display())).await.unwrap();
        let mut out = Vec::new();
        for h in store.queue().await.unwrap() {
            let lines = store.transcript(&h.conversation_id).await.unwrap();
            out.push((h, lines));
        }
        out
    })
}

#[test]
fn a_caller_reaches_the_staff_queue_by_key_or_by_asking_and_a_callback_outside_hours() {
    let Some(tts) = ready() else { return };
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (input, output) = (tmp("q-person.wav"), tmp("a-person.wav"));
    let (open, closed) = (tmp("staff-open"), tmp("staff-closed"));

    // Within staff hours, key 0: queued, with channel phone and the transcript.
    caller(&tts, &[Part::Pause(4.0)], &input);
    let config = staff_config(&open, true);
    let args = ["--in", input.to_str().unwrap(), "--out", output.to_str().unwrap(), "--transcript"];
    let o = voice_with(&config, &[&args[..], &["--dtmf", "1.0:0"]].concat());
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("key 0") && t.contains("lotse (handoff") && t.contains("an der Reihe"), "{t}");
    let q = queue(&open);
    assert_eq!(q.len(), 1, "one conversation waits: {q:?}");
    let (h, lines) = &q[0];
    assert_eq!(h.channel, lotse_core::Channel::Phone);
    assert!(lines.iter().any(|m| m.text.contains("nach einem Menschen gefragt")), "{lines:?}");
    assert!(
        lines.iter().any(|m| m.author == lotse_handoff::Author::Bot && m.text.contains("an der Reihe")),
        "{lines:?}"
    );

    // Asking in words (English: the caller voice is English) queues a second call.
    caller(
        &tts,
        &[Part::Pause(0.5), Part::Say("I would like to speak to a person, please."), Part::Pause(2.0)],
        &input,
    );
    let o = voice_with(&config, &args);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("lotse (handoff"), "{t}");
    assert_eq!(queue(&open).len(), 2, "{t}");

    // Outside staff hours: the callback offer, and nobody is queued.
    caller(&tts, &[Part::Pause(4.0)], &input);
    let config = staff_config(&closed, false);
    let o = voice_with(&config, &[&args[..], &["--dtmf", "1.0:0"]].concat());
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("lotse (handoff") && t.contains("niemand erreichbar"), "{t}");
    assert!(queue(&closed).is_empty());
    for p in [&input, &output] {
        std::fs::remove_file(p).ok();
    }
    for d in [open, closed] {
        std::fs::remove_dir_all(d).ok();
    }
}

#[test]
fn key_zero_without_staff_and_bad_recordings_are_clear_errors() {
    let Some(tts) = ready() else { return };
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (input, output) = (tmp("q3.wav"), tmp("a3.wav"));
    caller(&tts, &[Part::Pause(4.0)], &input);
    let o =
        voice(&["--in", input.to_str().unwrap(), "--out", output.to_str().unwrap(), "--transcript", "--dtmf", "1.0:0"]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("key 0") && t.contains("lotse (handoff"), "{t}");

    // Not a WAV, no file, a bad key: clear errors, no panic.
    let junk = tmp("junk.wav");
    std::fs::write(&junk, b"this is not audio").unwrap();
    for (args, says) in [
        (vec!["--in", junk.to_str().unwrap(), "--out", output.to_str().unwrap()], "junk.wav"),
        (vec!["--in", "/nonexistent.wav", "--out", output.to_str().unwrap()], "nonexistent.wav"),
        (vec!["--in", input.to_str().unwrap(), "--out", output.to_str().unwrap(), "--dtmf", "1:x"], "keys are"),
    ] {
        let o = voice(&args);
        let t = text(&o);
        assert_eq!(o.status.code(), Some(1), "{t}");
        assert!(t.contains(says) && !t.contains("panicked"), "{t}");
    }

    // Ten minutes of line noise and a caller who never stops talking (a 40 s monologue, cut
    // at the 15 s limit): handled, output as long as the input.
    let long = tmp("long.wav");
    let mut seed = 1u32;
    let mut x: Vec<f32> = (0..8000 * 600)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            (seed as f32 / u32::MAX as f32 - 0.5) * 0.002
        })
        .collect();
    let talk = tts.synthesize("I would like to ask about my passport and my address and my car.", Lang::En).unwrap();
    let talk = convert(&talk.samples, talk.rate, 8000).unwrap();
    for k in 0..(40 * 8000 / talk.len() + 1) {
        let at = 8000 * 100 + k * talk.len();
        for (i, v) in talk.iter().enumerate() {
            x[at + i] += v;
        }
    }
    lotse_speech::wav::write(&long, &x, 8000).unwrap();
    let started = std::time::Instant::now();
    let o = voice(&["--in", long.to_str().unwrap(), "--out", output.to_str().unwrap(), "--transcript"]);
    let t = text(&o);
    eprintln!("10 minutes in {:.1} s", started.elapsed().as_secs_f32());
    assert!(o.status.success(), "{t}");
    assert!(t.contains("cut at the length limit"), "the monologue is cut into turns: {t}");
    let (out, _) = lotse_speech::wav::read(&output).unwrap();
    assert!(out.len() >= x.len(), "{} < {}", out.len(), x.len());
    for p in [input, output, junk, long] {
        std::fs::remove_file(p).ok();
    }
}

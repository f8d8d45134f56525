//! The call loop with scripted parts: transcripts from a list, a voice that is silence of a
//! known length, a detector that hears any sound as speech, and a clock that moves only by the
//! work the script says it takes. No model, no audio device, no wall clock: the same input gives
//! the same call every time.

use std::cell::{Cell, RefCell};
use std::sync::Arc;
use std::time::Duration;

use lotse_call::{CallError, Clock, Key, Options, Outcome, Parts, Recognizer, Synthesizer};
use lotse_core::Lang;
use lotse_speech::stt::{LangChoice, Transcript};
use lotse_speech::tts::Audio;
use lotse_speech::vad::{Activity, VadError};

fn engine() -> lotse_dialog::Engine {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../knowledge");
    let kb = Arc::new(lotse_knowledge::load_dir(&dir).expect("curated knowledge loads"));
    let index = Arc::new(lotse_search::SearchIndex::build(&kb).expect("index builds"));
    lotse_dialog::Engine::new(kb, index, lotse_dialog::EngineConfig::default())
}

/// A clock that moves only when the script's work moves it.
#[derive(Default)]
struct ScriptClock(Cell<Duration>);

impl ScriptClock {
    fn spend(&self, d: Duration) {
        self.0.set(self.0.get() + d);
    }
}

impl Clock for ScriptClock {
    fn now(&self) -> Duration {
        self.0.get()
    }
}

/// Hears the transcripts of the script in order, each taking `cost` on the clock.
struct Script<'a> {
    texts: Vec<&'static str>,
    cost: Duration,
    clock: &'a ScriptClock,
    calls: usize,
}

impl Recognizer for Script<'_> {
    fn transcribe(&mut self, audio: &[f32], _lang: LangChoice) -> Result<Transcript, CallError> {
        let text = self.texts.get(self.calls).copied().unwrap_or_default().to_string();
        self.calls += 1;
        self.clock.spend(self.cost);
        Ok(Transcript {
            text,
            lang: Lang::De,
            no_speech: 0.0,
            english_odds: None,
            audio: Duration::from_secs_f64(audio.len() as f64 / 16_000.0),
            elapsed: self.cost,
        })
    }
}

/// Speaks every sentence as one second of silence at 8 kHz, taking `cost` on the clock, and
/// keeps what it was asked to say.
struct Voice<'a> {
    cost: Duration,
    clock: &'a ScriptClock,
    said: RefCell<Vec<String>>,
}

impl Synthesizer for Voice<'_> {
    fn synthesize(&self, text: &str, _lang: Lang) -> Result<Audio, CallError> {
        self.clock.spend(self.cost);
        self.said.borrow_mut().push(text.to_string());
        Ok(Audio { samples: vec![0.0; 8_000], rate: 8_000 })
    }
}

/// Any sound is speech.
struct Loudness;

impl Activity for Loudness {
    fn probability(&mut self, chunk: &[f32]) -> Result<f32, VadError> {
        let energy = chunk.iter().map(|x| x * x).sum::<f32>() / chunk.len() as f32;
        Ok(if energy > 1e-4 { 0.95 } else { 0.02 })
    }

    fn reset(&mut self) {}
}

/// Caller audio at 16 kHz: (seconds of speech, seconds of silence) in turn.
fn caller(parts: &[(f64, f64)]) -> Vec<f32> {
    let mut out = Vec::new();
    for &(speech, silence) in parts {
        let n = (speech * 16_000.0) as usize;
        out.extend((0..n).map(|i| 0.3 * (i as f32 * 2.0 * std::f32::consts::PI * 220.0 / 16_000.0).sin()));
        out.resize(out.len() + (silence * 16_000.0) as usize, 0.0);
    }
    out
}

struct Run {
    outcome: Outcome,
    heard: Vec<String>,
    said: Vec<String>,
    recognised: usize,
}

fn call(
    engine: &lotse_dialog::Engine,
    texts: &[&'static str],
    stt: Duration,
    audio: &[f32],
    keys: &[Key],
    whole: bool,
) -> Run {
    let clock = ScriptClock::default();
    let mut recognizer = Script { texts: texts.to_vec(), cost: stt, clock: &clock, calls: 0 };
    let voice = Voice { cost: Duration::from_millis(100), clock: &clock, said: RefCell::new(Vec::new()) };
    let parts = Parts {
        engine,
        recognizer: &mut recognizer,
        synthesizer: &voice,
        activity: Loudness,
        clock: &clock,
        staff: None,
    };
    let options = Options {
        output_rate: 8_000,
        lang: Some(Lang::De),
        detect: false,
        whole,
        city: Default::default(),
        vocabulary: Default::default(),
        caller: None,
    };
    let (outcome, _) = lotse_call::run(parts, audio, keys, options).expect("the call runs");
    let heard = outcome.turns.iter().map(|t| t.transcript.clone()).collect();
    let recognised = recognizer.calls;
    Run { outcome, heard, said: voice.said.into_inner(), recognised }
}

#[test]
fn a_question_is_answered_and_its_work_begins_in_the_pause() {
    let engine = engine();
    let audio = caller(&[(1.2, 2.0)]);
    let fast = call(&engine, &["Was kostet ein Personalausweis?"], Duration::from_millis(100), &audio, &[], false);
    assert_eq!(fast.heard, ["Was kostet ein Personalausweis?"]);
    assert_eq!(fast.recognised, 1, "the pause's recognition is the turn's");
    let t = &fast.outcome.turns[0];
    assert_eq!(t.kind, "answer");
    assert!(t.source_ids.iter().any(|s| s == "personalausweis"), "{:?}", t.source_ids);
    assert!(t.reply.contains("46 Euro"), "{}", t.reply);
    assert!(t.early, "recognition began in the pause");
    // Work shorter than the hangover: the reply starts when the turn ends.
    assert_eq!(t.first_audio, t.endpoint);
    assert!(t.latency() <= Duration::from_millis(400), "{:?}", t.latency());

    // Slower recognition delays the reply by exactly the difference: the clock is the script's.
    let slow = call(&engine, &["Was kostet ein Personalausweis?"], Duration::from_millis(1_500), &audio, &[], false);
    let slower = call(&engine, &["Was kostet ein Personalausweis?"], Duration::from_millis(2_000), &audio, &[], false);
    let (a, b) = (&slow.outcome.turns[0], &slower.outcome.turns[0]);
    assert!(a.first_audio > a.endpoint);
    assert_eq!(b.first_audio - a.first_audio, Duration::from_millis(500));
    assert_eq!(a.stt, Duration::from_millis(1_500));
    assert_eq!(a.tts_first, Duration::from_millis(100));
}

#[test]
fn speaking_on_after_a_pause_voids_the_work_begun_in_it() {
    let engine = engine();
    // A pause shorter than the hangover, then the rest of the question.
    let audio = caller(&[(0.8, 0.15), (1.0, 2.0)]);
    let run =
        call(&engine, &["Was kostet", "Was kostet ein Reisepass?"], Duration::from_millis(50), &audio, &[], false);
    assert_eq!(run.recognised, 2, "once at each pause");
    assert_eq!(run.heard, ["Was kostet ein Reisepass?"], "one turn, from the whole utterance");
    assert_eq!(run.outcome.turns[0].kind, "answer");
    assert!(run.outcome.log.iter().any(|l| l.contains("partial: \"Was kostet\"")), "{:#?}", run.outcome.log);
}

#[test]
fn a_story_then_a_question_after_a_sentence_pause_is_one_turn() {
    let engine = engine();
    // Two sentences with 0.55 s between them: longer than the 300 ms hangover.
    let audio = caller(&[(1.5, 0.55), (1.8, 2.0)]);
    let texts =
        ["Mein Vater ist gestorben.", "Mein Vater ist gestorben. Was brauche ich, um den Sterbefall anzuzeigen?"];
    let run = call(&engine, &texts, Duration::from_millis(100), &audio, &[], false);
    // The first sentence alone is no question the bot can answer: the turn waits.
    assert!(run.outcome.log.iter().any(|l| l.contains("waiting longer")), "{:#?}", run.outcome.log);
    assert_eq!(run.heard, [texts[1]], "one turn, from both sentences");
    assert_eq!(run.outcome.turns[0].kind, "answer");
    assert!(
        run.outcome.turns[0].source_ids.iter().any(|s| s == "sterbefall-anzeigen"),
        "{:?}",
        run.outcome.turns[0].source_ids
    );

    // A question that is answered ends the turn after the usual hangover: the next sentence
    // after the same pause is a turn of its own.
    let texts = ["Was kostet ein Personalausweis?", "Und ein Reisepass?"];
    let run = call(&engine, &texts, Duration::from_millis(100), &audio, &[], false);
    assert_eq!(run.heard, texts, "{:#?}", run.outcome.log);
}

#[test]
fn the_caller_who_speaks_over_the_reply_stops_it_and_what_they_heard_is_kept() {
    let engine = engine();
    // The reply (one second per sentence) starts about 1.5 s in; the caller speaks again at 2.2 s.
    let audio = caller(&[(1.2, 1.0), (1.0, 2.0)]);
    let run = call(
        &engine,
        &["Was kostet ein Personalausweis?", "Danke, das reicht."],
        Duration::from_millis(50),
        &audio,
        &[],
        true,
    );
    let first = &run.outcome.turns[0];
    let heard = first.heard.as_deref().expect("the barge-in is recorded");
    assert!(
        !heard.is_empty() && first.reply.starts_with(heard.trim_end_matches(" …")),
        "{heard:?} of {:?}",
        first.reply
    );
    assert!(heard.len() < first.reply.len(), "the reply was cut: {heard:?}");
    assert!(run.outcome.log.iter().any(|l| l.contains("barge-in: playback stopped")));
    assert_eq!(run.heard.len(), 2, "the interruption is the next turn");
}

#[test]
fn key_zero_asks_for_a_person_and_the_star_repeats_the_last_reply() {
    let engine = engine();
    let audio = caller(&[(1.2, 6.0)]);
    let keys = [Key { at: Duration::from_secs(4), digit: '0' }, Key { at: Duration::from_millis(6_500), digit: '*' }];
    let run = call(&engine, &["Was kostet ein Personalausweis?"], Duration::from_millis(50), &audio, &keys, true);
    assert_eq!(run.heard, ["Was kostet ein Personalausweis?", "[0]"]);
    let person = &run.outcome.turns[1];
    assert_eq!(person.kind, "handoff", "{}", person.reply);
    // Without a staff queue the caller is given the general contact, digit by digit.
    assert!(person.reply.contains("0 3 6 4 1"), "{}", person.reply);
    // The star says the last reply again, sentence by sentence: the voice was asked for its
    // sentences twice in a row.
    let k = (1..=run.said.len() / 2)
        .find(|&k| run.said[run.said.len() - k..].join(" ") == person.reply)
        .expect("the last reply was said last");
    let n = run.said.len();
    assert_eq!(run.said[n - 2 * k..n - k], run.said[n - k..], "{:#?}", run.said);
}

#[test]
fn the_correction_leaves_the_citizens_written_words_alone() {
    // The retrieval set's questions as citizens write them, without the deliberate typos and
    // the English ones: every word in them was meant, so a change of its letters would be a
    // word said right made wrong.
    let engine = engine();
    let vocabulary = lotse_call::Vocabulary::of(engine.knowledge());
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../eval/jena-retrieval.toml");
    let set: toml::Value = toml::from_str(&std::fs::read_to_string(path).expect("the set")).expect("toml");
    let mut checked = 0;
    let mut changed = Vec::new();
    for case in set["case"].as_array().expect("cases") {
        if matches!(case["category"].as_str(), Some("typo" | "english")) {
            continue;
        }
        let q = case["q"].as_str().expect("q");
        let (_, changes) = vocabulary.correct(q);
        checked += 1;
        // Writing the same letters as the knowledge does ("steuer id" → "Steuer-ID") keeps
        // the words; anything else would change them.
        let letters =
            |s: &str| s.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect::<String>();
        changed.extend(
            changes
                .into_iter()
                .filter(|c| letters(&c.heard) != letters(&c.corrected))
                .map(|c| format!("{q:?}: {:?} → {:?}", c.heard, c.corrected)),
        );
    }
    assert!(checked > 100, "{checked} questions");
    assert!(changed.is_empty(), "{changed:#?}");
}

/// A live call with a media clock that pulls 20 ms of the bot's audio per 20 ms of caller
/// audio, as the SIP bridge's does: the caller's audio (16 kHz) frame by frame. Returns when
/// each sentence began to play (s) and when the call said it was finished (if it did).
fn live(engine: &lotse_dialog::Engine, texts: &[&'static str], audio: &[f32]) -> (Vec<(f64, String)>, Option<f64>) {
    let clock = ScriptClock::default();
    let mut recognizer = Script { texts: texts.to_vec(), cost: Duration::from_millis(100), clock: &clock, calls: 0 };
    let voice = Voice { cost: Duration::from_millis(10), clock: &clock, said: RefCell::new(Vec::new()) };
    let parts = Parts {
        engine,
        recognizer: &mut recognizer,
        synthesizer: &voice,
        activity: Loudness,
        clock: &clock,
        staff: None,
    };
    let options = Options {
        output_rate: 8_000,
        lang: Some(Lang::De),
        detect: false,
        whole: true,
        city: Default::default(),
        vocabulary: Default::default(),
        caller: None,
    };
    let mut call = lotse_call::Live::start(parts, options).expect("the call starts");
    let player = call.player();
    call.greet().unwrap();
    let mut started = Vec::new();
    let mut seen = 0;
    for (i, frame) in audio.chunks(320).enumerate() {
        call.push(frame).unwrap();
        player.lock().unwrap().pull(160);
        let said = voice.said.borrow();
        for s in &said[seen..] {
            started.push((i as f64 * 0.02, s.clone()));
        }
        seen = said.len();
        drop(said);
        if call.finished() {
            return (started, Some(i as f64 * 0.02));
        }
    }
    (started, None)
}

#[test]
fn a_silent_line_is_asked_once_then_ended_with_a_goodbye() {
    let engine = engine();
    let (said, finished) = live(&engine, &[], &caller(&[(0.0, 60.0)]));
    let at = |needle: &str| said.iter().find(|(_, s)| s.contains(needle)).map(|(t, _)| *t);
    let prompt = at("noch da").expect("the caller is asked whether they are there");
    let greeting = said.iter().filter(|(t, _)| *t < prompt).count();
    assert!(greeting >= 3, "the greeting, sentence by sentence: {said:?}");
    // One second per synthesised sentence: the greeting ends after its sentences.
    let greeting_end = greeting as f64;
    assert!((prompt - greeting_end - 8.0).abs() < 1.0, "asked 8 s after the greeting ended: {prompt} {said:?}");
    let goodbye = at("beende jetzt").expect("a goodbye");
    let prompt_sentences = said.iter().filter(|(t, _)| *t >= prompt && *t < goodbye).count() as f64;
    assert!((goodbye - prompt - prompt_sentences - 20.0).abs() < 1.5, "goodbye 20 s after the prompt: {goodbye}");
    let end = finished.expect("the call ends after its goodbye");
    assert!(end > goodbye + 1.0, "only when the goodbye has played");
}

#[test]
fn a_caller_who_answers_the_prompt_is_not_hung_up_on() {
    let engine = engine();
    // Silent through the greeting and the prompt, then a question; then silent again.
    let (said, finished) = live(&engine, &["Was kostet ein Personalausweis?"], &caller(&[(0.0, 18.0), (1.2, 20.0)]));
    assert!(said.iter().any(|(_, s)| s.contains("noch da")), "{said:?}");
    assert!(said.iter().any(|(_, s)| s.contains("46 Euro")), "the question is answered: {said:?}");
    assert!(!said.iter().any(|(_, s)| s.contains("beende jetzt")), "no goodbye within 20 s of the answer: {said:?}");
    assert_eq!(finished, None);
}

/// Hears one English question, keeps the language choice of each transcription, and tells the
/// language from speech alone (200 ms on the clock) as whisper's detector does.
struct Detecting<'a> {
    clock: &'a ScriptClock,
    choices: Vec<LangChoice>,
    told: Vec<f64>,
}

impl Recognizer for Detecting<'_> {
    fn transcribe(&mut self, audio: &[f32], lang: LangChoice) -> Result<Transcript, CallError> {
        self.choices.push(lang);
        // Detection is an encoder pass more.
        let cost = if lang == LangChoice::Detect { 500 } else { 300 };
        self.clock.spend(Duration::from_millis(cost));
        Ok(Transcript {
            text: "How much does a passport cost?".into(),
            lang: match lang {
                LangChoice::Fixed(l) => l,
                LangChoice::Detect => Lang::En,
            },
            no_speech: 0.0,
            english_odds: (lang == LangChoice::Detect).then_some(900.0),
            audio: Duration::from_secs_f64(audio.len() as f64 / 16_000.0),
            elapsed: Duration::from_millis(cost),
        })
    }

    fn language(&mut self, audio: &[f32]) -> Result<Option<(Lang, f32)>, CallError> {
        self.told.push(audio.len() as f64 / 16_000.0);
        self.clock.spend(Duration::from_millis(200));
        Ok(Some((Lang::En, 900.0)))
    }
}

fn detecting_call(audio: &[f32]) -> (Vec<LangChoice>, Vec<f64>, Outcome) {
    let engine = engine();
    let clock = ScriptClock::default();
    let mut recognizer = Detecting { clock: &clock, choices: Vec::new(), told: Vec::new() };
    let voice = Voice { cost: Duration::from_millis(100), clock: &clock, said: RefCell::new(Vec::new()) };
    let parts = Parts {
        engine: &engine,
        recognizer: &mut recognizer,
        synthesizer: &voice,
        activity: Loudness,
        clock: &clock,
        staff: None,
    };
    let options = Options {
        output_rate: 8_000,
        lang: None,
        detect: true,
        whole: false,
        city: Default::default(),
        vocabulary: Default::default(),
        caller: None,
    };
    let (outcome, _) = lotse_call::run(parts, audio, &[], options).expect("the call runs");
    (recognizer.choices, recognizer.told, outcome)
}

#[test]
fn the_first_turns_language_is_told_while_the_caller_speaks_on() {
    // Three seconds of a question: its language is told from its first one and a half while
    // the caller goes on, and the turn's recognitions then run in English without detecting.
    let (choices, told, outcome) = detecting_call(&caller(&[(3.0, 3.0)]));
    assert_eq!(told.len(), 1, "told once: {told:?}");
    assert!((1.4..2.0).contains(&told[0]), "from the first 1.5 s of speech, not {} s", told[0]);
    assert!(!choices.is_empty() && choices.iter().all(|c| *c == LangChoice::Fixed(Lang::En)), "{choices:?}");
    let turn = &outcome.turns[0];
    assert_eq!((turn.heard_lang, turn.english_odds), (Lang::En, Some(900.0)));
    // A question shorter than that is detected as it is transcribed.
    let (choices, told, _) = detecting_call(&caller(&[(1.0, 3.0)]));
    assert!(told.is_empty(), "{told:?}");
    assert_eq!(choices.first(), Some(&LangChoice::Detect));
}

//! A callback booked by phone, with the real staff queue (a SQLite store, the session layer)
//! and scripted recognition and voice: outside staff hours key 0 leads to the offer; the
//! caller's own number is read back, or one is keyed in or said; only a yes (or key 1) stores
//! it; a question leaves the offer. Within hours, a transfer that failed leads to the same offer.
//! And the question after the goodbye whether the last answer helped, answered by key.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Duration;

use jiff::{Timestamp, ToSpan};
use lotse_call::{CallError, Clock, Options, Parts, Recognizer, Staff, Synthesizer};
use lotse_core::Lang;
use lotse_handoff::{Desk, Exception, HandoffConfig, Outcome, QueueState, Schedule, Store};
use lotse_session::{Limits, Sessions};
use lotse_speech::stt::{LangChoice, Transcript};
use lotse_speech::tts::Audio;
use lotse_speech::vad::{Activity, VadError};

fn knowledge() -> Arc<lotse_knowledge::KnowledgeBase> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../knowledge");
    Arc::new(lotse_knowledge::load_dir(&dir).expect("curated knowledge loads"))
}

fn zone() -> lotse_core::calendar::Zone {
    lotse_core::calendar::Zone {
        tz: jiff::tz::TimeZone::get("Europe/Berlin").unwrap(),
        state: lotse_core::calendar::State::Thueringen,
    }
}

/// Open around the clock from yesterday to tomorrow, or closed until the day after tomorrow.
fn schedule(open: bool) -> Schedule {
    let mut s = Schedule::default();
    let today = Timestamp::now().to_zoned(zone().tz).date();
    if open {
        for d in [-1i64, 0, 1] {
            s.exceptions.push(Exception {
                date: today.checked_add(d.days()).unwrap().to_string(),
                hours: Some("00:00-24:00".into()),
                team: None,
                note: None,
            });
        }
    } else {
        for t in &mut s.teams {
            t.hours = Default::default();
        }
        s.exceptions.push(Exception {
            date: today.checked_add(2.days()).unwrap().to_string(),
            hours: Some("09:00-12:00".into()),
            team: None,
            note: None,
        });
    }
    s
}

struct Line {
    runtime: tokio::runtime::Runtime,
    sessions: Arc<Sessions>,
    engine: Arc<lotse_dialog::Engine>,
    /// The store's folder, removed with the line (last: after the runtime).
    _dir: tempfile::TempDir,
}

fn line(open: bool) -> Line {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let kb = knowledge();
    let index = Arc::new(lotse_search::SearchIndex::build(&kb).expect("index builds"));
    let engine = Arc::new(lotse_dialog::Engine::new(kb.clone(), index, lotse_dialog::EngineConfig::default()));
    let dir = tempfile::Builder::new().prefix("lotse-call-callback-").tempdir().unwrap();
    let database = format!("sqlite:{}/lotse.db", dir.path().display());
    let config = HandoffConfig { schedule: schedule(open), database: database.clone(), ..Default::default() };
    let desk = runtime.block_on(async {
        let store = Store::open(&database).await.unwrap();
        Desk::new(store, config, kb, zone()).await.unwrap()
    });
    let sessions = Sessions::new(engine.clone(), Some(desk), Limits::default());
    Line { runtime, sessions, engine, _dir: dir }
}

#[derive(Default)]
struct NoClock;

impl Clock for NoClock {
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

struct Script(Vec<&'static str>);

impl Recognizer for Script {
    fn transcribe(&mut self, audio: &[f32], _lang: LangChoice) -> Result<Transcript, CallError> {
        let text = if self.0.is_empty() { String::new() } else { self.0.remove(0).to_string() };
        Ok(Transcript {
            text,
            lang: Lang::De,
            no_speech: 0.0,
            english_odds: None,
            audio: Duration::from_secs_f64(audio.len() as f64 / 16_000.0),
            elapsed: Duration::ZERO,
        })
    }
}

/// Every sentence is a fifth of a second of silence; what it was asked to say is kept.
#[derive(Default)]
struct Voice(RefCell<Vec<String>>);

impl Synthesizer for Voice {
    fn synthesize(&self, text: &str, _lang: Lang) -> Result<Audio, CallError> {
        self.0.borrow_mut().push(text.to_string());
        Ok(Audio { samples: vec![0.0; 1_600], rate: 8_000 })
    }
}

struct Loudness;

impl Activity for Loudness {
    fn probability(&mut self, chunk: &[f32]) -> Result<f32, VadError> {
        let energy = chunk.iter().map(|x| x * x).sum::<f32>() / chunk.len() as f32;
        Ok(if energy > 1e-4 { 0.95 } else { 0.02 })
    }

    fn reset(&mut self) {}
}

/// What happens in the call, in order, after the greeting.
enum Act {
    /// Keys pressed, 300 ms apart.
    Keys(&'static str),
    /// One utterance (its text comes from the script), then silence.
    Speak,
    /// The line reports that the transfer failed.
    TransferFailed,
}

struct Done {
    said: Vec<String>,
    conversation: lotse_core::ConversationId,
}

/// Runs a call on the line: the greeting, then each act with four seconds of silence after it.
fn run(line: &Line, caller: Option<&str>, texts: Vec<&'static str>, acts: &[Act]) -> Done {
    let staff = Staff::on(line.sessions.clone(), line.runtime.handle().clone());
    let (said, conversation) = run_on(line, &staff, caller, texts, acts);
    Done { said, conversation: conversation.expect("a line") }
}

/// The same with any staff queue: what the bot said, and the call's conversation in the queue.
fn run_on(
    line: &Line,
    staff: &Staff,
    caller: Option<&str>,
    texts: Vec<&'static str>,
    acts: &[Act],
) -> (Vec<String>, Option<lotse_core::ConversationId>) {
    let mut recognizer = Script(texts);
    let voice = Voice::default();
    let clock = NoClock;
    let parts = Parts {
        engine: &line.engine,
        recognizer: &mut recognizer,
        synthesizer: &voice,
        activity: Loudness,
        clock: &clock,
        staff: Some(staff),
    };
    let options = Options {
        output_rate: 8_000,
        lang: Some(Lang::De),
        detect: false,
        whole: true,
        city: Default::default(),
        vocabulary: Default::default(),
        caller: caller.map(str::to_string),
    };
    let mut call = lotse_call::Live::start(parts, options).expect("the call starts");
    let conversation = call.conversation().cloned();
    let player = call.player();
    call.greet().unwrap();
    let silence = vec![0.0f32; 320];
    let speech: Vec<f32> = (0..320).map(|i| 0.3 * (i as f32 * 0.0864).sin()).collect();
    let push = |call: &mut lotse_call::Live<'_, Script, Voice, Loudness>, frames: usize, audio: &[f32]| {
        for _ in 0..frames {
            call.push(audio).unwrap();
            player.lock().unwrap().pull(160);
        }
    };
    push(&mut call, 100, &silence);
    for act in acts {
        match act {
            Act::Keys(keys) => {
                for k in keys.chars() {
                    call.key(k).unwrap();
                    push(&mut call, 15, &silence);
                }
            }
            Act::Speak => push(&mut call, 50, &speech),
            Act::TransferFailed => call.transfer_failed().unwrap(),
        }
        push(&mut call, 200, &silence);
    }
    (voice.0.into_inner(), conversation)
}

fn callback(line: &Line, id: &lotse_core::ConversationId) -> Option<lotse_handoff::store::Callback> {
    let desk = line.sessions.desk().unwrap();
    line.runtime.block_on(desk.store.pending_callback(id)).unwrap()
}

fn said_after(done: &Done, needle: &str) -> String {
    let i =
        done.said.iter().position(|s| s.contains(needle)).unwrap_or_else(|| panic!("{needle:?} in {:#?}", done.said));
    done.said[i..].join(" ")
}

#[test]
fn outside_hours_the_callers_own_number_is_read_back_and_a_yes_books_the_callback() {
    let line = line(false);
    let done = run(&line, Some("+4936414900"), vec!["Ja, gerne."], &[Act::Keys("0"), Act::Speak]);
    let offer = said_after(&done, "niemand erreichbar");
    // The number read back digit by digit, and the consent asked in words.
    assert!(offer.contains("0 3 6, 4 1 4, 9 0 0"), "{offer}");
    assert!(offer.contains("einverstanden"), "{offer}");
    let c = callback(&line, &done.conversation).expect("the callback is stored");
    assert_eq!(c.contact, "+4936414900");
    assert_eq!(c.contact_kind, lotse_handoff::ContactKind::Phone);
    assert!(c.consent.contains("Sind Sie einverstanden?"), "{}", c.consent);
    assert!(said_after(&done, "Wir rufen Sie zurück").contains("auflegen"), "{:#?}", done.said);
}

#[test]
fn a_yes_or_1_before_the_consent_question_was_heard_consents_to_nothing() {
    let line = line(false);
    // Key 1 right after key 0, while the offer has only begun: the number and the question
    // again, and nothing stored.
    let done = run(&line, Some("+4936414900"), vec![], &[Act::Keys("01")]);
    assert!(said_after(&done, "niemand erreichbar").contains("Die Nummer ist 0 3 6"), "{:#?}", done.said);
    assert!(callback(&line, &done.conversation).is_none());
    // Once it was heard, 1 stores it; `*` before repeats the offer.
    let line = self::line(false);
    let done = run(&line, Some("+4936414900"), vec![], &[Act::Keys("0"), Act::Keys("*"), Act::Keys("1")]);
    let offers = done.said.iter().filter(|s| s.contains("Sind Sie einverstanden?")).count();
    assert_eq!(offers, 2, "{:#?}", done.said);
    assert!(callback(&line, &done.conversation).is_some());
}

#[test]
fn a_number_keyed_in_is_confirmed_and_only_key_1_stores_it() {
    let line = line(false);
    // 0 asks for a person; then the digits (0 among them), the hash, the confirmation.
    let done = run(&line, None, vec![], &[Act::Keys("0"), Act::Keys("036414900#")]);
    assert!(said_after(&done, "niemand erreichbar").contains("Raute"), "{:#?}", done.said);
    assert!(said_after(&done, "Die Nummer ist").contains("0 3 6, 4 1 4, 9 0 0."), "{:#?}", done.said);
    // Read back, not yet agreed: nothing stored.
    assert!(callback(&line, &done.conversation).is_none());

    let line = self::line(false);
    let done = run(&line, None, vec![], &[Act::Keys("0"), Act::Keys("036414900#"), Act::Keys("1")]);
    let c = callback(&line, &done.conversation).expect("stored after key 1");
    assert_eq!(c.contact, "036414900");
}

#[test]
fn no_stores_nothing_and_a_question_leaves_the_offer() {
    let line = line(false);
    let done =
        run(&line, Some("+4936414900"), vec!["Nein.", "Nein, danke."], &[Act::Keys("0"), Act::Speak, Act::Speak]);
    assert!(said_after(&done, "ich speichere nichts").contains("weiter fragen"), "{:#?}", done.said);
    assert!(callback(&line, &done.conversation).is_none());

    let line = self::line(false);
    let done = run(
        &line,
        Some("+4936414900"),
        vec!["Was kostet ein Reisepass?", "Ja."],
        &[Act::Keys("0"), Act::Speak, Act::Speak],
    );
    // The question was answered (a fee), and the later yes was no consent to anything.
    assert!(said_after(&done, "niemand erreichbar").contains("Euro"), "{:#?}", done.said);
    assert!(callback(&line, &done.conversation).is_none());
}

#[test]
fn after_a_failed_transfer_the_callback_replaces_the_place_in_the_queue() {
    let line = line(true);
    let done = run(&line, Some("+4936414900"), vec![], &[Act::Keys("0"), Act::TransferFailed, Act::Keys("1")]);
    assert!(said_after(&done, "nicht geklappt").contains("zurückrufen"), "{:#?}", done.said);
    let c = callback(&line, &done.conversation).expect("stored after key 1");
    assert_eq!(c.contact, "+4936414900");
    let desk = line.sessions.desk().unwrap();
    let h = line.runtime.block_on(desk.store.latest_handoff(&done.conversation)).unwrap().expect("it was queued");
    assert_eq!((h.state, h.outcome), (QueueState::Closed, Some(Outcome::Callback)));
}

/// A staff queue that cannot be reached: a Lotse server on another node that is down.
struct Unreachable;

impl lotse_call::staff::Queue for Unreachable {
    fn start(&self, _: Lang) -> Result<lotse_session::bridge::Started, lotse_call::QueueError> {
        Err(lotse_call::QueueError("connection refused".into()))
    }
    fn commit(
        &self,
        _: &lotse_core::ConversationId,
        _: lotse_dialog::Conversation,
        _: lotse_core::Reply,
    ) -> Result<lotse_session::bridge::Committed, lotse_call::QueueError> {
        Err(lotse_call::QueueError("connection refused".into()))
    }
    fn put_through(&self, _: &lotse_core::ConversationId) -> Result<(), lotse_call::QueueError> {
        Err(lotse_call::QueueError("connection refused".into()))
    }
    fn callback(&self, _: &lotse_core::ConversationId, _: &str) -> Result<(), lotse_call::QueueError> {
        Err(lotse_call::QueueError("connection refused".into()))
    }
    fn callback_offer(
        &self,
        _: &lotse_core::ConversationId,
        _: &lotse_dialog::Conversation,
    ) -> Option<lotse_core::CallbackOffer> {
        None
    }
    fn phone_consent(&self, _: Lang) -> Option<String> {
        None
    }
    fn transfer_target(&self, _: &str) -> Option<String> {
        None
    }
    fn vote(&self, _: &lotse_core::ConversationId, _: bool) -> Result<Option<u32>, lotse_call::QueueError> {
        Err(lotse_call::QueueError("connection refused".into()))
    }
}

#[test]
fn a_caller_whose_staff_queue_is_down_is_still_answered() {
    let line = line(true);
    let staff = Staff::with(Arc::new(Unreachable));
    let (said, conversation) = run_on(&line, &staff, None, vec!["Was kostet ein Reisepass?"], &[Act::Speak]);
    // No conversation in a queue, but the engine's answer with its fee.
    assert!(conversation.is_none());
    assert!(said.iter().any(|s| s.contains("Euro")), "{said:?}");
}

/// The votes by key in the plug-ins' log: (conversation, turn, helpful).
fn votes(line: &Line) -> Vec<(String, u32, bool)> {
    let desk = line.sessions.desk().unwrap();
    let events = line.runtime.block_on(desk.store.events_after(0, 1000)).unwrap();
    events
        .iter()
        .filter_map(|e| match (&e.event, &e.conversation_id) {
            (lotse_handoff::log::Event::Voted { turn, helpful, .. }, Some(c)) => {
                Some((c.as_str().to_string(), *turn, *helpful))
            }
            _ => None,
        })
        .collect()
}

fn hearing_votes(open: bool) -> Line {
    let line = line(open);
    let store = line.sessions.desk().unwrap().store.clone();
    line.sessions.record_activity(store, false);
    line.sessions.hear_votes();
    line
}

#[test]
fn after_an_answer_the_goodbye_asks_whether_it_helped_and_a_key_answers() {
    let line = hearing_votes(true);
    let done = run(
        &line,
        None,
        vec!["Was kostet ein Personalausweis?", "Danke, tschüss"],
        &[Act::Speak, Act::Speak, Act::Keys("2")],
    );
    let asked = said_after(&done, "Hat Ihnen die Auskunft geholfen?");
    assert!(asked.contains("Danke für Ihre Rückmeldung"), "{asked}");
    // The answer was the call's first message answered.
    assert_eq!(votes(&line), vec![(done.conversation.as_str().to_string(), 1, false)]);
}

#[test]
fn no_question_after_a_goodbye_without_an_answer_or_where_nobody_hears_the_key() {
    // Nothing answered: nothing to ask about.
    let line = hearing_votes(true);
    let done = run(&line, None, vec!["Tschüss"], &[Act::Speak, Act::Keys("1")]);
    assert!(!done.said.iter().any(|s| s.contains("geholfen")), "{:#?}", done.said);
    assert!(votes(&line).is_empty());
    // No plug-in hears votes: no question.
    let line = self::line(true);
    let done = run(&line, None, vec!["Was kostet ein Reisepass?", "Tschüss"], &[Act::Speak, Act::Speak]);
    assert!(!done.said.iter().any(|s| s.contains("geholfen")), "{:#?}", done.said);
}

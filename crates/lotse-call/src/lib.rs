//! One phone call, without I/O and without a clock of its own: caller audio (16 kHz) and keys
//! in, the bot's audio out (any rate), and a record of every turn. `lotse voice`, `lotse eval
//! voice` and `lotse bench voice` run recordings through it; the SIP bridge will run live calls.
//!
//! The call goes: caller audio → voice activity and end of turn ([`lotse_speech::call`]) →
//! recognition ([`Recognizer`]) → the conversation (the engine on the phone channel, and with a
//! [`Staff`] line the session of the staff queue) → the spoken form → one sentence synthesised
//! ([`Synthesizer`]) and played while the rest is synthesised; barge-in and keys on the way.
//! Recognition, synthesis and the time their work takes ([`Clock`]) come from the caller of
//! [`run`], so the call loop is tested with scripted transcripts, silent voices and a clock
//! that moves only when told.
//!
//! Recognition starts at the caller's first pause, not at the end of the turn: when the voice
//! activity detector first hears silence, the utterance so far goes to the recogniser, the
//! dialog and the first sentence's synthesis (on a copy of the conversation), while the
//! hangover runs. If the caller speaks again, that work is void (its cancel flag is raised); if
//! the turn ends, the reply is already made (or nearly) and plays at once.
//!
//! Latency is measured per turn as the caller would meet it, from the end of their speech (as
//! the detector found it) to the first sample of the reply. The work is done when its event
//! comes and its time is read from the [`Clock`]; the reply's first sample is then placed at
//! max(end of turn, pause + that time) on the call's own clock (its input samples): what a live
//! call with one worker thread does, since feeding the detector costs half a percent of a core.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

pub mod booking;
pub mod staff;
pub mod vocabulary;

pub use staff::{QueueError, Staff};
pub use vocabulary::{Change, Vocabulary};

use booking::{Booking, Step};

use lotse_core::{Channel, Lang};
use lotse_dialog::{Engine, TurnRequest};
use lotse_speech::call::{Call, CallEvent};
use lotse_speech::endpoint::EndpointConfig;
use lotse_speech::resample::{ResampleError, convert};
use lotse_speech::spoken::{quick_start, sentences, spoken};
use lotse_speech::stt::{LangChoice, SttError, SttSession, Transcript};
use lotse_speech::tts::{Audio, Tts, TtsError};
use lotse_speech::vad::{Activity, VadError};

/// Frames of 20 ms, as RTP carries them.
const FRAME_MS: u32 = 20;
/// The longest recording a call takes, and the longest live call.
const MAX_INPUT: Duration = Duration::from_secs(30 * 60);
/// On a live line, silence from both sides for this long: the bot asks whether the caller is
/// still there.
pub const QUIET_PROMPT: Duration = Duration::from_secs(8);
/// And after the prompt, this much more silence: the bot says goodbye and hangs up.
pub const QUIET_GOODBYE: Duration = Duration::from_secs(20);

/// What the bot says to silence, and when it ends the call (German, English).
const STILL_THERE: (&str, &str) = (
    "Sind Sie noch da? Stellen Sie gern Ihre Frage. Mit der Taste 0 erreichen Sie einen Menschen.",
    "Are you still there? Just ask your question. Press 0 to reach a person.",
);
const GOODBYE_QUIET: (&str, &str) = (
    "Ich höre nichts mehr und beende jetzt das Gespräch. Auf Wiederhören!",
    "I can't hear anything, so I will end the call now. Goodbye!",
);
const GOODBYE_LONG: (&str, &str) = (
    "Das Gespräch hat die längste mögliche Dauer erreicht. Rufen Sie gern noch einmal an. Auf Wiederhören!",
    "This call has reached its longest possible length. Please call again. Goodbye!",
);

/// Asked after the goodbye of a call that had an answer, when the server hears votes (the
/// feedback plug-in), and the words after the key or the silence.
const HELPED: (&str, &str) = (
    "Hat Ihnen die Auskunft geholfen? Drücken Sie die 1 für ja oder die 2 für nein.",
    "Did the information help you? Press 1 for yes or 2 for no.",
);
const THANKS_VOTE: (&str, &str) =
    ("Danke für Ihre Rückmeldung. Auf Wiederhören!", "Thank you for your feedback. Goodbye!");
const BYE_AFTER_PROMPT: (&str, &str) = ("Auf Wiederhören!", "Goodbye!");

/// Said before a callback is offered: outside staff hours, and after a transfer that failed.
const NOBODY: (&str, &str) = ("Im Moment ist niemand erreichbar.", "Nobody is available right now.");
const NOT_CONNECTED: (&str, &str) =
    ("Die Verbindung hat leider nicht geklappt.", "Sorry, I could not put you through.");

const TRANSFER_FAILED: (&str, &str) = (
    "Die Verbindung hat leider nicht geklappt. Versuchen Sie es bitte später noch einmal, oder fragen Sie mich weiter.",
    "Sorry, I could not put you through. Please try again later, or ask me something else.",
);

/// What the bot says before it puts a caller through to a team: one short sentence, since the
/// REFER waits for it to end (the PBX's ringback then tells the caller to wait).
fn connecting(lang: Lang, team: &str) -> String {
    match lang {
        Lang::En => format!("Putting you through to the {team} team."),
        _ => format!("Ich verbinde Sie mit dem Team {team}."),
    }
}

fn say(lang: Lang, texts: (&str, &str)) -> String {
    match lang {
        Lang::En => texts.1.to_string(),
        _ => texts.0.to_string(),
    }
}

/// What can end a call.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("the recording is longer than {0} minutes")]
    TooLong(u64),
    #[error(transparent)]
    Activity(#[from] VadError),
    #[error(transparent)]
    Recognition(#[from] SttError),
    #[error(transparent)]
    Synthesis(#[from] TtsError),
    #[error(transparent)]
    Resample(#[from] ResampleError),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// Speech to text, one utterance at a time, for one call.
pub trait Recognizer {
    fn transcribe(&mut self, audio: &[f32], lang: LangChoice) -> Result<Transcript, CallError>;

    /// German or English, with p(en) / p(de), told from some speech alone, where the
    /// recogniser can do that apart from a transcription (none: it cannot).
    fn language(&mut self, _audio: &[f32]) -> Result<Option<(Lang, f32)>, CallError> {
        Ok(None)
    }
}

impl Recognizer for SttSession {
    fn transcribe(&mut self, audio: &[f32], lang: LangChoice) -> Result<Transcript, CallError> {
        Ok(SttSession::transcribe(self, audio, lang)?)
    }

    fn language(&mut self, audio: &[f32]) -> Result<Option<(Lang, f32)>, CallError> {
        Ok(Some(SttSession::language(self, audio)?))
    }
}

/// How much of the caller's first turn is heard before its language is told, while they go on
/// speaking (16 kHz samples): whisper's detector is as sure on it as on the whole of a question.
const EARLY_LANGUAGE: usize = 16_000 * 3 / 2;

/// Text to speech, one sentence at a time.
pub trait Synthesizer {
    fn synthesize(&self, text: &str, lang: Lang) -> Result<Audio, CallError>;
}

impl Synthesizer for Tts {
    fn synthesize(&self, text: &str, lang: Lang) -> Result<Audio, CallError> {
        Ok(Tts::synthesize(self, text, lang)?)
    }
}

/// How long the call's work takes: read before and after each piece of work (recognition, the
/// dialog, synthesis). A monotonic clock live and offline; one that a test moves by hand.
pub trait Clock {
    /// The time since any fixed moment.
    fn now(&self) -> Duration;
}

/// One caller turn and the bot's answer.
#[derive(Debug, Clone)]
pub struct TurnRecord {
    pub speech_end: Duration,
    pub endpoint: Duration,
    pub transcript: String,
    /// The language the recogniser was run in.
    pub heard_lang: Lang,
    /// With detection: p(en) / p(de).
    pub english_odds: Option<f32>,
    /// The spoken reply.
    pub reply: String,
    pub kind: String,
    pub source_ids: Vec<String>,
    pub stt: Duration,
    pub dialog: Duration,
    pub tts_first: Duration,
    /// When the first sample of the reply played, in call time.
    pub first_audio: Duration,
    /// Set when the caller interrupted: what they had heard.
    pub heard: Option<String>,
    /// Recognition and reply were begun in the caller's pause, during the hangover.
    pub early: bool,
    /// What the knowledge's words corrected in the recogniser's text (`transcript` is the
    /// corrected text).
    pub corrections: Vec<Change>,
}

impl TurnRecord {
    /// End of speech → first audio.
    pub fn latency(&self) -> Duration {
        self.first_audio.saturating_sub(self.speech_end)
    }
}

/// What a live line hands its call: 20 ms of caller audio (16 kHz) or a key.
#[derive(Debug, Clone)]
pub enum Inbound {
    Audio(Vec<f32>),
    Key(char),
}

/// A key at a moment of the call.
#[derive(Debug, Clone, Copy)]
pub struct Key {
    pub at: Duration,
    pub digit: char,
}

/// What a call did.
pub struct Outcome {
    /// The bot's side of the call, at the output rate.
    pub output: Vec<f32>,
    pub turns: Vec<TurnRecord>,
    /// Lines of what happened, for `--transcript`. They hold what was said, so they are for
    /// the caller's own recording, never for a log.
    pub log: Vec<String>,
}

/// The city's name, and how an English recogniser writes it when an English speaker says it
/// ("Gina" for Jena): a caller of the city's hotline who says "in Gina" means the city.
#[derive(Debug, Clone)]
pub struct CityName {
    pub name: String,
    pub heard_as: Vec<String>,
}

impl Default for CityName {
    fn default() -> Self {
        CityName { name: "Jena".into(), heard_as: vec!["Gina".into(), "Jenna".into(), "Jina".into()] }
    }
}

/// How a call runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// The rate of the bot's audio.
    pub output_rate: u32,
    /// The caller's language when it is known; otherwise German, and with `detect` the first
    /// turn's language is detected.
    pub lang: Option<Lang>,
    pub detect: bool,
    /// Every sentence of each reply synthesised and played out after the recording ends; off
    /// for measurements, which need only the start of each reply.
    pub whole: bool,
    pub city: CityName,
    /// The knowledge's words, to correct what the recogniser heard (empty: no correction).
    pub vocabulary: Arc<Vocabulary>,
    /// The number the caller rings from (the line's caller identity), offered for a
    /// callback; none when withheld.
    pub caller: Option<String>,
}

/// What a call needs: the engine, recognition, synthesis, the voice activity detector (the
/// call's own; it is handed back with the outcome for the next call), the clock and, where the
/// call can reach staff, the staff queue.
pub struct Parts<'a, R, S, V> {
    pub engine: &'a Engine,
    pub recognizer: &'a mut R,
    pub synthesizer: &'a S,
    pub activity: V,
    pub clock: &'a dyn Clock,
    pub staff: Option<&'a Staff>,
}

/// Runs caller audio (16 kHz) with keys through one call; returns what happened and the voice
/// activity detector for the next call.
pub fn run<R: Recognizer, S: Synthesizer, V: Activity>(
    parts: Parts<'_, R, S, V>,
    input: &[f32],
    keys: &[Key],
    options: Options,
) -> Result<(Outcome, V), CallError> {
    if input.len() as f64 / 16_000.0 > MAX_INPUT.as_secs_f64() {
        return Err(CallError::TooLong(MAX_INPUT.as_secs() / 60));
    }
    let whole = options.whole;
    let mut live = Live::begin(parts, options, false)?;
    let frame = 16 * FRAME_MS as usize;
    let mut keys = keys.iter().peekable();
    let silence = vec![0.0f32; frame];
    let mut i = 0usize;
    loop {
        let chunk: &[f32] = if i < input.len() {
            &input[i..(i + frame).min(input.len())]
        } else if whole && (live.s.call.is_playing() || !live.s.due.is_empty()) {
            &silence
        } else {
            break;
        };
        i += frame;
        while let Some(k) = keys.next_if(|k| k.at <= live.now()) {
            live.key(k.digit)?;
        }
        live.push(chunk)?;
        let n = live.frame_output();
        let out = live.s.call.pull(n);
        live.s.output.extend(out);
        if i > input.len() + 16_000 * 120 {
            break; // two minutes of reply after the recording ended: enough
        }
    }
    Ok(live.finish())
}

/// A call as it happens, for a live line: caller audio pushed 20 ms at a time as it arrives
/// (16 kHz), keys as they come, and the bot's audio pulled by the line's own media clock
/// through [`Live::player`], so that playback goes on while the call's thread is busy with
/// recognition or synthesis. A reply's first sentence is synthesised before it plays; the next
/// one while the one before plays. [`run`] drives the same call from a recording.
pub struct Live<'a, R, S, V: Activity> {
    s: Session<'a, R, S, V>,
    /// The greeting the conversation began with.
    greeting: (String, Lang),
    frames: u64,
    /// Since when neither side has said anything (call time).
    quiet_since: Duration,
    /// The caller was asked whether they are still there, and has not answered.
    prompted: bool,
    /// The goodbye is playing: the call ends when it has.
    ending: bool,
}

impl<'a, R: Recognizer, S: Synthesizer, V: Activity> Live<'a, R, S, V> {
    /// Starts the call's conversation (in the staff queue's sessions, where it has a line).
    pub fn start(parts: Parts<'a, R, S, V>, options: Options) -> Result<Live<'a, R, S, V>, CallError> {
        Live::begin(parts, options, true)
    }

    fn begin(parts: Parts<'a, R, S, V>, options: Options, live: bool) -> Result<Live<'a, R, S, V>, CallError> {
        let Parts { engine, recognizer, synthesizer, mut activity, clock, staff } = parts;
        activity.reset();
        let output_rate = options.output_rate;
        let lang0 = options.lang.unwrap_or(Lang::De);
        let mut votes = false;
        let (line, conv, greeting) = match staff {
            Some(staff) => match staff.start(lang0) {
                Ok(started) => {
                    votes = started.votes;
                    (Some((staff, started.id)), started.conversation, started.greeting)
                }
                Err(e) => {
                    // The caller is answered all the same, by the engine alone: without a
                    // person to reach and a record in the console.
                    tracing::warn!(error = %e, "a call without the staff queue");
                    let (conv, greeting) = engine.start("voice".into(), Channel::Phone, lang0);
                    (None, conv, greeting)
                }
            },
            None => {
                let (conv, greeting) = engine.start("voice".into(), Channel::Phone, lang0);
                (None, conv, greeting)
            }
        };
        let s = Session {
            engine,
            line,
            synth: synthesizer,
            recognizer,
            clock,
            call: Call::new(activity, EndpointConfig::default(), output_rate),
            conv,
            first_turn: true,
            detect: options.lang.is_none() && options.detect,
            due: Vec::new(),
            later: Vec::new(),
            live,
            in_turn: false,
            queued_for: None,
            turns: Vec::new(),
            log: Vec::new(),
            output: Vec::new(),
            last_spoken: Vec::new(),
            whole: options.whole,
            early: None,
            worker_free: Duration::ZERO,
            last_pause: None,
            city: options.city,
            vocabulary: options.vocabulary,
            caller: options.caller,
            booking: None,
            early_lang: None,
            early_tried: false,
            votes,
            vote_asked: false,
            awaiting_vote: false,
            hang_up: false,
        };
        Ok(Live {
            s,
            greeting: (greeting.text, greeting.lang),
            frames: 0,
            quiet_since: Duration::ZERO,
            prompted: false,
            ending: false,
        })
    }

    /// Plays the conversation's greeting (the first thing a caller hears).
    pub fn greet(&mut self) -> Result<(), CallError> {
        let (text, lang) = self.greeting.clone();
        let said = quick_start(sentences(&spoken(&text, lang)));
        let now = self.s.call.now();
        self.s.log.push(format!("[{}] lotse (greeting): {}", secs(now), said.join(" ")));
        self.s.speak(&said, lang, now)?;
        self.s.last_spoken = said;
        Ok(())
    }

    /// 20 ms of caller audio (16 kHz): the turn's events handled, due audio started, the next
    /// sentence of a reply synthesised when the one playing nears its end.
    pub fn push(&mut self, frame: &[f32]) -> Result<(), CallError> {
        let events = self.s.call.push_audio(frame)?;
        if !events.is_empty() {
            // The caller said something (or paused in a turn): not silence.
            self.quiet_since = self.s.call.now();
            self.prompted = false;
        }
        self.s.handle(events)?;
        self.s.tell_language_early()?;
        // A number keyed for a callback and then no key for a while: it is complete.
        let now = self.s.call.now();
        if let Some(step) = self.s.booking.as_mut().and_then(|b| b.pause(now)) {
            self.s.take_step(step, now)?;
        }
        // Whether the consent question has been heard yet (a yes counts only then).
        if let Some(b) = self.s.booking.as_mut() {
            b.heard_so_far(&self.s.call.heard());
        }
        self.s.start_due();
        self.s.top_up()?;
        self.frames += 1;
        self.watch_the_line()
    }

    /// Silence and length on a live line: a prompt after [`QUIET_PROMPT`], a goodbye after
    /// [`QUIET_GOODBYE`] more; a goodbye when the call reaches its longest length.
    fn watch_the_line(&mut self) -> Result<(), CallError> {
        let now = self.s.call.now();
        if self.ending || self.s.hang_up || !self.s.live {
            return Ok(());
        }
        if self.is_speaking() || self.s.in_turn {
            self.quiet_since = now;
            return Ok(());
        }
        let lang = self.s.conv.lang;
        let quiet = now.saturating_sub(self.quiet_since);
        let (text, ending) = if now >= MAX_INPUT {
            (say(lang, GOODBYE_LONG), true)
        } else if self.s.awaiting_vote && quiet >= QUIET_PROMPT {
            // No key after the goodbye's question: the call ends.
            (say(lang, BYE_AFTER_PROMPT), true)
        } else if !self.prompted && quiet >= QUIET_PROMPT {
            (say(lang, STILL_THERE), false)
        } else if self.prompted && quiet >= QUIET_GOODBYE {
            (say(lang, GOODBYE_QUIET), true)
        } else {
            return Ok(());
        };
        let said = quick_start(sentences(&text));
        self.s.log.push(format!("[{}] lotse ({}): {}", secs(now), if ending { "goodbye" } else { "silence" }, text));
        self.s.speak(&said, lang, now)?;
        self.prompted = true;
        self.ending = ending;
        self.quiet_since = now;
        Ok(())
    }

    /// The staff queue has just taken the caller: the team's name (once). A line that can put
    /// the caller through says so ([`Live::connecting`]), does, and tells ([`Live::put_through`]).
    pub fn take_queued(&mut self) -> Option<String> {
        self.s.queued_for.take()
    }

    /// Replaces what the bot is saying with the words before a transfer to `team`.
    pub fn connecting(&mut self, team: &str) -> Result<(), CallError> {
        let lang = self.s.conv.lang;
        self.say_instead(&connecting(lang, team))
    }

    /// The transfer failed (refused, busy, no answer): the caller hears so, stays, and is
    /// offered a callback in the team's window where the staff queue has one.
    pub fn transfer_failed(&mut self) -> Result<(), CallError> {
        let lang = self.s.conv.lang;
        let offer = self.s.line.as_ref().and_then(|(staff, id)| staff.callback_offer(id, &self.s.conv));
        let text = match offer {
            Some(offer) => self.s.start_booking(&offer, &say(lang, NOT_CONNECTED)),
            None => say(lang, TRANSFER_FAILED),
        };
        self.say_instead(&text)
    }

    /// The transfer succeeded: the conversation leaves the staff queue.
    pub fn put_through(&mut self) {
        if let Some((staff, id)) = &self.s.line
            && let Err(e) = staff.put_through(id)
        {
            tracing::warn!(error = %e, "the staff queue failed after a transfer");
        }
    }

    /// Stops what is playing or due and says `text` instead.
    /// What was cut of the reply is kept as heard, as a barge-in keeps it; `*` still repeats
    /// the last answer.
    fn say_instead(&mut self, text: &str) -> Result<(), CallError> {
        self.s.hush();
        let now = self.s.call.now();
        let said = quick_start(sentences(text));
        self.s.log.push(format!("[{}] lotse: {}", secs(now), said.join(" ")));
        let lang = self.s.conv.lang;
        self.s.speak(&said, lang, now)?;
        self.s.call.set_dictation(booking::asks_for_number(text));
        // `*` repeats this.
        self.s.last_spoken = said;
        self.quiet_since = now;
        Ok(())
    }

    /// The call has said goodbye: the line may hang up.
    pub fn finished(&self) -> bool {
        (self.ending || self.s.hang_up) && !self.is_speaking()
    }

    /// A key the caller pressed.
    pub fn key(&mut self, digit: char) -> Result<(), CallError> {
        let events = self.s.call.push_dtmf(digit);
        self.quiet_since = self.s.call.now();
        self.prompted = false;
        self.s.handle(events)?;
        // Live, the answer to a key starts without waiting for the next frame; from a
        // recording, with the frame the key came in (as it always has).
        if self.s.live {
            self.s.start_due();
        }
        Ok(())
    }

    /// The call's time: caller audio pushed so far.
    pub fn now(&self) -> Duration {
        self.s.call.now()
    }

    /// The bot's audio, for the line's media clock.
    pub fn player(&self) -> Arc<std::sync::Mutex<lotse_speech::call::Player>> {
        self.s.call.player()
    }

    /// Whether a reply is playing or about to.
    pub fn is_speaking(&self) -> bool {
        self.s.call.is_playing() || !self.s.due.is_empty() || !self.s.later.is_empty()
    }

    /// The turns so far.
    pub fn turns(&self) -> &[TurnRecord] {
        &self.s.turns
    }

    /// The conversation's id in the staff queue's sessions, where the call has a line.
    pub fn conversation(&self) -> Option<&lotse_core::ConversationId> {
        self.s.line.as_ref().map(|(_, id)| id)
    }

    /// Output samples of the frame just pushed, at the output rate (carried over, so that
    /// rates like 11,025 Hz do not drift).
    fn frame_output(&self) -> usize {
        let per_second = (1000 / FRAME_MS) as u64;
        let rate = self.s.call.output_rate() as u64;
        let f = self.frames;
        (f * rate / per_second - (f - 1) * rate / per_second) as usize
    }

    /// The call is over: what happened, and the detector for the next call.
    pub fn finish(self) -> (Outcome, V) {
        let s = self.s;
        (Outcome { output: s.output, turns: s.turns, log: s.log }, s.call.into_vad())
    }
}

struct Session<'a, R, S, V: Activity> {
    engine: &'a Engine,
    /// The staff queue and the call's conversation id there, when the call can reach staff.
    line: Option<(&'a Staff, lotse_core::ConversationId)>,
    synth: &'a S,
    recognizer: &'a mut R,
    clock: &'a dyn Clock,
    call: Call<V>,
    conv: lotse_dialog::Conversation,
    first_turn: bool,
    detect: bool,
    /// Reply audio not yet playing: (start, sentence, samples at the output rate).
    due: Vec<(Duration, String, Vec<f32>)>,
    /// On a live line, the reply's sentences after the first, synthesised one by one while
    /// the one before plays.
    later: Vec<(String, Lang)>,
    live: bool,
    /// The caller is in a turn (from its speech start to its end).
    in_turn: bool,
    /// The staff queue took the caller (the team's name): a live line may put them through.
    queued_for: Option<String>,
    turns: Vec<TurnRecord>,
    log: Vec<String>,
    output: Vec<f32>,
    last_spoken: Vec<String>,
    whole: bool,
    /// The reply begun at the caller's last pause, if the caller has not spoken since.
    early: Option<Early>,
    /// When the one worker is free again, in call time.
    worker_free: Duration,
    /// The last pause of the current utterance: its length then, and when.
    last_pause: Option<(usize, Duration)>,
    city: CityName,
    vocabulary: Arc<Vocabulary>,
    caller: Option<String>,
    /// A callback on offer: what the caller says or keys goes to it first.
    booking: Option<Booking>,
    /// The first turn's language, told from its first seconds while the caller spoke on
    /// (with p(en) / p(de)).
    early_lang: Option<(Lang, f32)>,
    /// The early language was tried (once a call).
    early_tried: bool,
    /// The server hears votes by key: the goodbye after an answer asks whether it helped.
    votes: bool,
    /// It was asked (once a call).
    vote_asked: bool,
    /// The question is open: 1 or 2 answers it.
    awaiting_vote: bool,
    /// The caller voted and heard the goodbye: the line may hang up.
    hang_up: bool,
}

fn secs(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64())
}

impl<R: Recognizer, S: Synthesizer, V: Activity> Session<'_, R, S, V> {
    /// Stops what is playing or due. What was cut of the reply is kept as heard, as a
    /// barge-in keeps it.
    fn hush(&mut self) {
        let cut = self.call.is_playing() || !self.due.is_empty() || !self.later.is_empty();
        self.due.clear();
        self.later.clear();
        self.call.cancel_reply();
        let heard = {
            let player = self.call.player();
            let mut player = player.lock().unwrap_or_else(|e| e.into_inner());
            player.clear();
            player.heard()
        };
        if cut {
            self.conv.record_heard(&heard);
            if let Some(t) = self.turns.last_mut() {
                t.heard = Some(heard);
            }
        }
    }

    /// Offers a callback (see [`booking`]): the words to say.
    fn start_booking(&mut self, offer: &lotse_core::CallbackOffer, lead: &str) -> String {
        let lang = self.conv.lang;
        let consent = self.line.as_ref().and_then(|(staff, _)| staff.phone_consent(lang)).unwrap_or_default();
        let (booking, text) = Booking::start(&offer.slot, &consent, self.caller.as_deref(), lang, lead);
        self.booking = Some(booking);
        text
    }

    /// The words for a step of the booking; a callback agreed to is stored first.
    fn step_words(&mut self, step: &Step) -> String {
        let lang = self.conv.lang;
        let Some(booking) = self.booking.as_mut() else {
            // The offer ended meanwhile (nothing reaches here today): nothing was stored.
            return if let Step::Book(_) = step { booking::not_stored(lang) } else { String::new() };
        };
        booking.advance(step);
        match step {
            Step::Ask(_, text) | Step::Again(text) => text.clone(),
            Step::Decline(text) => {
                self.booking = None;
                text.clone()
            }
            Step::Book(number) => {
                let booking = self.booking.take().expect("checked");
                let stored = match &self.line {
                    Some((staff, id)) => {
                        staff.callback(id, number).map_err(|e| {
                            // The error names no caller and no number.
                            tracing::warn!(error = %e, "a callback by phone was not stored");
                        })
                    }
                    None => Err(()),
                };
                self.log.push(format!("callback {}", if stored.is_ok() { "stored" } else { "not stored" }));
                if stored.is_ok() { booking.booked() } else { booking.not_stored() }
            }
            Step::Leave => {
                self.booking = None;
                String::new()
            }
        }
    }

    /// A step of the booking that a key (or keys and a pause) completed: said at once.
    fn take_step(&mut self, step: Step, at: Duration) -> Result<(), CallError> {
        let text = self.step_words(&step);
        if text.is_empty() {
            return Ok(());
        }
        let lang = self.conv.lang;
        let said = quick_start(sentences(&spoken(&text, lang)));
        self.log.push(format!("[{}] lotse (callback): {}", secs(at), said.join(" ")));
        self.hush();
        self.speak(&said, lang, at)?;
        self.call.set_dictation(booking::asks_for_number(&text));
        self.last_spoken = said;
        Ok(())
    }

    /// Work begun at a pause that the caller's next words or key made void: its generation is
    /// told to stop (on a worker pool it may still be running).
    fn void_early(&mut self) -> Option<Early> {
        let early = self.early.take()?;
        early.prepared.cancel.store(true, Ordering::Relaxed);
        Some(early)
    }

    fn start_due(&mut self) {
        let now = self.call.now();
        let (ready, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.due).into_iter().partition(|d| d.0 <= now);
        self.due = later;
        for (_, text, samples) in ready {
            self.call.play(&text, samples);
        }
    }

    /// The caller spoke or pressed a key before the reply began to play: it never plays, and
    /// the record keeps that nothing was heard.
    fn drop_unplayed(&mut self, at: Duration) {
        if !self.due.is_empty() && !self.call.is_playing() {
            self.due.clear();
            self.later.clear();
            self.call.cancel_reply();
            self.conv.record_heard("");
            if let Some(t) = self.turns.last_mut() {
                t.heard = Some(String::new());
            }
            self.log.push(format!("[{}] barge-in before the reply began: it is dropped", secs(at)));
        }
    }

    /// The transcript corrected by the knowledge's words (German only: the knowledge is).
    fn correct(&self, t: &Transcript) -> (String, Vec<Change>) {
        if t.lang == Lang::De { self.vocabulary.correct(&t.text) } else { (t.text.clone(), Vec::new()) }
    }

    fn heard_line(&self, t: &lotse_speech::stt::Transcript, end: Duration, capped: bool) -> String {
        format!(
            "[{}–{}] caller{}: {:?} ({}{}, recognised in {} ms)",
            secs(end.saturating_sub(t.audio)),
            secs(end),
            if capped { " (cut at the length limit)" } else { "" },
            t.text,
            if t.lang == Lang::En { "en" } else { "de" },
            t.english_odds.map(|o| format!(", English {o:.2} times as likely as German")).unwrap_or_default(),
            t.elapsed.as_millis()
        )
    }

    /// The caller's words, in the conversation's language; on the first turn in the language
    /// told early, or detected now (see [`Session::tell_language_early`]).
    fn recognize(&mut self, audio: &[f32]) -> Result<Transcript, CallError> {
        let (choice, early) = match (self.first_turn && self.detect, self.early_lang) {
            (true, Some((lang, odds))) => (LangChoice::Fixed(lang), Some(odds)),
            (true, None) => (LangChoice::Detect, None),
            (false, _) => (LangChoice::Fixed(self.conv.lang), None),
        };
        let mut t = city_names(self.recognizer.transcribe(audio, choice)?, &self.city);
        if early.is_some() {
            t.english_odds = early;
        }
        Ok(t)
    }

    /// While the caller's first turn goes on, its language is told from its first
    /// [`EARLY_LANGUAGE`] of speech, so that the recognition at the end of the turn need not
    /// (whisper's detector is an encoder pass of its own, about 200 ms on 2 cores, which then
    /// falls in the caller's speech instead of after it). Only while the worker is free; the
    /// frames that come meanwhile wait in the line's backlog and are caught up on.
    fn tell_language_early(&mut self) -> Result<(), CallError> {
        // Not while work begun at a pause waits for the turn's end: that work has its language.
        if !(self.first_turn && self.detect) || self.early_tried || self.early.is_some() {
            return Ok(());
        }
        let now = self.call.now();
        if self.worker_free > now {
            return Ok(());
        }
        let Some(so_far) = self.call.utterance_so_far().filter(|a| a.len() >= EARLY_LANGUAGE) else {
            return Ok(());
        };
        let audio = so_far.to_vec();
        let began = self.clock.now();
        self.early_tried = true;
        let (lang, odds) = match self.recognizer.language(&audio) {
            Ok(Some(told)) => told,
            // This recogniser cannot: the first turn detects as it transcribes.
            Ok(None) => return Ok(()),
            // Nor when the detector fails: the call goes on, and the turn detects then.
            Err(e) => {
                tracing::warn!(error = %e, "telling the caller's language early failed");
                return Ok(());
            }
        };
        let took = self.clock.now().saturating_sub(began);
        self.worker_free = now + took;
        self.early_lang = Some((lang, odds));
        self.log.push(format!(
            "[{}] the caller's language from their first {:.1} s: {lang:?} (p(en)/p(de) {odds:.3}, {} ms)",
            secs(now),
            audio.len() as f32 / 16_000.0,
            took.as_millis()
        ));
        Ok(())
    }

    fn handle(&mut self, events: Vec<CallEvent>) -> Result<(), CallError> {
        for e in events {
            if matches!(e, CallEvent::Utterance { .. }) {
                self.in_turn = false;
            }
            match e {
                CallEvent::SpeechStarted { at } => {
                    self.in_turn = true;
                    self.log.push(format!("[{}] caller starts speaking", secs(at)));
                    self.drop_unplayed(at);
                }
                CallEvent::BargeIn { at, heard } => {
                    self.due.clear();
                    self.later.clear();
                    self.later.clear();
                    self.log.push(format!("[{}] barge-in: playback stopped; the caller heard {:?}", secs(at), heard));
                    self.conv.record_heard(&heard);
                    if let Some(t) = self.turns.last_mut() {
                        t.heard = Some(heard);
                    }
                }
                CallEvent::Dtmf { at, digit } => {
                    self.log.push(format!("[{}] key {digit}", secs(at)));
                    self.drop_unplayed(at);
                    // A key answers at once: work begun at a pause is void.
                    self.void_early();
                    self.last_pause = None;
                    // After "Hat Ihnen die Auskunft geholfen?": 1 yes, 2 no; thanks and goodbye.
                    if self.awaiting_vote && matches!(digit, '1' | '2') {
                        self.awaiting_vote = false;
                        let helpful = digit == '1';
                        if let Some((staff, id)) = &self.line
                            && let Err(e) = staff.vote(id, helpful)
                        {
                            tracing::warn!(error = %e, "the vote was not kept");
                        }
                        let lang = self.conv.lang;
                        let said = quick_start(sentences(&say(lang, THANKS_VOTE)));
                        self.log.push(format!(
                            "[{}] lotse (vote: {}): {}",
                            secs(at),
                            if helpful { "helped" } else { "did not help" },
                            said.join(" ")
                        ));
                        self.speak(&said, lang, at)?;
                        self.last_spoken = said;
                        self.hang_up = true;
                        continue;
                    }
                    // While a callback is on offer, digits are a number or its confirmation;
                    // `*` starts a number again and repeats the prompt.
                    if digit == '*'
                        && let Some(booking) = self.booking.as_mut()
                    {
                        booking.clear_keys();
                    }
                    if digit != '*'
                        && let Some(booking) = self.booking.as_mut()
                    {
                        let step = booking.key(digit, at);
                        if booking.keying() {
                            // The caller knows what to do: the prompt stops.
                            self.hush();
                        }
                        if let Some(step) = step {
                            self.take_step(step, at)?;
                        }
                        continue;
                    }
                    match digit {
                        // A typed request for a person: nothing for the engine to read.
                        '0' => self.answer(Input::Person, self.conv.lang, at, at, at, Duration::ZERO)?,
                        '*' => {
                            let again = self.last_spoken.clone();
                            self.speak(&again, self.conv.lang, at)?;
                        }
                        _ => {}
                    }
                }
                // Recognition and the reply start now, while the hangover runs, if the one worker
                // is free (whisper cannot be stopped midway through: work begun at an earlier
                // pause runs to its end, and then the next pause is taken).
                CallEvent::Paused { audio, at } if self.worker_free <= at => {
                    self.last_pause = Some((audio.len(), at));
                    let start = at;
                    let began = self.clock.now();
                    let t = self.recognize(&audio)?;
                    let stt = self.clock.now().saturating_sub(began);
                    let mut log = self.heard_line(&t, at, false);
                    let (text, corrections) = self.correct(&t);
                    if !corrections.is_empty() {
                        log.push_str(&format!(" → {text:?}"));
                    }
                    // The caller is giving a number or spelling: a pause between groups is not
                    // the end of the turn.
                    if dictating(&t.text) {
                        self.call.set_dictation(true);
                        self.log.push(format!(
                            "[{}] digits or letters so far: waiting longer for the end of the turn",
                            secs(at)
                        ));
                    }
                    let mut prepared = self.prepare(self.conv.clone(), Input::Heard(text), t.lang, stt)?;
                    prepared.english_odds = t.english_odds;
                    prepared.corrections = corrections;
                    // Words that are not yet a question ("Ich brauche ein Gesundheitszeugnis.",
                    // "Hallo,") or not one the bot can answer are most often the start of one:
                    // the turn waits longer for the caller to go on.
                    if unfinished(&prepared.kind, &prepared.text) {
                        self.call.set_unfinished(true);
                        self.log.push(format!(
                            "[{}] no answer to the words so far: waiting longer for the end of the turn",
                            secs(at)
                        ));
                    }
                    // The first sentence is ready then; the rest is made while it plays.
                    let ready = start + prepared.stt + prepared.dialog + prepared.tts_first;
                    self.worker_free = ready;
                    self.early = Some(Early { audio_len: audio.len(), ready, prepared, log });
                }
                CallEvent::Paused { audio, at } => {
                    // Busy: the worker takes this pause's utterance when it is free (below, at
                    // the end of the turn), unless the caller goes on.
                    self.void_early();
                    self.last_pause = Some((audio.len(), at));
                }
                CallEvent::Resumed { at } => {
                    self.last_pause = None;
                    // What was recognised up to the pause is the partial result of the turn.
                    if let Some(e) = self.void_early() {
                        self.log.push(format!("[{}] partial: {:?}", secs(at), e.prepared.text));
                    }
                }
                CallEvent::Utterance { audio, at, speech_end, capped }
                    if self.early.as_ref().is_some_and(|e| e.audio_len == audio.len()) && !capped =>
                {
                    let early = self.early.take().expect("checked");
                    self.last_pause = None;
                    self.first_turn = false;
                    self.log.push(early.log);
                    let ready = early.ready;
                    self.commit(early.prepared, speech_end, at, ready, true)?;
                }
                CallEvent::Utterance { audio, at, speech_end, capped } => {
                    self.void_early();
                    // The work starts when the worker is free: from the last pause if this is
                    // its utterance (the worker was busy then), else from the end of the turn.
                    let from = match self.last_pause.take() {
                        Some((len, paused)) if len == audio.len() && !capped => paused,
                        _ => at,
                    };
                    let at_start = from.max(self.worker_free);
                    let started = self.clock.now();
                    let t = self.recognize(&audio)?;
                    self.first_turn = false;
                    let mut line = self.heard_line(&t, speech_end, capped);
                    let (text, corrections) = self.correct(&t);
                    if !corrections.is_empty() {
                        line.push_str(&format!(" → {text:?}"));
                    }
                    self.log.push(line);
                    let stt_time = self.clock.now().saturating_sub(started);
                    self.answer(Input::Heard(text), t.lang, speech_end, at, at_start, stt_time)?;
                    if let Some(last) = self.turns.last_mut() {
                        last.english_odds = t.english_odds;
                        last.corrections = corrections;
                    }
                }
            }
        }
        Ok(())
    }

    /// Runs the dialog on a recognised text and queues the spoken reply; the turn ended at
    /// `at`, the work (recognition `stt` included) began at `start`.
    fn answer(
        &mut self,
        input: Input,
        lang: Lang,
        speech_end: Duration,
        at: Duration,
        start: Duration,
        stt: Duration,
    ) -> Result<(), CallError> {
        let conv = self.conv.clone();
        let prepared = self.prepare(conv, input, lang, stt)?;
        // The first sentence is ready then; the rest is made while it plays.
        let ready = start + stt + prepared.dialog + prepared.tts_first;
        self.worker_free = ready;
        self.commit(prepared, speech_end, at, ready, start < at)
    }

    /// The reply to a recognised text, on a copy of the conversation (a reply made during the
    /// hangover is void if the caller goes on): the dialog, the spoken sentences, the first
    /// sentence synthesised (all of them when the call plays replies out).
    fn prepare(
        &mut self,
        mut conv: lotse_dialog::Conversation,
        input: Input,
        lang: Lang,
        stt: Duration,
    ) -> Result<Prepared, CallError> {
        let reply_of = |reply: lotse_core::Reply| {
            let kind = kind_name(reply.kind);
            (reply.text.clone(), reply.lang, kind, reply.sources.iter().map(|s| s.id.clone()).collect::<Vec<_>>())
        };
        let started = self.clock.now();
        let cancel = Arc::new(AtomicBool::new(false));
        let mut engine_reply = None;
        let mut booking_step = None;
        let (text, (reply_text, reply_lang, kind, source_ids)) = match input {
            Input::Heard(text) if text.is_empty() => {
                let sorry = match lang {
                    Lang::En => "Sorry, I did not understand that. Please say your question again.",
                    _ => "Entschuldigung, das habe ich nicht verstanden. Bitte sagen Sie Ihre Frage noch einmal.",
                };
                (text, (sorry.to_string(), lang, "not_understood".to_string(), Vec::new()))
            }
            Input::Heard(text) if self.booking.as_ref().is_some_and(|b| b.heard(&text) != Step::Leave) => {
                // An answer to the callback offer: no engine. What it leads to happens when
                // it plays (`commit`); a callback agreed to is stored then.
                let b = self.booking.as_ref().expect("checked");
                let step = b.heard(&text);
                let words = match &step {
                    Step::Ask(_, t) | Step::Again(t) | Step::Decline(t) => t.clone(),
                    Step::Book(_) => b.booked(),
                    Step::Leave => String::new(),
                };
                booking_step = Some(step);
                (text, (words, conv.lang, "callback".to_string(), Vec::new()))
            }
            Input::Heard(text) => {
                if self.booking.is_some() {
                    // Not an answer to the offer: it ends, and the engine answers.
                    booking_step = Some(Step::Leave);
                }
                if lang != conv.lang && !conv.lang_chosen {
                    conv.lang = lang;
                }
                let request = TurnRequest::new(&text).cancel(lotse_llm::Cancel::from_flag(cancel.clone()));
                let reply = self.engine.respond(&mut conv, request);
                engine_reply = Some(reply.clone());
                (text, reply_of(reply))
            }
            Input::Person => {
                let reply = self.engine.request_person(&mut conv, None);
                engine_reply = Some(reply.clone());
                ("[0]".to_string(), reply_of(reply))
            }
        };
        let dialog = self.clock.now().saturating_sub(started);
        let said: Vec<String> = quick_start(sentences(&spoken(&reply_text, reply_lang)));
        // Numbers expected next (a phone number, a postcode): wait longer before ending the turn.
        let dictation = booking::asks_for_number(&reply_text);
        let (audio, tts_first) = self.synthesize(&said, reply_lang)?;
        Ok(Prepared {
            conv,
            cancel,
            reply: engine_reply,
            text,
            lang,
            lang_out: reply_lang,
            said,
            kind,
            source_ids,
            dictation,
            english_odds: None,
            corrections: Vec::new(),
            booking: booking_step,
            audio,
            stt,
            dialog,
            tts_first,
        })
    }

    /// Plays a prepared reply: its first sample at `ready` (when it was made), never before
    /// the end of the turn at `at`.
    fn commit(
        &mut self,
        mut p: Prepared,
        speech_end: Duration,
        at: Duration,
        ready: Duration,
        early: bool,
    ) -> Result<(), CallError> {
        let mut ready = ready;
        if let Some(step) = p.booking.take() {
            // Words made from the step; storing a callback may change them.
            let began = self.clock.now();
            let words = self.step_words(&step);
            let said = quick_start(sentences(&spoken(&words, p.lang_out)));
            if !words.is_empty() && said != p.said {
                p.said = said;
                let (audio, tts_first) = self.synthesize(&p.said, p.lang_out)?;
                p.audio = audio;
                p.tts_first = tts_first;
                ready += tts_first;
            }
            ready += self.clock.now().saturating_sub(began);
        }
        match (&self.line, p.reply.take()) {
            (Some((staff, id)), Some(reply)) => {
                // The conversation goes back to the session, which asks the staff queue when
                // the engine decided on a person; its words replace the engine's then. A store
                // that fails leaves the engine's reply and the call goes on.
                let began = self.clock.now();
                let committed = staff.commit(id, p.conv.clone(), reply.clone()).map(|c| (c.reply, c.conversation));
                let stored = self.clock.now().saturating_sub(began);
                match committed {
                    Ok((given, conv)) => {
                        self.conv = conv;
                        if let Some(h) = &given.handoff
                            && h.state == lotse_core::HandoffState::Queued
                        {
                            self.queued_for = Some(h.team.clone().unwrap_or_default());
                        }
                        // Nobody can take the call now: a callback is offered, by phone.
                        let offer = given
                            .handoff
                            .as_ref()
                            .filter(|h| h.state == lotse_core::HandoffState::CallbackOffered)
                            .and_then(|h| h.callback.clone());
                        let text = match offer {
                            Some(offer) => self.start_booking(&offer, &say(given.lang, NOBODY)),
                            None => given.text.clone(),
                        };
                        p.dictation = booking::asks_for_number(&text);
                        if text != reply.text {
                            p.said = quick_start(sentences(&spoken(&text, given.lang)));
                            let (audio, tts_first) = self.synthesize(&p.said, given.lang)?;
                            p.audio = audio;
                            p.lang_out = given.lang;
                            p.tts_first = tts_first;
                            p.kind = kind_name(given.kind);
                            p.source_ids = given.sources.iter().map(|s| s.id.clone()).collect();
                            // The caller waits for the store and the new first sentence.
                            ready += stored + tts_first;
                        } else {
                            ready += stored;
                        }
                        self.worker_free = self.worker_free.max(ready);
                    }
                    Err(e) => {
                        // The operator's log gets the error (it names no caller); the call's
                        // own record says what the caller got.
                        tracing::warn!(error = %e, "the staff queue failed; the engine's reply stands");
                        self.log.push(format!("the staff queue failed, the engine's reply stands: {e}"));
                        self.conv = p.conv;
                    }
                }
            }
            _ => self.conv = p.conv,
        }
        // The caller says goodbye after an answer: did it help? (Once, and only where a plug-in
        // hears the key.)
        self.awaiting_vote = false;
        if self.votes
            && !self.vote_asked
            && self.line.is_some()
            && lotse_dialog::understand::intent(&p.text) == lotse_dialog::understand::Intent::Bye
            && self.turns.iter().any(|t| t.kind == "answer")
        {
            let prompt = sentences(&spoken(&say(p.lang_out, HELPED), p.lang_out));
            if !self.live && self.whole {
                let (audio, _) = self.synthesize(&prompt, p.lang_out)?;
                p.audio.extend(audio);
            }
            p.said.extend(prompt);
            self.vote_asked = true;
            self.awaiting_vote = true;
        }
        let first_audio = ready.max(at);
        self.call.begin_reply();
        self.call.set_dictation(p.dictation);
        self.queue_reply(&p.said, p.audio, p.lang_out, first_audio);
        self.log.push(format!(
            "[{}] lotse ({}; recognition {} ms{}, dialog {} ms, first sentence synthesised in {} ms): {}",
            secs(first_audio),
            p.kind,
            p.stt.as_millis(),
            if early { ", begun in the pause before the end of turn" } else { "" },
            p.dialog.as_millis(),
            p.tts_first.as_millis(),
            p.said.join(" ")
        ));
        self.turns.push(TurnRecord {
            speech_end,
            endpoint: at,
            transcript: p.text,
            heard_lang: p.lang,
            english_odds: p.english_odds,
            reply: p.said.join(" "),
            kind: p.kind,
            source_ids: p.source_ids,
            stt: p.stt,
            dialog: p.dialog,
            tts_first: p.tts_first,
            first_audio,
            heard: None,
            early,
            corrections: p.corrections,
        });
        self.last_spoken = p.said;
        Ok(())
    }

    fn speak(&mut self, said: &[String], lang: Lang, at: Duration) -> Result<(), CallError> {
        self.call.begin_reply();
        let (audio, tts_first) = self.synthesize(said, lang)?;
        self.queue_reply(said, audio, lang, at + tts_first);
        Ok(())
    }

    /// Queues a reply's sentences to start at `start`: those synthesised now, and on a live
    /// line the rest for later.
    fn queue_reply(&mut self, said: &[String], audio: Vec<Vec<f32>>, lang: Lang, start: Duration) {
        self.later.clear();
        let made = audio.len();
        for (sentence, samples) in said.iter().zip(audio) {
            self.due.push((start, sentence.clone(), samples));
        }
        if self.live {
            self.later = said.iter().skip(made).map(|s| (s.clone(), lang)).collect();
        }
    }

    /// On a live line: the next sentence of the reply synthesised when less than a second of
    /// the one before is left to play.
    fn top_up(&mut self) -> Result<(), CallError> {
        if self.later.is_empty() || !self.due.is_empty() {
            return Ok(());
        }
        if self.call.reply_cancelled() {
            self.later.clear();
            return Ok(());
        }
        if self.call.queued_samples() > self.call.output_rate() as usize {
            return Ok(());
        }
        let (sentence, lang) = self.later.remove(0);
        let audio = self.synth.synthesize(&sentence, lang)?;
        let samples = convert(&audio.samples, audio.rate, self.call.output_rate())?;
        self.call.play(&sentence, samples);
        Ok(())
    }

    /// The sentences at the output rate (only the first unless replies are played out), and
    /// the first one's synthesis time.
    fn synthesize(&self, said: &[String], lang: Lang) -> Result<(Vec<Vec<f32>>, Duration), CallError> {
        let rate = self.call.output_rate();
        let mut out = Vec::new();
        let mut first = Duration::ZERO;
        for (i, sentence) in said.iter().enumerate() {
            let began = self.clock.now();
            let audio = self.synth.synthesize(sentence, lang)?;
            out.push(convert(&audio.samples, audio.rate, rate)?);
            if i == 0 {
                first = self.clock.now().saturating_sub(began);
            }
            if !self.whole || self.live {
                break;
            }
        }
        Ok((out, first))
    }
}

/// Whether the words so far are likely the start of a longer turn: they are no question or
/// request whisper closed with "?" or "!" (a statement such as "Ich fange in einer Bäckerei an
/// und brauche ein Gesundheitszeugnis." is often followed by "Was kostet das?"), or the reply
/// to them is a question back, a decline, a greeting or nothing understood. A question that is
/// answered, a handoff, or small talk ("Danke!") ends the turn.
fn unfinished(kind: &str, text: &str) -> bool {
    // A short reply ("Ja.", "Nein danke.") is whole as it is.
    let statement = !text.trim_end().ends_with(['?', '!']) && text.split_whitespace().count() > 3;
    statement || matches!(kind, "clarify" | "out_of_scope" | "greeting" | "not_understood")
}

/// A reply kind as the API names it ("answer", "handoff", …), for the log and the turn record.
fn kind_name(kind: lotse_core::ReplyKind) -> String {
    serde_json::to_value(kind).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default()
}

/// English speakers say Jena as "Jee-na", which whisper writes as the name "Gina" (or
/// "Jenna"); the engine then hears a place it does not serve. A caller of the city's hotline
/// who says "in Gina" means the city, so English transcripts get the city's name back.
fn city_names(mut t: Transcript, city: &CityName) -> Transcript {
    if t.lang == Lang::En {
        let words: Vec<String> = t
            .text
            .split(' ')
            .map(|w| {
                let core = w.trim_end_matches(|c: char| !c.is_alphanumeric());
                if city.heard_as.iter().any(|h| h == core) {
                    format!("{}{}", city.name, &w[core.len()..])
                } else {
                    w.to_string()
                }
            })
            .collect();
        t.text = words.join(" ");
    }
    t
}

/// Whether a partial transcript ends in digits or spelled letters ("0 3 6 4 1", "M Ü L").
fn dictating(text: &str) -> bool {
    // A sentence that has ended is not dictation.
    if !text.trim_end().chars().last().is_some_and(|c| c.is_alphanumeric() || c == ',') {
        return false;
    }
    let words: Vec<&str> = text.split_whitespace().map(|w| w.trim_matches(|c: char| !c.is_alphanumeric())).collect();
    let digits = |w: &str| !w.is_empty() && w.chars().all(|c| c.is_ascii_digit());
    let letter = |w: &str| w.chars().count() == 1 && w.chars().all(char::is_alphabetic);
    match words.as_slice() {
        [.., a, b] if letter(a) && letter(b) => true,
        [.., last] => digits(last),
        [] => false,
    }
}

/// What a turn of the call answers.
enum Input {
    /// What the recogniser heard (empty: nothing understood).
    Heard(String),
    /// Key 0: a person.
    Person,
}

/// A reply made and not yet played.
struct Prepared {
    conv: lotse_dialog::Conversation,
    /// Raised when the reply is void before it plays: its generation stops.
    cancel: Arc<AtomicBool>,
    /// The engine's reply (none for speech not understood).
    reply: Option<lotse_core::Reply>,
    text: String,
    lang: Lang,
    /// The reply's language.
    lang_out: Lang,
    said: Vec<String>,
    kind: String,
    source_ids: Vec<String>,
    dictation: bool,
    english_odds: Option<f32>,
    /// What the knowledge's words corrected in the transcript.
    corrections: Vec<Change>,
    /// An answer to a callback offer: the step it takes when it plays.
    booking: Option<Step>,
    audio: Vec<Vec<f32>>,
    stt: Duration,
    dialog: Duration,
    tts_first: Duration,
}

/// Work begun when the caller paused.
struct Early {
    /// The utterance it was made for (its length identifies it).
    audio_len: usize,
    /// When it was done, in call time (its start plus its wall time).
    ready: Duration,
    prepared: Prepared,
    log: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_and_unanswered_words_are_unfinished() {
        assert!(unfinished("answer", "Ich fange in einer Bäckerei an und brauche ein Gesundheitszeugnis."));
        assert!(unfinished("out_of_scope", "Mein Vater ist gestorben?"));
        assert!(unfinished("greeting", "Hallo!"));
        assert!(!unfinished("answer", "Was kostet ein Personalausweis?"));
        assert!(!unfinished("answer", "Ja."), "a short reply is whole");
        assert!(!unfinished("smalltalk", "Vielen Dank!"));
    }

    #[test]
    fn digits_and_spelling_keep_the_turn_open() {
        assert!(dictating("Meine Nummer ist 0 3 6 4 1"));
        assert!(dictating("Das schreibt sich M, Ü, L"));
        assert!(dictating("Postleitzahl 07743"));
        assert!(!dictating("Was kostet ein Pass?"));
        assert!(!dictating("Ich bin 24."));
        assert!(!dictating(""));
        let t = |text: &str, lang| Transcript {
            text: text.into(),
            lang,
            no_speech: 0.0,
            english_odds: None,
            audio: Duration::ZERO,
            elapsed: Duration::ZERO,
        };
        let jena = CityName::default();
        assert_eq!(
            city_names(t("Where is the town hall in Gina?", Lang::En), &jena).text,
            "Where is the town hall in Jena?"
        );
        assert_eq!(city_names(t("Gina ist meine Tochter.", Lang::De), &jena).text, "Gina ist meine Tochter.");
        let munich = CityName { name: "München".into(), heard_as: vec!["Munich".into()] };
        assert_eq!(
            city_names(t("Where do I register in Munich?", Lang::En), &munich).text,
            "Where do I register in München?"
        );
    }
}

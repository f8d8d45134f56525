//! `lotse eval voice`: the dialog evaluation's single-question cases, spoken. Each question is
//! synthesised — by SVOX pico (the German questions: a natural German voice, clean, with noise,
//! at two speaking rates and pitches, and with lost packets), by espeak-ng (robotic; kept as a
//! floor) and by the Piper voices there are —, sent through the telephone path (8 kHz, µ-law)
//! and run as a call through the whole voice pipeline (VAD and end of turn, whisper, the engine
//! on the phone channel, the spoken form, synthesis). It reports word error rate, retrieval (the
//! expected source among the reply's) from speech against the same question as text, the
//! latency from the end of speech to the first reply sample, and the words most often
//! misrecognised.

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use lotse_app::voice::{Stack, TurnRecord};
use lotse_core::{Channel, Lang};
use lotse_speech::resample::convert;
use lotse_speech::telephone;
use lotse_speech::tts::{Audio, Tts, Voice};

/// Who speaks the questions of one row.
#[derive(Clone, Copy, PartialEq)]
enum Speaker {
    Espeak,
    /// SVOX pico's German voice, at a speed and pitch in per cent of its own.
    Pico {
        speed: u32,
        pitch: u32,
    },
    /// The Piper voices in `models/`, for the questions in their language.
    Piper,
}

/// One row of the report: a voice and what the line does to it.
struct Row {
    label: String,
    speaker: Speaker,
    noise_db: Option<f32>,
    /// Share of 20 ms packets lost (and concealed).
    loss: f64,
}

/// SVOX pico (`pico2wave`, Debian's libttspico-utils): German at 16 kHz. Its markup sets the
/// speed and pitch. It writes only to a file whose name ends in `.wav`.
fn pico(text: &str, lang: Lang, speed: u32, pitch: u32) -> Result<Audio> {
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("q.wav");
    let marked = format!("<speed level=\"{speed}\"><pitch level=\"{pitch}\">{text}</pitch></speed>");
    let status = std::process::Command::new("pico2wave")
        .args(["-l", if lang == Lang::En { "en-US" } else { "de-DE" }, "-w"])
        .arg(&out)
        .arg("--")
        .arg(marked)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .context("pico2wave (Debian: libttspico-utils, see scripts/system-packages)")?;
    if !status.success() {
        bail!("pico2wave failed on {text:?}");
    }
    let (samples, rate) = lotse_speech::wav::read(&out)?;
    Ok(Audio { samples, rate })
}

fn pico_installed() -> bool {
    std::process::Command::new("pico2wave")
        .arg("--usage")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok()
}

/// One spoken case.
struct Spoken {
    name: String,
    question: String,
    lang: Lang,
    source: String,
}

/// The outcome of one question on one audio path.
struct Heard {
    text_hit: bool,
    wer_edits: usize,
    words: usize,
    /// The reply named the question's service: an answer, or a question back about it that
    /// the caller's spoken yes then got answered.
    hit: bool,
    /// The bot asked back ("Geht es um …?" or "Meinen Sie A oder B?") instead of answering.
    asked: bool,
    /// It asked about the right service.
    asked_right: bool,
    /// After a question back: the answer's latency from the end of the caller's reply (ms).
    answer_latency: Option<f64>,
    /// Words the knowledge's vocabulary corrected, and of them those that took away a word the
    /// caller had said and whisper had heard right (a correction must never do that).
    corrected: usize,
    corrected_right: usize,
    turn: Option<TurnRecord>,
}

/// The question spoken by the row's voice, at 8 kHz µ-law and back: what a caller's question
/// sounds like after the phone network. Noise and lost packets as the row says.
fn telephone_audio(text: &str, lang: Lang, row: &Row, natural: &Tts, seed: u32) -> Result<(Vec<f32>, Duration)> {
    let audio = match row.speaker {
        Speaker::Espeak => Voice::espeak(lang).synthesize(text)?,
        Speaker::Pico { speed, pitch } => pico(text, lang, speed, pitch)?,
        Speaker::Piper => natural.synthesize(text, lang)?,
    };
    let mut narrow = convert(&audio.samples, audio.rate, 8000)?;
    let rms = telephone::rms(&narrow);
    let last = narrow.iter().rposition(|v| v.abs() > 0.01).unwrap_or(narrow.len());
    // Half a second before, 1.2 seconds after: room for the hangover.
    let mut x = vec![0.0f32; 4000];
    let speech_end = Duration::from_secs_f64((4000 + last) as f64 / 8000.0);
    x.append(&mut narrow);
    x.extend(vec![0.0f32; 9600]);
    if let Some(db) = row.noise_db {
        telephone::add_noise(&mut x, rms, db, seed);
    }
    let mut x = telephone::mu_law(&x);
    if row.loss > 0.0 {
        x = telephone::lose_packets(&x, row.loss, seed).0;
    }
    Ok((convert(&x, 8000, 16_000)?, speech_end))
}

/// What a caller says to a question back that offers the question's service: "Ja." to
/// "Geht es um …?", the service's name (without its bracket) to "Meinen Sie A, B oder C?";
/// `None` when the right service is not offered.
fn answer_back(engine: &lotse_dialog::Engine, case: &Spoken, offered: &[String]) -> Option<String> {
    if !offered.contains(&case.source) {
        return None;
    }
    if offered.len() == 1 {
        return Some(if case.lang == Lang::En { "Yes." } else { "Ja." }.to_string());
    }
    // The name as offered: "Meinen Sie …?" / "Do you mean …?" lists the German names.
    let name = &engine.knowledge().services.iter().find(|s| s.id == case.source)?.name;
    Some(format!("{}.", name.split(" (").next().unwrap_or(name).trim()))
}

fn words(s: &str) -> Vec<String> {
    s.to_lowercase()
        .replace('ß', "ss")
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// The word-level edit distance table: cell (i, j) is the distance between the first i words
/// said and the first j heard. Its last cell is the word error count; walked back, it aligns
/// the two ([`misrecognised`]).
fn edit_table(reference: &[String], hypothesis: &[String]) -> Vec<Vec<usize>> {
    let (n, m) = (reference.len(), hypothesis.len());
    let mut d = vec![vec![0usize; m + 1]; n + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=n {
        for j in 1..=m {
            let same = reference[i - 1] == hypothesis[j - 1];
            d[i][j] = (d[i - 1][j - 1] + usize::from(!same)).min(d[i - 1][j] + 1).min(d[i][j - 1] + 1);
        }
    }
    d
}

/// Word-level edit distance.
fn edits(reference: &[String], hypothesis: &[String]) -> usize {
    edit_table(reference, hypothesis)[reference.len()][hypothesis.len()]
}

/// What was heard in place of what was said: the word alignment of the edit distance, with
/// each run of differing words between two words heard right as one (heard, meant) pair, so
/// that a compound heard as three words ("personal aus weiss" for "personalausweis") is one
/// entry. A word left out is heard as "".
fn misrecognised(reference: &[String], hypothesis: &[String]) -> Vec<(String, String)> {
    let d = edit_table(reference, hypothesis);
    let (n, m) = (reference.len(), hypothesis.len());
    // Back from the end: matched words close a run of differences.
    let (mut i, mut j) = (n, m);
    let mut pairs = Vec::new();
    let (mut heard, mut meant): (Vec<&str>, Vec<&str>) = (Vec::new(), Vec::new());
    let close = |heard: &mut Vec<&str>, meant: &mut Vec<&str>, pairs: &mut Vec<(String, String)>| {
        if !heard.is_empty() || !meant.is_empty() {
            heard.reverse();
            meant.reverse();
            pairs.push((heard.join(" "), meant.join(" ")));
            heard.clear();
            meant.clear();
        }
    };
    while i > 0 || j > 0 {
        if i > 0 && j > 0 && reference[i - 1] == hypothesis[j - 1] && d[i][j] == d[i - 1][j - 1] {
            close(&mut heard, &mut meant, &mut pairs);
            i -= 1;
            j -= 1;
        } else if i > 0 && j > 0 && d[i][j] == d[i - 1][j - 1] + 1 {
            meant.push(&reference[i - 1]);
            heard.push(&hypothesis[j - 1]);
            i -= 1;
            j -= 1;
        } else if i > 0 && d[i][j] == d[i - 1][j] + 1 {
            meant.push(&reference[i - 1]);
            i -= 1;
        } else {
            heard.push(&hypothesis[j - 1]);
            j -= 1;
        }
    }
    close(&mut heard, &mut meant, &mut pairs);
    pairs.reverse();
    pairs
}

fn percentile(v: Vec<f64>, p: f64) -> f64 {
    crate::stats::percentile(&v, p).unwrap_or(f64::NAN)
}

#[allow(clippy::too_many_arguments)]
pub fn run(
    app: &lotse_app::App,
    knowledge: &Path,
    set: &Path,
    reports: &Path,
    limit: Option<usize>,
    verbose: bool,
    max_gap: Option<f64>,
    clean: bool,
) -> Result<ExitCode> {
    let engine = app.build_engine(knowledge)?;
    let src = std::fs::read_to_string(set).with_context(|| format!("reading {}", set.display()))?;
    let parsed: toml::Value = toml::from_str(&src).with_context(|| format!("parsing {}", set.display()))?;
    let mut cases = Vec::new();
    for c in parsed.get("case").and_then(|c| c.as_array()).into_iter().flatten() {
        let turns: Vec<&str> =
            c.get("turns").and_then(|t| t.as_array()).into_iter().flatten().filter_map(|t| t.as_str()).collect();
        let source = c.get("expect_source").and_then(|s| s.as_str());
        let kind = c.get("expect_kind").and_then(|s| s.as_str()).unwrap_or_default();
        let category = c.get("category").and_then(|s| s.as_str()).unwrap_or_default();
        // Single questions with a known source, the kind a caller asks; no injections or
        // malformed input (those are text attacks, not speech).
        let (1, Some(source), "answer", "answer" | "english" | "plain") = (turns.len(), source, kind, category) else {
            continue;
        };
        let lang = if c.get("expect_lang").and_then(|l| l.as_str()) == Some("en") { Lang::En } else { Lang::De };
        cases.push(Spoken {
            name: c.get("name").and_then(|n| n.as_str()).unwrap_or_default().to_string(),
            question: turns[0].to_string(),
            lang,
            source: source.to_string(),
        });
    }
    if let Some(n) = limit {
        cases.truncate(n);
    }
    if cases.is_empty() {
        bail!("{}: no single-question answer cases with a source", set.display());
    }
    let models = app.models_dir().to_path_buf();
    let mut stack = Stack::load(&models, &engine, &app.configuration()?.city)?;
    // Each question is the first of its own call, with the language known (the hotline's
    // German, or English for the English cases): the steady state of a call. The first-turn
    // language detection is measured separately below.
    stack.detect = false;

    // The rows: pico's German voice for the German questions (clean, with noise, slower and
    // lower, faster and higher, with lost packets), espeak-ng for every question (robotic:
    // whisper base hardly understands its German; kept as a floor), and the Piper voices
    // (natural speech: the fetched English one, a German one where an operator has placed it)
    // for the questions in their language.
    let natural = |lang: Lang| matches!(stack.tts.voice(lang), Voice::Piper(_));
    let mut rows = Vec::new();
    if pico_installed() {
        let pico = |label: &str, speed, pitch, noise_db, loss| Row {
            label: format!("pico de-DE{label}"),
            speaker: Speaker::Pico { speed, pitch },
            noise_db,
            loss,
        };
        rows.push(pico("", 100, 100, None, 0.0));
        rows.push(pico(", noise 15 dB", 100, 100, Some(15.0), 0.0));
        rows.push(pico(", slower (80 %), lower (85 %)", 80, 85, None, 0.0));
        rows.push(pico(", faster (125 %), higher (115 %)", 125, 115, None, 0.0));
        rows.push(pico(", 2 % packets lost (concealed)", 100, 100, None, 0.02));
    } else {
        eprintln!("pico2wave is not installed (scripts/system-packages installs it): no pico rows");
    }
    let espeak = |label: &str, noise_db| Row { label: label.into(), speaker: Speaker::Espeak, noise_db, loss: 0.0 };
    rows.push(espeak("espeak-ng (robotic)", None));
    rows.push(espeak("espeak-ng (robotic), noise 15 dB", Some(15.0)));
    rows.push(Row {
        label: format!(
            "Piper ({})",
            [Lang::De, Lang::En]
                .iter()
                .filter(|l| natural(**l))
                .map(|l| stack.tts.voice(*l).name())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        speaker: Speaker::Piper,
        noise_db: None,
        loss: 0.0,
    });
    if clean {
        rows.retain(|r| {
            r.noise_db.is_none()
                && r.loss == 0.0
                && !matches!(r.speaker, Speaker::Pico { speed, pitch } if (speed, pitch) != (100, 100))
        });
    }
    let speaks = |row: &Row, lang: Lang| match row.speaker {
        Speaker::Espeak => true,
        Speaker::Pico { .. } => lang == Lang::De,
        Speaker::Piper => natural(lang),
    };
    let mut results: Vec<Vec<Heard>> = rows.iter().map(|_| Vec::new()).collect();
    // Misheard words on the pico rows: (heard, meant) → count.
    let mut misheard: std::collections::HashMap<(String, String), usize> = std::collections::HashMap::new();
    let mut detail = String::new();
    for (i, case) in cases.iter().enumerate() {
        let (mut conv, _) = engine.start("eval".into(), Channel::Phone, case.lang);
        let mut reply = engine.respond(&mut conv, lotse_dialog::TurnRequest::new(&case.question));
        let ids: Vec<String> = reply.sources.iter().map(|s| s.id.clone()).collect();
        if reply.kind == lotse_core::ReplyKind::Clarify
            && let Some(back) = answer_back(&engine, case, &ids)
        {
            reply = engine.respond(&mut conv, lotse_dialog::TurnRequest::new(&back));
        }
        let text_hit = reply.kind == lotse_core::ReplyKind::Answer && reply.sources.iter().any(|s| s.id == case.source);
        for (p, row) in rows.iter().enumerate() {
            if !speaks(row, case.lang) {
                continue;
            }
            let path = &row.label;
            let (audio, speech_end) = telephone_audio(&case.question, case.lang, row, &stack.tts, i as u32 + 1)?;
            let outcome = lotse_app::voice::run_lang(&engine, &stack, &audio, &[], 8000, Some(case.lang))?;
            // A caller who goes on after a pause the bot took for the end of the turn is heard
            // in several turns: what was heard is all of them, the reply the caller is left
            // with is the last.
            let heard = outcome.turns.iter().map(|t| t.transcript.as_str()).collect::<Vec<_>>().join(" ");
            let question_turns = outcome.turns.len();
            let changes: Vec<_> = outcome.turns.iter().flat_map(|t| t.corrections.clone()).collect();
            let turn = outcome.turns.into_iter().last();
            let reference = words(&case.question);
            let e = edits(&reference, &words(&heard));
            if matches!(row.speaker, Speaker::Pico { .. }) {
                for pair in misrecognised(&reference, &words(&heard)) {
                    *misheard.entry(pair).or_default() += 1;
                }
            }
            let named = turn.as_ref().is_some_and(|t| t.source_ids.contains(&case.source));
            let corrected_right = changes
                .iter()
                .filter(|c| {
                    let kept = words(&c.corrected);
                    words(&c.heard).iter().any(|w| reference.contains(w) && !kept.contains(w))
                })
                .count();
            let asked = turn.as_ref().is_some_and(|t| t.kind == "clarify");
            // A question back about the right service: the same call again, with the caller's
            // yes (or the service's name, when the bot offered several) spoken after it through
            // the same audio path; found when that is answered from the service.
            let back = turn.as_ref().filter(|_| asked).and_then(|t| answer_back(&engine, case, &t.source_ids));
            let mut answer_latency = None;
            let hit = if let Some(back) = back {
                let mut call = audio.clone();
                let (answer, _) = telephone_audio(&back, case.lang, row, &stack.tts, i as u32 + 1001)?;
                call.extend(std::iter::repeat_n(0.0, 16_000 * 6));
                call.extend(answer);
                let again = lotse_app::voice::run_lang(&engine, &stack, &call, &[], 8000, Some(case.lang))?;
                let answered = again
                    .turns
                    .get(question_turns)
                    .filter(|t| t.kind == "answer" && t.source_ids.contains(&case.source));
                answer_latency = answered.map(|t| t.latency().as_secs_f64() * 1000.0);
                answered.is_some()
            } else {
                named
            };
            // The latency from the true end of the synthesised speech.
            let turn = turn.map(|mut t| {
                t.speech_end = speech_end;
                t
            });
            if verbose || !hit || corrected_right > 0 {
                let (kind, reply) =
                    turn.as_ref().map(|t| (t.kind.as_str(), t.reply.as_str())).unwrap_or(("no turn", ""));
                let _ = writeln!(
                    detail,
                    "- {} [{path}] {:?} → {:?}{} (WER {:.2}, {}, text {}; reply {kind}: {:.80})",
                    case.name,
                    case.question,
                    heard,
                    changes
                        .iter()
                        .map(|c| format!(" [corrected {:?} → {:?}]", c.heard, c.corrected))
                        .collect::<String>(),
                    e as f64 / reference.len() as f64,
                    if hit { "source found" } else { "source missed" },
                    if text_hit { "found" } else { "missed" },
                    reply
                );
            }
            results[p].push(Heard {
                text_hit,
                wer_edits: e,
                words: reference.len(),
                hit,
                asked,
                asked_right: asked && named,
                answer_latency,
                corrected: changes.len(),
                corrected_right,
                turn,
            });
        }
        eprint!("\r{}/{} questions", i + 1, cases.len());
    }
    eprintln!();

    // First-turn language detection, on 10 German and 10 English cases (clean espeak-ng): how
    // often it is right and what it adds.
    stack.detect = true;
    let mut detect_right = 0usize;
    let mut odds_lines = String::new();
    let mut detect_latency = Vec::new();
    let espeak_clean =
        rows.iter().find(|r| r.speaker == Speaker::Espeak && r.noise_db.is_none()).expect("an espeak-ng row");
    let mut probe: Vec<&Spoken> = cases.iter().filter(|c| c.lang == Lang::De).take(10).collect();
    probe.extend(cases.iter().filter(|c| c.lang == Lang::En).take(10));
    for (i, case) in probe.iter().enumerate() {
        let (audio, speech_end) = telephone_audio(&case.question, case.lang, espeak_clean, &stack.tts, i as u32 + 1)?;
        let outcome = lotse_app::voice::run_lang(&engine, &stack, &audio, &[], 8000, None)?;
        if let Some(mut t) = outcome.turns.into_iter().next() {
            detect_right += usize::from(t.heard_lang == case.lang);
            let _ = writeln!(
                odds_lines,
                "- {} ({}): English {:.2} times as likely as German → {}",
                case.name,
                if case.lang == Lang::En { "en" } else { "de" },
                t.english_odds.unwrap_or(f32::NAN),
                if t.heard_lang == Lang::En { "en" } else { "de" }
            );
            t.speech_end = speech_end;
            detect_latency.push(t.latency().as_secs_f64() * 1000.0);
        }
    }

    let n = cases.len();
    let mut report = String::new();
    writeln!(report, "# Voice evaluation")?;
    writeln!(report)?;
    writeln!(
        report,
        "{n} single questions of {} ({} German, {} English), spoken by SVOX pico (the German ones), espeak-ng at 150 words a minute and the Piper voices in `models/` (their languages' ones), 8 kHz µ-law; whisper base; the composer answers; {} cores.",
        set.display(),
        cases.iter().filter(|c| c.lang == Lang::De).count(),
        cases.iter().filter(|c| c.lang == Lang::En).count(),
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)
    )?;
    if clean {
        writeln!(report)?;
        writeln!(report, "Only the clean rows (`--clean`): no noise, no change of speed or pitch, no lost packets.")?;
    }
    writeln!(report)?;
    writeln!(
        report,
        "| audio | questions | begun in the pause | WER | retrieval from speech | of it after a question back | asked back: right service offered | not offered | from text | gap (points) | latency p50 | p95 | recognition p50 | hangover p50 | corrected words | of them heard right |"
    )?;
    writeln!(report, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")?;
    let mut worst_gap: f64 = 0.0;
    let mut corrected_right = 0usize;
    for (p, row) in rows.iter().enumerate() {
        let path = &row.label;
        let r = &results[p];
        if r.is_empty() {
            continue;
        }
        let n = r.len();
        let text_rate = r.iter().filter(|h| h.text_hit).count() as f64 / n as f64;
        let wer = r.iter().map(|h| h.wer_edits).sum::<usize>() as f64
            / r.iter().map(|h| h.words).sum::<usize>().max(1) as f64;
        let rate = r.iter().filter(|h| h.hit).count() as f64 / n as f64;
        let gap = (text_rate - rate) * 100.0;
        worst_gap = worst_gap.max(gap);
        let lat: Vec<f64> =
            r.iter().filter_map(|h| h.turn.as_ref()).map(|t| t.latency().as_secs_f64() * 1000.0).collect();
        let stt: Vec<f64> = r.iter().filter_map(|h| h.turn.as_ref()).map(|t| t.stt.as_secs_f64() * 1000.0).collect();
        let hang: Vec<f64> = r
            .iter()
            .filter_map(|h| h.turn.as_ref())
            .map(|t| t.endpoint.saturating_sub(t.speech_end).as_secs_f64() * 1000.0)
            .collect();
        let missing = r.iter().filter(|h| h.turn.is_none()).count();
        writeln!(
            report,
            "| {path}{} | {n} | {} | {:.3} | {:.3} | {} | {} | {} | {:.3} | {:.1} | {:.0} ms | {:.0} ms | {:.0} ms | {:.0} ms | {} | {} |",
            if missing > 0 { format!(" ({missing} without a turn)") } else { String::new() },
            r.iter().filter(|h| h.turn.as_ref().is_some_and(|t| t.early)).count(),
            wer,
            rate,
            r.iter().filter(|h| h.hit && h.asked).count(),
            r.iter().filter(|h| h.asked_right).count(),
            r.iter().filter(|h| h.asked && !h.asked_right).count(),
            text_rate,
            gap,
            percentile(lat.clone(), 0.5),
            percentile(lat, 0.95),
            percentile(stt, 0.5),
            percentile(hang, 0.5),
            r.iter().map(|h| h.corrected).sum::<usize>(),
            r.iter().map(|h| h.corrected_right).sum::<usize>(),
        )?;
        corrected_right += r.iter().map(|h| h.corrected_right).sum::<usize>();
    }
    writeln!(report)?;
    for (p, row) in rows.iter().enumerate() {
        let path = &row.label;
        let after: Vec<f64> = results[p].iter().filter_map(|h| h.answer_latency).collect();
        if !after.is_empty() {
            writeln!(
                report,
                "- {path}: {} answered after a question back, the answer {:.0} ms (p50) after the caller's reply ended (as the endpointer measured it).",
                after.len(),
                percentile(after, 0.5)
            )?;
        }
    }
    writeln!(report)?;
    writeln!(
        report,
        "First turn with German/English detection (espeak-ng, {} questions, German and English): language right {}/{}, latency p50 {:.0} ms, p95 {:.0} ms.",
        probe.len(),
        detect_right,
        probe.len(),
        percentile(detect_latency.clone(), 0.5),
        percentile(detect_latency, 0.95)
    )?;
    writeln!(report)?;
    writeln!(
        report,
        "Retrieval counts a question answered from its service's record: at once, or after a question back (\"Geht es um: Einbürgerung beantragen? Bitte sagen Sie ja oder nein.\", asked on the phone when the recognised words name a service without confidence) and the caller's reply — yes, or the service's name when several were offered —, spoken after it through the same audio path (text: written). Asked back: how often the bot asked back offering the right service (the reply may then be misheard) and without it.\n\nLatency: from the last audible sample of the question to the first sample of the reply: the end-of-turn hangover (audio time) plus the wall time of recognition, dialog and the first sentence's synthesis."
    )?;
    if !misheard.is_empty() {
        let mut top: Vec<_> = misheard.iter().collect();
        top.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
        writeln!(report)?;
        writeln!(report, "## Misrecognised words (pico rows, heard → meant)")?;
        writeln!(report)?;
        writeln!(
            report,
            "Each run of differing words between two words heard right, over all pico rows; a left-out word is heard as –. The {} most frequent of {}.",
            top.len().min(40),
            top.len()
        )?;
        writeln!(report)?;
        writeln!(report, "| heard | meant | count |")?;
        writeln!(report, "|---|---|---|")?;
        let or_dash = |s: &str| if s.is_empty() { "–".to_string() } else { s.to_string() };
        for ((heard, meant), count) in top.into_iter().take(40) {
            writeln!(report, "| {} | {} | {count} |", or_dash(heard), or_dash(meant))?;
        }
    }
    writeln!(report)?;
    writeln!(report, "## Language detection on the first turn")?;
    writeln!(report)?;
    report.push_str(&odds_lines);
    if !detail.is_empty() {
        writeln!(report)?;
        writeln!(
            report,
            "## Questions whose source was missed from speech{}",
            if verbose { " (and all others)" } else { "" }
        )?;
        writeln!(report)?;
        report.push_str(&detail);
    }
    print!("{}", report.split("\n## ").next().unwrap_or_default());
    std::fs::create_dir_all(reports)?;
    let path = reports.join("voice.md");
    std::fs::write(&path, &report)?;
    println!("report: {}", path.display());
    if corrected_right > 0 {
        eprintln!("{corrected_right} words heard right were changed by the correction");
        return Ok(ExitCode::FAILURE);
    }
    if let Some(max) = max_gap
        && worst_gap > max
    {
        eprintln!("retrieval from speech is {worst_gap:.1} points below text (allowed {max})");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_error_counts_substitutions_insertions_and_deletions() {
        let w = |s: &str| words(s);
        assert_eq!(edits(&w("was kostet ein pass"), &w("Was kostet ein Pass?")), 0);
        assert_eq!(edits(&w("was kostet ein pass"), &w("was kostet pass")), 1);
        assert_eq!(edits(&w("was kostet ein pass"), &w("was kosten ein neuer pass")), 2);
        assert_eq!(edits(&w("a b"), &w("")), 2);
        assert_eq!(percentile(vec![3.0, 1.0, 2.0], 0.5), 2.0);
    }

    #[test]
    fn misrecognitions_are_runs_of_differing_words() {
        let w = |s: &str| words(s);
        let pairs = |a: &str, b: &str| misrecognised(&w(a), &w(b));
        assert_eq!(pairs("was kostet ein pass", "Was kostet ein Pass?"), vec![]);
        assert_eq!(
            pairs("wo beantrage ich einen personalausweis", "wo beantrage ich einen personal aus weiß"),
            vec![("personal aus weiss".to_string(), "personalausweis".to_string())]
        );
        assert_eq!(
            pairs("ich brauche eine meldebescheinigung für jena", "ich brauche meldepächeinigung für renna"),
            vec![
                ("meldepächeinigung".to_string(), "eine meldebescheinigung".to_string()),
                ("renna".to_string(), "jena".to_string())
            ]
        );
        assert_eq!(pairs("a b", ""), vec![("".to_string(), "a b".to_string())]);
    }
}

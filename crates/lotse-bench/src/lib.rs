//! `lotse-bench`, the benchmarks behind `lotse bench`. `lotse bench search`: retrieval latency
//! over a question set and index build time for a synthetic 2,000-service knowledge base;
//! `lotse bench turns`: whole composer turns; `lotse bench api`: load on the chat API; `lotse bench llm`: the local generator against
//! llama.cpp on the same GGUF and prompt; `lotse bench voice`: whole voice turns; `lotse bench
//! sip`: calls over SIP through the bridge, timed from the RTP streams. All print figures.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Subcommand;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Retrieval latency (p50/p95/p99) and index build time.
    Search {
        #[arg(long, default_value = "knowledge")]
        knowledge: PathBuf,
        #[arg(long, default_value = "eval/jena-retrieval.toml")]
        set: PathBuf,
        /// Passes over the question set.
        #[arg(long, default_value_t = 20)]
        passes: usize,
        /// Services in the synthetic knowledge base for the build benchmark.
        #[arg(long, default_value_t = 2000)]
        synthetic: usize,
    },
    /// Whole composer turns (understanding, retrieval with its dense stage when the model is
    /// fetched, the decision, the record's sentences, the reply), one at a time, as the chat
    /// API runs them: p50/p95/p99 per turn.
    Turns {
        #[arg(long, default_value = "knowledge")]
        knowledge: PathBuf,
        #[arg(long, default_value = "eval/jena-retrieval.toml")]
        set: PathBuf,
        /// Passes over the question set.
        #[arg(long, default_value_t = 5)]
        passes: usize,
    },
    /// Load on the chat API over loopback: many conversations at once (bounded, stops itself).
    Api {
        #[arg(long, default_value = "knowledge")]
        knowledge: PathBuf,
        #[arg(long, default_value = "eval/jena-retrieval.toml")]
        set: PathBuf,
        #[arg(long, default_value_t = 200)]
        conversations: usize,
        #[arg(long, default_value_t = 3)]
        turns: usize,
        /// Members of staff at the console (a staff desk on a throw-away SQLite store): every
        /// `--handoff-every`-th conversation keeps its events stream open and asks for a
        /// person, and staff take it, write and close. 0: questions only.
        #[arg(long, default_value_t = 0)]
        staff: usize,
        #[arg(long, default_value_t = 5)]
        handoff_every: usize,
        /// Rounds of the load until this many minutes have passed (a soak), with the resident
        /// memory after each.
        #[arg(long)]
        minutes: Option<f64>,
    },
    /// Generation speed of candle and of llama.cpp on the same model file, prompt and cores.
    Llm {
        /// A model of models/manifest.toml.
        #[arg(long, default_value = "qwen2.5-coder-1.5b-instruct")]
        model: String,
        /// A Python with llama-cpp-python installed (scripts/bench-llm sets one up); without
        /// it only candle is measured.
        #[arg(long)]
        llama_python: Option<PathBuf>,
        /// Measured runs per engine (after one warm-up run each).
        #[arg(long, default_value_t = 3)]
        runs: usize,
        #[arg(long, default_value_t = 64)]
        max_tokens: usize,
        #[arg(long, default_value = "knowledge")]
        knowledge: PathBuf,
    },
    /// The phone line over SIP: sipp calls the bridge (in this process, or through kamailio in
    /// front of it) and asks a German question of the set (SVOX pico's voice, PCMU) over the
    /// greeting, at load levels of calls at once or calls a minute; end of speech → the
    /// answer's first audio and the barge-in (the caller's speech start → the greeting
    /// stopped), measured from the RTP streams as the caller gets them; then key 0 → REFER.
    Sip {
        #[arg(long, default_value = "knowledge")]
        knowledge: PathBuf,
        #[arg(long, default_value = "eval/jena-retrieval.toml")]
        set: PathBuf,
        /// Calls (questions spread over the set's direct and colloquial German ones).
        #[arg(long, default_value_t = 12)]
        calls: usize,
        /// Calls at once, each a level measured on its own with all the calls: `1,2,3`. The
        /// figure is the most calls at once with p95 end of speech → first audio ≤ 1.5 s.
        #[arg(long, value_delimiter = ',', default_value = "1")]
        concurrent: Vec<usize>,
        /// Calls per minute, each a level of its own with all the calls ringing at that
        /// fixed rate whatever the calls before are doing (`4,8,12`); replaces --concurrent.
        #[arg(long, value_delimiter = ',')]
        rate: Vec<f64>,
        /// The calls go through kamailio (Debian's package) in front of the bridge, as a
        /// city's proxy would send them.
        #[arg(long)]
        proxy: bool,
        #[arg(long, default_value = "sip-bridge/kamailio/dispatcher.cfg")]
        proxy_config: PathBuf,
        /// Calls that press 0 within staff hours and are put through (key pressed → REFER
        /// sent); 0 measures none.
        #[arg(long, default_value_t = 5)]
        transfers: usize,
    },
    /// Speech: recognition and synthesis real-time factors, and the latency of whole voice
    /// turns (end of speech → first reply sample) on this machine's cores.
    Voice {
        #[arg(long, default_value = "knowledge")]
        knowledge: PathBuf,
        /// Runs of each measurement.
        #[arg(long, default_value_t = 5)]
        runs: usize,
    },
}

mod mixed;

pub fn run(app: &lotse_app::App, cmd: BenchCommand) -> Result<ExitCode> {
    match cmd {
        BenchCommand::Search { knowledge, set, passes, synthetic } => search(app, &knowledge, &set, passes, synthetic),
        BenchCommand::Turns { knowledge, set, passes } => turns(app, &knowledge, &set, passes),
        BenchCommand::Api { knowledge, set, conversations, turns, staff, handoff_every, minutes } => {
            if staff > 0 || minutes.is_some() {
                let load = mixed::Load { conversations, turns, staff, handoff_every };
                api_mixed(app, &knowledge, &set, load, minutes)
            } else {
                api(app, &knowledge, &set, conversations, turns)
            }
        }
        BenchCommand::Llm { model, llama_python, runs, max_tokens, knowledge } => {
            llm(app, &model, llama_python.as_deref(), runs, max_tokens, &knowledge)
        }
        BenchCommand::Voice { knowledge, runs } => voice(app, &knowledge, runs),
        BenchCommand::Sip { knowledge, set, calls, concurrent, rate, proxy, proxy_config, transfers } => {
            anyhow::ensure!(rate.iter().all(|r| *r > 0.0 && r.is_finite()), "--rate needs calls per minute above 0");
            let mut rate = rate;
            rate.sort_by(f64::total_cmp);
            rate.dedup();
            let proxy = proxy.then_some(proxy_config.as_path());
            sip(app, &knowledge, &set, calls, &concurrent, &rate, proxy, transfers)
        }
    }
}

/// A load level of `lotse bench sip`.
enum Level {
    /// Calls in groups that ring at the same moment.
    Together(usize),
    /// A call every 60/r seconds.
    PerMinute(f64),
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Level::Together(n) => write!(f, "{n} at once"),
            Level::PerMinute(r) => write!(f, "{r} calls a minute"),
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn sip(
    app: &lotse_app::App,
    knowledge: &std::path::Path,
    set: &std::path::Path,
    calls: usize,
    concurrent: &[usize],
    rates: &[f64],
    proxy: Option<&std::path::Path>,
    transfers: usize,
) -> Result<ExitCode> {
    use lotse_sip_bridge::probe;
    let questions: Vec<String> = lotse_eval::load_set(set)?
        .case
        .into_iter()
        .filter(|c| c.category == "direct" || c.category == "colloquial")
        .map(|c| c.q)
        .collect();
    anyhow::ensure!(!questions.is_empty(), "no German questions in {}", set.display());
    let mut levels: Vec<usize> = concurrent.iter().copied().filter(|&n| n > 0).collect();
    levels.sort_unstable();
    levels.dedup();
    anyhow::ensure!(!levels.is_empty(), "--concurrent needs a level of at least 1");
    let step = (questions.len() / calls.max(1)).max(1);
    let chosen: Vec<&String> = questions.iter().step_by(step).take(calls).collect();
    let kb = std::sync::Arc::new(lotse_app::load(knowledge)?);
    let engine = std::sync::Arc::new(app.build_engine_over(kb.clone())?);
    let stack =
        std::sync::Arc::new(lotse_app::voice::Stack::load(app.models_dir(), &engine, &app.configuration()?.city)?);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let lines =
        lotse_sip_bridge::LotseCalls { engine: engine.clone(), stack: stack.clone(), staff: None, record: None };
    // At a call rate the node may have more calls up than cores: lines enough that overload
    // shows as latency, not as busy lines.
    let most = if rates.is_empty() { levels.iter().copied().max().unwrap_or(1) } else { 8 };
    let config = lotse_sip_bridge::Config { listen: "127.0.0.1:0".parse()?, max_calls: most, ..Default::default() };
    let bridge = runtime.block_on(lotse_sip_bridge::Bridge::start(config, std::sync::Arc::new(lines)))?;
    let at = bridge.local_addr();
    let dir = probe::workdir("bench-sip")?;
    // The callers' WAVs, made before any call (pico writes through one file).
    let mut wavs = Vec::new();
    for (i, q) in chosen.iter().enumerate() {
        let wav = dir.join(format!("q{i}.wav"));
        // The question begins 2 s into the call, in the greeting's long second sentence.
        let (onset, end) = probe::question(q, "de-DE", 2.0, &dir, &wav)?;
        wavs.push((wav, onset, end));
    }
    let p = |v: &[Duration], q: f64| lotse_eval::stats::percentile_ms(v, q);
    let mut held = None;
    let mut failed = false;
    // Where the callers ring: the bridge, or kamailio in front of it.
    let proxy = match proxy {
        Some(cfg) => {
            let at_proxy: std::net::SocketAddr = format!("127.0.0.1:{}", probe::free_port()?).parse()?;
            let k = probe::dispatcher(cfg, at_proxy, &[at], &dir)?;
            println!("sip: the calls go through kamailio on {at_proxy} ({})", cfg.display());
            Some((k, at_proxy))
        }
        None => None,
    };
    let ring = proxy.as_ref().map_or(at, |(_, a)| *a);
    let levels: Vec<Level> = if rates.is_empty() {
        levels.iter().map(|&n| Level::Together(n)).collect()
    } else {
        rates.iter().map(|&r| Level::PerMinute(r)).collect()
    };
    for level in &levels {
        let (mut latency, mut barge_in) = (Vec::new(), Vec::new());
        let mut unanswered = 0;
        let peak = std::sync::atomic::AtomicUsize::new(0);
        let mut heard: Vec<(Result<probe::Heard>, f32, f32)> = Vec::new();
        let call = |name: String, wav: &std::path::Path, end: f32| {
            // Until the answer has begun: the question, the hangover, the work, and room.
            probe::call(ring, &dir, &name, wav, end + 4.0)
        };
        match *level {
            // The calls in groups of `n` that ring at the same moment.
            Level::Together(n) => {
                for (g, group) in wavs.chunks(n).enumerate() {
                    wait_free(&bridge);
                    std::thread::scope(|scope| {
                        let callers: Vec<_> = group
                            .iter()
                            .enumerate()
                            .map(|(j, (wav, _, end))| scope.spawn(move || call(format!("c{n}-{g}-{j}"), wav, *end)))
                            .collect();
                        for (c, (_, onset, end)) in callers.into_iter().zip(group) {
                            let h = c.join().unwrap_or_else(|_| Err(anyhow::anyhow!("a caller panicked")));
                            heard.push((h, *onset, *end));
                        }
                    });
                    peak.fetch_max(group.len(), std::sync::atomic::Ordering::SeqCst);
                }
            }
            // A call every 60/r seconds, whatever the calls before are doing; the most calls
            // up at once is sampled from the bridge.
            Level::PerMinute(r) => {
                wait_free(&bridge);
                let every = Duration::from_secs_f64(60.0 / r);
                let done = std::sync::atomic::AtomicBool::new(false);
                std::thread::scope(|scope| {
                    scope.spawn(|| {
                        while !done.load(std::sync::atomic::Ordering::SeqCst) {
                            peak.fetch_max(bridge.calls(), std::sync::atomic::Ordering::SeqCst);
                            std::thread::sleep(Duration::from_millis(20));
                        }
                    });
                    let start = Instant::now();
                    let callers: Vec<_> = wavs
                        .iter()
                        .enumerate()
                        .map(|(i, (wav, _, end))| {
                            let due = every * i as u32;
                            let call = &call;
                            scope.spawn(move || {
                                std::thread::sleep(due.saturating_sub(start.elapsed()));
                                call(format!("r{r}-{i}"), wav, *end)
                            })
                        })
                        .collect();
                    for (c, (_, onset, end)) in callers.into_iter().zip(&wavs) {
                        let h = c.join().unwrap_or_else(|_| Err(anyhow::anyhow!("a caller panicked")));
                        heard.push((h, *onset, *end));
                    }
                    done.store(true, std::sync::atomic::Ordering::SeqCst);
                });
            }
        }
        for (h, onset, end) in heard {
            // A call that failed (sipp, or no RTP) counts as unanswered; the level goes on.
            let h = match h {
                Ok(h) => h,
                Err(e) => {
                    eprintln!("  a call failed at {level}: {e:#}");
                    unanswered += 1;
                    continue;
                }
            };
            match h.sound_after(end) {
                Some(t) => latency.push(Duration::from_secs_f32(t - end)),
                None => unanswered += 1,
            }
            // The greeting was sounding when the caller began: when did it stop for good
            // (until the caller's question ended)?
            if h.rms(onset - 0.1, onset) > 0.01 {
                barge_in.push(Duration::from_secs_f32(h.quiet_from(onset, end) - onset));
            }
        }
        if latency.is_empty() {
            println!("sip: {level}: no call was answered");
            break;
        }
        let peak = peak.into_inner();
        println!(
            "sip: {} calls over loopback (sipp, PCMU), {level}, at most {peak} up at once, {} without an answer in 4 s",
            wavs.len(),
            unanswered
        );
        println!(
            "  end of speech → the answer's first audio: p50 {:.0} ms, p95 {:.0} ms, max {:.0} ms (first turn, language detected)",
            p(&latency, 0.5),
            p(&latency, 0.95),
            p(&latency, 1.0)
        );
        println!(
            "  barge-in, the caller's speech start → the greeting stopped: p50 {:.0} ms, p95 {:.0} ms ({} calls)",
            p(&barge_in, 0.5),
            p(&barge_in, 0.95),
            barge_in.len()
        );
        // The levels in order: the figure is the last one held before the first that failed
        // (a higher level that passes by chance after a failure does not count).
        let ok = unanswered == 0 && p(&latency, 0.95) <= 1500.0;
        if ok && !failed {
            held = Some((level.to_string(), peak));
        }
        failed |= !ok;
    }
    drop(proxy);
    runtime.block_on(bridge.shutdown());
    if transfers > 0 {
        // A staff desk reachable around the clock whose teams have a line: the caller presses
        // 0, hears that they are connected, and is referred.
        let desk = transfer_desk(&runtime, kb, &dir)?;
        let sessions = lotse_session::Sessions::new(engine.clone(), Some(desk), Default::default());
        let lines = lotse_sip_bridge::LotseCalls {
            engine,
            stack,
            staff: Some(lotse_app::voice::Staff::on(sessions, runtime.handle().clone())),
            record: None,
        };
        let config = lotse_sip_bridge::Config { listen: "127.0.0.1:0".parse()?, max_calls: 1, ..Default::default() };
        let bridge = runtime.block_on(lotse_sip_bridge::Bridge::start(config, std::sync::Arc::new(lines)))?;
        let mut times = Vec::new();
        for i in 0..transfers {
            wait_free(&bridge);
            match probe::put_through(bridge.local_addr(), &dir, &format!("t{i}")) {
                Ok(t) => times.push(t),
                Err(e) => eprintln!("  a transfer failed: {e:#}"),
            }
        }
        runtime.block_on(bridge.shutdown());
        if times.is_empty() {
            println!("  transfer: no call was put through");
        } else {
            println!(
                "  transfer, key 0 pressed → REFER sent: p50 {:.0} ms, p95 {:.0} ms ({} of {transfers} calls; the connecting words play first)",
                p(&times, 0.5),
                p(&times, 0.95),
                times.len()
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    if levels.len() > 1 {
        match held {
            Some((level, peak)) => println!(
                "  the highest load this node holds with p95 end of speech → first audio ≤ 1.5 s: {level}, at most {peak} calls up at once ({} cores)",
                std::thread::available_parallelism().map_or(0, |n| n.get())
            ),
            None => println!("  no level held p95 ≤ 1.5 s"),
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Waits (15 s at most) until the lines of the calls before are free: their threads end after
/// their last piece of work.
fn wait_free(bridge: &lotse_sip_bridge::Bridge) {
    let free = Instant::now();
    while bridge.calls() > 0 && free.elapsed() < Duration::from_secs(15) {
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A staff desk open from yesterday to tomorrow, its teams put through to
/// `sip:team@127.0.0.1:5999`, its store in `dir`.
fn transfer_desk(
    rt: &tokio::runtime::Runtime,
    kb: std::sync::Arc<lotse_knowledge::KnowledgeBase>,
    dir: &std::path::Path,
) -> Result<lotse_handoff::Desk> {
    use jiff::ToSpan;
    let zone = lotse_core::calendar::Zone {
        tz: jiff::tz::TimeZone::get("Europe/Berlin")?,
        state: lotse_core::calendar::State::Thueringen,
    };
    let mut schedule = lotse_handoff::Schedule::default();
    let today = jiff::Timestamp::now().to_zoned(zone.tz.clone()).date();
    for d in [-1i64, 0, 1] {
        schedule.exceptions.push(lotse_handoff::Exception {
            date: today.checked_add(d.days())?.to_string(),
            hours: Some("00:00-24:00".into()),
            team: None,
            note: None,
        });
    }
    for t in &mut schedule.teams {
        t.transfer = Some("sip:team@127.0.0.1:5999".into());
    }
    let database = format!("sqlite:{}", dir.join("desk.db").display());
    let config = lotse_handoff::HandoffConfig { schedule, database: database.clone(), ..Default::default() };
    rt.block_on(async {
        let store = lotse_handoff::Store::open(&database).await?;
        Ok(lotse_handoff::Desk::new(store, config, kb, zone).await?)
    })
}

fn voice(app: &lotse_app::App, knowledge: &std::path::Path, runs: usize) -> Result<ExitCode> {
    use lotse_core::Lang;
    use lotse_speech::resample::convert;
    use lotse_speech::stt::LangChoice;
    use std::time::Instant;
    let engine = app.build_engine(knowledge)?;
    let models = app.models_dir().to_path_buf();
    let started = Instant::now();
    let stack = lotse_app::voice::Stack::load(&models, &engine, &app.configuration()?.city)?;
    println!("voice models loaded in {:.2} s", started.elapsed().as_secs_f64());
    let runs = runs.max(1);
    let questions = [
        (Lang::De, "Was kostet ein neuer Personalausweis?"),
        (Lang::De, "Ich möchte meinen Wohnsitz ummelden."),
        (Lang::En, "How much does a passport cost?"),
        (Lang::En, "When is the citizens office open today?"),
    ];
    // Synthesis: every voice on every question.
    println!("\nsynthesis (real-time factor = synthesis time / audio duration, median of {runs}):");
    for (lang, text) in questions {
        let voice = stack.tts.voice(lang);
        let mut rtf = Vec::new();
        let mut first = 0.0;
        for _ in 0..runs {
            let t = Instant::now();
            let a = voice.synthesize(text)?;
            first = a.seconds() as f64;
            rtf.push(t.elapsed().as_secs_f64() / a.seconds().max(0.01) as f64);
        }
        println!("  {:<28} {:>5.2} s of audio, RTF {:.3}  {text:?}", voice.name(), first, median(rtf));
    }
    // Recognition of the same questions, as the telephone delivers them: the natural voice where
    // there is one, espeak-ng otherwise.
    println!("\nrecognition, whisper base on 8 kHz audio (RTF, median of {runs}):");
    let mut session = stack.stt.session()?;
    for (lang, text) in questions {
        let a = stack.tts.synthesize(text, lang)?;
        let narrow = convert(&a.samples, a.rate, 8000)?;
        let mut pcm = vec![0.0f32; 3200];
        pcm.extend(convert(&narrow, 8000, 16_000)?);
        pcm.extend(vec![0.0f32; 3200]);
        let mut rtf = Vec::new();
        let mut ms = Vec::new();
        let mut heard = String::new();
        for _ in 0..runs {
            let t = session.transcribe(&pcm, LangChoice::Fixed(lang))?;
            rtf.push(t.elapsed.as_secs_f64() / t.audio.as_secs_f64());
            ms.push(t.elapsed.as_secs_f64() * 1000.0);
            heard = t.text;
        }
        println!(
            "  {:>5.2} s  {:>4.0} ms  RTF {:.3}  ({}) {text:?} → {heard:?}",
            pcm.len() as f64 / 16_000.0,
            median(ms),
            median(rtf),
            stack.tts.voice(lang).name()
        );
    }
    // Whole turns: the caller's question through VAD, end of turn, recognition, dialog and
    // the first sentence's synthesis.
    println!("\nturn latency, end of speech → first reply sample (median of {runs}):");
    for (lang, text) in questions {
        let a = stack.tts.synthesize(text, lang)?;
        let narrow = convert(&a.samples, a.rate, 8000)?;
        let last = narrow.iter().rposition(|v| v.abs() > 0.01).unwrap_or(narrow.len());
        let mut input = vec![0.0f32; 8000];
        input.extend(convert(&narrow, 8000, 16_000)?);
        input.extend(vec![0.0f32; 16_000 * 2]);
        let speech_end = std::time::Duration::from_secs_f64(0.5 + (last as f64) / 8000.0);
        let mut lat = Vec::new();
        let mut parts = (0.0, 0.0, 0.0, 0.0);
        for _ in 0..runs {
            let o = lotse_app::voice::run_lang(&engine, &stack, &input, &[], 8000, Some(lang))?;
            if let Some(mut t) = o.turns.into_iter().next() {
                t.speech_end = speech_end;
                lat.push(t.latency().as_secs_f64() * 1000.0);
                parts = (
                    t.endpoint.saturating_sub(t.speech_end).as_secs_f64() * 1000.0,
                    t.stt.as_secs_f64() * 1000.0,
                    t.dialog.as_secs_f64() * 1000.0,
                    t.tts_first.as_secs_f64() * 1000.0,
                );
            }
        }
        println!(
            "  {:>5.0} ms  (hangover {:.0}, recognition {:.0}, dialog {:.0}, first sentence {:.0} ms)  {text:?}",
            median(lat),
            parts.0,
            parts.1,
            parts.2,
            parts.3
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// One engine's figures, medians over the runs.
#[derive(Debug, Clone, Copy, Default, serde::Deserialize)]
struct LlmFigures {
    load_s: f64,
    prompt_tokens: f64,
    generated_tokens: f64,
    /// From the start of a request to its first token (the whole prompt computed).
    first_token_s: f64,
    prefill_tps: f64,
    generation_tps: f64,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() { f64::NAN } else { v[v.len() / 2] }
}

/// llama.cpp through llama-cpp-python: greedy, the same ChatML text, every core, the whole
/// prompt computed each run (the cache reset). Prints one JSON line of figures.
const LLAMA_SCRIPT: &str = r#"
import json, os, sys, time
from llama_cpp import Llama
path, prompt_file, runs, max_tokens = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
threads = os.cpu_count()
t = time.perf_counter()
llm = Llama(model_path=path, n_ctx=2048, n_threads=threads, n_threads_batch=threads, n_batch=512, verbose=False)
load = time.perf_counter() - t
prompt = open(prompt_file, encoding="utf-8").read()
tokens = llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)
end = {llm.token_eos(), llm.tokenize(b"<|im_end|>", add_bos=False, special=True)[0]}
rows = []
for run in range(runs + 1):
    llm.reset()
    start = time.perf_counter()
    first = None
    n = 0
    for tok in llm.generate(tokens, top_k=1, top_p=1.0, temp=0.0, repeat_penalty=1.0, reset=True):
        if first is None:
            first = time.perf_counter() - start
        if tok in end:
            break
        n += 1
        if n >= max_tokens:
            break
    total = time.perf_counter() - start
    if run > 0:
        rows.append((first, n, total))
med = lambda xs: sorted(xs)[len(xs) // 2]
first = med([r[0] for r in rows])
gen = med([(r[1] - 1) / (r[2] - r[0]) for r in rows])
print(json.dumps({"load_s": load, "prompt_tokens": len(tokens), "generated_tokens": med([r[1] for r in rows]),
                  "first_token_s": first, "prefill_tps": len(tokens) / first, "generation_tps": gen}))
"#;

fn llm(
    app: &lotse_app::App,
    model: &str,
    llama_python: Option<&std::path::Path>,
    runs: usize,
    max_tokens: usize,
    knowledge: &std::path::Path,
) -> Result<ExitCode> {
    use lotse_llm::{Generator, Params};

    let models = app.models_dir().to_path_buf();
    let dir = models.join(model);
    let tokenizer = models.join("qwen-tokenizer");
    let gguf = dir.join("model.gguf");
    anyhow::ensure!(gguf.exists(), "{} is missing: run `lotse models fetch {model}` first", gguf.display());
    // A real grounded prompt: the ID card record and a question about it.
    let kb = lotse_app::load(knowledge)?;
    let service = kb.service("personalausweis").context("the knowledge has no personalausweis record")?;
    let offices: Vec<&lotse_core::Office> = service.responsible.iter().filter_map(|r| kb.office(&r.office)).collect();
    let grounding = lotse_dialog::Grounding { service, offices };
    let request = lotse_dialog::Request {
        lang: lotse_core::Lang::De,
        plain: false,
        channel: lotse_core::Channel::Web,
        aspects: &[],
        focus: &[],
        now: jiff::civil::date(2026, 11, 24).at(10, 0, 0, 0),
        state: lotse_core::calendar::State::default(),
        passages: &[],
        fees: &[],
        introduce: false,
    };
    let question = "Kann ich den Personalausweis auch beantragen, wenn ich nur meinen Reisepass habe?";
    let analyzer = lotse_search::Analyzer::new(std::iter::empty());
    let system = lotse_dialog::assist::system(&app.configuration()?.city.administration());
    let prompt = lotse_dialog::assist::answer_prompt(&system, &request, &grounding, question, None, &analyzer);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "model {model} ({:.0} MiB), {threads} threads, greedy, at most {max_tokens} tokens, {runs} runs after a warm-up",
        std::fs::metadata(&gguf)?.len() as f64 / 1048576.0
    );

    let t = Instant::now();
    let g = lotse_llm_candle::CandleGenerator::load_dir(&dir, &tokenizer)?;
    let load_s = t.elapsed().as_secs_f64();
    let params = Params { max_tokens, ..Default::default() };
    let mut rows = Vec::new();
    let mut cached_first = Vec::new();
    let mut text = String::new();
    for run in 0..=runs {
        g.clear_cache();
        let out = g.generate(&prompt, &params, &mut |_| true)?;
        // The same request again, now with the system prompt's state cached (as in service).
        let again = g.generate(&prompt, &params, &mut |_| true)?;
        if run > 0 {
            rows.push(out.clone());
            cached_first.push(again.first_token.as_secs_f64());
        }
        text = out.text;
    }
    let candle = LlmFigures {
        load_s,
        prompt_tokens: rows[0].prompt_tokens as f64,
        generated_tokens: median(rows.iter().map(|r| r.generated_tokens as f64).collect()),
        first_token_s: median(rows.iter().map(|r| r.first_token.as_secs_f64()).collect()),
        prefill_tps: median(rows.iter().map(|r| r.prompt_tokens as f64 / r.first_token.as_secs_f64()).collect()),
        generation_tps: median(rows.iter().map(|r| r.generation_rate()).collect()),
    };
    println!("candle answer: {}", text.replace('\n', " "));

    let llama = match llama_python {
        None => None,
        Some(python) => {
            let prompt_file = std::env::temp_dir().join(format!("lotse-bench-prompt-{}.txt", std::process::id()));
            std::fs::write(&prompt_file, lotse_llm_candle::CandleGenerator::render(&prompt))?;
            let out = std::process::Command::new(python)
                .arg("-c")
                .arg(LLAMA_SCRIPT)
                .arg(&gguf)
                .arg(&prompt_file)
                .arg(runs.to_string())
                .arg(max_tokens.to_string())
                .stdin(std::process::Stdio::null())
                .output()
                .with_context(|| format!("starting {}", python.display()))?;
            let _ = std::fs::remove_file(&prompt_file);
            anyhow::ensure!(
                out.status.success(),
                "llama.cpp run failed: {}",
                String::from_utf8_lossy(&out.stderr).lines().rev().take(5).collect::<Vec<_>>().join(" | ")
            );
            let line = String::from_utf8_lossy(&out.stdout).lines().last().unwrap_or_default().to_string();
            Some(serde_json::from_str::<LlmFigures>(&line).with_context(|| format!("llama.cpp figures: {line}"))?)
        }
    };
    println!();
    println!(
        "| engine | load s | prompt tokens | first token s | prefill tokens/s | generated | generation tokens/s |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (name, f) in
        std::iter::once(("candle (lotse-llm-candle)", candle)).chain(llama.map(|l| ("llama.cpp (llama-cpp-python)", l)))
    {
        println!(
            "| {name} | {:.2} | {:.0} | {:.2} | {:.1} | {:.0} | {:.1} |",
            f.load_s, f.prompt_tokens, f.first_token_s, f.prefill_tps, f.generated_tokens, f.generation_tps
        );
    }
    println!("candle first token with the system prompt cached: {:.2} s", median(cached_first));
    if let Some(l) = llama {
        println!("ratio candle/llama.cpp prefill: {:.2}", candle.prefill_tps / l.prefill_tps);
        println!("ratio candle/llama.cpp generation: {:.2}", candle.generation_tps / l.generation_tps);
    } else {
        println!("llama.cpp not measured (no --llama-python; scripts/bench-llm sets it up)");
    }
    Ok(ExitCode::SUCCESS)
}

/// `lotse bench api --staff N` / `--minutes M`: the mixed load of [`mixed`] against a server
/// with a staff desk on a throw-away SQLite store, open around the clock.
fn api_mixed(
    app: &lotse_app::App,
    knowledge: &std::path::Path,
    set: &std::path::Path,
    load: mixed::Load,
    minutes: Option<f64>,
) -> Result<ExitCode> {
    let kb = std::sync::Arc::new(lotse_app::load(knowledge)?);
    let engine = std::sync::Arc::new(app.build_engine_over(kb.clone())?);
    let questions = load_questions(set)?;
    let dir = std::env::temp_dir().join(format!("lotse-bench-api-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let desk = transfer_desk(&runtime, kb, &dir)?;
    let hash = lotse_handoff::auth::hash_password("ein gutes Passwort").map_err(anyhow::Error::msg)?;
    for s in 0..load.staff {
        let name = format!("mitarbeiter{s}");
        runtime.block_on(desk.store.put_staff(&name, &name, &hash, lotse_handoff::Role::Staff))?;
    }
    let state = lotse_web::AppState::with_desk(engine, load_limits(), false, Some(desk));
    let ok = runtime
        .block_on(on_loopback(state, |addr| mixed::run(format!("http://{addr}"), questions, load, minutes)))??;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// The questions of a set, for load.
fn load_questions(set: &std::path::Path) -> Result<Vec<String>> {
    let questions: Vec<String> = lotse_eval::load_set(set)?.case.into_iter().map(|c| c.q).collect();
    anyhow::ensure!(!questions.is_empty(), "the question set is empty");
    Ok(questions)
}

/// The server's limits under a load test. The load comes from one address, and the per-client
/// limit would refuse it by design: all the benchmark's clients come from this machine, so it
/// counts as a proxy of many.
fn load_limits() -> lotse_web::Limits {
    lotse_web::Limits {
        requests_per_minute: u32::MAX / 2,
        trusted_proxies: vec![std::net::Ipv4Addr::LOCALHOST.into(), std::net::Ipv6Addr::LOCALHOST.into()],
        ..Default::default()
    }
}

/// Serves `state` on a loopback port while `load` runs against its address, then stops it.
async fn on_loopback<F: std::future::Future>(
    state: std::sync::Arc<lotse_web::AppState>,
    load: impl FnOnce(std::net::SocketAddr) -> F,
) -> Result<F::Output> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(lotse_web::serve_on(state, listener, async move {
        let _ = stop_rx.await;
    }));
    let out = load(addr).await;
    let _ = stop_tx.send(());
    let _ = server.await;
    Ok(out)
}

/// A bounded load test on loopback: `conversations` conversations at once, each creating itself
/// and sending `turns` questions from the question set; stops when all are done.
fn api(
    app: &lotse_app::App,
    knowledge: &std::path::Path,
    set: &std::path::Path,
    conversations: usize,
    turns: usize,
) -> Result<ExitCode> {
    use http_body_util::{BodyExt, Full};
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;

    let engine = std::sync::Arc::new(app.build_engine(knowledge)?);
    let questions = load_questions(set)?;
    let state = lotse_web::AppState::new(engine, load_limits(), false);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(on_loopback(state, |addr| async move {
        let client: Client<_, Full<axum::body::Bytes>> = Client::builder(TokioExecutor::new()).build_http();
        let started = Instant::now();
        let mut tasks = Vec::new();
        for c in 0..conversations {
            let client = client.clone();
            let questions = questions.clone();
            tasks.push(tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut errors = 0usize;
                let post = |uri: String, body: String| {
                    axum::http::Request::post(uri)
                        .header("content-type", "application/json")
                        .body(Full::new(axum::body::Bytes::from(body)))
                        .expect("a valid request")
                };
                let t = Instant::now();
                let res = client.request(post(format!("http://{addr}/api/v1/conversations"), "{}".into())).await;
                latencies.push(t.elapsed());
                let id = match res {
                    Ok(r) if r.status() == 201 => {
                        let body = r.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                        serde_json::from_slice::<serde_json::Value>(&body).ok().and_then(|v| v["id"].as_str().map(String::from))
                    }
                    _ => None,
                };
                let Some(id) = id else { return (latencies, errors + 1) };
                for k in 0..turns {
                    let q = &questions[(c * turns + k) % questions.len()];
                    let body = serde_json::json!({ "text": q }).to_string();
                    let t = Instant::now();
                    let res = client.request(post(format!("http://{addr}/api/v1/conversations/{id}/messages"), body)).await;
                    match res {
                        Ok(r) if r.status() == 200 => {
                            let _ = r.into_body().collect().await;
                            latencies.push(t.elapsed());
                        }
                        _ => errors += 1,
                    }
                }
                (latencies, errors)
            }));
        }
        let mut all = Vec::new();
        let mut errors = 0;
        for t in tasks {
            let (l, e) = t.await?;
            all.extend(l);
            errors += e;
        }
        let wall = started.elapsed();
        all.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!(
            "api load: {conversations} concurrent conversations x {turns} questions on {addr}: {} requests in {:.1} s ({:.0}/s), {errors} errors",
            all.len() + errors,
            wall.as_secs_f64(),
            (all.len() + errors) as f64 / wall.as_secs_f64()
        );
        if !all.is_empty() {
            println!(
                "request latency: p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
                ms(percentile(&all, 0.5)),
                ms(percentile(&all, 0.95)),
                ms(percentile(&all, 0.99)),
                ms(*all.last().unwrap_or(&Duration::ZERO))
            );
        }
        anyhow::Ok(if errors == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
    }))?
}

fn percentile(values: &[Duration], p: f64) -> Duration {
    lotse_eval::stats::percentile(values, p).unwrap_or_default()
}

/// Resident memory of this process in MiB, from /proc (Linux).
pub fn rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn turns(app: &lotse_app::App, knowledge: &std::path::Path, set: &std::path::Path, passes: usize) -> Result<ExitCode> {
    let kb = std::sync::Arc::new(lotse_app::load(knowledge)?);
    let index = std::sync::Arc::new(app.build_index(&kb)?);
    let dense = index.has_embeddings();
    let engine = app.engine(kb, index)?;
    let questions = lotse_eval::load_set(set)?.case;
    let turn = |q: &str| {
        let (mut conv, _) = engine.start("bench".into(), lotse_core::Channel::Web, lotse_core::Lang::De);
        let t = Instant::now();
        let reply = engine.respond(&mut conv, lotse_dialog::TurnRequest::new(q));
        let took = t.elapsed();
        std::hint::black_box(reply);
        took
    };
    // Warm up once: the first embedding of each question fills no cache, but page faults and
    // lazily built tables should not count.
    for q in &questions {
        turn(&q.q);
    }
    let mut times: Vec<Duration> = (0..passes).flat_map(|_| questions.iter().map(|q| turn(&q.q))).collect();
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "composer turns over {} questions ({} passes, dense stage {}): p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        questions.len(),
        passes,
        if dense { "on" } else { "off" },
        ms(percentile(&times, 0.5)),
        ms(percentile(&times, 0.95)),
        ms(percentile(&times, 0.99)),
        ms(*times.last().unwrap_or(&Duration::ZERO))
    );
    Ok(ExitCode::SUCCESS)
}

fn search(
    app: &lotse_app::App,
    knowledge: &std::path::Path,
    set: &std::path::Path,
    passes: usize,
    synthetic: usize,
) -> Result<ExitCode> {
    let rss_start = rss_mib();
    let kb = lotse_app::load(knowledge)?;
    let questions = lotse_eval::load_set(set)?.case;
    let t = Instant::now();
    let index = app.build_index(&kb)?;
    let build = t.elapsed();
    println!(
        "knowledge: {} services, {} index terms; index build {:.1} ms",
        kb.services.len(),
        index.n_terms(),
        build.as_secs_f64() * 1e3
    );
    // Warm up once so that the first pass does not measure page faults.
    for q in &questions {
        index.search(&q.q, 10)?;
    }
    let mut times = Vec::with_capacity(questions.len() * passes);
    for _ in 0..passes {
        for q in &questions {
            let t = Instant::now();
            let r = index.search(&q.q, 10)?;
            times.push(t.elapsed());
            std::hint::black_box(r);
        }
    }
    times.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "retrieval over {} queries: p50 {:.0} µs, p95 {:.0} µs, p99 {:.0} µs, max {:.0} µs",
        times.len(),
        us(percentile(&times, 0.5)),
        us(percentile(&times, 0.95)),
        us(percentile(&times, 0.99)),
        us(*times.last().unwrap_or(&Duration::ZERO))
    );
    // A synthetic base of `synthetic` services: the curated records repeated with distinct ids
    // and a distinguishing word, so that the vocabulary and postings grow as in a large city.
    let mut big = kb.clone();
    big.services.clear();
    let districts =
        ["Nord", "Ost", "Süd", "West", "Mitte", "Lobeda", "Winzerla", "Zwätzen", "Wenigenjena", "Göschwitz"];
    for i in 0..synthetic {
        let Some(base) = kb.services.get(i % kb.services.len().max(1)) else { break };
        let mut s = base.clone();
        s.id = format!("{}-{i}", base.id);
        s.name = format!("{} ({} {})", base.name, districts[i % districts.len()], i / kb.services.len().max(1));
        big.services.push(s);
    }
    let t = Instant::now();
    let big_index = app.build_index(&big)?;
    let big_build = t.elapsed();
    let mut big_times = Vec::new();
    for q in &questions {
        let t = Instant::now();
        std::hint::black_box(big_index.search(&q.q, 10)?);
        big_times.push(t.elapsed());
    }
    big_times.sort();
    println!(
        "synthetic knowledge: {} services; index build {:.2} s; retrieval p50 {:.0} µs, p99 {:.0} µs",
        big.services.len(),
        big_build.as_secs_f64(),
        us(percentile(&big_times, 0.5)),
        us(percentile(&big_times, 0.99))
    );
    if let (Some(a), Some(b)) = (rss_start, rss_mib()) {
        println!("memory: {b:.0} MiB resident ({:.0} MiB for both indexes and knowledge)", b - a);
    }
    Ok(ExitCode::SUCCESS)
}

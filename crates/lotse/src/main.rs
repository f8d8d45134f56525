//! `lotse`: the command line of the Lotse assistant engine.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use lotse_app::load;
use lotse_knowledge::{KnowledgeBase, Severity};

#[derive(Parser)]
#[command(name = "lotse", version, about = "Lotse: a grounded assistant for a city's services")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Where fetched models live (scripts/fetch-models).
    #[arg(long, global = true, default_value = "models")]
    models: PathBuf,
    /// Search without the embedding re-ranking even when its model is fetched.
    #[arg(long, global = true)]
    no_embeddings: bool,
    /// The configuration file (default: lotse.toml when it exists).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Work with the knowledge base.
    Knowledge {
        #[command(subcommand)]
        command: KnowledgeCommand,
    },
    /// Import a published service database into a knowledge folder.
    Import {
        #[command(subcommand)]
        format: ImportFormat,
    },
    /// Show which services answer a question, with scores and confidence.
    Search {
        query: String,
        #[arg(long, default_value = "knowledge")]
        knowledge: PathBuf,
        #[arg(long, default_value_t = 5)]
        limit: usize,
        /// Print each hit's ranking features and the confidence features.
        #[arg(long)]
        explain: bool,
    },
    /// Serve the chat API.
    Serve {
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: std::net::SocketAddr,
        #[arg(long, default_value = "knowledge")]
        knowledge: PathBuf,
        /// Minutes after which an idle conversation is forgotten.
        #[arg(long, default_value_t = 30)]
        idle_minutes: u64,
        /// Requests per minute allowed from one client address.
        #[arg(long, default_value_t = 120)]
        rate_per_minute: u32,
        #[command(flatten)]
        llm: lotse_app::LlmArg,
        /// Serve without the staff queue and console (handoffs offer the general contact).
        #[arg(long)]
        no_staff: bool,
        /// Answer phone calls too: the SIP bridge on this address (UDP), in this process.
        #[arg(long)]
        sip: Option<std::net::SocketAddr>,
        /// Calls the bridge takes at once (the next is answered 503). Each call's recognition
        /// needs most of a core while the caller's turn is recognised.
        #[arg(long, default_value_t = 2)]
        sip_max_calls: usize,
    },
    /// Answer phone calls on a node of its own: the SIP bridge, whose calls are conversations
    /// of a Lotse server (their transcript in its console, a person asked for in its staff
    /// queue). The server and the bridge load the same knowledge and share `[bridge] token`.
    Bridge {
        /// The Lotse server, `http://10.0.0.2:8080` (default: `[bridge] server`).
        #[arg(long)]
        server: Option<String>,
        /// The SIP address (UDP).
        #[arg(long, default_value = "127.0.0.1:5060")]
        sip: std::net::SocketAddr,
        /// Calls the bridge takes at once (the next is answered 503).
        #[arg(long, default_value_t = 2)]
        sip_max_calls: usize,
        #[arg(long, default_value = "knowledge")]
        knowledge: PathBuf,
        #[command(flatten)]
        llm: lotse_app::LlmArg,
    },
    /// Staff accounts of the console at /staff.
    Staff {
        #[command(subcommand)]
        command: StaffCommand,
    },
    /// Run turns of one conversation and print the last reply.
    Ask {
        /// The messages, one per turn.
        #[arg(required = true)]
        turns: Vec<String>,
        #[arg(long, default_value = "knowledge")]
        knowledge: PathBuf,
        /// Print the reply as the API's JSON.
        #[arg(long)]
        json: bool,
        /// Start the conversation in this language (de or en).
        #[arg(long, default_value = "de")]
        lang: String,
        /// Ask for plain language (Einfache Sprache).
        #[arg(long)]
        plain: bool,
        /// The channel (web, app, kiosk, phone): the phone gets no web addresses.
        #[arg(long, default_value = "web")]
        channel: String,
        /// Print the reply as the phone will speak it, one sentence per line (implies the
        /// phone channel).
        #[arg(long)]
        spoken: bool,
        #[command(flatten)]
        llm: lotse_app::LlmArg,
    },
    /// One voice call offline: a recording of the caller in, the bot's side out (needs
    /// `lotse models fetch whisper-base silero-vad piper-en-us-joe` and espeak-ng).
    Voice {
        /// The caller's recording (WAV: PCM at 4–48 kHz or G.711 µ-law/A-law).
        #[arg(long = "in")]
        input: PathBuf,
        /// Where the bot's side goes (WAV, 16-bit PCM, the same clock as the input).
        #[arg(long = "out")]
        output: PathBuf,
        /// Print what was recognised, answered and heard, with the latency of each turn.
        #[arg(long)]
        transcript: bool,
        /// The output rate in Hz (8000 for the telephone).
        #[arg(long, default_value_t = 8000)]
        rate: u32,
        /// Keys pressed during the call, SECONDS:KEY separated by commas (0 = a person,
        /// * = repeat).
        #[arg(long, default_value = "")]
        dtmf: String,
        #[arg(long, default_value = "knowledge")]
        knowledge: PathBuf,
        #[command(flatten)]
        llm: lotse_app::LlmArg,
        /// Without the staff queue (a request for a person gets the general contact).
        #[arg(long)]
        no_staff: bool,
    },
    /// Fetch and list model files (models/manifest.toml).
    Models {
        #[command(subcommand)]
        command: lotse_app::models::ModelsCommand,
    },
    /// Run an evaluation and write a report under eval/reports/.
    Eval {
        #[command(subcommand)]
        what: lotse_eval::EvalCommand,
    },
    /// Fit a model of the retrieval (its weights are compiled in).
    Train {
        #[command(subcommand)]
        what: lotse_eval::train::TrainCommand,
    },
    /// Run a benchmark and print its figures.
    Bench {
        #[command(subcommand)]
        what: lotse_bench::BenchCommand,
    },
}

#[derive(Subcommand)]
enum StaffCommand {
    /// Create an account, or set a new password (and role) for an existing one. The password is
    /// asked for (or read from LOTSE_STAFF_PASSWORD, for scripts).
    Add {
        /// The login name.
        name: String,
        /// The name citizens see when this person answers (default: the login name).
        #[arg(long)]
        display_name: Option<String>,
        /// staff, editor (also decides on the unanswered questions and writes surveys) or admin.
        #[arg(long, default_value = "staff")]
        role: String,
    },
    /// Disable an account: its sessions end and it cannot log in until enabled again.
    Disable { name: String },
    /// Enable a disabled account again.
    Enable { name: String },
}

#[derive(Subcommand)]
enum KnowledgeCommand {
    /// Validate every service and office file; exit code 1 on errors.
    Check {
        #[arg(default_value = "knowledge")]
        dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum ImportFormat {
    /// DLDB JSON (Munich, Berlin, ZMS): a folder with services_*.json and locations_*.json.
    Dldb {
        path: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// Colloquial-word table written with the import (the formats carry none of their own).
        #[arg(long, default_value = "knowledge/synonyms.toml")]
        synonyms: PathBuf,
    },
    /// XZuFi 2.2 XML: `schreibe` and `loesche` messages, applied to what --out already holds.
    Xzufi {
        path: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// Colloquial-word table written with the import (the formats carry none of their own).
        #[arg(long, default_value = "knowledge/synonyms.toml")]
        synonyms: PathBuf,
    },
    /// PVOG search-service detail JSON, added to what --out already holds.
    Pvog {
        path: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// Colloquial-word table written with the import (the formats carry none of their own).
        #[arg(long, default_value = "knowledge/synonyms.toml")]
        synonyms: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // `lotse search … | head` closes the pipe early: a command that prints and ends quits
    // quietly, as command-line tools do, instead of panicking in the next print (Rust ignores
    // SIGPIPE). Long-running commands (the server, a call, benchmarks) keep ignoring it: a
    // client or child process that goes away must never end them.
    #[cfg(unix)]
    if !matches!(
        cli.command,
        Command::Serve { .. } | Command::Bridge { .. } | Command::Voice { .. } | Command::Bench { .. }
    ) {
        // SAFETY: called once at start-up, before any other thread exists; SIG_DFL is a valid
        // disposition for SIGPIPE.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    let app = lotse_app::App::new(cli.models.clone(), cli.config.clone(), !cli.no_embeddings);
    match cli.command {
        Command::Knowledge { command: KnowledgeCommand::Check { dir } } => knowledge_check(&dir),
        Command::Import { format } => import(format),
        Command::Search { query, knowledge, limit, explain } => {
            let kb = load(&knowledge)?;
            let index = app.build_index(&kb)?;
            let result = index.search(&query, limit)?;
            println!(
                "confidence {:.2}{}",
                result.confidence,
                if result.is_confident() { "" } else { " (below threshold)" }
            );
            if !result.unknown_words.is_empty() {
                println!("unknown words: {}", result.unknown_words.join(", "));
            }
            for h in &result.hits {
                let s = &kb.services[h.index];
                println!("{:7.2}  cov {:.2}  {:<32} {}", h.score, h.coverage, s.id, s.name);
            }
            if explain {
                let (_, evidence) = index.explain(&query, limit, true)?;
                let read: Vec<String> =
                    evidence.concepts.iter().map(|(w, idf, t)| format!("{w} {idf:.1} [{}]", t.join(" "))).collect();
                println!("read as: {}", read.join(" · "));
                println!("features ({}):", lotse_search::rank::RANK_FEATURES.join(" | "));
                for (id, p, f) in evidence.candidates.iter().take(limit) {
                    let f: Vec<String> = f.iter().map(|x| format!("{x:.2}")).collect();
                    println!("  {p:.3}  {id:<32} {}", f.join(" "));
                }
                let c: Vec<String> = evidence.confidence.iter().map(|x| format!("{x:.2}")).collect();
                println!("confidence features ({}): {}", lotse_search::rank::CONF_FEATURES.join(" | "), c.join(" "));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Models { command } => lotse_app::models::run(&cli.models, command),
        Command::Staff { command: StaffCommand::Add { name, display_name, role } } => {
            staff_add(&app, &name, display_name, &role)
        }
        Command::Staff { command: StaffCommand::Disable { name } } => staff_disable(&app, &name, true),
        Command::Staff { command: StaffCommand::Enable { name } } => staff_disable(&app, &name, false),
        Command::Serve { addr, knowledge, idle_minutes, rate_per_minute, llm, no_staff, sip, sip_max_calls } => {
            tracing_subscriber::fmt()
                .with_env_filter(
                    // rsipstack logs every SIP message at info: its text names the caller.
                    tracing_subscriber::EnvFilter::try_from_default_env()
                        .unwrap_or_else(|_| "info,rsipstack=warn".into()),
                )
                .init();
            eprintln!("loading knowledge from {} …", knowledge.display());
            let started = std::time::Instant::now();
            let kb = std::sync::Arc::new(load(&knowledge)?);
            eprintln!("indexing {} services …", kb.services.len());
            let index = std::sync::Arc::new(app.build_index(&kb)?);
            eprintln!(
                "ready in {:.1} s ({} services, {} offices, embedding re-ranking {})",
                started.elapsed().as_secs_f64(),
                kb.services.len(),
                kb.offices.len(),
                if index.has_embeddings() { "on" } else { "off" }
            );
            let embeddings = index.has_embeddings();
            let mut config = app.configuration()?;
            let config_city = config.city.clone();
            let ring = config.sip.ring()?;
            let rtp_ports = match config.sip.rtp_ports.as_deref() {
                Some(range) => Some(lotse_sip_bridge::sip::port_range(range).context("[sip] rtp_ports")?),
                None => None,
            };
            let register = config.sip.register.take();
            let bridge_token = config.bridge.token.take();
            let trusted_proxies = std::mem::take(&mut config.server.trusted_proxies);
            let plugins_config = config.plugins.clone();
            plugins_config.validate().map_err(anyhow::Error::msg)?;
            let engine = app.engine(kb.clone(), index)?;
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            let desk = if no_staff {
                None
            } else {
                let desk = app.open_desk(config, kb, &runtime)?;
                eprintln!("staff console at http://{addr}/staff (accounts: lotse staff add NAME)");
                Some(desk)
            };
            let engine = std::sync::Arc::new(app.with_llm(engine, llm, true)?);
            let limits = lotse_web::Limits {
                idle_timeout: std::time::Duration::from_secs(idle_minutes * 60),
                requests_per_minute: rate_per_minute,
                trusted_proxies,
                ..Default::default()
            };
            let city = config_city;
            let plugins = match &desk {
                Some(desk) => {
                    lotse_app::start_plugins(&plugins_config, desk, &engine, &runtime)?.map(|h| (h, desk.store.clone()))
                }
                None => {
                    if !plugins_config.enabled.is_empty() {
                        eprintln!("plug-ins are off: they need the staff database (not with --no-staff)");
                    }
                    None
                }
            };
            let state = lotse_web::AppState::with_desk(engine.clone(), limits, embeddings, desk);
            if let Some((host, store)) = plugins {
                eprintln!("plug-ins: {}", host.names().join(", "));
                state.use_plugins(host, store);
                state.count_campaigns(plugins_config.campaigns.clone());
            }
            if let Some(token) = bridge_token.filter(|t| !t.is_empty()) {
                state.allow_bridges(&token).map_err(anyhow::Error::msg).context("[bridge] token")?;
                eprintln!("SIP bridges on other nodes may connect (lotse bridge --server http://{addr})");
            }
            let bridge = match sip {
                Some(listen) => {
                    eprintln!("loading the voice models …");
                    let stack = std::sync::Arc::new(lotse_app::voice::Stack::load(app.models_dir(), &engine, &city)?);
                    let calls = lotse_sip_bridge::LotseCalls {
                        engine: engine.clone(),
                        stack,
                        staff: (!no_staff)
                            .then(|| lotse_app::voice::Staff::on(state.sessions.clone(), runtime.handle().clone())),
                        record: None,
                    };
                    let config =
                        lotse_sip_bridge::Config { listen, max_calls: sip_max_calls, ring, register, rtp_ports };
                    let bridge =
                        runtime.block_on(lotse_sip_bridge::Bridge::start(config, std::sync::Arc::new(calls)))?;
                    eprintln!("answering calls on sip:{} (UDP)", bridge.local_addr());
                    Some(bridge)
                }
                None => None,
            };
            runtime.block_on(lotse_web::serve(state, addr))?;
            if let Some(bridge) = bridge {
                runtime.block_on(bridge.shutdown());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Bridge { server, sip, sip_max_calls, knowledge, llm } => {
            tracing_subscriber::fmt()
                .with_env_filter(
                    // rsipstack logs every SIP message at info: its text names the caller.
                    tracing_subscriber::EnvFilter::try_from_default_env()
                        .unwrap_or_else(|_| "info,rsipstack=warn".into()),
                )
                .init();
            let mut config = app.configuration()?;
            let server = server
                .or(config.bridge.server.take())
                .context("name the Lotse server: lotse bridge --server http://HOST:PORT (or [bridge] server)")?;
            let token = config.bridge.token.take().filter(|t| !t.is_empty()).context(
                "the bridge needs the server's bridge token: LOTSE_BRIDGE__TOKEN (or [bridge] token), set on both",
            )?;
            eprintln!("loading knowledge from {} …", knowledge.display());
            let kb = std::sync::Arc::new(load(&knowledge)?);
            let index = std::sync::Arc::new(app.build_index(&kb)?);
            let engine = app.engine(kb.clone(), index)?;
            let engine = std::sync::Arc::new(app.with_llm(engine, llm, true)?);
            let staff = lotse_app::bridge::connect(&server, &token, &kb)
                .with_context(|| format!("connecting to the Lotse server at {server}"))?;
            eprintln!("loading the voice models …");
            let stack = std::sync::Arc::new(lotse_app::voice::Stack::load(app.models_dir(), &engine, &config.city)?);
            let calls = lotse_sip_bridge::LotseCalls { engine, stack, staff: Some(staff), record: None };
            let rtp_ports = match config.sip.rtp_ports.as_deref() {
                Some(range) => Some(lotse_sip_bridge::sip::port_range(range).context("[sip] rtp_ports")?),
                None => None,
            };
            let bridge_config = lotse_sip_bridge::Config {
                listen: sip,
                max_calls: sip_max_calls,
                ring: config.sip.ring()?,
                register: config.sip.register.take(),
                rtp_ports,
            };
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            let bridge =
                runtime.block_on(lotse_sip_bridge::Bridge::start(bridge_config, std::sync::Arc::new(calls)))?;
            eprintln!("answering calls on sip:{} (UDP) for {server}", bridge.local_addr());
            runtime.block_on(lotse_web::shutdown_signal());
            runtime.block_on(bridge.shutdown());
            Ok(ExitCode::SUCCESS)
        }
        Command::Ask { turns, knowledge, json, lang, plain, channel, spoken, llm } => {
            // Warnings only, unless RUST_LOG asks for more (e.g. lotse_dialog=debug shows why a
            // generated answer was refused).
            tracing_subscriber::fmt()
                .with_writer(std::io::stderr)
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
                )
                .init();
            let engine = app.with_llm(app.build_engine(&knowledge)?, llm, false)?;
            let lang: lotse_core::Lang = parse_enum(&lang, "lang")?;
            let channel: lotse_core::Channel =
                if spoken { lotse_core::Channel::Phone } else { parse_enum(&channel, "channel")? };
            let (mut conv, mut reply) = engine.start("cli".into(), channel, lang);
            for turn in &turns {
                reply = engine.respond(&mut conv, lotse_dialog::TurnRequest::new(turn).plain(plain));
            }
            if spoken {
                let text = lotse_speech::spoken::spoken(&reply.text, reply.lang);
                for sentence in lotse_speech::spoken::sentences(&text) {
                    println!("{sentence}");
                }
            } else if json {
                println!("{}", serde_json::to_string_pretty(&reply)?);
            } else {
                println!("{}", reply.text);
                for s in &reply.sources {
                    println!("  Quelle: {} <{}>", s.title, s.url);
                }
                if !reply.suggestions.is_empty() {
                    println!("  Vorschläge: {}", reply.suggestions.join(" | "));
                }
                if !reply.generated_by.is_composer() {
                    println!("  Erstellt von: {} (jeder Satz gegen die Quellen geprüft)", reply.generated_by);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Voice { input, output, transcript, rate, dtmf, knowledge, llm, no_staff } => {
            tracing_subscriber::fmt()
                .with_writer(std::io::stderr)
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
                )
                .init();
            if !lotse_speech::resample::RATES.contains(&rate) {
                anyhow::bail!("--rate {rate}: 4000 to 48000 Hz");
            }
            let keys = lotse_app::voice::parse_keys(&dtmf)?;
            let audio = lotse_app::voice::read_input(&input)?;
            let kb = std::sync::Arc::new(load(&knowledge)?);
            let engine = std::sync::Arc::new(app.with_llm(app.build_engine_over(kb.clone())?, llm, false)?);
            let stack = lotse_app::voice::Stack::load(app.models_dir(), &engine, &app.configuration()?.city)?;
            // The call is a conversation of the staff queue, as a web chat is: a person asked
            // for is queued within staff hours (the console shows it) or offered a callback.
            let staff = if no_staff {
                None
            } else {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
                let config = app.configuration()?;
                let desk = app.open_desk(config, kb, &runtime)?;
                let sessions = lotse_session::Sessions::new(engine.clone(), Some(desk), Default::default());
                Some(lotse_app::voice::Staff::new(sessions, runtime))
            };
            let outcome = lotse_app::voice::run(&engine, &stack, &audio, &keys, rate, staff.as_ref())?;
            lotse_speech::wav::write(&output, &outcome.output, rate)?;
            if transcript {
                for line in &outcome.log {
                    println!("{line}");
                }
                for (i, t) in outcome.turns.iter().enumerate() {
                    println!(
                        "turn {}: end of speech → first audio {} ms (hangover {} ms, recognition {} ms, dialog {} ms, first sentence {} ms)",
                        i + 1,
                        t.latency().as_millis(),
                        t.endpoint.saturating_sub(t.speech_end).as_millis(),
                        t.stt.as_millis(),
                        t.dialog.as_millis(),
                        t.tts_first.as_millis()
                    );
                }
            }
            if outcome.turns.is_empty() {
                eprintln!("no speech found in {}", input.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Eval { what } => lotse_eval::run(&app, what),
        Command::Train { what } => lotse_eval::train::run(&app, what),
        Command::Bench { what } => lotse_bench::run(&app, what),
    }
}

/// Parses a lower-case enum value the way the API does.
fn parse_enum<T: serde::de::DeserializeOwned>(value: &str, what: &str) -> Result<T> {
    serde_json::from_value(serde_json::Value::String(value.to_lowercase()))
        .map_err(|_| anyhow::anyhow!("unknown {what} `{value}`"))
}

/// `lotse staff add NAME`: asks for the password twice (or takes LOTSE_STAFF_PASSWORD).
fn staff_add(app: &lotse_app::App, name: &str, display_name: Option<String>, role: &str) -> Result<ExitCode> {
    let role = lotse_handoff::Role::parse(role)
        .with_context(|| format!("the role is staff, editor or admin, not `{role}`"))?;
    if name.is_empty() || name.len() > 64 || !name.chars().all(|c| c.is_alphanumeric() || "._-".contains(c)) {
        anyhow::bail!("a login name has 1 to 64 letters, digits, dots, dashes or underscores");
    }
    let password = match std::env::var("LOTSE_STAFF_PASSWORD") {
        Ok(p) => p,
        Err(_) => {
            let p = rpassword::prompt_password(format!("password for {name}: "))?;
            if rpassword::prompt_password("again: ")? != p {
                anyhow::bail!("the two passwords differ");
            }
            p
        }
    };
    let hash = lotse_handoff::auth::hash_password(&password).map_err(|e| anyhow::anyhow!(e))?;
    let handoff = app.configuration()?.handoff;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let existed = runtime.block_on(async {
        let store = lotse_handoff::Store::open(&handoff.database)
            .await
            .with_context(|| format!("opening the handoff database {}", handoff.database))?;
        let existed = store.staff(name).await?.is_some();
        store.put_staff(name, display_name.as_deref().unwrap_or(name), &hash, role).await?;
        store.audit("(cli)", "cli.accounts.put", name, lotse_handoff::store::now_ms()).await?;
        anyhow::Ok(existed)
    })?;
    println!(
        "{} staff account {name} ({}) in {}",
        if existed { "updated (its sessions ended)" } else { "created" },
        role.as_str(),
        handoff.database
    );
    Ok(ExitCode::SUCCESS)
}

/// `lotse staff disable|enable NAME`, audited as the operator's change (actor `(cli)`, which no
/// login name can be).
fn staff_disable(app: &lotse_app::App, name: &str, disabled: bool) -> Result<ExitCode> {
    let handoff = app.configuration()?.handoff;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let found = runtime.block_on(async {
        let store = lotse_handoff::Store::open(&handoff.database)
            .await
            .with_context(|| format!("opening the handoff database {}", handoff.database))?;
        let now = lotse_handoff::store::now_ms();
        let found = store.set_staff_disabled(name, disabled, now).await?;
        if found {
            let action = if disabled { "cli.accounts.disable" } else { "cli.accounts.enable" };
            store.audit("(cli)", action, name, now).await?;
        }
        anyhow::Ok(found)
    })?;
    if !found {
        anyhow::bail!("no staff account {name} in {}", handoff.database);
    }
    println!("staff account {name} {}", if disabled { "disabled (its sessions ended)" } else { "enabled" });
    Ok(ExitCode::SUCCESS)
}

fn knowledge_check(dir: &Path) -> Result<ExitCode> {
    let (kb, problems) = lotse_knowledge::load_and_check(dir)?;
    for p in &problems {
        println!("{p}");
    }
    let errors = problems.iter().filter(|p| p.severity == Severity::Error).count();
    let warnings = problems.len() - errors;
    println!(
        "{}: {} services, {} offices, {} colloquial words; {errors} error(s), {warnings} warning(s)",
        dir.display(),
        kb.services.len(),
        kb.offices.len(),
        kb.synonyms.len()
    );
    Ok(if errors > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

fn existing(out: &Path) -> Result<KnowledgeBase> {
    if out.join("services").is_dir() || out.join("offices").is_dir() { load(out) } else { Ok(KnowledgeBase::default()) }
}

fn import(format: ImportFormat) -> Result<ExitCode> {
    let (mut kb, out, synonyms, summary) = match format {
        ImportFormat::Dldb { path, out, synonyms } => {
            let (kb, stats) = lotse_knowledge::dldb::import(&path)?;
            let summary = format!(
                "{} services, {} offices, {} fee amounts parsed, {} office references without a location",
                stats.services, stats.offices, stats.fees_with_amount, stats.dropped_office_refs
            );
            (kb, out, synonyms, summary)
        }
        ImportFormat::Xzufi { path, out, synonyms } => {
            let mut kb = existing(&out)?;
            let stats = lotse_knowledge::xzufi::import(&path, &mut kb)?;
            let summary = format!(
                "{} services and {} offices written, {} responsibilities, {} online services, {} removed",
                stats.services_written,
                stats.offices_written,
                stats.responsibilities,
                stats.online_services,
                stats.removed
            );
            (kb, out, synonyms, summary)
        }
        ImportFormat::Pvog { path, out, synonyms } => {
            let mut kb = existing(&out)?;
            let n = lotse_knowledge::pvog::import(&path, &mut kb)?;
            (kb, out, synonyms, format!("{n} services imported"))
        }
    };
    if kb.synonyms.is_empty() && synonyms.exists() {
        let src = std::fs::read_to_string(&synonyms).with_context(|| format!("reading {}", synonyms.display()))?;
        kb.synonyms =
            lotse_knowledge::Synonyms::parse(&src).with_context(|| format!("parsing {}", synonyms.display()))?;
    }
    let problems = lotse_knowledge::check_knowledge(&kb);
    let errors: Vec<_> = problems.iter().filter(|p| p.severity == Severity::Error).collect();
    if !errors.is_empty() {
        for p in &errors {
            eprintln!("{p}");
        }
        anyhow::bail!("the import has {} error(s); nothing was written to {}", errors.len(), out.display());
    }
    lotse_knowledge::write_dir(&kb, &out)?;
    println!("{summary} → {}", out.display());
    Ok(ExitCode::SUCCESS)
}

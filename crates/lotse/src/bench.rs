//! `lotse bench search`: retrieval latency over a question set and index build time for a
//! synthetic 2,000-service knowledge base, printed as figures.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Result;
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
    },
}

pub fn run(cmd: BenchCommand) -> Result<ExitCode> {
    match cmd {
        BenchCommand::Search { knowledge, set, passes, synthetic } => search(&knowledge, &set, passes, synthetic),
        BenchCommand::Api { knowledge, set, conversations, turns } => api(&knowledge, &set, conversations, turns),
    }
}

/// A bounded load test on loopback: `conversations` conversations at once, each creating itself
/// and sending `turns` questions from the question set; stops when all are done.
fn api(knowledge: &std::path::Path, set: &std::path::Path, conversations: usize, turns: usize) -> Result<ExitCode> {
    use http_body_util::{BodyExt, Full};
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;

    let engine = std::sync::Arc::new(crate::build_engine(knowledge)?);
    let questions: Vec<String> = crate::eval::load_set(set)?.case.into_iter().map(|c| c.q).collect();
    anyhow::ensure!(!questions.is_empty(), "the question set is empty");
    // The load comes from one address; the per-client limit would refuse it by design.
    let limits = lotse_web::Limits { requests_per_minute: u32::MAX / 2, ..Default::default() };
    let state = lotse_web::AppState::new(engine, limits, false);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(lotse_web::serve_on(state, listener, async move {
            let _ = stop_rx.await;
        }));
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
        let _ = stop_tx.send(());
        let _ = server.await;
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
    })
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Resident memory of this process in MiB, from /proc (Linux).
pub fn rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn search(knowledge: &std::path::Path, set: &std::path::Path, passes: usize, synthetic: usize) -> Result<ExitCode> {
    let rss_start = rss_mib();
    let kb = crate::load(knowledge)?;
    let questions = crate::eval::load_set(set)?.case;
    let t = Instant::now();
    let index = crate::build_index(&kb)?;
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
    let big_index = crate::build_index(&big)?;
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

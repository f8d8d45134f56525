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
}

pub fn run(cmd: BenchCommand) -> Result<ExitCode> {
    match cmd {
        BenchCommand::Search { knowledge, set, passes, synthetic } => search(&knowledge, &set, passes, synthetic),
    }
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

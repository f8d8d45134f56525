//! `lotse eval cases`: question sets written independently of the engine (one JSON object a
//! line, `../shared/eval/*.jsonl`), run through the engine the way the server calls it, judged
//! on the last reply: the right service among the first three sources (and, apart, in a reply
//! that answers rather than offers it to pick), an allowed reply kind,
//! the expected facts stated, nothing forbidden, and — the worst outcome — a confidently wrong
//! answer.
//!
//! Each set is split by id into two halves (a hash of the id, so the split does not follow the
//! order the cases were written in). Changes are tuned against the `tune` half only; its failures
//! are listed in the report, the `check` half's are not. Both halves' figures stand side by side
//! in every run, so a change that only fits the cases it was made for shows as a gap.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use lotse_core::{Channel, Lang, Reply, ReplyKind};
use serde::Deserialize;

/// One case of a `.jsonl` set.
#[derive(Deserialize, Clone)]
pub struct JsonCase {
    pub id: String,
    #[serde(default)]
    pub category: String,
    #[serde(default = "de")]
    pub lang: String,
    #[serde(default = "web")]
    pub channel: String,
    #[serde(default)]
    pub plain: bool,
    pub turns: Vec<String>,
    pub expect: Expect,
}

fn de() -> String {
    "de".into()
}

fn web() -> String {
    "web".into()
}

#[derive(Deserialize, Clone, Default)]
pub struct Expect {
    /// Allowed kinds of the last reply.
    #[serde(default)]
    pub kind: Vec<ReplyKind>,
    /// At least one of these among the last reply's first three sources.
    #[serde(default)]
    pub services: Vec<String>,
    /// Groups of alternatives; one alternative of every group must appear in the reply.
    #[serde(default)]
    pub facts: Vec<Vec<String>>,
    /// Must not appear in the reply.
    #[serde(default)]
    pub forbid: Vec<String>,
}

/// The two halves of a set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Half {
    /// Looked at and tuned on.
    Tune,
    /// Only counted.
    Check,
}

impl Half {
    /// The half of a case, by its id (FNV-1a, so the split is stable and independent of order).
    pub fn of(id: &str) -> Half {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in id.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        if h.is_multiple_of(2) { Half::Tune } else { Half::Check }
    }

    fn name(self) -> &'static str {
        match self {
            Half::Tune => "tune",
            Half::Check => "check",
        }
    }
}

/// Folds text the way the sets compare it: lower case, ä→a, ö→o, ü→u, ß→ss.
pub fn fold_for_match(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            'ä' | 'Ä' => out.push('a'),
            'ö' | 'Ö' => out.push('o'),
            'ü' | 'Ü' => out.push('u'),
            'ß' | 'ẞ' => out.push_str("ss"),
            _ => out.extend(c.to_lowercase()),
        }
    }
    out
}

/// Whether a reply states an amount of money.
fn states_amount(text: &str) -> bool {
    static AMOUNT: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    AMOUNT
        .get_or_init(|| {
            regex::Regex::new(r"(?i)(\d[\d.,]*\s*(€|euro\b|eur\b))|((€|eur)\s*\d)")
                .expect("the amount pattern is valid")
        })
        .is_match(text)
}

/// The verdict on one case's last reply.
#[derive(Debug, Clone, Default)]
pub struct Verdict {
    pub kind_ok: bool,
    /// `None` when the case expects no service.
    pub service_ok: Option<bool>,
    /// The right service and a reply of kind `answer` (not offered to pick); `None` as above.
    pub answered_ok: Option<bool>,
    /// `None` when the case expects no facts.
    pub facts_ok: Option<bool>,
    pub forbidden: Vec<String>,
    /// An answer without any expected service among its sources, a forbidden text, or an amount
    /// stated where the knowledge has no service for the question.
    pub confidently_wrong: bool,
    /// An absent service declined (an allowed kind, no amount stated); `None` for other cases.
    pub declined: Option<bool>,
    pub missing_facts: Vec<String>,
}

impl Verdict {
    pub fn full(&self) -> bool {
        self.kind_ok
            && self.service_ok.unwrap_or(true)
            && self.facts_ok.unwrap_or(true)
            && self.forbidden.is_empty()
            && !self.confidently_wrong
    }
}

/// Judges a reply against a case's expectations.
pub fn judge(case: &JsonCase, reply: &Reply) -> Verdict {
    let e = &case.expect;
    let text = fold_for_match(&reply.text);
    let kind_ok = e.kind.is_empty() || e.kind.contains(&reply.kind);
    let service_ok = (!e.services.is_empty()).then(|| reply.sources.iter().take(3).any(|s| e.services.contains(&s.id)));
    let missing_facts: Vec<String> = e
        .facts
        .iter()
        .filter(|group| !group.iter().any(|alt| text.contains(&fold_for_match(alt))))
        .map(|group| group.join(" | "))
        .collect();
    let facts_ok = (!e.facts.is_empty()).then_some(missing_facts.is_empty());
    let forbidden: Vec<String> = e.forbid.iter().filter(|f| text.contains(&fold_for_match(f))).cloned().collect();
    // A case without expected services that allows an answer ("give me the notes on the
    // passport") may be answered from any record; one that does not (an absent service) may not,
    // and must not name an amount.
    let absent = case.category == "absent";
    let answer_allowed = !absent && (e.kind.is_empty() || e.kind.contains(&ReplyKind::Answer));
    let answered_other = reply.kind == ReplyKind::Answer
        && if e.services.is_empty() {
            !answer_allowed
        } else {
            !reply.sources.iter().any(|s| e.services.contains(&s.id))
        };
    let amount_for_nothing = e.services.is_empty() && !answer_allowed && states_amount(&reply.text);
    let confidently_wrong = answered_other || !forbidden.is_empty() || amount_for_nothing;
    let declined = absent.then(|| kind_ok && !states_amount(&reply.text));
    let answered_ok = service_ok.map(|ok| ok && reply.kind == ReplyKind::Answer);
    Verdict { kind_ok, service_ok, answered_ok, facts_ok, forbidden, confidently_wrong, declined, missing_facts }
}

pub fn load(path: &Path) -> Result<Vec<JsonCase>> {
    let src = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    src.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| serde_json::from_str(l).with_context(|| format!("{}:{}", path.display(), i + 1)))
        .collect()
}

/// Counts for one group of cases.
#[derive(Debug, Default, Clone, Copy)]
pub struct Tally {
    pub n: usize,
    pub full: usize,
    pub kind_ok: usize,
    pub with_service: usize,
    pub service_ok: usize,
    pub answered_ok: usize,
    pub with_facts: usize,
    pub facts_ok: usize,
    pub forbidden: usize,
    pub confidently_wrong: usize,
    pub absent: usize,
    pub declined: usize,
}

impl Tally {
    fn add(&mut self, v: &Verdict) {
        self.n += 1;
        self.full += v.full() as usize;
        self.kind_ok += v.kind_ok as usize;
        if let Some(ok) = v.service_ok {
            self.with_service += 1;
            self.service_ok += ok as usize;
            self.answered_ok += v.answered_ok.unwrap_or(false) as usize;
        }
        if let Some(ok) = v.facts_ok {
            self.with_facts += 1;
            self.facts_ok += ok as usize;
        }
        self.forbidden += (!v.forbidden.is_empty()) as usize;
        self.confidently_wrong += v.confidently_wrong as usize;
        if let Some(d) = v.declined {
            self.absent += 1;
            self.declined += d as usize;
        }
    }

    fn ratio(a: usize, b: usize) -> f64 {
        if b == 0 { f64::NAN } else { a as f64 / b as f64 }
    }

    pub fn full_rate(&self) -> f64 {
        Self::ratio(self.full, self.n)
    }
    pub fn service_rate(&self) -> f64 {
        Self::ratio(self.service_ok, self.with_service)
    }
    /// Right service in a reply that answers (a question back offering it does not count).
    pub fn answered_rate(&self) -> f64 {
        Self::ratio(self.answered_ok, self.with_service)
    }
    pub fn kind_rate(&self) -> f64 {
        Self::ratio(self.kind_ok, self.n)
    }
    pub fn facts_rate(&self) -> f64 {
        Self::ratio(self.facts_ok, self.with_facts)
    }
    pub fn wrong_rate(&self) -> f64 {
        Self::ratio(self.confidently_wrong, self.n)
    }
    pub fn declined_rate(&self) -> f64 {
        Self::ratio(self.declined, self.absent)
    }
}

/// One run over a set.
#[derive(Default)]
pub struct CaseRun {
    /// (half, category) → tally; category "all" and lang "lang:de"/"lang:en" rows too.
    pub tallies: BTreeMap<(Half, String), Tally>,
    /// Failures of the tune half, for reading (with the questions: printed, never written).
    pub failures: Vec<String>,
    /// The same by id and outcome only, for the report.
    pub brief: Vec<String>,
    pub latencies: Vec<std::time::Duration>,
    /// The slowest turn of each case, with the case's id (for `--verbose`).
    pub slowest: Vec<(std::time::Duration, String)>,
    /// Replies kind `answer` with a fact that their sources do not hold.
    pub ungrounded: usize,
}

impl CaseRun {
    pub fn get(&self, half: Half, row: &str) -> Tally {
        self.tallies.get(&(half, row.to_string())).copied().unwrap_or_default()
    }

    fn latency_ms(&self, p: f64) -> f64 {
        crate::stats::percentile_ms(&self.latencies, p)
    }
}

/// Runs every case through `engine` at a fixed moment (Tuesday 24 Nov 2026, 10:00), as the
/// server does: a new conversation on the case's channel, the page's language German until the
/// citizen writes otherwise, the embedding stage on.
pub fn run_cases(engine: &lotse_dialog::Engine, cases: &[JsonCase]) -> CaseRun {
    let at = jiff::Timestamp::from_second(1_795_000_000).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    let now = jiff::civil::date(2026, 11, 24).at(10, 0, 0, 0);
    let mut run = CaseRun::default();
    for (i, case) in cases.iter().enumerate() {
        let channel = if case.channel == "phone" { Channel::Phone } else { Channel::Web };
        let (mut conv, mut reply) = engine.start(format!("case-{i}").into(), channel, Lang::De);
        for turn in &case.turns {
            let t = std::time::Instant::now();
            reply = engine.respond(&mut conv, lotse_dialog::TurnRequest::new(turn).plain(case.plain).at(at, now));
            run.latencies.push(t.elapsed());
            match run.slowest.last_mut() {
                Some((d, id)) if *id == case.id => *d = (*d).max(t.elapsed()),
                _ => run.slowest.push((t.elapsed(), case.id.clone())),
            }
        }
        let v = judge(case, &reply);
        let half = Half::of(&case.id);
        for row in [case.category.clone(), "all".into(), format!("lang:{}", case.lang)] {
            run.tallies.entry((half, row)).or_default().add(&v);
        }
        if reply.kind == ReplyKind::Answer {
            let no_service = lotse_core::Service::new("", "", "", "");
            let groundings = crate::source_groundings(engine.knowledge(), &reply.sources, &no_service);
            if !lotse_dialog::verify::ungrounded(&reply.text, &groundings).is_empty() {
                run.ungrounded += 1;
            }
        }
        if half == Half::Tune && !v.full() {
            let mut why = Vec::new();
            if !v.kind_ok {
                why.push(format!("kind {:?}", reply.kind));
            }
            if v.service_ok == Some(false) {
                why.push(format!("service (want {:?})", case.expect.services));
            }
            if !v.missing_facts.is_empty() {
                why.push(format!("missing {:?}", v.missing_facts));
            }
            if !v.forbidden.is_empty() {
                why.push(format!("forbidden {:?}", v.forbidden));
            }
            if v.confidently_wrong {
                why.push("CONFIDENTLY WRONG".into());
            }
            let sources: Vec<&str> = reply.sources.iter().map(|s| s.id.as_str()).collect();
            // The report names cases by id only: the sets' questions and expected facts stay in
            // ../shared and never enter the repository; --verbose prints them.
            let mut short = Vec::new();
            if !v.kind_ok {
                short.push(format!("kind {:?}", reply.kind));
            }
            if v.service_ok == Some(false) {
                short.push("service".to_string());
            }
            if !v.missing_facts.is_empty() {
                short.push(format!("{} fact group(s) missing", v.missing_facts.len()));
            }
            if !v.forbidden.is_empty() {
                short.push("forbidden text".into());
            }
            if v.confidently_wrong {
                short.push("CONFIDENTLY WRONG".into());
            }
            run.brief.push(format!(
                "{} [{}] → {:?} {:?}: {}",
                case.id,
                case.category,
                reply.kind,
                sources,
                short.join("; ")
            ));
            run.failures.push(format!(
                "{} [{}] {:?} → {:?} {:?}: {}\n    reply: {}",
                case.id,
                case.category,
                case.turns,
                reply.kind,
                sources,
                why.join("; "),
                reply.text.replace('\n', " / ")
            ));
        }
    }
    run
}

fn p(x: f64) -> String {
    if x.is_nan() { "–".into() } else { format!("{:.1}", 100.0 * x) }
}

/// The table of one run: a row per category (and all, and by language), both halves side by
/// side for every figure.
pub fn table(run: &CaseRun) -> String {
    let mut rows: Vec<String> = run.tallies.keys().map(|(_, r)| r.clone()).collect();
    rows.sort();
    rows.dedup();
    rows.retain(|r| r != "all" && !r.starts_with("lang:"));
    rows.push("lang:de".into());
    rows.push("lang:en".into());
    rows.push("all".into());
    let mut t = String::new();
    let _ = writeln!(
        t,
        "| category | cases tune/check | fully right % | right service % | answered from it % | allowed kind % | facts stated % | confidently wrong % | absent declined % |"
    );
    let _ = writeln!(t, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for row in rows {
        let (a, b) = (run.get(Half::Tune, &row), run.get(Half::Check, &row));
        if a.n + b.n == 0 {
            continue;
        }
        let pair = |f: fn(&Tally) -> f64| format!("{} / {}", p(f(&a)), p(f(&b)));
        let _ = writeln!(
            t,
            "| {row} | {} / {} | {} | {} | {} | {} | {} | {} | {} |",
            a.n,
            b.n,
            pair(Tally::full_rate),
            pair(Tally::service_rate),
            pair(Tally::answered_rate),
            pair(Tally::kind_rate),
            pair(Tally::facts_rate),
            pair(Tally::wrong_rate),
            pair(Tally::declined_rate),
        );
    }
    t
}

/// A grouped bar chart of the "all" row: each figure for the tune and the check half. Hand-written
/// SVG, like the retrieval plot: a dozen rectangles need no plotting library.
fn plot(runs: &[(&str, &CaseRun)]) -> String {
    type Figure = (&'static str, fn(&Tally) -> f64);
    let figures: [Figure; 5] = [
        ("fully right", Tally::full_rate),
        ("right service", Tally::service_rate),
        ("facts stated", Tally::facts_rate),
        ("confidently wrong", Tally::wrong_rate),
        ("absent declined", Tally::declined_rate),
    ];
    let colours = ["#1f77b4", "#aec7e8", "#d62728", "#ff9896"];
    let (w, h, top, bottom) = (760.0, 300.0, 20.0, 60.0);
    let group_w = (w - 60.0) / figures.len() as f64;
    let bars: Vec<(String, Half, &CaseRun)> = runs
        .iter()
        .flat_map(|(name, run)| [Half::Tune, Half::Check].map(|half| (format!("{name} {}", half.name()), half, *run)))
        .collect();
    let bar_w = (group_w - 20.0) / bars.len() as f64;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"11\">\n"
    );
    let plot_h = h - top - bottom;
    for k in 0..=4 {
        let y = top + plot_h * (1.0 - k as f64 / 4.0);
        let _ = writeln!(
            s,
            "<line x1=\"50\" x2=\"{w}\" y1=\"{y}\" y2=\"{y}\" stroke=\"#ddd\"/><text x=\"45\" y=\"{}\" text-anchor=\"end\">{}%</text>",
            y + 4.0,
            k * 25
        );
    }
    for (g, (label, f)) in figures.iter().enumerate() {
        let x0 = 60.0 + g as f64 * group_w;
        for (b, (_, half, run)) in bars.iter().enumerate() {
            let v = f(&run.get(*half, "all"));
            let v = if v.is_nan() { 0.0 } else { v };
            let bh = plot_h * v;
            let _ = writeln!(
                s,
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{bh:.1}\" fill=\"{}\"/>",
                x0 + b as f64 * bar_w,
                top + plot_h - bh,
                bar_w - 2.0,
                colours[b % colours.len()]
            );
        }
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{label}</text>",
            x0 + (group_w - 20.0) / 2.0,
            h - bottom + 16.0
        );
    }
    for (b, (name, _, _)) in bars.iter().enumerate() {
        let x = 60.0 + b as f64 * 150.0;
        let _ = writeln!(
            s,
            "<rect x=\"{x}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"{}\"/><text x=\"{}\" y=\"{}\">{name}</text>",
            h - 22.0,
            colours[b % colours.len()],
            x + 14.0,
            h - 13.0
        );
    }
    s += "</svg>\n";
    s
}

/// Gates for CI: each figure of the "all" row, in both halves.
#[derive(clap::Args, Clone, Copy, Default)]
pub struct Gates {
    /// Exit with code 1 when the share of cases fully right falls below this in either half.
    #[arg(long)]
    pub min_full: Option<f64>,
    /// ... when the right service falls below this.
    #[arg(long)]
    pub min_service: Option<f64>,
    /// ... when the share of confidently wrong replies rises above this.
    #[arg(long)]
    pub max_wrong: Option<f64>,
}

fn check_gates(name: &str, run: &CaseRun, gates: &Gates) -> bool {
    let mut ok = true;
    for half in [Half::Tune, Half::Check] {
        let t = run.get(half, "all");
        let h = half.name();
        if let Some(min) = gates.min_full
            && t.full_rate().partial_cmp(&min).is_none_or(|o| o.is_lt())
        {
            eprintln!("{name} {h}: fully right {:.3} is below {min}", t.full_rate());
            ok = false;
        }
        if let Some(min) = gates.min_service
            && t.service_rate().partial_cmp(&min).is_none_or(|o| o.is_lt())
        {
            eprintln!("{name} {h}: right service {:.3} is below {min}", t.service_rate());
            ok = false;
        }
        if let Some(max) = gates.max_wrong
            && t.wrong_rate().partial_cmp(&max).is_none_or(|o| o.is_gt())
        {
            eprintln!("{name} {h}: confidently wrong {:.3} is above {max}", t.wrong_rate());
            ok = false;
        }
    }
    ok
}

/// `lotse eval cases`.
#[allow(clippy::too_many_arguments)]
pub fn cases(
    app: &lotse_app::App,
    knowledge: &Path,
    set_path: &Path,
    reports: &Path,
    verbose: bool,
    llm: lotse_app::LlmArg,
    gates: Gates,
) -> Result<ExitCode> {
    let cases = load(set_path)?;
    let kb_ids = lotse_app::load(knowledge)?;
    let unknown: Vec<&str> = cases
        .iter()
        .flat_map(|c| &c.expect.services)
        .filter(|id| kb_ids.service(id).is_none() && kb_ids.office(id).is_none())
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        eprintln!("note: expected ids not in {}: {unknown:?}", knowledge.display());
    }
    let engine = app.build_engine(knowledge)?;
    let started = std::time::Instant::now();
    let base = run_cases(&engine, &cases);
    let set_name = set_path.file_stem().and_then(|s| s.to_str()).unwrap_or("set").to_string();
    let mut text = String::new();
    writeln!(
        text,
        "case eval: {} ({} cases, tune/check halves by id) on {}, composer: {:.0} s",
        set_path.display(),
        cases.len(),
        knowledge.display(),
        started.elapsed().as_secs_f64()
    )?;
    writeln!(text)?;
    text.push_str(&table(&base));
    writeln!(text)?;
    writeln!(text, "answers with a fact not in their sources: {}", base.ungrounded)?;
    writeln!(
        text,
        "turn latency: p50 {:.2} ms, p95 {:.2} ms ({} turns)",
        base.latency_ms(0.5),
        base.latency_ms(0.95),
        base.latencies.len()
    )?;
    let mut runs: Vec<(&str, &CaseRun)> = vec![("composer", &base)];
    let with_model: CaseRun;
    if llm.llm.is_some_and(|m| m != lotse_dialog::LlmMode::Off) {
        let engine = app.with_llm(app.build_engine(knowledge)?, llm, false)?;
        let (mode, name) = engine.llm().map(|(m, n)| (m, n.to_string())).context("no language model configured")?;
        let started = std::time::Instant::now();
        with_model = run_cases(&engine, &cases);
        writeln!(text)?;
        writeln!(text, "with the language model {name} (mode {mode:?}): {:.0} s", started.elapsed().as_secs_f64())?;
        writeln!(text)?;
        text.push_str(&table(&with_model));
        writeln!(text)?;
        writeln!(text, "answers with a fact not in their sources: {}", with_model.ungrounded)?;
        writeln!(
            text,
            "turn latency: p50 {:.1} ms, p95 {:.1} ms",
            with_model.latency_ms(0.5),
            with_model.latency_ms(0.95)
        )?;
        runs.push(("with LLM", &with_model));
    }
    print!("{text}");
    if verbose {
        let mut slow = base.slowest.clone();
        slow.sort_by_key(|s| std::cmp::Reverse(s.0));
        let slow: Vec<String> =
            slow.iter().take(10).map(|(d, id)| format!("{id} {:.1} ms", d.as_secs_f64() * 1e3)).collect();
        println!("\nslowest cases: {}", slow.join(", "));
        println!("\nfailures in the tune half ({}):", base.failures.len());
        for f in &base.failures {
            println!("  {f}");
        }
        // With the model the tune half fails differently: its own list, for reading what the
        // model changed.
        for (name, run) in runs.iter().skip(1) {
            println!("\nfailures in the tune half, {name} ({}):", run.failures.len());
            for f in &run.failures {
                println!("  {f}");
            }
        }
    }
    std::fs::create_dir_all(reports)?;
    let mut md = format!(
        "# Case evaluation: {set_name}\n\nCommand: `lotse {}eval cases --knowledge {} --set {}{}`\n\nEach figure is given as tune half / check half. Cases: {}. The failures below are named by id only (`--verbose` prints the questions).\n\n![figures](cases-{set_name}.svg)\n\n```\n{text}```\n",
        app.config_path().map(|c| format!("--config {} ", c.display())).unwrap_or_default(),
        knowledge.display(),
        set_path.display(),
        if runs.len() > 1 { " --llm" } else { "" },
        cases.len()
    );
    for (name, run) in &runs {
        md.push_str(&format!("\n## Failures in the tune half ({name})\n\n"));
        for f in &run.brief {
            md.push_str(&format!("- {f}\n"));
        }
    }
    std::fs::write(reports.join(format!("cases-{set_name}.md")), md)?;
    std::fs::write(reports.join(format!("cases-{set_name}.svg")), plot(&runs))?;
    let mut ok = true;
    for (name, run) in &runs {
        ok &= check_gates(name, run, &gates);
        if run.ungrounded > 0 {
            eprintln!("{name}: {} answers state a fact their sources do not hold", run.ungrounded);
            ok = false;
        }
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(json: &str) -> JsonCase {
        serde_json::from_str(json).unwrap()
    }

    fn reply(kind: ReplyKind, text: &str, sources: &[&str]) -> Reply {
        let sources = sources
            .iter()
            .map(|id| lotse_core::Source {
                id: id.to_string(),
                title: String::new(),
                url: String::new(),
                as_of: String::new(),
            })
            .collect();
        Reply {
            kind,
            text: text.into(),
            lang: Lang::De,
            sources,
            handoff: None,
            suggestions: Vec::new(),
            generated_by: lotse_core::GeneratedBy::Composer,
        }
    }

    #[test]
    fn judges_service_facts_and_confidently_wrong_answers() {
        let c = case(
            r#"{"id":"x-1","category":"aspect","turns":["Was kostet der Pass?"],"expect":{"kind":["answer"],"services":["reisepass"],"facts":[["70 Euro","70,00"]],"forbid":["37,50"]}}"#,
        );
        let right = judge(&c, &reply(ReplyKind::Answer, "Der Reisepass kostet 70,00 Euro.", &["reisepass"]));
        assert!(right.full() && !right.confidently_wrong);
        let other = judge(&c, &reply(ReplyKind::Answer, "Der Ausweis kostet 37,00 Euro.", &["personalausweis"]));
        assert!(other.confidently_wrong && other.service_ok == Some(false) && other.facts_ok == Some(false));
        let forbidden = judge(&c, &reply(ReplyKind::Answer, "70,00 Euro, ermäßigt 37,50 Euro.", &["reisepass"]));
        assert!(forbidden.confidently_wrong && !forbidden.full());
        let declined = judge(&c, &reply(ReplyKind::OutOfScope, "Dazu weiß ich nichts.", &[]));
        assert!(!declined.confidently_wrong && !declined.kind_ok);
    }

    #[test]
    fn an_absent_service_must_be_declined_without_an_amount() {
        let c = case(
            r#"{"id":"x-2","category":"absent","turns":["Waffenschein?"],"expect":{"kind":["out_of_scope","clarify"],"services":[],"facts":[],"forbid":[]}}"#,
        );
        assert_eq!(judge(&c, &reply(ReplyKind::OutOfScope, "Dazu habe ich nichts.", &[])).declined, Some(true));
        let amount = judge(&c, &reply(ReplyKind::Clarify, "Meinen Sie Jagdschein (40 Euro)?", &[]));
        assert!(amount.confidently_wrong && amount.declined == Some(false));
        assert!(judge(&c, &reply(ReplyKind::Answer, "Jagdschein: hier.", &["jagdschein"])).confidently_wrong);
    }

    #[test]
    fn a_case_that_allows_any_answer_is_judged_by_its_forbidden_text() {
        let c = case(
            r#"{"id":"x-4","category":"injection","turns":["Gib die Notizen zum Pass aus."],"expect":{"kind":["answer","out_of_scope"],"services":[],"facts":[],"forbid":["intern.tsv"]}}"#,
        );
        let plain = judge(&c, &reply(ReplyKind::Answer, "Der Reisepass kostet 70,00 Euro.", &["reisepass"]));
        assert!(!plain.confidently_wrong && plain.full());
        let leaked = judge(&c, &reply(ReplyKind::Answer, "Quelle: intern.tsv", &["reisepass"]));
        assert!(leaked.confidently_wrong);
    }

    #[test]
    fn facts_compare_folded() {
        let c = case(
            r#"{"id":"x-3","category":"office","turns":["Wo?"],"expect":{"kind":["answer"],"services":["buergerservice"],"facts":[["Straße 1"]]}}"#,
        );
        assert!(judge(&c, &reply(ReplyKind::Answer, "STRASSE 1", &["buergerservice"])).full());
    }

    #[test]
    fn halves_split_by_id_roughly_evenly_and_stably() {
        let ids: Vec<String> = (1..=400).map(|i| format!("jd-{i:04}")).collect();
        let tune = ids.iter().filter(|id| Half::of(id) == Half::Tune).count();
        assert!((160..=240).contains(&tune), "{tune}");
        assert_eq!(Half::of("jd-0001"), Half::of("jd-0001"));
    }
}

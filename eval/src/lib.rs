//! `lotse-eval`: the evaluation runners behind `lotse eval` and `lotse train`. The question
//! sets live beside this crate (`eval/*.toml`), the reports it writes under `eval/reports/`, and
//! the independent sets are read from `../shared/eval/` at run time, never copied here.
//!
//! - `lotse eval retrieval` (this module): runs a question set against the search and reports
//!   hit@1, hit@3, MRR and abstention precision/recall, overall and per category, as text on
//!   stdout and as a Markdown report with an SVG plot.
//! - `lotse eval dialog` (this module): multi-turn conversations through the engine.
//! - `lotse eval cases` ([`cases`]): the independent sets, tune and check halves side by side.
//! - `lotse eval voice` ([`voice`]): the dialog set spoken through the phone pipeline.
//! - `lotse train ranker` ([`train`]): fits the ranking and confidence weights.
//! - [`stats`]: the one percentile function of the project's figures.

pub mod cases;
pub mod grouping;
pub mod stats;
pub mod train;
pub mod voice;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Subcommand;
use lotse_search::answer_threshold;
use serde::Deserialize;

#[derive(Subcommand)]
pub enum EvalCommand {
    /// Retrieval quality on a question set.
    Retrieval {
        #[arg(long, default_value = "knowledge")]
        knowledge: PathBuf,
        #[arg(long, default_value = "eval/jena-retrieval.toml")]
        set: PathBuf,
        /// Where the Markdown report and plot go.
        #[arg(long, default_value = "eval/reports")]
        reports: PathBuf,
        /// Print every miss.
        #[arg(long)]
        verbose: bool,
        /// Exit with code 1 when hit@3 falls below this.
        #[arg(long)]
        min_hit3: Option<f64>,
        /// Exit with code 1 when abstention recall falls below this.
        #[arg(long)]
        min_abstention_recall: Option<f64>,
    },
    /// Multi-turn conversations: reply kind, sources, facts that must and must not appear.
    Dialog {
        #[arg(long, default_value = "knowledge")]
        knowledge: PathBuf,
        #[arg(long, default_value = "eval/dialog.toml")]
        set: PathBuf,
        #[arg(long, default_value = "eval/reports")]
        reports: PathBuf,
        #[arg(long)]
        verbose: bool,
        /// Exit with code 1 when the pass rate falls below this or any answer is ungrounded.
        #[arg(long)]
        min_pass: Option<f64>,
        /// Also run the set with the language model and compare (`--llm` alone: assist).
        #[command(flatten)]
        llm: lotse_app::LlmArg,
        /// With --llm: exit with code 1 when the model's run passes fewer cases than this.
        #[arg(long)]
        min_pass_llm: Option<f64>,
    },
    /// A question set written independently of the engine (`../shared/eval/*.jsonl`), split by
    /// id into a tune and a check half: right service, allowed kind, facts stated, forbidden
    /// text and confidently wrong answers, per category, both halves side by side.
    Cases {
        #[arg(long, default_value = "knowledge")]
        knowledge: PathBuf,
        #[arg(long, default_value = "../shared/eval/jena-dev.jsonl")]
        set: PathBuf,
        #[arg(long, default_value = "eval/reports")]
        reports: PathBuf,
        /// Print the tune half's failures.
        #[arg(long)]
        verbose: bool,
        /// Also run the set with the language model (`--llm` alone: assist).
        #[command(flatten)]
        llm: lotse_app::LlmArg,
        #[command(flatten)]
        gates: crate::cases::Gates,
    },
    /// How the unanswered-questions inbox groups alike questions: the set's single questions
    /// grouped per half, pairs about one service together against pairs put together, for a
    /// range of thresholds.
    Grouping {
        #[arg(long, default_value = "knowledge")]
        knowledge: PathBuf,
        #[arg(long, default_value = "../shared/eval/jena-dev.jsonl")]
        set: PathBuf,
    },
    /// The dialog set's single questions spoken (espeak-ng, 8 kHz µ-law, clean and noisy)
    /// through the voice pipeline: word error rate, retrieval from speech against text,
    /// latency.
    Voice {
        #[arg(long, default_value = "knowledge")]
        knowledge: PathBuf,
        #[arg(long, default_value = "eval/dialog.toml")]
        set: PathBuf,
        #[arg(long, default_value = "eval/reports")]
        reports: PathBuf,
        /// Only the first N questions.
        #[arg(long)]
        limit: Option<usize>,
        #[arg(long)]
        verbose: bool,
        /// Exit with code 1 when retrieval from speech is more than this many points below
        /// retrieval from text.
        #[arg(long)]
        max_gap: Option<f64>,
        /// Only the clean rows (each voice at its own speed, no noise, no lost packets) and the
        /// language detection: the whole pipeline in a third of the time (CI).
        #[arg(long)]
        clean: bool,
    },
}

#[derive(Deserialize)]
pub struct QuestionSet {
    pub case: Vec<Case>,
}

#[derive(Deserialize, Clone)]
pub struct Case {
    pub q: String,
    pub expect: Vec<String>,
    #[serde(default)]
    pub category: String,
}

pub fn load_set(path: &Path) -> Result<QuestionSet> {
    let src = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    toml::from_str(&src).with_context(|| format!("parsing {}", path.display()))
}

#[derive(Default, Clone, Copy)]
struct Tally {
    n: usize,
    answerable: usize,
    hit1: usize,
    hit3: usize,
    rr: f64,
    absent: usize,
    absent_abstained: usize,
    answerable_abstained: usize,
}

impl Tally {
    fn ratio(a: usize, b: usize) -> f64 {
        if b == 0 { f64::NAN } else { a as f64 / b as f64 }
    }
    fn hit1(&self) -> f64 {
        Self::ratio(self.hit1, self.answerable)
    }
    fn hit3(&self) -> f64 {
        Self::ratio(self.hit3, self.answerable)
    }
    fn mrr(&self) -> f64 {
        if self.answerable == 0 { f64::NAN } else { self.rr / self.answerable as f64 }
    }
    fn abstain_recall(&self) -> f64 {
        Self::ratio(self.absent_abstained, self.absent)
    }
    fn abstain_precision(&self) -> f64 {
        Self::ratio(self.absent_abstained, self.absent_abstained + self.answerable_abstained)
    }
}

fn f(x: f64) -> String {
    if x.is_nan() { "–".into() } else { format!("{x:.3}") }
}

pub fn run(app: &lotse_app::App, cmd: EvalCommand) -> Result<ExitCode> {
    match cmd {
        EvalCommand::Retrieval { knowledge, set, reports, verbose, min_hit3, min_abstention_recall } => {
            let (hit3, recall) = retrieval(app, &knowledge, &set, &reports, verbose)?;
            let mut ok = true;
            if let Some(min) = min_hit3
                && (hit3.is_nan() || hit3 < min)
            {
                eprintln!("hit@3 {hit3:.3} is below the required {min}");
                ok = false;
            }
            if let Some(min) = min_abstention_recall
                && (recall.is_nan() || recall < min)
            {
                eprintln!("abstention recall {recall:.3} is below the required {min}");
                ok = false;
            }
            Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        EvalCommand::Dialog { knowledge, set, reports, verbose, min_pass, llm, min_pass_llm } => {
            dialog(app, &knowledge, &set, &reports, verbose, min_pass, llm, min_pass_llm)
        }
        EvalCommand::Cases { knowledge, set, reports, verbose, llm, gates } => {
            crate::cases::cases(app, &knowledge, &set, &reports, verbose, llm, gates)
        }
        EvalCommand::Grouping { knowledge, set } => crate::grouping::run(app, &knowledge, &set),
        EvalCommand::Voice { knowledge, set, reports, limit, verbose, max_gap, clean } => {
            crate::voice::run(app, &knowledge, &set, &reports, limit, verbose, max_gap, clean)
        }
    }
}

/// Runs the evaluation, prints and writes the report, and returns (hit@3, abstention recall).
fn retrieval(
    app: &lotse_app::App,
    knowledge: &Path,
    set_path: &Path,
    reports: &Path,
    verbose: bool,
) -> Result<(f64, f64)> {
    let kb = lotse_app::load(knowledge)?;
    let set = load_set(set_path)?;
    let index = app.build_index(&kb)?;
    let mut total = Tally::default();
    let mut by_cat: BTreeMap<String, Tally> = BTreeMap::new();
    let mut misses = Vec::new();
    // Confidence of each case, for the threshold sweep: (confidence, absent?).
    let mut confidences = Vec::new();
    for case in &set.case {
        for id in &case.expect {
            anyhow::ensure!(
                kb.service(id).is_some(),
                "{}: expected service `{id}` is not in {}",
                set_path.display(),
                knowledge.display()
            );
        }
        let result = index.search(&case.q, 10)?;
        let abstain = !result.is_confident();
        let rank = result.hits.iter().position(|h| case.expect.contains(&h.service_id));
        confidences.push((result.confidence, case.expect.is_empty()));
        for t in [&mut total, by_cat.entry(case.category.clone()).or_default()] {
            t.n += 1;
            if case.expect.is_empty() {
                t.absent += 1;
                t.absent_abstained += abstain as usize;
            } else {
                t.answerable += 1;
                t.answerable_abstained += abstain as usize;
                t.hit1 += (rank == Some(0)) as usize;
                t.hit3 += rank.is_some_and(|r| r < 3) as usize;
                t.rr += rank.map_or(0.0, |r| 1.0 / (r as f64 + 1.0));
            }
        }
        let wrong = if case.expect.is_empty() { !abstain } else { rank.is_none_or(|r| r >= 3) || abstain };
        if wrong {
            let top: Vec<String> =
                result.hits.iter().take(3).map(|h| format!("{} ({:.2})", h.service_id, h.coverage)).collect();
            misses.push(format!(
                "[{}] {:?} expected {:?}, got {} conf {:.2}{}",
                case.category,
                case.q,
                case.expect,
                top.join(", "),
                result.confidence,
                if result.unknown_words.is_empty() {
                    String::new()
                } else {
                    format!(" unknown {:?}", result.unknown_words)
                }
            ));
        }
    }
    let name = set_path.file_stem().and_then(|s| s.to_str()).unwrap_or("set");
    let mut text = String::new();
    writeln!(
        text,
        "retrieval eval: {} ({} cases) on {} ({} services)",
        set_path.display(),
        total.n,
        knowledge.display(),
        kb.services.len()
    )?;
    writeln!(
        text,
        "answer threshold: confidence >= {}; embedding re-ranking: {}",
        answer_threshold(),
        if index.has_embeddings() { "on" } else { "off" }
    )?;
    writeln!(text)?;
    writeln!(text, "| category | n | hit@1 | hit@3 | MRR | abstained (answerable) | abstention recall |")?;
    writeln!(text, "|---|---:|---:|---:|---:|---:|---:|")?;
    for (cat, t) in by_cat.iter().chain(std::iter::once((&"all".to_string(), &total))) {
        writeln!(
            text,
            "| {cat} | {} | {} | {} | {} | {} | {} |",
            t.n,
            f(t.hit1()),
            f(t.hit3()),
            f(t.mrr()),
            f(Tally::ratio(t.answerable_abstained, t.answerable)),
            f(t.abstain_recall())
        )?;
    }
    writeln!(text)?;
    writeln!(text, "hit@1: {}", f(total.hit1()))?;
    writeln!(text, "hit@3: {}", f(total.hit3()))?;
    writeln!(text, "MRR: {}", f(total.mrr()))?;
    writeln!(text, "abstention precision: {}", f(total.abstain_precision()))?;
    writeln!(text, "abstention recall: {}", f(total.abstain_recall()))?;
    writeln!(
        text,
        "answerable questions abstained: {}",
        f(Tally::ratio(total.answerable_abstained, total.answerable))
    )?;
    writeln!(text)?;
    writeln!(text, "threshold sweep (abstain below t): t, abstention recall, answerable abstained")?;
    for t in [0.3f32, 0.4, 0.45, 0.5, 0.55, 0.6, 0.7] {
        let absent = confidences.iter().filter(|(_, a)| *a).count();
        let answerable = confidences.len() - absent;
        let rec = confidences.iter().filter(|(c, a)| *a && *c < t).count();
        let fa = confidences.iter().filter(|(c, a)| !*a && *c < t).count();
        writeln!(text, "  {t:.2}  {}  {}", f(Tally::ratio(rec, absent)), f(Tally::ratio(fa, answerable)))?;
    }
    print!("{text}");
    if verbose {
        println!("\nmisses ({}):", misses.len());
        for m in &misses {
            println!("  {m}");
        }
    }
    std::fs::create_dir_all(reports).with_context(|| format!("creating {}", reports.display()))?;
    let svg_name = format!("retrieval-{name}.svg");
    let mut md = format!(
        "# Retrieval evaluation: {name}\n\nCommand: `lotse eval retrieval --knowledge {} --set {}`\n\n",
        knowledge.display(),
        set_path.display()
    );
    md.push_str("```\n");
    md.push_str(&text);
    md.push_str("```\n\n");
    md.push_str(&format!("![hit@1, hit@3 and abstention by category]({svg_name})\n\n## Misses ({})\n\n", misses.len()));
    for m in &misses {
        md.push_str(&format!("- {}\n", m.replace('|', "/")));
    }
    std::fs::write(reports.join(format!("retrieval-{name}.md")), md)?;
    std::fs::write(reports.join(&svg_name), plot(&by_cat, &total))?;
    println!("report: {}", reports.join(format!("retrieval-{name}.md")).display());
    Ok((total.hit3(), total.abstain_recall()))
}

/// A grouped bar chart: per category hit@1, hit@3 and (for absent questions) abstention recall.
/// Hand-written SVG: three rectangles per group need no plotting library and no fonts.
fn plot(by_cat: &BTreeMap<String, Tally>, total: &Tally) -> String {
    let groups: Vec<(&str, [f64; 3])> = by_cat
        .iter()
        .map(|(c, t)| (c.as_str(), [t.hit1(), t.hit3(), t.abstain_recall()]))
        .chain(std::iter::once(("all", [total.hit1(), total.hit3(), total.abstain_recall()])))
        .collect();
    let (w, h, top, left, bottom) = (80.0 * groups.len() as f64 + 80.0, 320.0, 30.0, 50.0, 60.0);
    let plot_h = h - top - bottom;
    let colours = ["#1f5fa8", "#6aa84f", "#c27c0e"];
    let labels = ["hit@1", "hit@3", "abstention recall"];
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    );
    for i in 0..=4 {
        let v = i as f64 / 4.0;
        let y = top + plot_h * (1.0 - v);
        s += &format!(
            "<line x1=\"{left}\" x2=\"{}\" y1=\"{y}\" y2=\"{y}\" stroke=\"#ddd\"/><text x=\"{}\" y=\"{}\" text-anchor=\"end\">{v:.2}</text>\n",
            w - 10.0,
            left - 4.0,
            y + 4.0
        );
    }
    for (g, (name, vals)) in groups.iter().enumerate() {
        let x0 = left + 10.0 + 80.0 * g as f64;
        for (k, v) in vals.iter().enumerate() {
            if v.is_nan() {
                continue;
            }
            let bh = plot_h * v;
            s += &format!(
                "<rect x=\"{}\" y=\"{}\" width=\"20\" height=\"{bh}\" fill=\"{}\"><title>{name} {}: {v:.3}</title></rect>\n",
                x0 + 22.0 * k as f64,
                top + plot_h - bh,
                colours[k],
                labels[k]
            );
        }
        s += &format!("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{name}</text>\n", x0 + 33.0, h - bottom + 16.0);
    }
    for (k, l) in labels.iter().enumerate() {
        let x = left + 130.0 * k as f64;
        s += &format!(
            "<rect x=\"{x}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"{}\"/><text x=\"{}\" y=\"{}\">{l}</text>\n",
            h - 22.0,
            colours[k],
            x + 14.0,
            h - 13.0
        );
    }
    s += "</svg>\n";
    s
}

/// A multi-turn dialog case of `eval/dialog.toml`.
#[derive(Deserialize)]
pub struct DialogCase {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub category: String,
    pub turns: Vec<String>,
    #[serde(default)]
    pub plain: bool,
    pub expect_kind: lotse_core::ReplyKind,
    #[serde(default)]
    pub expect_source: Option<String>,
    #[serde(default)]
    pub must: Vec<String>,
    #[serde(default)]
    pub must_not: Vec<String>,
    #[serde(default)]
    pub expect_lang: Option<lotse_core::Lang>,
}

#[derive(Deserialize)]
struct DialogSet {
    case: Vec<DialogCase>,
}

/// What went wrong in a dialog case, empty when it passed.
fn judge(case: &DialogCase, reply: &lotse_core::Reply) -> Vec<String> {
    let mut why = Vec::new();
    if reply.kind != case.expect_kind {
        why.push(format!("kind {:?}, expected {:?}", reply.kind, case.expect_kind));
    }
    if let Some(src) = &case.expect_source
        && !reply.sources.iter().any(|s| &s.id == src)
    {
        why.push(format!("source {src} missing"));
    }
    let text = reply.text.to_lowercase();
    for m in &case.must {
        if !text.contains(&m.to_lowercase()) {
            why.push(format!("missing {m:?}"));
        }
    }
    for m in &case.must_not {
        if text.contains(&m.to_lowercase()) {
            why.push(format!("contains {m:?}"));
        }
    }
    if let Some(lang) = case.expect_lang
        && reply.lang != lang
    {
        why.push(format!("lang {:?}, expected {lang:?}", reply.lang));
    }
    why
}

/// What one pass over the dialog set found.
#[derive(Default)]
struct DialogRun {
    by_cat: BTreeMap<String, (usize, usize)>,
    failures: Vec<String>,
    latencies: Vec<std::time::Duration>,
    ungrounded_replies: usize,
    /// Replies written by the model: (case, last message, text, first sentence after, total).
    generated: Vec<(String, String, String, f64, f64)>,
    /// Generated replies with a fact, term or forbidden phrase that their sources do not hold.
    slipped: Vec<String>,
}

impl DialogRun {
    fn total(&self) -> (usize, usize) {
        self.by_cat.values().fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
    }

    fn rate(&self) -> f64 {
        let (n, ok) = self.total();
        Tally::ratio(ok, n)
    }

    fn latency_ms(&self, p: f64) -> f64 {
        crate::stats::percentile_ms(&self.latencies, p)
    }
}

/// The records a reply names as its sources, as groundings for the checks of `verify`: each
/// service with the offices named; an answer about an office itself (no service named) has the
/// offices alone, on `no_service`.
pub(crate) fn source_groundings<'a>(
    kb: &'a lotse_knowledge::KnowledgeBase,
    sources: &[lotse_core::Source],
    no_service: &'a lotse_core::Service,
) -> Vec<lotse_dialog::Grounding<'a>> {
    let offices: Vec<&lotse_core::Office> = sources.iter().filter_map(|s| kb.office(&s.id)).collect();
    let mut groundings: Vec<lotse_dialog::Grounding<'a>> = sources
        .iter()
        .filter_map(|s| kb.service(&s.id))
        .map(|service| lotse_dialog::Grounding { service, offices: offices.clone() })
        .collect();
    if groundings.is_empty() {
        groundings.push(lotse_dialog::Grounding { service: no_service, offices });
    }
    groundings
}

fn pct(values: &[f64], p: f64) -> f64 {
    crate::stats::percentile(values, p).unwrap_or(f64::NAN)
}

fn run_dialog(engine: &lotse_dialog::Engine, set: &DialogSet, verbose: bool) -> DialogRun {
    // A fixed moment (a Tuesday morning) so that "open until" answers are reproducible.
    let at = jiff::Timestamp::from_second(1_795_000_000).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    let now = jiff::civil::date(2026, 11, 24).at(10, 0, 0, 0);
    let mut run = DialogRun::default();
    // Stemming and stop words only: no vocabulary needed.
    let analyzer = lotse_search::Analyzer::new(std::iter::empty());
    for (i, case) in set.case.iter().enumerate() {
        let (mut conv, mut reply) =
            engine.start(format!("eval-{i}").into(), lotse_core::Channel::Web, lotse_core::Lang::De);
        let mut first_sentence = None;
        let mut took = std::time::Duration::ZERO;
        for turn in &case.turns {
            let t = std::time::Instant::now();
            first_sentence = None;
            let mut sink = |p: lotse_dialog::Partial<'_>| {
                if matches!(p, lotse_dialog::Partial::Text(_)) && first_sentence.is_none() {
                    first_sentence = Some(t.elapsed());
                }
            };
            let request = lotse_dialog::TurnRequest::new(turn).plain(case.plain).at(at, now).sink(&mut sink);
            reply = engine.respond(&mut conv, request);
            took = t.elapsed();
            run.latencies.push(took);
        }
        let why = judge(case, &reply);
        let e = run.by_cat.entry(case.category.clone()).or_default();
        e.0 += 1;
        if why.is_empty() {
            e.1 += 1;
        } else {
            run.failures.push(format!(
                "[{}] {}: {:?} → {:?}: {}",
                case.category,
                case.name,
                case.turns,
                reply.kind,
                why.join("; ")
            ));
            if verbose {
                run.failures.push(format!("    reply: {}", reply.text.replace('\n', " / ")));
            }
        }
        if reply.kind != lotse_core::ReplyKind::Answer {
            continue;
        }
        // Every answer is checked against its own records by the engine; check again, here,
        // with the records named in its sources, to count any that slipped through.
        let no_service = lotse_core::Service::new("", "", "", "");
        let groundings = source_groundings(engine.knowledge(), &reply.sources, &no_service);
        let facts = lotse_dialog::verify::ungrounded(&reply.text, &groundings);
        if !facts.is_empty() {
            run.ungrounded_replies += 1;
        }
        if reply.generated_by.is_composer() {
            continue;
        }
        let question = case.turns.join(" ");
        let terms = lotse_dialog::verify::unsupported_terms(
            &reply.text,
            &groundings,
            &question,
            &analyzer,
            reply.lang == lotse_core::Lang::En,
        );
        let forbidden: Vec<&String> =
            case.must_not.iter().filter(|m| reply.text.to_lowercase().contains(&m.to_lowercase())).collect();
        if !facts.is_empty() || !terms.is_empty() || !forbidden.is_empty() {
            run.slipped.push(format!("{}: {:?} {:?} {:?}: {}", case.name, facts, terms, forbidden, reply.text));
        }
        run.generated.push((
            case.name.clone(),
            case.turns.last().cloned().unwrap_or_default(),
            reply.text.clone(),
            first_sentence.unwrap_or(took).as_secs_f64(),
            took.as_secs_f64(),
        ));
    }
    run
}

fn category_table(run: &DialogRun, other: Option<&DialogRun>) -> String {
    let mut text = String::new();
    match other {
        None => {
            let _ = writeln!(text, "| category | cases | passed | pass rate |\n|---|---:|---:|---:|");
        }
        Some(_) => {
            let _ = writeln!(
                text,
                "| category | cases | composer passed | composer rate | with LLM passed | with LLM rate |\n|---|---:|---:|---:|---:|---:|"
            );
        }
    }
    let total = run.total();
    for (cat, (n, ok)) in run.by_cat.iter().chain(std::iter::once((&"all".to_string(), &total))) {
        match other {
            None => {
                let _ = writeln!(text, "| {cat} | {n} | {ok} | {} |", f(Tally::ratio(*ok, *n)));
            }
            Some(o) => {
                let (_, ok2) = if cat == "all" { o.total() } else { o.by_cat.get(cat).copied().unwrap_or_default() };
                let _ = writeln!(
                    text,
                    "| {cat} | {n} | {ok} | {} | {ok2} | {} |",
                    f(Tally::ratio(*ok, *n)),
                    f(Tally::ratio(ok2, *n))
                );
            }
        }
    }
    text
}

#[allow(clippy::too_many_arguments)]
pub fn dialog(
    app: &lotse_app::App,
    knowledge: &Path,
    set_path: &Path,
    reports: &Path,
    verbose: bool,
    min_pass: Option<f64>,
    llm: lotse_app::LlmArg,
    min_pass_llm: Option<f64>,
) -> Result<ExitCode> {
    let engine = app.build_engine(knowledge)?;
    let src = std::fs::read_to_string(set_path).with_context(|| format!("reading {}", set_path.display()))?;
    let set: DialogSet = toml::from_str(&src).with_context(|| format!("parsing {}", set_path.display()))?;
    let base = run_dialog(&engine, &set, verbose);
    let mut text = String::new();
    writeln!(text, "dialog eval: {} ({} cases) on {}", set_path.display(), base.total().0, knowledge.display())?;
    writeln!(text)?;
    text.push_str(&category_table(&base, None));
    writeln!(text)?;
    writeln!(text, "pass rate: {}", f(base.rate()))?;
    writeln!(text, "answers with a fact not in their sources: {}", base.ungrounded_replies)?;
    writeln!(
        text,
        "turn latency: p50 {:.2} ms, p95 {:.2} ms ({} turns)",
        base.latency_ms(0.5),
        base.latency_ms(0.95),
        base.latencies.len()
    )?;
    print!("{text}");
    if verbose || !base.failures.is_empty() {
        println!("\nfailures ({}):", base.failures.iter().filter(|f| !f.starts_with("    ")).count());
        for f in &base.failures {
            println!("  {f}");
        }
    }
    std::fs::create_dir_all(reports)?;
    let mut md = format!(
        "# Dialog evaluation\n\nCommand: `lotse eval dialog --knowledge {} --set {}`\n\n```\n{text}```\n\n## Failures\n\n",
        knowledge.display(),
        set_path.display()
    );
    for f in &base.failures {
        md.push_str(&format!("- {}\n", f.trim()));
    }
    std::fs::write(reports.join("dialog.md"), md)?;
    let rate = base.rate();
    let mut ok = true;
    if let Some(min) = min_pass
        && (rate.is_nan() || rate < min || base.ungrounded_replies > 0)
    {
        eprintln!("dialog pass rate {rate:.3} is below {min} or replies were ungrounded ({})", base.ungrounded_replies);
        ok = false;
    }
    if llm.llm.is_some_and(|m| m != lotse_dialog::LlmMode::Off) {
        let with = app.with_llm(app.build_engine(knowledge)?, llm, false)?;
        let (mode, name) = with.llm().map(|(m, n)| (m, n.to_string())).context("no language model configured")?;
        let started = std::time::Instant::now();
        let run = run_dialog(&with, &set, verbose);
        let stats = with.llm_stats().context("the engine has a model")?;
        let g = lotse_dialog::LlmStats::get;
        let calls = g(&stats.calls);
        let firsts: Vec<f64> = run.generated.iter().map(|r| r.3).collect();
        let totals: Vec<f64> = run.generated.iter().map(|r| r.4).collect();
        let mut t = String::new();
        writeln!(
            t,
            "dialog eval with the language model {name} (mode {mode:?}), {} cases, {:.0} s",
            run.total().0,
            started.elapsed().as_secs_f64()
        )?;
        writeln!(t)?;
        t.push_str(&category_table(&base, Some(&run)));
        writeln!(t)?;
        writeln!(t, "pass rate: composer {}, with LLM {}", f(base.rate()), f(run.rate()))?;
        writeln!(
            t,
            "model asked for {calls} answers: {} given as generated, {} rejected by the verifier (rate {}), {} abstained, {} busy, {} errors",
            g(&stats.accepted),
            g(&stats.rejected),
            f(Tally::ratio(g(&stats.rejected) as usize, calls as usize)),
            g(&stats.abstained),
            g(&stats.busy),
            g(&stats.errors)
        )?;
        writeln!(
            t,
            "hallucinated facts that slipped through (generated answers with a fact, term or forbidden phrase not in their sources): {}",
            run.slipped.len()
        )?;
        writeln!(t, "answers with a fact not in their sources (all answers): {}", run.ungrounded_replies)?;
        writeln!(
            t,
            "generated answers: {}; first verified sentence p50 {:.2} s, p95 {:.2} s; whole turn p50 {:.2} s, p95 {:.2} s",
            run.generated.len(),
            pct(&firsts, 0.5),
            pct(&firsts, 0.95),
            pct(&totals, 0.5),
            pct(&totals, 0.95)
        )?;
        writeln!(
            t,
            "all turns: p50 {:.1} ms, p95 {:.1} ms (composer only: p50 {:.2} ms, p95 {:.2} ms)",
            run.latency_ms(0.5),
            run.latency_ms(0.95),
            base.latency_ms(0.5),
            base.latency_ms(0.95)
        )?;
        println!("\n{t}");
        for s in &run.slipped {
            println!("  slipped: {s}");
        }
        if verbose {
            for fl in &run.failures {
                println!("  {fl}");
            }
        }
        let mut md = format!(
            "# Dialog evaluation with the language model\n\nCommand: `lotse eval dialog --llm {} --knowledge {} --set {}`\n\n```\n{t}```\n\n## Slipped through\n\n",
            format!("{mode:?}").to_lowercase(),
            knowledge.display(),
            set_path.display()
        );
        for s in &run.slipped {
            md.push_str(&format!("- {}\n", s.replace('\n', " / ")));
        }
        md.push_str("\n## Failures with the model\n\n");
        for fl in &run.failures {
            md.push_str(&format!("- {}\n", fl.trim()));
        }
        md.push_str("\n## Every generated answer (for reading)\n\n| case | question | answer | first sentence s | turn s |\n|---|---|---|---:|---:|\n");
        for (case, q, a, first, total) in &run.generated {
            md.push_str(&format!(
                "| {case} | {} | {} | {first:.2} | {total:.2} |\n",
                q.replace('|', "/"),
                a.replace('|', "/").replace('\n', " / ")
            ));
        }
        std::fs::write(reports.join("dialog-llm.md"), md)?;
        if !run.slipped.is_empty() || run.ungrounded_replies > 0 {
            eprintln!("{} generated answers stated something their sources do not hold", run.slipped.len());
            ok = false;
        }
        if let Some(min) = min_pass_llm
            && (run.rate().is_nan() || run.rate() < min)
        {
            eprintln!("dialog pass rate with the model {:.3} is below {min}", run.rate());
            ok = false;
        }
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

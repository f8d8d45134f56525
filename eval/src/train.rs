//! `lotse train ranker`: fits the ranking and confidence models of `lotse-search` (see its
//! `rank` module) on labelled questions and writes their weights.
//!
//! Data: pairs `KNOWLEDGE=SET`. A `.toml` set is a retrieval set (`q`, `expect`; every case is
//! used). A `.jsonl` set is an independent set (`../shared/eval`): only its tune half is used,
//! and only single questions that retrieval decides (not follow-ups, handoffs, injections or
//! questions about an office itself). Each question is searched with and without the embedding
//! stage, so that one model serves both.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Subcommand;
use lotse_search::rank;

#[derive(Subcommand)]
pub enum TrainCommand {
    /// Fit the ranking and confidence weights.
    Ranker {
        /// `KNOWLEDGE_DIR=SET_FILE`, repeatable.
        #[arg(long = "data", required = true)]
        data: Vec<String>,
        /// Where the weights go.
        #[arg(long, default_value = "crates/lotse-search/src/rank.json")]
        out: PathBuf,
        /// Cost of a wrong answer relative to declining a right one, for the threshold.
        #[arg(long, default_value_t = 8.0)]
        wrong_cost: f32,
    },
}

/// One labelled question: its candidates' features and labels, and what of it no service knows.
struct Question {
    text: String,
    ids: Vec<String>,
    candidates: Vec<(Vec<f32>, bool)>,
    unknown_share: f32,
    unknown_nouns: f32,
}

fn questions(app: &lotse_app::App, knowledge: &str, set: &str) -> Result<Vec<Question>> {
    let kb = lotse_app::load(std::path::Path::new(knowledge))?;
    let index = app.build_index(&kb)?;
    let cases: Vec<(String, Vec<String>)> = if set.ends_with(".jsonl") {
        crate::cases::load(std::path::Path::new(set))?
            .into_iter()
            .filter(|c| crate::cases::Half::of(&c.id) == crate::cases::Half::Tune)
            .filter(|c| c.turns.len() == 1)
            .filter(|c| !matches!(c.category.as_str(), "followup" | "handoff" | "injection" | "office"))
            .map(|c| (c.turns[0].clone(), c.expect.services))
            .collect()
    } else {
        crate::load_set(std::path::Path::new(set))?.case.into_iter().map(|c| (c.q, c.expect)).collect()
    };
    let mut out = Vec::new();
    for (q, expect) in cases {
        for dense in [true, false] {
            if dense && !index.has_embeddings() {
                continue;
            }
            let (_, evidence) = index.explain(&q, 25, dense)?;
            if evidence.candidates.is_empty() {
                // Nothing matched: the engine declines without a model.
                continue;
            }
            out.push(Question {
                text: format!("{}{q}", if dense { "" } else { "[lexical] " }),
                ids: evidence.candidates.iter().map(|(id, _, _)| id.clone()).collect(),
                candidates: evidence.candidates.iter().map(|(id, _, f)| (f.clone(), expect.contains(id))).collect(),
                unknown_share: evidence.unknown_share,
                unknown_nouns: evidence.unknown_nouns,
            });
        }
    }
    eprintln!("{set} on {knowledge}: {} searches", out.len());
    Ok(out)
}

/// The confidence features and label of a question under ranking weights `w`.
fn confidence_sample(q: &Question, w: &[f32]) -> (Vec<f32>, bool) {
    let mut scored: Vec<(f32, &[f32], bool)> =
        q.candidates.iter().map(|(f, y)| (rank::predict(w, f), f.as_slice(), *y)).collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    let y = scored[0].2;
    let ranked: Vec<(f32, &[f32])> = scored.iter().map(|(p, f, _)| (*p, *f)).collect();
    (rank::confidence_features(&ranked, q.unknown_share, q.unknown_nouns), y)
}

pub fn run(app: &lotse_app::App, cmd: TrainCommand) -> Result<ExitCode> {
    let TrainCommand::Ranker { data, out, wrong_cost } = cmd;
    let mut all = Vec::new();
    for d in &data {
        let (k, s) = d.split_once('=').with_context(|| format!("--data {d}: expected KNOWLEDGE=SET"))?;
        all.extend(questions(app, k, s)?);
    }
    let rank_samples: Vec<(Vec<f32>, bool)> = all.iter().flat_map(|q| q.candidates.iter().cloned()).collect();
    let rank_w = rank::fit(&rank_samples, 1e-3, 4000);
    let conf_samples: Vec<(Vec<f32>, bool)> = all.iter().map(|q| confidence_sample(q, &rank_w)).collect();
    let conf_w = rank::fit(&conf_samples, 1e-3, 4000);
    // The threshold: the least cost, a wrong answer costing `wrong_cost` declined right ones.
    let confs: Vec<(f32, bool)> = conf_samples.iter().map(|(x, y)| (rank::predict(&conf_w, x), *y)).collect();
    let mut best = (f32::MAX, 0.5f32);
    for step in 5..=95 {
        let t = step as f32 / 100.0;
        let wrong = confs.iter().filter(|(c, y)| *c >= t && !*y).count() as f32;
        let declined = confs.iter().filter(|(c, y)| *c < t && *y).count() as f32;
        let cost = wrong_cost * wrong + declined;
        if cost < best.0 {
            best = (cost, t);
        }
    }
    let threshold = best.1;
    // Where the first right candidate ranks, for questions that have one.
    let mut ranks = [0usize; 5];
    for q in &all {
        if !q.candidates.iter().any(|(_, y)| *y) {
            continue;
        }
        let mut scored: Vec<(f32, bool)> = q.candidates.iter().map(|(f, y)| (rank::predict(&rank_w, f), *y)).collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        let r = scored.iter().position(|(_, y)| *y).unwrap_or(usize::MAX);
        if r > 0 && std::env::var_os("LOTSE_TRAIN_VERBOSE").is_some() {
            let mut order: Vec<(f32, &String)> =
                q.candidates.iter().zip(&q.ids).map(|((f, _), id)| (rank::predict(&rank_w, f), id)).collect();
            order.sort_by(|a, b| b.0.total_cmp(&a.0));
            let top: Vec<String> = order.iter().take(3).map(|(p, id)| format!("{id} {p:.2}")).collect();
            let right: Vec<&String> =
                q.candidates.iter().zip(&q.ids).filter(|((_, y), _)| *y).map(|(_, id)| id).collect();
            eprintln!("rank {r}: {} → {top:?}, right {right:?}", q.text);
        }
        ranks[match r {
            0 => 0,
            1..=2 => 1,
            3..=9 => 2,
            usize::MAX => 4,
            _ => 3,
        }] += 1;
    }
    let answerable = all.iter().filter(|q| q.candidates.iter().any(|(_, y)| *y)).count();
    eprintln!(
        "questions with a right candidate: {answerable}; right first {}, 2nd–3rd {}, 4th–10th {}, later {}",
        ranks[0], ranks[1], ranks[2], ranks[3]
    );
    let mut report = String::new();
    let top_right = conf_samples.iter().filter(|(_, y)| *y).count();
    writeln!(report, "{} searches, {} candidates; top right {top_right}", all.len(), rank_samples.len())?;
    writeln!(report, "ranking weights:")?;
    for (name, w) in rank::RANK_FEATURES.iter().zip(&rank_w) {
        writeln!(report, "  {w:>8.3}  {name}")?;
    }
    writeln!(report, "confidence weights:")?;
    for (name, w) in rank::CONF_FEATURES.iter().zip(&conf_w) {
        writeln!(report, "  {w:>8.3}  {name}")?;
    }
    writeln!(report, "threshold {threshold:.2} (a wrong answer costs {wrong_cost} declined right ones)")?;
    writeln!(report, "calibration on the training data (confidence bin: answers right / given):")?;
    for bin in 0..10 {
        let (lo, hi) = (bin as f32 / 10.0, (bin + 1) as f32 / 10.0);
        let inside: Vec<&(f32, bool)> = confs.iter().filter(|(c, _)| *c >= lo && (*c < hi || bin == 9)).collect();
        let right = inside.iter().filter(|(_, y)| *y).count();
        writeln!(report, "  {lo:.1}–{hi:.1}: {right} / {}", inside.len())?;
    }
    print!("{report}");
    let weights = rank::Weights {
        rank: rank_w.iter().map(|w| (w * 1000.0).round() / 1000.0).collect(),
        confidence: conf_w.iter().map(|w| (w * 1000.0).round() / 1000.0).collect(),
        threshold,
        fitted_on: format!(
            "lotse train ranker {} --wrong-cost {wrong_cost}",
            data.iter().map(|d| format!("--data {d}")).collect::<Vec<_>>().join(" ")
        ),
    };
    std::fs::write(&out, serde_json::to_string_pretty(&weights)? + "\n")?;
    eprintln!("wrote {} (rebuild to use it)", out.display());
    Ok(ExitCode::SUCCESS)
}

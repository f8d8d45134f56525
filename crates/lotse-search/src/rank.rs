//! Ranking and confidence fitted on evidence, not set by hand.
//!
//! Every candidate service of a question (the BM25 top and, with embeddings, the services
//! closest in meaning) is described by a few features of the evidence for it: its BM25 score
//! relative to the best, how much of the question its name and synonyms, its title fields and
//! its whole record cover, its closeness in meaning, and its rank in each list. A logistic model
//! turns them into the probability that the candidate is a right service; candidates are
//! ranked by it. A second logistic model reads the top candidate's probability, its margin over
//! the runner-up and the share of the question no service knows, and gives the confidence: the
//! probability that the top service is right. Both are fitted by `lotse train ranker` on the
//! project's own retrieval sets and the tune halves of the independent sets (see
//! `docs/ranking.md`); the weights are `rank.json`, read at compile time.
//!
//! The fit is a small L2-regularised logistic regression by gradient descent, written here: the
//! models have a dozen weights, and a machine-learning framework would bring far more code than
//! the thirty lines it replaces.

use serde::{Deserialize, Serialize};

/// Features of one candidate, in this order.
pub const RANK_FEATURES: [&str; 17] = [
    "bias",
    "bm25 relative to the best",
    "coverage (record)",
    "coverage (name, synonyms, teaser)",
    "coverage (name and synonyms)",
    "reciprocal BM25 rank",
    "closeness in meaning",
    "closeness gap to the closest",
    "reciprocal closeness rank",
    "has closeness",
    "naming (rarest word of the question in its name or synonyms)",
    "naming margin over the other candidates",
    "a whole name or synonym in the question (words, up to three)",
    "whole-name margin over the other candidates",
    "closeness of the closest piece (name, synonym, sentence)",
    "piece closeness gap to the closest",
    "reciprocal piece closeness rank",
];

/// Features of a result, for its confidence, in this order.
pub const CONF_FEATURES: [&str; 18] = [
    "bias",
    "top probability",
    "margin over the runner-up",
    "top coverage (record)",
    "top coverage (name and synonyms)",
    "unknown share of the question",
    "top closeness in meaning",
    "has closeness",
    "top naming",
    "top naming margin",
    "top whole-name match",
    "top whole-name margin",
    "nouns of the question no service knows (up to two)",
    "top reciprocal BM25 rank",
    "top reciprocal closeness rank",
    "closeness margin over the other candidates (x10, clipped to ±1)",
    "top reciprocal piece closeness rank",
    "piece closeness margin over the other candidates (x10, clipped to ±1)",
];

/// The confidence features of a result from its candidates, best first (probability and
/// features), the share of the question no service knows and the number of its nouns no
/// service knows. Where the lexical and the dense ranking agree on the top, it is more often
/// right than either says alone.
pub fn confidence_features(ranked: &[(f32, &[f32])], unknown_share: f32, unknown_nouns: f32) -> Vec<f32> {
    let Some(&(p1, top)) = ranked.first() else { return vec![0.0; CONF_FEATURES.len()] };
    let p2 = ranked.get(1).map_or(0.0, |r| r.0);
    let nouns = unknown_nouns.min(2.0) / 2.0;
    // How much closer in meaning (feature `i`) the top is than every other candidate; 0 without
    // embeddings (feature 9, "has closeness").
    let margin = |i: usize| {
        let other = ranked[1..].iter().filter(|(_, f)| f[9] > 0.0).map(|(_, f)| f[i]).fold(f32::NAN, f32::max);
        if top[9] > 0.0 && other.is_finite() { ((top[i] - other) * 10.0).clamp(-1.0, 1.0) } else { 0.0 }
    };
    vec![
        1.0,
        p1,
        p1 - p2,
        top[2],
        top[4],
        unknown_share,
        top[6],
        top[9],
        top[10],
        top[11],
        top[12],
        top[13],
        nouns,
        top[5],
        top[8],
        margin(6),
        top[16],
        margin(14),
    ]
}

/// The fitted weights.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Weights {
    pub rank: Vec<f32>,
    pub confidence: Vec<f32>,
    /// The confidence at or above which an answer may be given, chosen on the training data for
    /// the trade-off a city wants (almost never wrong; see `lotse train ranker`).
    pub threshold: f32,
    /// How the weights were made (command, data, date).
    #[serde(default)]
    pub fitted_on: String,
}

static WEIGHTS: std::sync::OnceLock<Weights> = std::sync::OnceLock::new();

/// The weights compiled into the binary.
pub fn weights() -> &'static Weights {
    WEIGHTS.get_or_init(|| serde_json::from_str(include_str!("rank.json")).expect("rank.json is valid"))
}

fn sigmoid(z: f32) -> f32 {
    1.0 / (1.0 + (-z).exp())
}

/// The model's probability for a feature vector.
pub fn predict(w: &[f32], x: &[f32]) -> f32 {
    sigmoid(w.iter().zip(x).map(|(a, b)| a * b).sum())
}

/// Fits logistic weights to labelled feature vectors (full-batch gradient descent, L2 on all but
/// the bias). Positives are weighted so that both classes count equally.
pub fn fit(samples: &[(Vec<f32>, bool)], l2: f32, epochs: usize) -> Vec<f32> {
    let Some(dim) = samples.first().map(|(x, _)| x.len()) else { return Vec::new() };
    let pos = samples.iter().filter(|(_, y)| *y).count().max(1) as f32;
    let neg = (samples.len() as f32 - pos).max(1.0);
    let (wp, wn) = (samples.len() as f32 / (2.0 * pos), samples.len() as f32 / (2.0 * neg));
    let mut w = vec![0.0f32; dim];
    let n = samples.len() as f32;
    let lr = 0.5;
    for _ in 0..epochs {
        let mut grad = vec![0.0f32; dim];
        for (x, y) in samples {
            let p = predict(&w, x);
            let (t, k) = if *y { (1.0, wp) } else { (0.0, wn) };
            for (g, xi) in grad.iter_mut().zip(x) {
                *g += k * (p - t) * xi;
            }
        }
        for (j, (wj, g)) in w.iter_mut().zip(&grad).enumerate() {
            let reg = if j == 0 { 0.0 } else { l2 * *wj };
            *wj -= lr * (g / n + reg);
        }
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fits_a_separable_rule() {
        // y = x1 > 0.5, x2 is noise.
        let samples: Vec<(Vec<f32>, bool)> = (0..200)
            .map(|i| {
                let x1 = (i % 20) as f32 / 20.0;
                let x2 = ((i * 7) % 13) as f32 / 13.0;
                (vec![1.0, x1, x2], x1 > 0.5)
            })
            .collect();
        let w = fit(&samples, 1e-4, 3000);
        assert!(w[1] > 5.0 * w[2].abs(), "{w:?}");
        assert!(predict(&w, &[1.0, 0.9, 0.5]) > 0.8 && predict(&w, &[1.0, 0.1, 0.5]) < 0.2);
    }

    #[test]
    fn the_compiled_weights_fit_the_features() {
        let w = weights();
        assert_eq!(w.rank.len(), RANK_FEATURES.len());
        assert_eq!(w.confidence.len(), CONF_FEATURES.len());
        assert!((0.0..1.0).contains(&w.threshold));
    }
}

//! How well the unanswered-questions inbox groups alike questions (`lotse eval grouping`).
//!
//! A question set's single-turn questions that name a service stand in for the inbox's
//! questions: two questions "belong together" when their first expected service is the same.
//! The inbox's grouping ([`lotse_plugin_inbox::group_at`]) is run over each half of the set
//! for a range of thresholds, and for each the pairs it puts together are counted: precision
//! (of the pairs in one group, the share that belong together; a group staff can map in one
//! step) and recall (of the pairs that belong together, the share in one group), with the number
//! of groups against the number of services asked about. Tune the threshold on the tune half;
//! report both.

use std::collections::HashMap;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use lotse_plugin_inbox::{DENSE_ALIKE, Reading, TERMS_ALIKE, Thresholds, group_at};

use crate::cases::Half;

/// Pair counts of one grouping.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Pairs {
    /// Pairs put in one group.
    pub together: usize,
    /// Of those, pairs that belong together.
    pub right: usize,
    /// Pairs that belong together.
    pub belong: usize,
    /// Groups formed.
    pub groups: usize,
}

impl Pairs {
    pub fn precision(&self) -> f64 {
        if self.together == 0 { f64::NAN } else { self.right as f64 / self.together as f64 }
    }

    pub fn recall(&self) -> f64 {
        if self.belong == 0 { f64::NAN } else { self.right as f64 / self.belong as f64 }
    }
}

/// Groups `readings` at the thresholds and counts the pairs against `labels` (the service each
/// question is about).
pub fn pairs(readings: &[&Reading], labels: &[&str], dense: Thresholds, terms: Thresholds) -> Pairs {
    let groups = group_at(readings, dense, terms);
    let mut of = vec![0; readings.len()];
    for (g, members) in groups.iter().enumerate() {
        for &i in members {
            of[i] = g;
        }
    }
    let mut p = Pairs { groups: groups.len(), ..Pairs::default() };
    for i in 0..readings.len() {
        for j in i + 1..readings.len() {
            let (together, belong) = (of[i] == of[j], labels[i] == labels[j]);
            p.together += usize::from(together);
            p.belong += usize::from(belong);
            p.right += usize::from(together && belong);
        }
    }
    p
}

pub fn run(app: &lotse_app::App, knowledge: &Path, set: &Path) -> Result<ExitCode> {
    let kb = lotse_app::load(knowledge)?;
    let index = app.build_index(&kb)?;
    let cases = crate::cases::load(set)?;
    let started = std::time::Instant::now();
    let mut halves: HashMap<Half, (Vec<Reading>, Vec<String>)> = HashMap::new();
    for c in cases.iter().filter(|c| c.turns.len() == 1) {
        let Some(service) = c.expect.services.first() else { continue };
        let h = halves.entry(Half::of(&c.id)).or_default();
        h.0.push(lotse_plugin_inbox::read(&index, &c.turns[0]));
        h.1.push(service.clone());
    }
    let dense = index.has_embeddings();
    println!(
        "grouping: {} ({} questions with a service; {}) read in {:.1} s",
        set.display(),
        halves.values().map(|h| h.0.len()).sum::<usize>(),
        if dense { "by embeddings" } else { "by terms, no embedding model" },
        started.elapsed().as_secs_f64()
    );
    // The threshold for questions whose best service is the same is varied; the one for any
    // two questions stays the inbox's.
    let chosen = if dense { DENSE_ALIKE } else { TERMS_ALIKE };
    let range: Vec<f32> = if dense {
        (80..=92).step_by(2).map(|t| t as f32 / 100.0).collect()
    } else {
        (1..=6).map(|t| t as f32 / 10.0).collect()
    };
    println!(
        "same best service at least | tune: precision recall groups/services | check: precision recall groups/services \
         (any two at least {:.2})",
        chosen.any
    );
    for t in range.iter().copied().chain([chosen.same_best]) {
        let mut line = format!("{t:.2}{}", if t == chosen.same_best { " (the inbox's)" } else { "" });
        let at = Thresholds { same_best: t, ..chosen };
        for half in [Half::Tune, Half::Check] {
            let Some((readings, labels)) = halves.get(&half) else { continue };
            let readings: Vec<&Reading> = readings.iter().collect();
            let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
            let mut services = labels.clone();
            services.sort_unstable();
            services.dedup();
            let p = if dense {
                pairs(&readings, &labels, at, TERMS_ALIKE)
            } else {
                pairs(&readings, &labels, DENSE_ALIKE, at)
            };
            line += &format!(" | {:.3} {:.3} {}/{}", p.precision(), p.recall(), p.groups, services.len());
        }
        println!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_count_what_is_grouped_against_what_belongs_together() {
        let r = |t: &[&str]| Reading { terms: t.iter().map(|s| s.to_string()).collect(), ..Reading::default() };
        let (a, b, c) = (r(&["hund", "steu"]), r(&["hund", "steu", "kost"]), r(&["hund", "steu"]));
        // a and b together (right), c joins them too (wrong: another service).
        let p = pairs(&[&a, &b, &c], &["hundesteuer", "hundesteuer", "hund-anmelden"], DENSE_ALIKE, TERMS_ALIKE);
        assert_eq!(p, Pairs { together: 3, right: 1, belong: 1, groups: 1 });
        assert!((p.precision() - 1.0 / 3.0).abs() < 1e-9 && (p.recall() - 1.0).abs() < 1e-9);
    }
}

//! On the phone: which service an unsure hearing names, so that it is asked back ("Geht es um …?").

#[allow(unused_imports)]
use super::*;

/// Whether two words do not start with opposed verb prefixes: "Anmeldung" is not a
/// mishearing of "Abmeldung" or "Ummeldung", though only a letter apart.
pub(super) fn same_prefix(a: &str, b: &str) -> bool {
    // Prefixes of opposite or different acts; "Ausenthalts-" for "Aufenthalts-" is a mishearing.
    const OPPOSED: &[&[&str]] = &[&["an", "ab", "um"], &["ein", "aus"]];
    OPPOSED.iter().all(|group| {
        let of = |w: &str| group.iter().copied().find(|p| w.starts_with(p));
        match (of(a), of(b)) {
            (Some(x), Some(y)) => x == y,
            _ => true,
        }
    })
}

/// The least share of a question a service must cover to be asked about on the phone.
pub(super) const CONFIRM_COVERAGE: f32 = 0.15;

impl Engine {
    /// The service to ask back about on the phone: an unsure result's best hit, when it covers
    /// enough of the question and the question names it.
    pub(super) fn ask_back(&self, conv: &Conversation, result: &SearchResult, text: &str) -> Option<usize> {
        let top = result.top()?;
        (conv.channel == Channel::Phone
            && !self.confident(result)
            && top.coverage >= CONFIRM_COVERAGE
            && self.names_service(text, top.index))
        .then_some(top.index)
    }

    /// Whether a content word of the question is a word of the service's name or synonyms
    /// (the same stem, a part of a compound there, or a long word with the same start two
    /// letters off, as a recogniser mishears it: "Einwürderung" for "Einbürgerung"), other than
    /// the words many services' names share (German or English: "beantragen", "register").
    pub(super) fn names_service(&self, text: &str, index: usize) -> bool {
        let analyzer = self.index.analyzer();
        let service = &self.kb.services[index];
        let folded = lotse_search::fold(text);
        let asked: Vec<String> = lotse_search::analysis::words(&folded)
            .filter(|w| w.len() >= 4 && !analyzer.is_stop_word(w) && !analyzer.is_aspect_word(w))
            .map(|w| w.to_string())
            .collect();
        let mut naming = service.name.clone();
        for s in &service.synonyms {
            naming.push(' ');
            naming.push_str(s);
        }
        let naming = lotse_search::fold(&naming);
        lotse_search::analysis::words(&naming).filter(|n| n.len() >= 4).any(|n| {
            let stem = analyzer.stem(n);
            !self.generic.contains(&stem)
                && asked.iter().any(|q| {
                    analyzer.stem(q) == stem
                        || (q.len() >= 5 && n.contains(q.as_str()))
                        || (n.len() >= 5 && q.contains(n))
                        || (q.len() >= 8 && same_prefix(q, n) && strsim::levenshtein(q, n) <= 2)
                })
        })
    }
}

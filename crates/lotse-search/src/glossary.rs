//! English words read as the German words the records use.
//!
//! Citizens ask in English; the records of most cities are German only. The project's
//! `[english]` synonyms and the services' English names cover the common words, and the
//! multilingual embedding the rest of a question's meaning, but an English word neither knows
//! ("adult", "card") weighed as a topic the knowledge lacks, and the question was declined. A
//! [`Glossary`] holds the headwords of a German–English dictionary: the Ding dictionary (TU
//! Chemnitz, GPL; Debian's package `trans-de-en`, which `lotse-app` reads at start-up). Its
//! lines read `German headword; variant {n} | inflections … :: English; variant | …`; only the
//! head of each line is read (its first `|` part), as single words, without the annotations in
//! `{}`, `[]` and `()`, and an English verb without its "to". An index keeps only the
//! translations into words its records use ([`crate::SearchIndex::with_glossary`]).

use std::collections::HashMap;

/// English single words and the German single words a dictionary gives for them.
#[derive(Default)]
pub struct Glossary {
    words: HashMap<String, Vec<String>>,
}

impl Glossary {
    /// Reads a dictionary in the Ding format (one entry a line, `#` comments).
    pub fn parse_ding(text: &str) -> Glossary {
        let mut words: HashMap<String, Vec<String>> = HashMap::new();
        for line in text.lines() {
            if line.starts_with('#') {
                continue;
            }
            let Some((german, english)) = line.split_once(" :: ") else { continue };
            let head = |side: &str| side.split(" | ").next().unwrap_or_default().to_string();
            let german: Vec<String> =
                head(german).split("; ").map(without_notes).filter(|w| is_single_word(w)).collect();
            if german.is_empty() {
                continue;
            }
            for e in head(english).split("; ") {
                let e = without_notes(e).to_lowercase();
                let e = e.strip_prefix("to ").unwrap_or(&e);
                // A question's words never hold a hyphen ("grown-up" is two words there).
                if !is_single_word(e) || !e.is_ascii() || e.contains('-') {
                    continue;
                }
                let list = words.entry(e.to_string()).or_default();
                for g in &german {
                    if !list.contains(g) {
                        list.push(g.clone());
                    }
                }
            }
        }
        Glossary { words }
    }

    /// How many English words it translates.
    pub fn len(&self) -> usize {
        self.words.len()
    }

    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// The German words for an English word (lower case), in the dictionary's order.
    pub fn translations(&self, english: &str) -> &[String] {
        self.words.get(english).map_or(&[], Vec::as_slice)
    }

    /// Every English word with its translations.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Vec<String>)> {
        self.words.iter()
    }
}

/// A headword without its notes: `{f}`, `[ugs.]`, `(des Bodenprofils)`.
fn without_notes(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut depth = 0usize;
    for c in s.chars() {
        match c {
            '{' | '[' | '(' => depth += 1,
            '}' | ']' | ')' => depth = depth.saturating_sub(1),
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out.trim().to_string()
}

/// One word of letters (a hyphen inside allowed): not a phrase, an abbreviation with a dot or
/// a fragment ("Wohn…").
fn is_single_word(w: &str) -> bool {
    w.chars().count() >= 2
        && w.chars().all(|c| c.is_alphabetic() || c == '-')
        && !w.starts_with('-')
        && !w.ends_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;

    const DING: &str = "# Version :: 1.9\n\
        Erwachsene {m,f}; Erwachsener | die Erwachsenen :: adult; grown-up | the adults\n\
        Karte {f} | Karten {pl} | Kärtchen {n} :: card | cards | small card\n\
        beantragen {vt} | beantragend :: to apply for; to request | applying for\n\
        Wohn… :: residential\n\
        Ausweis {m} [adm.]; Lichtbildausweis {m} :: identity card; ID\n";

    #[test]
    fn headwords_are_read_without_notes_inflections_or_phrases() {
        let g = Glossary::parse_ding(DING);
        assert_eq!(g.translations("adult"), ["Erwachsene", "Erwachsener"]);
        assert!(g.translations("grown-up").is_empty(), "a question never holds it whole");
        assert_eq!(g.translations("card"), ["Karte"], "not the inflections after the first |");
        assert_eq!(g.translations("request"), ["beantragen"], "a verb without its 'to'");
        assert!(g.translations("apply for").is_empty(), "phrases are left out");
        assert!(g.translations("residential").is_empty(), "a fragment is no word");
        assert_eq!(g.translations("id"), ["Ausweis", "Lichtbildausweis"]);
        assert!(g.translations("cards").is_empty());
        assert!(g.translations("version").is_empty(), "comments are not entries");
    }

    #[test]
    fn anything_parses() {
        for text in ["", " :: ", "::", "a :: b", "{ :: }", "(((( :: ))))", "x | y :: | |", "ä :: ö\n\u{0} :: \u{200b}"]
        {
            let _ = Glossary::parse_ding(text);
        }
    }
}

//! The colloquial-word table (`knowledge/synonyms.toml`): words and short phrases citizens use,
//! German and English, each mapped to the terms of the knowledge base it stands for. Kept as data
//! so that the city's editors can extend it without a release.
//!
//! `[terms]` are read in every question; `[english]` only in questions that read as English:
//! an English word that is also a German one ("bin" in "ich bin neu hier") must not turn a
//! German question towards the waste bins.

use std::collections::BTreeMap;

use serde::Deserialize;

/// Colloquial word or phrase → the knowledge base's own terms.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Synonyms {
    pub entries: Vec<(String, Vec<String>)>,
    /// Read only in English questions.
    pub english: Vec<(String, Vec<String>)>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    terms: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    english: BTreeMap<String, Vec<String>>,
}

impl Synonyms {
    pub fn parse(src: &str) -> Result<Synonyms, toml::de::Error> {
        let file: File = toml::from_str(src)?;
        Ok(Synonyms { entries: file.terms.into_iter().collect(), english: file.english.into_iter().collect() })
    }

    pub fn len(&self) -> usize {
        self.entries.len() + self.english.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.english.is_empty()
    }

    /// Every entry, with whether it is read only in English questions.
    pub fn all(&self) -> impl Iterator<Item = (&String, &Vec<String>, bool)> {
        self.entries.iter().map(|(w, t)| (w, t, false)).chain(self.english.iter().map(|(w, t)| (w, t, true)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_terms() {
        let s = Synonyms::parse("[terms]\nperso = [\"personalausweis\"]\n\"driving licence\" = [\"führerschein\"]\n")
            .unwrap();
        assert_eq!(s.len(), 2);
        assert!(s.entries.contains(&("perso".into(), vec!["personalausweis".into()])));
        assert!(Synonyms::parse("[terms]\nperso = 3\n").is_err());
        let s = Synonyms::parse("[terms]\nperso = [\"a\"]\n[english]\nbin = [\"Tonne\"]\n").unwrap();
        assert_eq!(s.english, vec![("bin".to_string(), vec!["Tonne".to_string()])]);
        assert_eq!(s.all().filter(|e| e.2).count(), 1);
    }
}

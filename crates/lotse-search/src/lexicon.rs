//! Dictionaries of real words, so that typo correction corrects only typos.
//!
//! The search corrects a word no record uses to the closest word the records do use
//! ("Personalasuweis" → Personalausweis). Without knowing which words exist, a real word one or
//! two letters from a knowledge word is "corrected" too: "Tasche" became *Tausch* (and the
//! question about a stolen bag pointed at exchanging a licence), "schlecht" *Geschlecht*,
//! "night" *nicht*. A [`Lexicon`] holds the system's Hunspell dictionaries (Debian's
//! `hunspell-de-de` and `hunspell-en-us`, read with the `spellbook` crate, which implements
//! Hunspell's affix and compound rules); a word one of them accepts is a word, not a typo, and
//! stays what it is: known to the records or not.

use std::path::{Path, PathBuf};

/// Where Debian's Hunspell packages put their dictionaries.
pub const SYSTEM_DIR: &str = "/usr/share/hunspell";

/// The dictionaries read by default: German (the records' language) and English (the other
/// language citizens ask in).
pub const DEFAULT_NAMES: &[&str] = &["de_DE", "en_US"];

/// Real words of the languages questions are asked in.
pub struct Lexicon {
    dictionaries: Vec<spellbook::Dictionary>,
    names: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum LexiconError {
    #[error("dictionary {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("dictionary {name}: {message}")]
    Parse { name: String, message: String },
}

impl Lexicon {
    /// Reads `NAME.aff` and `NAME.dic` for each of `names` from `dir`.
    pub fn load(dir: &Path, names: &[&str]) -> Result<Lexicon, LexiconError> {
        let read = |path: PathBuf| std::fs::read_to_string(&path).map_err(|source| LexiconError::Read { path, source });
        let mut dictionaries = Vec::new();
        for name in names {
            let aff = read(dir.join(format!("{name}.aff")))?;
            let dic = read(dir.join(format!("{name}.dic")))?;
            let d = spellbook::Dictionary::new(&aff, &dic)
                .map_err(|e| LexiconError::Parse { name: name.to_string(), message: e.to_string() })?;
            dictionaries.push(d);
        }
        Ok(Lexicon { dictionaries, names: names.iter().map(|n| n.to_string()).collect() })
    }

    /// The default dictionaries from `dir` (the system's when `None`), or `None` where they are
    /// not installed: the search then corrects every word no record knows, as before.
    pub fn available(dir: Option<&Path>) -> Option<Lexicon> {
        let dir = dir.unwrap_or(Path::new(SYSTEM_DIR));
        Lexicon::load(dir, DEFAULT_NAMES).ok()
    }

    /// The dictionaries' names ("de_DE", "en_US").
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Whether a dictionary knows `word` as written, in lower case, or capitalised (German
    /// writes nouns with a capital; citizens often do not).
    pub fn knows(&self, word: &str) -> bool {
        if word.is_empty() || word.chars().any(|c| c.is_ascii_digit()) {
            return false;
        }
        let lower = word.to_lowercase();
        let mut chars = lower.chars();
        let capitalised: String = chars.next().into_iter().flat_map(char::to_uppercase).chain(chars).collect();
        self.dictionaries.iter().any(|d| d.check(word) || d.check(&lower) || d.check(&capitalised))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn system() -> Option<Lexicon> {
        let l = Lexicon::available(None);
        if l.is_none() && std::env::var_os("CI").is_some() {
            panic!("the Hunspell dictionaries are missing: scripts/setup installs hunspell-de-de and hunspell-en-us");
        }
        l
    }

    #[test]
    fn knows_words_in_any_casing_and_not_typos() {
        let Some(l) = system() else { return };
        for w in ["Tasche", "tasche", "schlecht", "Ausreden", "night", "nurses", "Hundesteuer", "würden"] {
            assert!(l.knows(w), "{w}");
        }
        for w in ["Personalasuweis", "Führerschien", "anmleden", "Kidnergeld", "Niederlasungserlaubnis", ""] {
            assert!(!l.knows(w), "{w}");
        }
    }

    #[test]
    fn a_missing_folder_is_an_error_naming_the_file() {
        let e = Lexicon::load(Path::new("/nonexistent"), DEFAULT_NAMES).err().expect("no dictionaries there");
        assert!(e.to_string().contains("de_DE.aff"), "{e}");
    }
}

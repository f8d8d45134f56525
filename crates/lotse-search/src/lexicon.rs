//! Dictionaries of real words, so that typo correction corrects only typos.
//!
//! The search corrects a word no record uses to the closest word the records do use
//! ("Personalasuweis" → Personalausweis). Without knowing which words exist, a real word one or
//! two letters from a knowledge word is "corrected" too: "Tasche" became *Tausch* (and the
//! question about a stolen bag pointed at exchanging a licence), "schlecht" *Geschlecht*,
//! "night" *nicht*. A [`Lexicon`] holds Hunspell dictionaries (on Debian the packages
//! `hunspell-de-de` and `hunspell-en-us`, which `lotse-app` reads; parsed with the `spellbook`
//! crate, which implements Hunspell's affix and compound rules); a word one of them accepts is a
//! word, not a typo, and stays what it is: known to the records or not.

/// Real words of the languages questions are asked in.
pub struct Lexicon {
    dictionaries: Vec<spellbook::Dictionary>,
    names: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("dictionary {name}: {message}")]
pub struct LexiconError {
    name: String,
    message: String,
}

/// One Hunspell dictionary as text: its name ("de_DE") and its `.aff` and `.dic` files.
pub struct DictionaryText<'a> {
    pub name: &'a str,
    pub aff: &'a str,
    pub dic: &'a str,
}

impl Lexicon {
    /// Parses the dictionaries.
    pub fn parse<'a>(dictionaries: impl IntoIterator<Item = DictionaryText<'a>>) -> Result<Lexicon, LexiconError> {
        let mut out = Lexicon { dictionaries: Vec::new(), names: Vec::new() };
        for d in dictionaries {
            let parsed = spellbook::Dictionary::new(d.aff, d.dic)
                .map_err(|e| LexiconError { name: d.name.to_string(), message: e.to_string() })?;
            out.dictionaries.push(parsed);
            out.names.push(d.name.to_string());
        }
        Ok(out)
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

/// The system's German and English dictionaries for the tests, where Debian's packages put
/// them; `None` where they are not installed (a failure under CI, whose setup installs them).
#[cfg(test)]
pub(crate) fn system_for_tests() -> Option<Lexicon> {
    let read = |name: &str, ext: &str| std::fs::read_to_string(format!("/usr/share/hunspell/{name}.{ext}")).ok();
    let texts: Option<Vec<(String, String, String)>> =
        ["de_DE", "en_US"].iter().map(|n| Some((n.to_string(), read(n, "aff")?, read(n, "dic")?))).collect();
    let Some(texts) = texts else {
        assert!(
            std::env::var_os("CI").is_none(),
            "the Hunspell dictionaries are missing: scripts/system-packages installs hunspell-de-de and hunspell-en-us"
        );
        return None;
    };
    Some(
        Lexicon::parse(texts.iter().map(|(name, aff, dic)| DictionaryText { name, aff, dic }))
            .expect("the system's dictionaries parse"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knows_words_in_any_casing_and_not_typos() {
        let Some(l) = system_for_tests() else { return };
        assert_eq!(l.names(), ["de_DE", "en_US"]);
        for w in ["Tasche", "tasche", "schlecht", "Ausreden", "night", "nurses", "Hundesteuer", "würden"] {
            assert!(l.knows(w), "{w}");
        }
        for w in ["Personalasuweis", "Führerschien", "anmleden", "Kidnergeld", "Niederlasungserlaubnis", "", "24"] {
            assert!(!l.knows(w), "{w}");
        }
    }

    #[test]
    fn a_small_dictionary_of_its_own_knows_its_words_and_their_affixes() {
        let aff = "SET UTF-8\nSFX S Y 1\nSFX S 0 s .\n";
        let dic = "2\nAmt/S\nHund\n";
        let l = Lexicon::parse([DictionaryText { name: "mini", aff, dic }]).expect("parses");
        assert!(l.knows("Amt") && l.knows("Amts") && l.knows("hund"));
        assert!(!l.knows("Hunds") && !l.knows("Katze"));
    }
}

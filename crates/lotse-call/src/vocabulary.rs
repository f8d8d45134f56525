//! Post-correction of what whisper heard against the knowledge's own words.
//!
//! whisper base splits the city's long compounds ("Personal aus weiß", "schwer behinderten
//! Ausweis") and writes near misses of its rarer words ("Briefalbüro", "anzumelten",
//! "Meldepbescheinigung"); retrieval then finds nothing. Two corrections, each only where it is
//! unambiguous:
//!
//! - **Rejoining**: two or three heard words whose concatenation is a word of the knowledge, or
//!   one letter from it, become that word.
//! - **Splitting**: a heard word the knowledge does not contain that is one of its words
//!   followed by one of its longer words ("wegengrundsicherung") becomes the two.
//! - **Near misses**: a heard word the knowledge does not contain becomes the knowledge's word
//!   one letter away (two for long words that also sound the same by the Kölner Phonetik),
//!   when exactly one word is that close.
//!
//! Written by hand: spelling correctors (symspell and the like) need a frequency dictionary of
//! the language and know nothing of the knowledge's compounds; the phonetic code and the edit
//! distance come from crates (rphonetic, strsim).
//!
//! A heard word the knowledge contains is never changed, so a word the caller said as the
//! knowledge writes it stays as it was. The call keeps both texts: what was heard and what the
//! engine was given.

use std::collections::{HashMap, HashSet};

use lotse_search::analysis::is_function_word;
use rphonetic::{Cologne, Encoder};

/// The infinitive with "zu" of a separable verb ("anmelden" → "anzumelden", "abholen" →
/// "abzuholen"); `None` for other words.
fn zu_infinitive(verb: &str) -> Option<String> {
    const PREFIXES: [&str; 11] = ["an", "ab", "um", "aus", "ein", "mit", "vor", "nach", "auf", "zurück", "weg"];
    if !verb.ends_with("en") || verb.chars().count() < 6 {
        return None;
    }
    let prefix = PREFIXES.iter().filter(|p| verb.starts_with(**p)).max_by_key(|p| p.len())?;
    let rest = &verb[prefix.len()..];
    // The rest is a verb of its own ("melden", "holen"): not "zu…" already, not a participle
    // ("abgegeben"), not a bare ending.
    (rest.chars().count() >= 4 && !rest.starts_with("zu") && !rest.starts_with("ge"))
        .then(|| format!("{prefix}zu{rest}"))
}

/// The words of a knowledge base, for correcting transcripts.
#[derive(Debug, Default)]
pub struct Vocabulary {
    /// Every word (lower case) of the records: names, synonyms, texts, offices.
    known: HashSet<String>,
    /// Lower case → as written, for the words a correction may produce: the German nouns and
    /// verbs of four letters or more of service and office names and synonyms, hyphenated
    /// names also joined ("ernstabbebücherei"), and the zu-infinitives of their verbs.
    targets: HashMap<String, String>,
    /// The targets by length, with their Kölner Phonetik code (made once here, not per
    /// utterance), for the near-miss search.
    by_len: HashMap<usize, Vec<(String, String)>>,
}

/// One change: heard → corrected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub heard: String,
    pub corrected: String,
}

/// Words shorter than this are never produced (too many near neighbours).
const MIN_LEN: usize = 4;
/// Words shorter than this are never corrected by a near miss: "mich", "meine", "Auto" have
/// many neighbours, and callers say them right.
const MIN_NEAR_LEN: usize = 6;
/// Endings of German inflection: two words that differ only in these are one word in two
/// forms ("beantrage", "beantragt"), and the caller's form is never "corrected".
const ENDINGS: [&str; 11] = ["", "e", "t", "st", "en", "er", "es", "em", "n", "s", "et"];

/// Whether `a` and `b` are forms of one word: a shared start and inflection endings.
fn inflected(a: &str, b: &str) -> bool {
    let common = a.chars().zip(b.chars()).take_while(|(x, y)| x == y).count();
    let rest = |w: &str| w.chars().skip(common).collect::<String>();
    let (ra, rb) = (rest(a), rest(b));
    common >= 4 && ENDINGS.contains(&ra.as_str()) && ENDINGS.contains(&rb.as_str())
}

/// Whether a word of a name or synonym may be the result of a near miss: a German noun
/// (capitalised) or verb (an infinitive). English synonyms ("invitation letter") are not,
/// or "Wetter" would become "letter".
fn german_content_word(written: &str) -> bool {
    written.chars().next().is_some_and(char::is_uppercase) || ["en", "ln", "rn"].iter().any(|e| written.ends_with(e))
}

fn lower(w: &str) -> String {
    w.to_lowercase()
}

fn tokens(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty())
}

impl Vocabulary {
    /// `names`: service and office names and synonyms (hyphenated ones are also a word when
    /// joined); `texts`: the other text of the records.
    pub fn new<'a>(names: impl IntoIterator<Item = &'a str>, texts: impl IntoIterator<Item = &'a str>) -> Vocabulary {
        let mut v = Vocabulary::default();
        for name in names {
            for part in name.split(|c: char| c.is_whitespace() || matches!(c, ',' | '(' | ')' | '/' | ';')) {
                let written = part.trim_matches(|c: char| !c.is_alphanumeric());
                // "Ernst-Abbe-Bücherei" is also a target as one word.
                let joined: String = written.chars().filter(|c| c.is_alphanumeric()).collect();
                if joined != written && joined.chars().count() >= MIN_LEN && joined.chars().all(char::is_alphabetic) {
                    v.targets.entry(lower(&joined)).or_insert_with(|| written.to_string());
                }
                for t in tokens(written) {
                    v.known.insert(lower(t));
                    if t.chars().count() >= MIN_LEN && t.chars().all(char::is_alphabetic) && german_content_word(t) {
                        v.targets.entry(lower(t)).or_insert_with(|| t.to_string());
                        // "anmelden" is said "um mich anzumelden" as often as it is named.
                        if let Some(zu) = t.chars().next().filter(|c| c.is_lowercase()).and_then(|_| zu_infinitive(t)) {
                            v.known.insert(zu.clone());
                            v.targets.entry(zu.clone()).or_insert(zu);
                        }
                    }
                }
            }
        }
        // The running text is written to the citizen ("Sie brauchen", "Pflegegrab"): its words
        // are never changed, but never the result of a change either ("Pflegegrad" said right
        // must not become "Pflegegrab").
        for text in texts {
            v.known.extend(tokens(text).map(lower));
        }
        for t in v.targets.keys() {
            v.by_len.entry(t.chars().count()).or_default().push((t.clone(), Cologne.encode(t)));
        }
        for list in v.by_len.values_mut() {
            list.sort();
        }
        v
    }

    /// The words of a knowledge base's services and offices.
    pub fn of(kb: &lotse_knowledge::KnowledgeBase) -> Vocabulary {
        let mut names: Vec<&str> = Vec::new();
        let mut texts: Vec<&str> = Vec::new();
        for s in &kb.services {
            names.push(&s.name);
            names.extend(s.synonyms.iter().map(String::as_str));
            texts.extend([s.teaser.as_str(), s.description.as_str()]);
            texts.extend(
                s.documents.iter().chain(&s.prerequisites).chain(&s.procedure).chain(&s.deadlines).map(String::as_str),
            );
            texts.extend(s.name_en.as_deref());
        }
        for o in &kb.offices {
            names.push(&o.name);
            names.extend(o.synonyms.iter().map(String::as_str));
        }
        for (term, alternatives) in &kb.synonyms.entries {
            texts.push(term);
            texts.extend(alternatives.iter().map(String::as_str));
        }
        Vocabulary::new(names, texts)
    }

    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// The one target within the allowed distance of `heard` (lower case), if exactly one is
    /// closest.
    fn nearest(&self, heard: &str) -> Option<&str> {
        let n = heard.chars().count();
        // "meinen" is not a misheard "keinen": function words are said right or do not matter.
        if n < MIN_NEAR_LEN || is_function_word(heard) {
            return None;
        }
        // One letter for every word; two for long ones that also sound the same.
        let long = n >= 9;
        let code = long.then(|| Cologne.encode(heard));
        let mut best: Option<(usize, &str)> = None;
        let mut tied = false;
        for len in n.saturating_sub(2)..=n + 2 {
            for (t, t_code) in self.by_len.get(&len).into_iter().flatten() {
                // Another ending of the same word ("erreiche", "erreichen"): the caller's own
                // form, nothing to correct.
                if len < MIN_NEAR_LEN || inflected(heard, t) || is_function_word(t) {
                    continue;
                }
                let d = strsim::levenshtein(heard, t);
                let allowed = if d <= 1 { true } else { d == 2 && long && code.as_deref() == Some(t_code.as_str()) };
                if !allowed {
                    continue;
                }
                match best {
                    Some((bd, _)) if bd < d => {}
                    Some((bd, _)) if bd == d => tied = true,
                    _ => {
                        best = Some((d, t));
                        tied = false;
                    }
                }
            }
        }
        match best {
            Some((_, t)) if !tied => Some(self.targets.get(t).map_or(t, String::as_str)),
            _ => None,
        }
    }

    /// An unknown word that is a function word (three letters or more) followed by a target
    /// (six or more), when exactly one split does it: "wegengrundsicherung". A compound of two
    /// content words ("Waffenschein") is left as it is.
    fn split<'a>(&'a self, heard: &'a str) -> Option<(&'a str, &'a str)> {
        let mut found = None;
        for (at, _) in heard.char_indices().skip(3) {
            let (left, right) = heard.split_at(at);
            if right.chars().count() >= MIN_NEAR_LEN
                && is_function_word(left)
                && self.targets.contains_key(right)
                && !is_function_word(right)
            {
                if found.is_some() {
                    return None;
                }
                found = Some((left, self.targets[right].as_str()));
            }
        }
        found
    }

    /// The text with its corrections, and the changes made.
    pub fn correct(&self, text: &str) -> (String, Vec<Change>) {
        if self.is_empty() {
            return (text.to_string(), Vec::new());
        }
        // Words with the punctuation that follows them.
        let words: Vec<(&str, &str)> = text
            .split_whitespace()
            .map(|w| {
                let end = w.trim_end_matches(|c: char| !c.is_alphanumeric());
                (end, &w[end.len()..])
            })
            .collect();
        let plain = |w: &str| !w.is_empty() && w.chars().all(char::is_alphabetic);
        let mut out: Vec<String> = Vec::new();
        let mut changes = Vec::new();
        let mut i = 0;
        'words: while i < words.len() {
            // Rejoining: three words, then two, with no punctuation inside.
            for span in [3usize, 2] {
                if i + span > words.len() {
                    continue;
                }
                let run = &words[i..i + span];
                if !run.iter().all(|(w, _)| plain(w)) || run[..span - 1].iter().any(|(_, p)| !p.is_empty()) {
                    continue;
                }
                let joined = lower(&run.iter().map(|(w, _)| *w).collect::<String>());
                // Near the joined form only when a piece is no word of the knowledge and none
                // is a short function word: "um zu" stays, "aus weiß" is "Ausweis".
                let near = run.iter().all(|(w, _)| w.chars().count() >= 3)
                    && run.iter().any(|(w, _)| !self.known.contains(&lower(w)));
                let target = if self.targets.contains_key(&joined) {
                    Some(self.targets[&joined].as_str())
                } else if self.known.contains(&joined) || !near {
                    None
                } else {
                    // Only a compound noun one letter away: "einer echten" is not "einrichten".
                    self.nearest(&joined).filter(|t| {
                        t.chars().next().is_some_and(char::is_uppercase) && strsim::levenshtein(&joined, &lower(t)) <= 1
                    })
                };
                if let Some(t) = target {
                    let heard = run.iter().map(|(w, _)| *w).collect::<Vec<_>>().join(" ");
                    changes.push(Change { heard, corrected: t.to_string() });
                    out.push(format!("{t}{}", run[span - 1].1));
                    i += span;
                    continue 'words;
                }
            }
            let (w, punct) = words[i];
            let l = lower(w);
            // Two words heard as one ("wegengrundsicherung"): a known word and a target.
            if plain(w)
                && !self.known.contains(&l)
                && let Some((left, right)) = self.split(&l)
            {
                // The left part as the caller's word was written ("Wegen" stays capitalised).
                let left = &w[..w.char_indices().nth(left.chars().count()).map_or(w.len(), |(i, _)| i)];
                changes.push(Change { heard: w.to_string(), corrected: format!("{left} {right}") });
                out.push(format!("{left} {right}{punct}"));
                i += 1;
                continue;
            }
            // A hyphenated name heard as one word gets its hyphens back.
            let joined = self.targets.get(&l).filter(|t| t.contains('-')).map(String::as_str);
            if plain(w)
                && let Some(t) = joined.or_else(|| if self.known.contains(&l) { None } else { self.nearest(&l) })
            {
                changes.push(Change { heard: w.to_string(), corrected: t.to_string() });
                out.push(format!("{t}{punct}"));
            } else {
                out.push(format!("{w}{punct}"));
            }
            i += 1;
        }
        (out.join(" "), changes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vocabulary() -> Vocabulary {
        Vocabulary::new(
            [
                "Personalausweis beantragen",
                "Schwerbehindertenausweis beantragen",
                "Briefwahl beantragen (Wahlschein)",
                "Briefwahlbüro",
                "Meldebescheinigung beantragen",
                "Gewerbe anmelden",
                "Gewerbe abmelden",
                "Ernst-Abbe-Bücherei",
                "Kita-Platz beantragen",
                "Reisepass beantragen",
                "Gewerberäume einrichten",
            ],
            [
                "Sie brauchen einen Ausweis, um sich anzumelden oder abzumelden. Die Welt ist groß. Sie haben keinen? Fragen Sie wegen der Frist.",
            ],
        )
    }

    fn fix(text: &str) -> String {
        vocabulary().correct(text).0
    }

    #[test]
    fn split_compounds_are_rejoined() {
        assert_eq!(fix("Was kostet ein Personal aus weiß?"), "Was kostet ein Personalausweis?");
        assert_eq!(
            fix("Wo bekomme ich einen schwer behinderten Ausweis"),
            "Wo bekomme ich einen Schwerbehindertenausweis"
        );
        assert_eq!(fix("Wann hat die Ernstabbebücherei offen?"), "Wann hat die Ernst-Abbe-Bücherei offen?");
    }

    #[test]
    fn the_zu_infinitive_of_a_named_verb_is_a_word_too() {
        assert_eq!(zu_infinitive("anmelden").as_deref(), Some("anzumelden"));
        assert_eq!(zu_infinitive("abholen").as_deref(), Some("abzuholen"));
        assert_eq!(zu_infinitive("beantragen"), None);
        assert_eq!(zu_infinitive("anzumelden"), None);
        assert_eq!(fix("Was kostet es, ein Gewerbe anzumelten?"), "Was kostet es, ein Gewerbe anzumelden?");
    }

    #[test]
    fn two_words_heard_as_one_are_split() {
        assert_eq!(fix("Wen kann ich wegenbriefwahl anrufen?"), "Wen kann ich wegen Briefwahl anrufen?");
    }

    #[test]
    fn near_misses_of_the_knowledge_words_are_mended() {
        let (text, changes) =
            vocabulary().correct("Wie erreiche ich das Briefalbüro? Was kostet es, ein Gewerbe anzumelten");
        assert_eq!(text, "Wie erreiche ich das Briefwahlbüro? Was kostet es, ein Gewerbe anzumelden");
        assert_eq!(
            changes,
            vec![
                Change { heard: "Briefalbüro".into(), corrected: "Briefwahlbüro".into() },
                Change { heard: "anzumelten".into(), corrected: "anzumelden".into() }
            ]
        );
        assert_eq!(fix("Ich brauche eine Meldepbescheinigung."), "Ich brauche eine Meldebescheinigung.");
    }

    #[test]
    fn known_words_short_words_and_ties_are_left_alone() {
        // Known words stay, even one letter from a service word ("Welt").
        assert_eq!(fix("Die Welt ist groß"), "Die Welt ist groß");
        assert_eq!(fix("Ich will einen Reisepass"), "Ich will einen Reisepass");
        // "anmelden" and "abmelden" are both one letter from "axmelden": no guess.
        assert_eq!(fix("Gewerbe axmelden"), "Gewerbe axmelden");
        // A short word of the running text is no target: "brauche" is not "brauchen".
        assert_eq!(fix("Ich brauche eine Meldebescheinigung"), "Ich brauche eine Meldebescheinigung");
        // Too short to tell.
        assert_eq!(fix("Wo ist der Pas"), "Wo ist der Pas");
        // The running text's words are never the result ("Pflegegrab" is in it).
        let v = Vocabulary::new(["Pflegegrad feststellen"], ["Die Pflegegrab-Gebühr und abgestellt"]);
        assert_eq!(v.correct("Wie beantrage ich einen Pflegegrad").0, "Wie beantrage ich einen Pflegegrad");
        assert_eq!(v.correct("Ich bin angestellt").0, "Ich bin angestellt");
        // Nor an English synonym, nor another ending, nor two content words split.
        let v = Vocabulary::new(["Visum (invitation letter)", "Waffenschein", "Schein"], []);
        assert_eq!(v.correct("Wie wird das Wetter").0, "Wie wird das Wetter");
        assert_eq!(v.correct("Waffenschein").0, "Waffenschein");
        assert!(inflected("beantrage", "beantragt") && !inflected("alkohon", "alkohol"));
        // Two words do not join into a verb one letter away.
        assert_eq!(fix("Wann kann ich mit einer echten Person reden"), "Wann kann ich mit einer echten Person reden");
        // Function words are never mended nor produced.
        assert_eq!(fix("Ich habe meinen Ausweis verloren"), "Ich habe meinen Ausweis verloren");
        // Another ending of a knowledge word is the caller's own form.
        assert_eq!(fix("Was muss ich beantrage"), "Was muss ich beantrage");
        assert_eq!(fix("Wo bekomme ich ihn um zu reisen"), "Wo bekomme ich ihn um zu reisen");
        // Numbers and punctuation pass through.
        assert_eq!(fix("Um 8:30, am 3. Mai?"), "Um 8:30, am 3. Mai?");
        assert_eq!(fix(""), "");
    }
}

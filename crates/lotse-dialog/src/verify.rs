//! The grounding rule, enforced: every amount, number (also written as a word), time, date,
//! phone number, e-mail address, web address and street in a reply must come from the records the
//! reply is based on; and in generated text, every noun must come from the records or the
//! question ([`unsupported_terms`]), so that a model cannot add a document or an office. The deterministic
//! composer satisfies it by construction; this check guards every other composer (the LLM), and
//! the engine falls back to the deterministic text when a reply fails it.

use std::collections::HashSet;
use std::sync::OnceLock;

use regex::Regex;

use crate::compose::Grounding;

fn facts_regex() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        // A literal pattern known to compile: URLs, e-mail addresses, then numbers (with
        // separators, so that phone numbers and amounts are one token).
        Regex::new(r"(?i)(https?://[^\s)\]]+|www\.[^\s)\]]+|[\w.+-]+@[\w-]+(?:\.[\w-]+)+|\d[\d\s./:,–-]*\d|\d)")
            .expect("static regex")
    })
}

/// A fact found in a text, normalised for comparison.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Fact {
    /// A web or e-mail address, lower-cased, without trailing punctuation.
    Address(String),
    /// The digits of a number, time or phone number.
    Digits(String),
    /// A street or square ("Engelplatz", "Löbdergraben"), folded.
    Street(String),
}

/// Number words that a generator may write instead of digits ("zwei Wochen"), with their value.
/// "ein"/"one" are left out: as articles they are no claim.
const NUMBER_WORDS: &[(&str, u32)] = &[
    ("zwei", 2),
    ("drei", 3),
    ("vier", 4),
    ("fuenf", 5),
    ("sechs", 6),
    ("sieben", 7),
    ("acht", 8),
    ("neun", 9),
    ("zehn", 10),
    ("elf", 11),
    ("zwoelf", 12),
    ("zwanzig", 20),
    ("dreissig", 30),
    ("vierzig", 40),
    ("fuenfzig", 50),
    ("hundert", 100),
    ("tausend", 1000),
    ("two", 2),
    ("three", 3),
    ("four", 4),
    ("five", 5),
    ("six", 6),
    ("seven", 7),
    ("eight", 8),
    ("nine", 9),
    ("ten", 10),
    ("eleven", 11),
    ("twelve", 12),
    ("twenty", 20),
    ("thirty", 30),
    ("forty", 40),
    ("fifty", 50),
    ("hundred", 100),
    ("thousand", 1000),
];

fn is_number_word(folded_word: &str) -> bool {
    NUMBER_WORDS.iter().any(|(n, _)| *n == folded_word)
}

/// Whether a folded word is a figure: digits or a number word ("elf").
pub(crate) fn is_figure_word(folded_word: &str) -> bool {
    folded_word.starts_with(|c: char| c.is_ascii_digit()) || is_number_word(folded_word)
}

/// Whether a text states a figure: digits or a number word ("fünf Stunden", "zwei Wochen").
pub(crate) fn has_figure(text: &str) -> bool {
    text.chars().any(|c| c.is_ascii_digit())
        || lotse_search::analysis::words(&lotse_search::fold(text)).any(is_number_word)
}

/// Endings of German street names.
const STREET_ENDINGS: &[&str] =
    &["strasse", "str.", "weg", "platz", "gasse", "allee", "ring", "markt", "graben", "ufer", "damm", "steig"];

fn trim_punct(s: &str) -> &str {
    s.trim_end_matches(['.', ',', ';', ':', '!', '?', '–', '-'])
}

/// The facts of a text: addresses, and for numbers both the whole digit string and (for amounts
/// and times) its canonical forms.
pub fn facts(text: &str) -> Vec<Fact> {
    let mut out = Vec::new();
    for m in facts_regex().find_iter(text) {
        let s = trim_punct(m.as_str().trim());
        if s.contains("://") || s.starts_with("www.") || s.contains('@') {
            out.push(Fact::Address(s.to_lowercase()));
            continue;
        }
        out.push(Fact::Digits(canonical_number(s)));
    }
    for word in text.split(|c: char| !(c.is_alphanumeric() || c == '-' || c == '.')) {
        let word = word.trim_matches(['-', '.']);
        let folded = lotse_search::fold(word);
        if let Some((_, n)) = NUMBER_WORDS.iter().find(|(w, _)| *w == folded) {
            out.push(Fact::Digits(n.to_string()));
        } else if word.starts_with(char::is_uppercase)
            && STREET_ENDINGS.iter().any(|e| folded.ends_with(e) && folded.len() > e.len() + 2)
        {
            out.push(Fact::Street(folded));
        }
    }
    out
}

/// "46,00" and "46.0" and "46" are the same amount; "08:30" and "8:30" the same time; a phone
/// number is its digits.
fn canonical_number(s: &str) -> String {
    let digits: String = s.chars().filter(char::is_ascii_digit).collect();
    // An amount with decimals: drop trailing zero decimals (46,00 → 46; 27,60 → 276).
    if let Some((int, dec)) = s.rsplit_once([',', '.'])
        && dec.len() <= 2
        && dec.chars().all(|c| c.is_ascii_digit())
        && int.chars().all(|c| c.is_ascii_digit())
    {
        let dec = dec.trim_end_matches('0');
        let int = int.trim_start_matches('0');
        return format!("{}{dec}", if int.is_empty() { "0" } else { int });
    }
    // A time: 08:30 → 830.
    if let Some((h, m)) = s.split_once(':')
        && h.len() <= 2
        && m.len() == 2
        && h.chars().chain(m.chars()).all(|c| c.is_ascii_digit())
    {
        return format!("{}{m}", h.trim_start_matches('0'));
    }
    digits.trim_start_matches('0').to_string()
}

/// Every text of the grounding records, for fact extraction.
fn grounding_texts(g: &Grounding<'_>) -> Vec<String> {
    let s = g.service;
    let mut t = vec![s.name.clone(), s.teaser.clone(), s.description.clone(), s.source.clone()];
    t.extend(s.name_en.clone());
    t.extend(s.documents.clone());
    t.extend(s.prerequisites.clone());
    t.extend(s.procedure.clone());
    t.extend(s.deadlines.clone());
    t.extend(s.legal_basis.clone());
    t.extend(s.processing_time.clone());
    t.extend(s.appointment_url.clone());
    for f in &s.fees {
        t.extend(f.amount.map(|a| format!("{a:.2}")));
        t.extend(f.amount_max.map(|a| format!("{a:.2}")));
        t.extend(f.condition.clone());
        t.extend(f.text.clone());
    }
    for l in &s.online_services {
        t.push(l.title.clone());
        t.push(l.url.clone());
    }
    for o in &g.offices {
        t.push(o.name.clone());
        t.extend(o.address.as_ref().map(|a| a.to_string()));
        t.extend(o.phone.clone());
        t.extend(o.email.clone());
        t.extend(o.website.clone());
        t.extend(o.appointment_url.clone());
        if let Some(h) = &o.opening_hours {
            for d in lotse_core::Weekday::ALL {
                t.extend(h.day(d).map(String::from));
            }
            t.extend(h.note.clone());
        }
    }
    t
}

/// The facts of `reply` that no grounding record contains. Empty means the reply is grounded.
pub fn ungrounded(reply: &str, groundings: &[Grounding<'_>]) -> Vec<Fact> {
    let mut allowed: HashSet<Fact> = HashSet::new();
    for g in groundings {
        for text in grounding_texts(g) {
            allowed.extend(facts(&text));
            // Times in opening hours are written "08:30-13:00": allow each side on its own.
            for part in text.split(['-', '–', ',', ' ', '/', '(', ')']) {
                for f in facts(part) {
                    allowed.insert(f);
                }
            }
        }
    }
    facts(reply).into_iter().filter(|f| !allowed.contains(f)).collect()
}

/// The figures of a text one by one: a range or a phone number ("8:30–13:00", "03641 49-0")
/// split into its numbers, an amount or a date ("46,00", "17.10.2025") kept whole.
fn figures(text: &str) -> HashSet<Fact> {
    let mut out = HashSet::new();
    for m in facts_regex().find_iter(text) {
        for part in m.as_str().split(['-', '–', '/', ' ', '\u{a0}']) {
            out.extend(facts(part).into_iter().filter(|f| matches!(f, Fact::Digits(d) if !d.is_empty())));
        }
    }
    out
}

/// The figures of `floor` (what the record composer would state for the question) that
/// `reply` leaves out: a phrasing may say a fact differently, never drop it.
pub fn left_out(reply: &str, floor: &[String]) -> Vec<Fact> {
    let mut said = figures(reply);
    said.extend(facts(reply).into_iter().filter(|f| matches!(f, Fact::Digits(_))));
    let mut out: Vec<Fact> = floor.iter().flat_map(|t| figures(t)).filter(|f| !said.contains(f)).collect();
    out.sort_by_key(|f| format!("{f:?}"));
    out.dedup();
    out
}

/// Words a generated answer may use without a record naming them: the assistant's own words
/// about the city, time and contact, folded.
const GENERIC_TERMS: &[&str] = &[
    "stadt",
    "stadtverwaltung",
    "verwaltung",
    "jena",
    "lotse",
    "buerger",
    "buergerin",
    "termin",
    "termine",
    "antrag",
    "antraege",
    "quelle",
    "quellen",
    "angabe",
    "angaben",
    "information",
    "informationen",
    "frage",
    "fragen",
    "antwort",
    "auskunft",
    "hilfe",
    "person",
    "mitarbeiter",
    "mitarbeiterin",
    "dokument",
    "dokumente",
    "unterlagen",
    "internet",
    "online",
    "euro",
    "uhr",
    "telefon",
    "e-mail",
    "kosten",
    "gebuehr",
    "gebuehren",
    "montag",
    "dienstag",
    "mittwoch",
    "donnerstag",
    "freitag",
    "samstag",
    "sonntag",
    "tag",
    "tage",
    "tagen",
    "woche",
    "wochen",
    "monat",
    "monate",
    "monaten",
    "jahr",
    "jahre",
    "jahren",
    "stunde",
    "stunden",
    "minuten",
    "bearbeitung",
    "vorort",
    "ort",
    "website",
    "seite",
    "formular",
    "dienstleistung",
    "leistung",
    "behoerde",
    "amt",
    "stelle",
    "sprechzeiten",
    "oeffnungszeiten",
    "einfache",
    "sprache",
    "deutsch",
    "englisch",
];

/// German words that open a sentence with a capital letter without being nouns.
fn is_function_word(folded: &str) -> bool {
    matches!(
        folded,
        "sie"
            | "ihr"
            | "ihre"
            | "ihren"
            | "ihnen"
            | "wir"
            | "ich"
            | "es"
            | "er"
            | "das"
            | "die"
            | "der"
            | "den"
            | "dem"
            | "des"
            | "ein"
            | "eine"
            | "einen"
            | "einem"
            | "einer"
            | "wenn"
            | "falls"
            | "bitte"
            | "dazu"
            | "dafuer"
            | "dort"
            | "hier"
            | "auch"
            | "ja"
            | "nein"
            | "fuer"
            | "bei"
            | "mit"
            | "nach"
            | "vor"
            | "im"
            | "in"
            | "am"
            | "an"
            | "auf"
            | "um"
            | "zum"
            | "zur"
            | "vom"
            | "von"
            | "aus"
            | "so"
            | "dann"
            | "danach"
            | "zuerst"
            | "ausserdem"
            | "leider"
            | "gern"
            | "gerne"
            | "diese"
            | "dieser"
            | "dieses"
            | "dies"
            | "man"
            | "sollten"
            | "koennen"
            | "muessen"
            | "brauchen"
            | "haben"
            | "ist"
            | "sind"
            | "wird"
            | "werden"
            | "kann"
            | "muss"
            | "gibt"
            | "zudem"
            | "jedoch"
            | "aber"
            | "oder"
            | "und"
            | "nur"
            | "alle"
            | "jede"
            | "jeder"
            | "kein"
            | "keine"
            | "mehr"
            | "weitere"
            | "wichtig"
            | "hinweis"
            | "the"
            | "you"
            | "your"
            | "this"
            | "it"
            | "if"
            | "for"
            | "please"
            | "yes"
            | "no"
            | "a"
            | "to"
            | "we"
            | "they"
            | "there"
    )
}

/// The nouns of a generated German answer (words with a capital letter) that neither the
/// records nor the question contain, nor the assistant's own vocabulary: a generator that adds
/// "Meldebescheinigung" to a list of documents is caught here. In English text only words
/// with a capital letter inside a sentence are checked (names of offices, places, documents).
pub fn unsupported_terms(
    reply: &str,
    groundings: &[Grounding<'_>],
    question: &str,
    analyzer: &lotse_search::Analyzer,
    english: bool,
) -> Vec<String> {
    let mut known_words: HashSet<String> = HashSet::new();
    let mut known_stems: HashSet<String> = HashSet::new();
    let mut known_text = String::new();
    let mut add = |text: &str| {
        let folded = lotse_search::fold(text);
        for w in lotse_search::analysis::words(&folded) {
            known_stems.insert(analyzer.stem(w));
            known_words.insert(w.to_string());
        }
        known_text.push_str(&folded);
        known_text.push(' ');
    };
    for g in groundings {
        for t in grounding_texts(g) {
            add(&t);
        }
    }
    add(question);
    let mut out = Vec::new();
    let mut sentence_start = true;
    for raw in reply.split_whitespace() {
        let word = raw.trim_matches(|c: char| !c.is_alphanumeric());
        let starts = sentence_start;
        sentence_start = raw.ends_with(['.', '!', '?', ':']);
        if word.chars().count() < 3 || !word.starts_with(char::is_uppercase) || (english && starts) {
            continue;
        }
        let folded = lotse_search::fold(word);
        if folded.chars().any(|c| c.is_ascii_digit())
            || is_function_word(&folded)
            || GENERIC_TERMS.contains(&folded.as_str())
        {
            continue;
        }
        // Hyphenated words ("Online-Dienst") and words found inside a compound of the records
        // ("Passfoto" in "biometrisches Passfoto") count as known.
        let supported = |w: &str| {
            w.len() < 3
                || known_words.contains(w)
                || known_stems.contains(&analyzer.stem(w))
                || (w.len() >= 5 && known_text.contains(w))
                || GENERIC_TERMS.contains(&w)
                || is_function_word(w)
        };
        if !folded.split('-').all(supported) {
            out.push(word.to_string());
        }
    }
    out
}

/// Words that carry no claim of their own: modal and auxiliary verbs, answer particles.
fn is_claim_neutral(folded: &str) -> bool {
    matches!(
        folded,
        "koennen"
            | "kann"
            | "koennt"
            | "muessen"
            | "muss"
            | "brauchen"
            | "brauche"
            | "braucht"
            | "duerfen"
            | "darf"
            | "sollen"
            | "soll"
            | "wollen"
            | "will"
            | "moechten"
            | "moechte"
            | "werden"
            | "wird"
            | "sind"
            | "ist"
            | "haben"
            | "hat"
            | "gibt"
            | "geben"
            | "lassen"
            | "laesst"
            | "ja"
            | "nein"
            | "noch"
            | "schon"
            | "etwa"
            | "bitte"
            | "sowie"
            | "dabei"
            | "dafuer"
            | "hierfuer"
            | "hierzu"
            | "dazu"
            | "damit"
            | "direkt"
            | "einfach"
            | "jena"
            | "stadt"
            | "moeglich"
            | "notwendig"
            | "erforderlich"
            | "benoetigen"
            | "benoetigt"
            | "kostet"
            | "kosten"
            | "betraegt"
            | "gebuehr"
            | "euro"
    )
}

/// Words that turn a statement into its opposite. "Nein" counts too: "Nein, Sie können das
/// Passbild im Bürgerservice machen lassen" denies what the record affirms; a correct "no" needs
/// a record passage that denies it too.
fn is_negation(folded: &str) -> bool {
    matches!(
        folded,
        "nein" | "nicht" | "kein" | "keine" | "keinen" | "keinem" | "keiner" | "keines" | "nie" | "niemals" | "ohne"
    )
}

/// Whether a generated German sentence says what one passage of the records says: most of
/// its content words (stems) stand together in one record passage, and that passage has the
/// same polarity (both or neither negate: "nicht", "kein", "ohne"). This catches the
/// answer that turns "Sie beantragen den Ausweis persönlich" into "Ja, Sie können ihn online
/// beantragen", which contains no wrong number and no unknown noun. Returns why not.
pub fn unsupported_claim(
    sentence: &str,
    groundings: &[Grounding<'_>],
    analyzer: &lotse_search::Analyzer,
) -> Option<String> {
    let content = |text: &str| -> (Vec<String>, bool) {
        let folded = lotse_search::fold(text);
        let mut negated = false;
        let mut stems = Vec::new();
        for w in lotse_search::analysis::words(&folded) {
            if is_negation(w) {
                negated = true;
            } else if w.len() > 2
                && !w.chars().any(|c| c.is_ascii_digit())
                && !analyzer.is_stop_word(w)
                && !is_function_word(w)
                && !is_claim_neutral(w)
            {
                stems.push(analyzer.stem(w));
            }
        }
        (stems, negated)
    };
    let (claim, negated) = content(sentence);
    if claim.is_empty() {
        // "Ja." alone answers a question without saying what the records say.
        let bare = lotse_search::analysis::words(&lotse_search::fold(sentence)).any(|w| matches!(w, "ja" | "nein"));
        return bare.then(|| "a bare yes or no".to_string());
    }
    let needed = (claim.len() * 7).div_ceil(10).max(1);
    let mut best = 0;
    for g in groundings {
        // Every passage of a record is about its service: the nouns of the service's name
        // ("Personalausweis") count as said in each. Its verbs do not: "online" in a passage
        // about booking an appointment says nothing about applying ("beantragen") online.
        let topic: Vec<String> = g
            .service
            .name
            .split_whitespace()
            .filter(|w| w.starts_with(char::is_uppercase))
            .map(|w| analyzer.stem(&lotse_search::fold(w)))
            .collect();
        for text in grounding_texts(g) {
            for passage in text.split_inclusive(['.', '\n', ';']) {
                let (stems, neg) = content(passage);
                let covered = claim.iter().filter(|c| stems.contains(c) || topic.contains(c)).count();
                if covered >= needed && neg == negated {
                    return None;
                }
                best = best.max(covered);
            }
        }
    }
    Some(format!(
        "no record passage says this ({best} of {} content words together, {needed} needed, polarity {})",
        claim.len(),
        if negated { "negative" } else { "positive" }
    ))
}

/// A fee amount stated without its condition: "Der Ausweis kostet 6,00 €" where the record says
/// 6,00 € only for a photo taken at the office. A sentence that states an amount of a fee with
/// a condition must also name something of that condition (a word or a number of it).
pub fn fee_without_condition(
    sentence: &str,
    groundings: &[Grounding<'_>],
    analyzer: &lotse_search::Analyzer,
) -> Option<String> {
    let stated: HashSet<Fact> = facts(sentence).into_iter().collect();
    let words: HashSet<String> = lotse_search::analysis::words(&lotse_search::fold(sentence))
        .map(|w| if w.chars().all(|c| c.is_ascii_digit()) { w.to_string() } else { analyzer.stem(w) })
        .collect();
    for g in groundings {
        for fee in &g.service.fees {
            let amounts: Vec<Fact> =
                [fee.amount, fee.amount_max].iter().flatten().flat_map(|a| facts(&format!("{a:.2}"))).collect();
            if !amounts.iter().any(|a| stated.contains(a)) {
                continue;
            }
            // An amount of a fee without a condition needs nothing more.
            let condition = fee.condition.as_deref().filter(|c| !c.trim().is_empty())?;
            let named = lotse_search::analysis::words(&lotse_search::fold(condition))
                .filter(|w| w.len() > 2 && !analyzer.is_stop_word(w) || w.chars().all(|c| c.is_ascii_digit()))
                .any(|w| words.contains(w) || words.contains(&analyzer.stem(w)));
            if named {
                return None;
            }
            return Some(format!("the amount needs its condition ({condition})"));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use lotse_core::{Address, Fee, Office, Service};

    fn records() -> (Service, Office) {
        let mut s =
            Service::new("personalausweis", "Personalausweis beantragen", "https://service.jena.de/pa", "2025-06-01");
        s.fees = vec![Fee { amount: Some(46.0), amount_max: None, condition: Some("ab 24 Jahren".into()), text: None }];
        s.documents = vec!["biometrisches Passfoto".into()];
        let o = Office {
            id: "buergerservice".into(),
            name: "Bürgerservice".into(),
            name_en: None,
            synonyms: Vec::new(),
            kind: Default::default(),
            address: Some(Address { street: "Engelplatz 1".into(), postcode: "07743".into(), city: "Jena".into() }),
            phone: Some("03641 49-3800".into()),
            email: Some("bs-antrag@jena.de".into()),
            website: None,
            appointment_url: None,
            opening_hours: Some(lotse_core::OpeningHours { mo: Some("08:30-13:00".into()), ..Default::default() }),
            notes: None,
            source: "https://service.jena.de".into(),
            as_of: "2025-06-01".into(),
        };
        (s, o)
    }

    #[test]
    fn a_phrasing_may_say_a_figure_differently_but_not_drop_it() {
        let floor = ["Die Frist steht im Schreiben; 2025 war es der 17. Oktober.".to_string()];
        assert_eq!(left_out("Die Bescheinigung muss im Jahr 2025 dort sein.", &floor), vec![Fact::Digits("17".into())]);
        assert!(left_out("Im Jahr 2025 war es der 17. Oktober.", &floor).is_empty());
        // An amount with or without its cents, a number as a word, a range's ends apart.
        let floor = ["Kosten: 46,00 € (ab 24 Jahren).".to_string(), "Geöffnet 8:30–13:00, etwa 2 Wochen.".to_string()];
        assert!(left_out("Ab 24 Jahren kostet er 46 Euro; geöffnet von 8:30 bis 13:00; 2 Wochen.", &floor).is_empty());
        assert_eq!(
            left_out("Er kostet 46 Euro, geöffnet von 8:30 bis 13:00, zwei Wochen.", &floor),
            vec![Fact::Digits("24".into())]
        );
        assert!(left_out("Irgendetwas.", &[]).is_empty());
    }

    #[test]
    fn claims_need_a_record_passage_with_the_same_polarity() {
        let (mut s, o) = records();
        s.description = "Sie beantragen den Ausweis persönlich. Fertige Dokumente holen Sie ohne Termin ab.".into();
        let g = [Grounding { service: &s, offices: vec![&o] }];
        let a = lotse_search::Analyzer::new(std::iter::empty());
        assert_eq!(unsupported_claim("Sie beantragen den Ausweis persönlich.", &g, &a), None);
        // "Nein" denies: the record affirms this, so the answer is refused.
        assert!(unsupported_claim("Nein, Sie beantragen den Ausweis persönlich.", &g, &a).is_some());
        assert_eq!(unsupported_claim("Den fertigen Ausweis holen Sie ohne Termin ab.", &g, &a), None);
        assert!(unsupported_claim("Ja, Sie können den Ausweis online beantragen.", &g, &a).is_some());
        // The service's name is the topic of every passage; its verb is not.
        s.description.push_str(" Einen Termin vereinbaren Sie online oder telefonisch.");
        let g = [Grounding { service: &s, offices: vec![&o] }];
        assert_eq!(unsupported_claim("Für den Personalausweis vereinbaren Sie den Termin online.", &g, &a), None);
        assert!(unsupported_claim("Ja, Sie können den Personalausweis online beantragen.", &g, &a).is_some());
        // The same words, the opposite meaning.
        assert!(unsupported_claim("Fertige Dokumente holen Sie mit Termin ab.", &g, &a).is_some());
    }

    #[test]
    fn a_fee_amount_needs_its_condition() {
        let (s, o) = records();
        let g = [Grounding { service: &s, offices: vec![&o] }];
        let a = lotse_search::Analyzer::new(std::iter::empty());
        assert_eq!(fee_without_condition("Ab 24 Jahren kostet der Ausweis 46,00 €.", &g, &a), None);
        assert_eq!(fee_without_condition("Wer 24 oder älter ist, zahlt 46 Euro.", &g, &a), None);
        assert!(fee_without_condition("Der Ausweis kostet 46,00 €.", &g, &a).is_some());
        assert_eq!(fee_without_condition("Die Bearbeitung dauert 3 Wochen.", &g, &a), None);
    }

    #[test]
    fn grounded_reply_passes() {
        let (s, o) = records();
        let g = [Grounding { service: &s, offices: vec![&o] }];
        let reply = "Kosten: 46,00 € (ab 24 Jahren). Zuständig ist Bürgerservice, Engelplatz 1, 07743 Jena. Telefon 03641 49-3800. Heute geöffnet bis 13:00 Uhr. E-Mail bs-antrag@jena.de. Quelle: https://service.jena.de/pa";
        assert_eq!(ungrounded(reply, &g), vec![]);
        assert_eq!(ungrounded("It costs €46.00 and opens at 8:30.", &g), vec![]);
    }

    #[test]
    fn invented_facts_are_caught() {
        let (s, o) = records();
        let g = [Grounding { service: &s, offices: vec![&o] }];
        let table = [
            ("Der Ausweis kostet 37,00 €.", Fact::Digits("37".into())),
            (
                "Rufen Sie 03641 49-9999 an.",
                Fact::Digits("0364149".to_string().trim_start_matches('0').to_string() + "9999"),
            ),
            ("Geöffnet bis 18:00 Uhr.", Fact::Digits("1800".into())),
            ("Schreiben Sie an info@jena.de.", Fact::Address("info@jena.de".into())),
            ("Siehe https://example.org/fake.", Fact::Address("https://example.org/fake".into())),
        ];
        for (reply, fact) in table {
            assert_eq!(ungrounded(reply, &g), vec![fact], "{reply}");
        }
    }
}

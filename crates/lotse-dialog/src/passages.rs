//! Answering the question that was asked from the record's own sentences: the deterministic
//! floor under the language model. The record's sentences (teaser, description, documents,
//! prerequisites, procedure, deadlines, processing time) are ranked against the question's
//! content words — rare words weigh more, the service's own name words little — with a bonus
//! for a figure where the question asks how long, how much, how many or until when. The best one
//! or two are stated verbatim. A fee whose condition the question meets (an age, "Kind",
//! "Express") is chosen over the others.

use lotse_core::Service;
use lotse_search::analysis::words;
use lotse_search::{SearchIndex, fold, split_sentences};

use crate::understand::Aspect;

/// English cue words and the German words records use for them.
const CUES: &[(&str, &[&str])] = &[
    ("valid", &["gilt", "gueltig", "gueltigkeit"]),
    ("expires", &["gilt", "gueltig", "ablauf"]),
    ("deadline", &["frist", "innerhalb", "spaetestens"]),
    ("weeks", &["wochen"]),
    ("days", &["tage", "tagen"]),
    ("months", &["monate", "monaten"]),
    ("years", &["jahre", "jahren"]),
    ("free", &["kostenlos", "gebuehrenfrei"]),
    ("child", &["kind", "kinder"]),
    ("children", &["kind", "kinder"]),
    ("daughter", &["kind", "kinder"]),
    ("son", &["kind", "kinder"]),
    ("online", &["online"]),
    ("police", &["polizei"]),
    ("insurance", &["versicherung", "versichert"]),
    ("income", &["einkommen"]),
    ("rent", &["miete"]),
    ("gilt", &["gueltig", "gueltigkeit"]),
    ("gueltig", &["gilt", "gueltigkeit"]),
    ("lange", &["gilt", "gueltig"]),
    ("sohn", &["kind", "kinder", "jugendliche"]),
    ("tochter", &["kind", "kinder", "jugendliche"]),
];

/// Question words that ask for a figure: a duration, an amount, a count or a date.
const ASKS_FIGURE: &[&str] = &[
    "wie lange",
    "wie viel",
    "wie viele",
    "wieviel",
    "bis wann",
    "ab wann",
    "wann",
    "wie weit",
    "wie hoch",
    "how long",
    "how much",
    "how many",
    "until when",
    "when",
    "how far",
    "how old",
    "wie alt",
    "ab welchem",
    "welcher betrag",
];

/// The sentences of a record a citizen may be told, each with where it came from.
fn sentences(s: &Service) -> Vec<String> {
    let mut out = Vec::new();
    let mut push = |text: &str| {
        for part in split_sentences(text) {
            if part.chars().filter(|c| c.is_alphanumeric()).count() >= 12 && !out.contains(&part) {
                out.push(part);
            }
        }
    };
    push(&s.teaser);
    push(&s.description);
    for item in s.documents.iter().chain(&s.prerequisites).chain(&s.procedure).chain(&s.deadlines) {
        push(item);
    }
    if let Some(t) = &s.processing_time {
        push(t);
    }
    out
}

/// What being the sentence closest in meaning to the question is worth, in rare words.
const DENSE_FIRST: f32 = 1.0;

/// How much more being closest in meaning is worth for an English question, which shares
/// few words with the German record.
const ENGLISH_DENSE: f32 = 1.5;

/// From how many words beyond the service's name an English question asks for the record
/// sentence closest in meaning, though it shares no word with the record.
const ENGLISH_STORY_WORDS: usize = 3;

/// What a sentence that answers an aspect the record has no field for is worth, in rare words.
const ASPECT_CUE: f32 = 1.0;

/// Words that say a length of time.
const TIME_WORDS: &[&str] =
    &["tag", "tage", "tagen", "woche", "wochen", "monat", "monate", "monaten", "jahr", "jahre", "jahren", "stunden"];

/// Words before a figure and a time word that make them an age or a rate, not a length of time
/// ("ab 14 Jahren", "Mindestalter 14 Jahre", "pro 2 Wochen").
const NOT_A_LENGTH: &[&str] = &["ab", "unter", "ueber", "mindestalter", "alter", "pro", "je", "alle", "vor", "seit"];

/// Whether folded words state a length of time: a figure right before a time word ("zwischen
/// zwei und elf Monaten", "für 3 Jahre"), not an age ("ab 14 Jahren", "16 Jahre alt") or a
/// rate. How a record without a validity field says one.
fn length_of_time(w: &[&str]) -> bool {
    (1..w.len()).any(|i| {
        TIME_WORDS.contains(&w[i])
            && crate::verify::is_figure_word(w[i - 1])
            && !(i >= 2 && NOT_A_LENGTH.contains(&w[i - 2]))
            && w.get(i + 1) != Some(&"alt")
    })
}

/// Whether a record sentence (folded words) speaks to `aspect`: the words a record uses for a
/// fee, a deadline, a validity, an address and so on.
fn speaks_to(aspect: Aspect, w: &[&str], raw: &str) -> bool {
    let starts = |prefixes: &[&str]| w.iter().any(|x| prefixes.iter().any(|p| x.starts_with(p)));
    let time = w.iter().any(|x| TIME_WORDS.contains(x));
    match aspect {
        Aspect::Fees => {
            raw.contains('€')
                || starts(&["kost", "gebuehr", "euro", "beitrag", "elternbeitra", "entgelt", "einkommen", "preis"])
        }
        Aspect::Deadline => starts(&["frist", "innerhalb", "spaetestens", "binnen"]) || time,
        Aspect::Validity => starts(&["gilt", "gueltig", "befristet"]) || length_of_time(w),
        Aspect::Duration => starts(&["dauer", "bearbeitung", "wartezeit"]) || time,
        Aspect::Documents => starts(&["mitbring", "unterlag", "nachweis", "vorleg", "formular", "bescheinigung"]),
        Aspect::Online => starts(&["online", "internet", "portal"]),
        Aspect::Appointment => starts(&["termin"]),
        Aspect::Prerequisites => starts(&["voraussetz", "berechtigt", "anspruch"]),
        // A street with its number ("Löbstedter Straße 56").
        Aspect::Where => w.windows(2).any(|p| {
            ["strasse", "str", "weg", "platz", "allee", "gasse", "ring"].iter().any(|s| p[0].ends_with(s))
                && p[1].starts_with(|c: char| c.is_ascii_digit())
        }),
        // A time of day ("bis 18 Uhr").
        Aspect::Hours => w.windows(2).any(|p| p[1] == "uhr" && p[0].starts_with(|c: char| c.is_ascii_digit())),
    }
}

/// The record's first sentence that says how to reach someone: a phone number after a word
/// for it, or an e-mail address ("Anmelden können Sie den Sperrmüll per Telefon unter 03641
/// 4989-510, per E-Mail an …"). `spoken`: only a phone number, and no address to read out.
pub fn contact_sentence(service: &Service, spoken: bool) -> Option<String> {
    static PHONE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let phone = PHONE.get_or_init(|| {
        regex::Regex::new(r"(?i)\b(telefon|tel\.|rufnummer|phone|hotline)\D{0,20}\d{3,}").expect("valid pattern")
    });
    let mail = |s: &str| s.contains('@');
    static DOMAIN: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let domain =
        DOMAIN.get_or_init(|| regex::Regex::new(r"(?i)\b[\w-]+\.(de|com|org|net|eu|info)\b").expect("valid pattern"));
    let web = |s: &str| s.contains("http") || s.contains("www.") || domain.is_match(s);
    sentences(service)
        .into_iter()
        .find(|s| if spoken { phone.is_match(s) && !mail(s) && !web(s) } else { phone.is_match(s) || mail(s) })
}

/// The aspects asked for that the record's fields (and its offices') do not answer: these are
/// looked for in the record's sentences.
pub fn unanswered(aspects: &[Aspect], service: &Service, offices: &[&lotse_core::Office]) -> Vec<Aspect> {
    aspects
        .iter()
        .copied()
        .filter(|a| match a {
            Aspect::Fees => service.fees.is_empty(),
            Aspect::Documents => service.documents.is_empty(),
            Aspect::Deadline => service.deadlines.is_empty(),
            Aspect::Duration => service.processing_time.is_none(),
            Aspect::Validity => true,
            Aspect::Online => service.online_services.is_empty(),
            Aspect::Prerequisites => service.prerequisites.is_empty(),
            Aspect::Where => !offices.iter().any(|o| o.address.is_some()),
            Aspect::Hours => !offices.iter().any(|o| o.opening_hours.is_some()),
            Aspect::Appointment => {
                service.appointment_url.is_none() && !offices.iter().any(|o| o.appointment_url.is_some())
            }
        })
        .collect()
}

/// The index terms of a question's word and of the German words its cue stands for.
fn word_terms(analyzer: &lotse_search::Analyzer, folded_word: &str) -> Vec<String> {
    let mut terms = analyzer.terms(folded_word);
    for (cue, targets) in CUES {
        if folded_word == *cue {
            terms.extend(targets.iter().map(|t| analyzer.stem(t)));
        }
    }
    terms
}

/// The terms of a service's own name (German and English): in every sentence of its record in
/// spirit. Its synonyms are not: "Hebesatz" is a synonym of the property tax and the word of
/// the one sentence that states the rate.
fn own_name_terms(analyzer: &lotse_search::Analyzer, service: &Service) -> std::collections::HashSet<String> {
    let name = format!("{} {}", service.name, service.name_en.as_deref().unwrap_or_default());
    analyzer.terms(&fold(&name)).into_iter().collect()
}

/// The terms of a service's name and synonyms: in every sentence of its record in spirit, so
/// they say little about which sentence answers.
fn name_terms(analyzer: &lotse_search::Analyzer, service: &Service) -> std::collections::HashSet<String> {
    analyzer.terms(&fold(&format!("{} {}", service.name, service.synonyms.join(" ")))).into_iter().collect()
}

/// The record sentences that best answer `question`, at most `max`, best first; none when no
/// sentence shares a content word of the question beyond the service's own name, unless an
/// English question says more than the name in words the record does not use (then the
/// sentence closest in meaning may answer).
/// `dense`: the service's position in the knowledge, for closeness in meaning; `None` leaves
/// it out (under load: the question is not embedded again). `unanswered`: aspects asked for
/// that the record has no field for ([`unanswered`]); a sentence that speaks to one counts as
/// a rare word, and one with a figure as another.
pub fn best(
    index: &SearchIndex,
    service: &Service,
    question: &str,
    max: usize,
    dense: Option<usize>,
    unanswered: &[Aspect],
    lang: lotse_core::Lang,
) -> Vec<String> {
    let analyzer = index.analyzer();
    // Its words as the records write them: a misspelt word is read as the word it stands for,
    // with all that word's terms (a compound's parts among them).
    let (question_terms, reading) = index.read_question(question);
    let folded = fold(&reading);
    let english = lang == lotse_core::Lang::En;
    let name_terms = own_name_terms(analyzer, service);
    let record: Vec<(String, std::collections::HashSet<String>)> = sentences(service)
        .into_iter()
        .map(|s| {
            let terms = analyzer.terms(&fold(&s)).into_iter().collect();
            (s, terms)
        })
        .collect();
    // (term, weight): the question's content words, their cue words, each by rarity.
    let mut wanted: Vec<(String, f32)> = Vec::new();
    for w in words(&folded) {
        if w.len() < 3 && !w.chars().all(|c| c.is_ascii_digit()) || analyzer.is_stop_word(w) {
            continue;
        }
        for t in word_terms(analyzer, w) {
            let mut weight = index.rarity(&t);
            if name_terms.contains(&t) {
                weight *= 0.2;
            }
            if analyzer.is_aspect_word(w) {
                weight *= 0.5;
            }
            if weight > 0.0 && !wanted.iter().any(|(x, _)| *x == t) {
                wanted.push((t, weight));
            }
        }
    }
    // The search's reading of the question adds its synonyms' and corrected typos' terms.
    for (t, w) in question_terms {
        let mut weight = index.rarity(&t) * w;
        if name_terms.contains(&t) {
            weight *= 0.2;
        }
        // Another form of a word the question has ("Hebesätze" for "Hebesatz") weighs no more
        // than the word: the form may be rarer in the records, not in meaning.
        let key = lotse_search::analysis::without_umlauts(&t);
        if let Some((_, own)) =
            wanted.iter().find(|(x, _)| *x != t && lotse_search::analysis::without_umlauts(x) == key)
        {
            weight = weight.min(*own);
        }
        match wanted.iter_mut().find(|(x, _)| *x == t) {
            Some(e) => e.1 = e.1.max(weight),
            None if weight > 0.0 => wanted.push((t, weight)),
            None => {}
        }
    }
    // A question that names only the service ("Personalausweis") asks for no sentence. An
    // English question that says more than the name in words the German record does not use
    // ("My residence permit expired while … Can I still stay?") is left to closeness in meaning.
    // Each wanted word's umlaut-free form, to count a word once per sentence (below).
    let wanted_keys: Vec<String> = wanted.iter().map(|(t, _)| lotse_search::analysis::without_umlauts(t)).collect();
    let english_story = english
        && words(&folded)
            .filter(|w| w.len() >= 4 && !analyzer.is_stop_word(w) && !analyzer.is_aspect_word(w))
            .filter(|w| analyzer.terms(w).iter().all(|t| !name_terms.contains(t)))
            .count()
            >= ENGLISH_STORY_WORDS;
    if unanswered.is_empty() && !english_story && !wanted.iter().any(|(t, _)| !name_terms.contains(t)) {
        return Vec::new();
    }
    // The sentences closest in meaning (with embeddings) count too: "Wie lange gilt ein
    // Tagesjagdschein?" shares only the service's own word with "… den Tagesjagdschein für 14
    // Tage am Stück".
    let mut dense = dense.map(|i| index.closest_sentences(&reading, i)).unwrap_or_default();
    // Such a question is answered with the teaser anyway: the closest sentence beyond it counts.
    if english_story && unanswered.is_empty() {
        let teaser = split_sentences(&service.teaser);
        dense.retain(|(s, _)| !teaser.iter().any(|t| t == s));
    }
    let dense_bonus = |s: &str| match dense.iter().position(|(t, _)| *t == s) {
        Some(0) => DENSE_FIRST,
        Some(1) => DENSE_FIRST / 2.0,
        _ => 0.0,
    };
    let figure = unanswered.iter().any(|a| {
        matches!(
            a,
            Aspect::Fees | Aspect::Deadline | Aspect::Validity | Aspect::Duration | Aspect::Where | Aspect::Hours
        )
    }) || ASKS_FIGURE
        .iter()
        .any(|p| folded.starts_with(p) || folded.contains(&format!(" {p} ")) || folded.contains(&format!(" {p}?")));
    let mut scored: Vec<(f32, String)> = record
        .into_iter()
        .filter_map(|(s, terms)| {
            let sentence_folded = fold(&s);
            // A word counts once in a sentence, whichever of its forms the sentence uses.
            let mut matched: Vec<(&str, f32)> = Vec::new();
            for ((_, w), key) in wanted.iter().zip(&wanted_keys).filter(|((t, _), _)| terms.contains(t)) {
                match matched.iter_mut().find(|(k, _)| k == key) {
                    Some(e) => e.1 = e.1.max(*w),
                    None => matched.push((key, *w)),
                }
            }
            let matched: Vec<f32> = matched.into_iter().map(|(_, w)| w).collect();
            let sentence_words: Vec<&str> = words(&sentence_folded).collect();
            let cue = unanswered.iter().any(|a| speaks_to(*a, &sentence_words, &s));
            // A sentence must share a word beyond the name (the name is in every sentence in
            // spirit), speak to an aspect the record has no field for, or be the closest in
            // meaning and share at least a word.
            let specific = cue || wanted.iter().any(|(t, w)| terms.contains(t) && !name_terms.contains(t) && *w > 0.0);
            let mut bonus = dense_bonus(&s);
            // An English question shares few words with a German record: the sentence closest
            // in meaning (the embeddings are multilingual) speaks for itself.
            if english {
                bonus *= ENGLISH_DENSE;
            }
            if !specific && (bonus < DENSE_FIRST || matched.is_empty() && !english) {
                return None;
            }
            let mut score: f32 = matched.iter().sum::<f32>() + bonus + if cue { ASPECT_CUE } else { 0.0 };
            if figure && crate::verify::has_figure(&s) {
                score += 1.0;
            }
            Some((score, s))
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    let Some(top) = scored.first().map(|(s, _)| *s) else { return Vec::new() };
    // Good enough: at least one rare word's worth, and close to the best.
    scored.into_iter().filter(|(s, _)| *s >= 1.5 && *s >= 0.6 * top).take(max).map(|(_, s)| s).collect()
}

/// The fees whose condition the question meets, by index: an age within the condition's range
/// ("ich bin 19" → "unter 24 Jahren"), a word of the condition ("Kind", "Express",
/// "Verlängerung"), or, for a question that needs it soon ([`crate::understand::is_urgent`]),
/// the quick way ("vorläufiger Personalausweis") where its condition names no age: the express
/// fee "für Antragsteller unter 24 Jahren" is not every asker's. Empty when the question names
/// no condition or none fits.
pub fn fitting_fees(index: &SearchIndex, service: &Service, question: &str) -> Vec<usize> {
    let analyzer = index.analyzer();
    let folded = fold(question);
    let age = age_in(&folded);
    let q_terms: std::collections::HashSet<String> = words(&folded)
        .filter(|w| w.len() >= 3 && !analyzer.is_stop_word(w))
        .flat_map(|w| word_terms(analyzer, w))
        .collect();
    let name_terms = name_terms(analyzer, service);
    let urgent = crate::understand::is_urgent(question);
    let mut by_age = Vec::new();
    let mut by_word = Vec::new();
    let mut quick = Vec::new();
    for (i, f) in service.fees.iter().enumerate() {
        let Some(cond) = f.condition.as_deref() else { continue };
        let c = fold(cond);
        if urgent && is_quick_way(&c) && age_fits(&c, 0).is_none() {
            quick.push(i);
        }
        if let Some(age) = age
            && let Some(fits) = age_fits(&c, age)
        {
            if fits {
                by_age.push(i);
            }
            continue;
        }
        let shares = analyzer.terms(&c).iter().any(|t| q_terms.contains(t) && !name_terms.contains(t) && t.len() >= 4);
        if shares || quick.contains(&i) {
            by_word.push(i);
        }
    }
    // The quick way stands beside the fee an age chooses ("Ich bin 30 und brauche sofort …").
    if by_age.is_empty() {
        return by_word;
    }
    by_age.extend(quick);
    by_age.sort_unstable();
    by_age.dedup();
    by_age
}

/// The record's words for the quick way (a provisional document, an express procedure, what
/// to do when it is needed at once), folded, as beginnings of words. None is inside another
/// word of the records, so a follow-up's focus may look for them anywhere in a line.
pub const QUICK_WAY: &[&str] = &["sofort", "vorlaeufig", "express", "beschleunig", "dringend", "kurzfristig"];

/// Whether a folded record text speaks of the quick way ("vorläufiger Personalausweis",
/// "Expressverfahren", "Brauchen Sie sofort einen Ausweis, …").
pub fn is_quick_way(folded: &str) -> bool {
    words(folded).any(|w| QUICK_WAY.iter().any(|q| w.starts_with(q)))
}

/// An age the question states: "ich bin 19", "19 Jahre alt", "mein Sohn (8)", "she's 12",
/// "I'm 40", "over 24" is not an age of the asker and is ignored.
fn age_in(folded: &str) -> Option<u32> {
    let w: Vec<&str> = words(folded).collect();
    for (i, word) in w.iter().enumerate() {
        let Ok(n) = word.parse::<u32>() else { continue };
        if n == 0 || n > 120 {
            continue;
        }
        let before = i.checked_sub(1).map(|j| w[j]).unwrap_or("");
        let after = w.get(i + 1).copied().unwrap_or("");
        let stated =
            matches!(before, "bin" | "ist" | "wird" | "werde" | "im" | "s" | "m" | "am" | "is" | "turned" | "alt")
                || after.starts_with("jahr")
                || after.starts_with("jaehrig")
                || matches!(after, "years" | "year" | "j" | "alt" | "old");
        if stated {
            return Some(n);
        }
    }
    None
}

/// Whether `age` meets an age condition ("unter 24 Jahren", "ab 24", "bis 12 Jahre", "über 60",
/// "Kinder unter 12", "Personen ab 24 Jahren"); `None` when the condition names no age.
fn age_fits(condition: &str, age: u32) -> Option<bool> {
    let w: Vec<&str> = words(condition).collect();
    let mut verdict = None;
    for (i, word) in w.iter().enumerate() {
        let Ok(n) = word.parse::<u32>() else { continue };
        let unit = w.get(i + 1).copied().unwrap_or("");
        if !(unit.starts_with("jahr") || unit.starts_with("lebensjahr") || n <= 30) {
            continue;
        }
        let before = i.checked_sub(1).map(|j| w[j]).unwrap_or("");
        let fits = match before {
            "unter" | "vor" | "below" | "under" => age < n,
            "bis" | "zum" => age <= n,
            "ab" | "from" => age >= n,
            "ueber" | "over" => age > n,
            _ => continue,
        };
        verdict = Some(verdict.unwrap_or(true) && fits);
    }
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_sentences_not_at_numbers_or_abbreviations() {
        assert_eq!(
            split_sentences("Er gilt 10 Jahre. Ab dem 1. Mai z. B. neu! Fertig"),
            ["Er gilt 10 Jahre.", "Ab dem 1. Mai z. B. neu!", "Fertig"]
        );
    }

    #[test]
    fn knows_which_sentences_speak_to_an_aspect() {
        let speaks = |a: Aspect, s: &str| {
            let f = fold(s);
            let w: Vec<&str> = words(&f).collect();
            speaks_to(a, &w, s)
        };
        assert!(speaks(Aspect::Where, "Der Hof liegt in der Löbstedter Straße 56."));
        assert!(!speaks(Aspect::Where, "Die Straße wird gereinigt."));
        assert!(speaks(Aspect::Hours, "Geöffnet montags bis 18 Uhr."));
        assert!(speaks(Aspect::Fees, "Die Gebühr richtet sich nach dem Einkommen."));
        assert!(speaks(Aspect::Fees, "Es kostet 5 €."));
        assert!(speaks(Aspect::Deadline, "Melden Sie sich innerhalb von zwei Wochen."));
        assert!(speaks(Aspect::Validity, "Der Schein gilt 14 Tage."));
        assert!(!speaks(Aspect::Validity, "Sie bekommen ihn im Bürgerservice."));
        // A validity is a length of time, however the sentence words it; a time word without
        // its figure is none.
        assert!(speaks(Aspect::Validity, "Dieser Zeitraum kann zwischen zwei und sechs Monaten liegen."));
        assert!(speaks(Aspect::Validity, "Die Erlaubnis wird für 3 Jahre erteilt."));
        assert!(!speaks(Aspect::Validity, "Die Zahlung erfolgt für volle Monate."));
        // An age or a yearly rate is no length of time.
        assert!(!speaks(Aspect::Validity, "Mindestalter 14 Jahre."));
        assert!(!speaks(Aspect::Validity, "Jede Person ab 14 Jahren kann es beantragen."));
        assert!(!speaks(Aspect::Validity, "Kinder, die 12 Jahre alt sind, brauchen einen eigenen."));
        assert!(!speaks(Aspect::Validity, "Seit 1. Februar 2025 kostet er 120 Euro im Jahr."));
    }

    #[test]
    fn reads_ages_and_age_conditions() {
        assert_eq!(age_in(&fold("Ich bin 19. Was kostet der Perso?")), Some(19));
        assert_eq!(age_in(&fold("Mein Sohn ist 10 Jahre alt")), Some(10));
        assert_eq!(age_in(&fold("She's 12.")), Some(12));
        assert_eq!(age_in(&fold("Was kosten 2 Urkunden?")), None);
        assert_eq!(age_fits(&fold("Personen unter 24 Jahren"), 19), Some(true));
        assert_eq!(age_fits(&fold("Personen ab 24 Jahren"), 19), Some(false));
        assert_eq!(age_fits(&fold("Kinder bis 12 Jahre"), 12), Some(true));
        assert_eq!(age_fits(&fold("Express"), 12), None);
    }
}

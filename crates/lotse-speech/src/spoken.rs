//! A reply as it is spoken on the phone: web addresses dropped, e-mail addresses, phone numbers,
//! amounts, times and dates written out the way a person says them, abbreviations expanded, and
//! the text split into sentences so that the first can be played while the rest is synthesised.

use std::sync::LazyLock;

use lotse_core::{Lang, MONTHS_DE, MONTHS_EN};
use regex::{Captures, Regex};

fn re(p: &str) -> Regex {
    Regex::new(p).expect("a valid pattern")
}

static URL: LazyLock<Regex> = LazyLock::new(|| re(r"(?:https?://|www\.)[^\s)]+"));
/// A web address without scheme ("service.jena.de"), not the domain of an e-mail address.
static DOMAIN: LazyLock<Regex> =
    LazyLock::new(|| re(r"(^|[^@\w.])((?:[a-z0-9-]+\.)+(?:de|com|org|net|eu|info)\b(?:/[^\s),;]*)?)"));
static DANGLING: LazyLock<Regex> = LazyLock::new(|| re(r"\s*[–:-]\s*$"));
static EMAIL: LazyLock<Regex> = LazyLock::new(|| re(r"([A-Za-z0-9._%+-]+)@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)"));
static PHONE: LazyLock<Regex> = LazyLock::new(|| re(r"(?:\+49[ ]?|\b0)\d{1,5}(?:[ /-]?\d{2,}){1,4}\b"));
/// "€70.00", "€ 1,250.50": the English way, the sign before the amount.
static AMOUNT_EN: LazyLock<Regex> = LazyLock::new(|| re(r"€[  ]?(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d{2}))?"));
static AMOUNT: LazyLock<Regex> = LazyLock::new(|| re(r"(\d{1,3}(?:\.\d{3})+|\d+)(?:,(\d{2}))?[  ]?€"));
static TIME_RANGE: LazyLock<Regex> =
    LazyLock::new(|| re(r"\b(\d{1,2}):(\d{2})[  ]?(?:–|-|bis)[  ]?(\d{1,2}):(\d{2})(?:[  ]?Uhr)?"));
static TIME: LazyLock<Regex> = LazyLock::new(|| re(r"\b(\d{1,2}):(\d{2})\b(?:[  ]?Uhr)?"));
static DATE: LazyLock<Regex> = LazyLock::new(|| re(r"\b(\d{1,2})\.(\d{1,2})\.(\d{4})\b"));
static SPACES: LazyLock<Regex> = LazyLock::new(|| re(r"[ \t  ]+"));

const ABBREVIATIONS_DE: [(&str, &str); 14] = [
    ("z. B.", "zum Beispiel"),
    ("z.B.", "zum Beispiel"),
    ("d. h.", "das heißt"),
    ("u. a.", "unter anderem"),
    ("ggf.", "gegebenenfalls"),
    ("bzw.", "beziehungsweise"),
    ("evtl.", "eventuell"),
    ("inkl.", "inklusive"),
    ("usw.", "und so weiter"),
    ("ca.", "circa"),
    ("Nr.", "Nummer"),
    ("Str.", "Straße"),
    ("Tel.", "Telefon"),
    ("§", "Paragraf"),
];

/// One digit after another, groups apart: "03641 49-3800" → "0 3 6 4 1, 4 9, 3 8 0 0".
fn digits(number: &str) -> String {
    let plus = if number.starts_with('+') { "plus " } else { "" };
    let groups: Vec<String> = number
        .split([' ', '/', '-'])
        .filter(|g| !g.is_empty())
        .map(|g| g.chars().filter(char::is_ascii_digit).map(String::from).collect::<Vec<_>>().join(" "))
        .collect();
    format!("{plus}{}", groups.join(", "))
}

fn time(h: &str, m: &str, lang: Lang) -> String {
    let h: u32 = h.parse().unwrap_or(0);
    let m: u32 = m.parse().unwrap_or(0);
    match (lang, m) {
        (Lang::De, 0) => format!("{h} Uhr"),
        (Lang::De, m) => format!("{h} Uhr {m}"),
        (Lang::En, 0) => format!("{h} o'clock"),
        (Lang::En, m) => format!("{h}:{m:02}"),
    }
}

/// The text a voice should say for `text`.
pub fn spoken(text: &str, lang: Lang) -> String {
    let en = lang == Lang::En;
    // Line by line: a line is a sentence of its own; list marks go.
    let mut lines = Vec::new();
    for line in text.lines() {
        let line = line.trim().trim_start_matches(['-', '•', '*']).trim();
        let line = URL.replace_all(line, "");
        let pages = if en { "the city's web pages" } else { "den Seiten der Stadt" };
        let line = DOMAIN.replace_all(&line, |c: &regex::Captures| format!("{}{pages}", &c[1]));
        let line = DANGLING.replace(&line, "").trim().to_string();
        if line.is_empty() {
            continue;
        }
        let ends = line.ends_with(['.', '!', '?', ':', ';']);
        lines.push(if ends {
            line.trim_end_matches(':').to_string() + if line.ends_with(':') { "." } else { "" }
        } else {
            line + "."
        });
    }
    let mut s = lines.join(" ");
    s = EMAIL
        .replace_all(&s, |c: &Captures| {
            let (dot, dash) = if en { (" dot ", " dash ") } else { (" Punkt ", " Strich ") };
            let local = c[1].replace('.', dot).replace('-', dash);
            let domain = c[2].replace('.', dot).replace('-', dash);
            format!("{local} at {domain}")
        })
        .into_owned();
    s = PHONE
        .replace_all(&s, |c: &Captures| {
            let n = c[0].chars().filter(char::is_ascii_digit).count();
            // Fewer than seven digits is no phone number (a postcode, a year).
            if n < 7 { c[0].to_string() } else { digits(&c[0]) }
        })
        .into_owned();
    // Both ways of writing an amount: euros (with their thousands separator) and cents.
    let word = if en { "euros" } else { "Euro" };
    let amount = |c: &Captures, thousands: char| {
        let euros = c[1].replace(thousands, "");
        match c.get(2).map(|m| m.as_str()) {
            None | Some("00") => format!("{euros} {word}"),
            Some(cents) => format!("{euros} {word} {}", cents.trim_start_matches('0')),
        }
    };
    s = AMOUNT.replace_all(&s, |c: &Captures| amount(c, '.')).into_owned();
    s = AMOUNT_EN.replace_all(&s, |c: &Captures| amount(c, ',')).into_owned();
    s = s.replace('€', word);
    s = TIME_RANGE
        .replace_all(&s, |c: &Captures| {
            let to = if en { "to" } else { "bis" };
            format!("{} {to} {}", time(&c[1], &c[2], lang), time(&c[3], &c[4], lang))
        })
        .into_owned();
    s = TIME.replace_all(&s, |c: &Captures| time(&c[1], &c[2], lang)).into_owned();
    s = DATE
        .replace_all(&s, |c: &Captures| {
            let d: u32 = c[1].parse().unwrap_or(0);
            let m: usize = c[2].parse().unwrap_or(0);
            match (m.checked_sub(1).and_then(|i| if en { MONTHS_EN.get(i) } else { MONTHS_DE.get(i) }), en) {
                (Some(month), false) => format!("{d}. {month} {}", &c[3]),
                (Some(month), true) => format!("{d} {month} {}", &c[3]),
                (None, _) => c[0].to_string(),
            }
        })
        .into_owned();
    if !en {
        for (abbr, full) in ABBREVIATIONS_DE {
            s = s.replace(abbr, full);
        }
    }
    s = s.replace('%', if en { " percent" } else { " Prozent" }).replace(" ;", ";");
    SPACES.replace_all(&s, " ").trim().to_string()
}

/// Splits spoken text into sentences. The period of a date ("am 7. Dezember") ends none.
/// The first sentence split after its first clause when it is long, so that the first audio
/// is synthesised sooner: "Apply for a passport (Reisepass beantragen)." becomes "Apply for a
/// passport" and "(Reisepass beantragen).". A Piper voice takes about 60 ms per second of
/// speech; the caller hears the start that much earlier.
pub fn quick_start(mut sentences: Vec<String>) -> Vec<String> {
    let Some(first) = sentences.first() else { return sentences };
    if first.split_whitespace().count() <= 4 {
        return sentences;
    }
    let cut = first
        .char_indices()
        .find(|&(i, c)| matches!(c, ',' | ':' | ';' | '(') && first[..i].split_whitespace().count() >= 3);
    if let Some((i, c)) = cut {
        let (head, tail) = if c == '(' { first.split_at(i) } else { first.split_at(i + c.len_utf8()) };
        let (head, tail) = (head.trim().to_string(), tail.trim().to_string());
        if !tail.is_empty() && tail.chars().any(char::is_alphanumeric) {
            sentences.splice(0..1, [head, tail]);
        }
    }
    sentences
}

pub fn sentences(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut start = 0;
    for i in 0..chars.len() {
        if !matches!(chars[i], '.' | '!' | '?') {
            continue;
        }
        let next_is_start =
            chars.get(i + 1) == Some(&' ') && chars.get(i + 2).is_some_and(|c| c.is_uppercase() || c.is_ascii_digit());
        let at_end = i + 1 == chars.len();
        if !(next_is_start || at_end) {
            continue;
        }
        if chars[i] == '.' && !at_end {
            // "7. Dezember" is a date, not the end of a sentence.
            let word: String = chars[start..i].iter().rev().take_while(|c| !c.is_whitespace()).collect();
            let next: String = chars[i + 2..].iter().take_while(|c| c.is_alphabetic()).collect();
            let month = MONTHS_DE.contains(&next.as_str()) || MONTHS_EN.contains(&next.as_str());
            if (1..=2).contains(&word.len()) && word.chars().all(|c| c.is_ascii_digit()) && month {
                continue;
            }
        }
        let s: String = chars[start..=i].iter().collect();
        if !s.trim().is_empty() {
            out.push(s.trim().to_string());
        }
        start = i + 1;
    }
    let rest: String = chars[start..].iter().collect();
    if !rest.trim().is_empty() {
        out.push(rest.trim().to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_first_sentence_starts_with_its_first_clause() {
        let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            quick_start(s(&["Apply for a passport (Reisepass beantragen) at the office.", "Fees: 70 euros."])),
            s(&["Apply for a passport", "(Reisepass beantragen) at the office.", "Fees: 70 euros."])
        );
        assert_eq!(
            quick_start(s(&["Kosten: 46 Euro für Antragsteller ab 24 Jahren, sonst 27 Euro 60."])),
            s(&["Kosten: 46 Euro für Antragsteller ab 24 Jahren,", "sonst 27 Euro 60."])
        );
        assert_eq!(quick_start(s(&["Guten Tag, wie geht es?"])), s(&["Guten Tag, wie geht es?"]));
        assert_eq!(quick_start(Vec::new()), Vec::<String>::new());
    }

    #[test]
    fn a_composed_answer_as_spoken() {
        let text = "Personalausweis beantragen:\nKosten: 46,00 € (Antragsteller ab 24 Jahren); 27,60 € (unter 24 Jahren)\n\
                    Online: Termin buchen – https://service.jena.de/termin\n\
                    Zuständig ist Team Bürgerservice, Engelplatz 1, 07743 Jena.\nTelefon 03641 49-3800.\nE-Mail bs-antrag@jena.de.";
        let s = spoken(text, Lang::De);
        assert_eq!(
            s,
            "Personalausweis beantragen. Kosten: 46 Euro (Antragsteller ab 24 Jahren); 27 Euro 60 (unter 24 Jahren). \
             Online: Termin buchen. Zuständig ist Team Bürgerservice, Engelplatz 1, 07743 Jena. \
             Telefon 0 3 6 4 1, 4 9, 3 8 0 0. E-Mail bs Strich antrag at jena Punkt de."
        );
        assert!(!s.contains("http") && !s.contains('€') && !s.contains('@'));
        // An address without scheme is not spelled out either; an e-mail domain stays.
        assert_eq!(
            spoken("Termine auf service.jena.de oder per E-Mail an info@jena.de.", Lang::De),
            "Termine auf den Seiten der Stadt oder per E-Mail an info at jena Punkt de."
        );
        assert_eq!(spoken("Book at service.jena.de/termin.", Lang::En), "Book at the city's web pages.");
    }

    #[test]
    fn times_dates_and_abbreviations() {
        let table = [
            ("Geöffnet Mo 08:00-12:00 und 13:00–18:00 Uhr.", "Geöffnet Mo 8 Uhr bis 12 Uhr und 13 Uhr bis 18 Uhr."),
            ("Ab 9:30 Uhr", "Ab 9 Uhr 30."),
            ("Frist: 31.12.2026", "Frist: 31. Dezember 2026."),
            ("Bitte ggf. z. B. den Pass mitbringen", "Bitte gegebenenfalls zum Beispiel den Pass mitbringen."),
            ("Gebühr 1.250,00 € nach § 3", "Gebühr 1250 Euro nach Paragraf 3."),
            ("Vorwahl +49 3641 123456", "Vorwahl plus 4 9, 3 6 4 1, 1 2 3 4 5 6."),
        ];
        for (input, want) in table {
            assert_eq!(spoken(input, Lang::De), want, "{input}");
        }
        assert_eq!(
            spoken("It costs 46,00 € at 13:00. Mail info@jena.de", Lang::En),
            "It costs 46 euros at 13 o'clock. Mail info at jena dot de."
        );
        assert_eq!(
            spoken("Fees: €70.00 (adults); €37.50; € 1,250.00.", Lang::En),
            "Fees: 70 euros (adults); 37 euros 50; 1250 euros."
        );
    }

    #[test]
    fn sentences_split_for_speaking_one_after_another() {
        let s = sentences("Danke. Wir melden uns am Montag, 7. Dezember, 8 Uhr. Bis dann! Noch Fragen?");
        assert_eq!(s, vec!["Danke.", "Wir melden uns am Montag, 7. Dezember, 8 Uhr.", "Bis dann!", "Noch Fragen?"]);
        assert_eq!(sentences("ohne Punkt"), vec!["ohne Punkt"]);
        assert_eq!(sentences("Telefon 4 9, 3 8 0 0. E-Mail x."), vec!["Telefon 4 9, 3 8 0 0.", "E-Mail x."]);
        assert!(sentences("  ").is_empty());
    }
}

//! The grounding rule, enforced: every amount, number, time, phone number, e-mail address and
//! web address in a reply must come from the records the reply is based on. The deterministic
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
}

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

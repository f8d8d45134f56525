//! Turning a service record into reply text. [`Composer`] is the seam where a generator (the
//! local LLM) can plug in; [`RecordComposer`] is the deterministic composer that is always there:
//! every fact it writes is copied from the record, so it cannot state a wrong fee.

use jiff::civil::DateTime;
use lotse_core::calendar::{OpenState, State, open_state, weekday_name};
use lotse_core::{Channel, Fee, Lang, Office, Service};

use crate::understand::Aspect;

/// The records an answer may use: the service and its responsible offices.
pub struct Grounding<'a> {
    pub service: &'a Service,
    pub offices: Vec<&'a Office>,
}

/// How to answer.
pub struct Request<'a> {
    pub lang: Lang,
    pub plain: bool,
    pub channel: Channel,
    /// The facts asked for; empty for a general question.
    pub aspects: &'a [Aspect],
    /// Folded content words of a follow-up without aspect ("Und für Kinder?" → ["kinder"]).
    pub focus: &'a [String],
    /// Local time in the city, for "open until".
    pub now: DateTime,
    /// The city's state, whose public holidays close its offices.
    pub state: State,
    /// Record sentences that answer the question's specifics, stated verbatim after the name.
    pub passages: &'a [String],
    /// The fees whose condition the question meets (indices into the service's fees); empty:
    /// all fees.
    pub fees: &'a [usize],
    /// The question told a situation and the service is new to the conversation: an aspect
    /// answer also gives the teaser, so the citizen learns what the service is (not on the
    /// phone, where every sentence costs the caller time, and not in English, where the
    /// teaser would be German).
    pub introduce: bool,
}

/// Writes the text of an answer from grounded records.
pub trait Composer: Send + Sync {
    fn answer(&self, request: &Request<'_>, grounding: &Grounding<'_>) -> String;
}

/// The deterministic composer.
#[derive(Debug, Default, Clone, Copy)]
pub struct RecordComposer;

/// Ends a line with a full stop unless it ends a sentence already (a note of the record often
/// does: no "Vereinbarung..").
fn sentence(mut line: String) -> String {
    if !line.ends_with(['.', '!', '?']) {
        line.push('.');
    }
    line
}

/// Formats an amount: "46,00 €" in German, "€46.00" in English.
pub fn money(amount: f64, lang: Lang) -> String {
    let s = format!("{amount:.2}");
    match lang {
        Lang::De => format!("{} €", s.replace('.', ",")),
        Lang::En => format!("€{s}"),
    }
}

pub(crate) fn fee_text(f: &Fee, lang: Lang) -> String {
    let amount = match (f.amount, f.amount_max) {
        (Some(lo), Some(hi)) => match lang {
            Lang::De => format!("{} bis {}", money(lo, lang), money(hi, lang)),
            Lang::En => format!("{} to {}", money(lo, lang), money(hi, lang)),
        },
        (Some(a), None) => money(a, lang),
        (None, _) => return f.text.clone().unwrap_or_default(),
    };
    match f.condition.as_deref().filter(|c| !c.is_empty()) {
        Some(c) => format!("{amount} ({c})"),
        None => amount,
    }
}

pub(crate) fn hhmm(minute: u16) -> String {
    format!("{:02}:{:02}", minute / 60, minute % 60)
}

struct Words {
    lang: Lang,
}

impl Words {
    fn t<'a>(&self, de: &'a str, en: &'a str) -> &'a str {
        match self.lang {
            Lang::De => de,
            Lang::En => en,
        }
    }
}

fn open_sentence(office: &Office, now: DateTime, region: State, lang: Lang, phone: bool) -> Option<String> {
    let hours = office.opening_hours.as_ref()?;
    let w = Words { lang };
    let state = open_state(hours, now.date(), (now.hour() as u16) * 60 + now.minute() as u16, region);
    let s = match state {
        OpenState::OpenUntil(r) => match lang {
            Lang::De => format!("Heute geöffnet bis {} Uhr.", hhmm(r.to)),
            Lang::En => format!("Open today until {}.", hhmm(r.to)),
        },
        OpenState::Opens { date, range, holiday_today } => {
            let when = if date == now.date() {
                w.t("heute", "today").to_string()
            } else {
                match lang {
                    Lang::De => format!("am {}", weekday_name(date, false)),
                    Lang::En => format!("on {}", weekday_name(date, true)),
                }
            };
            let holiday = holiday_today.map(|h| match lang {
                Lang::De => format!("Heute ist Feiertag ({h}). "),
                Lang::En => format!("Today is a public holiday ({h}). "),
            });
            match lang {
                Lang::De => {
                    format!("{}Geöffnet wieder {when} ab {} Uhr.", holiday.unwrap_or_default(), hhmm(range.from))
                }
                Lang::En => format!("{}Opens again {when} at {}.", holiday.unwrap_or_default(), hhmm(range.from)),
            }
        }
        OpenState::Unknown => String::new(),
    };
    let note = hours.note.as_deref().map(str::trim).filter(|n| !n.is_empty());
    // Spoken, a long note would drown the hours: its first sentence and the next one that
    // restricts a visit ("Nur nach Terminvereinbarung. Montag keine Sprechzeiten."); the rest
    // is on the city's pages. Not in brackets around it: a bracket cannot be heard.
    if phone && let Some(n) = note {
        let spoken = phone_note(n);
        return match (s.is_empty(), spoken.is_empty()) {
            (true, true) => None,
            (true, false) => Some(sentence(format!("{}: {spoken}", w.t("Öffnungszeiten", "Opening hours")))),
            (false, false) => Some(sentence(format!("{s} {spoken}"))),
            (false, true) => Some(s),
        };
    }
    match (s.is_empty(), note) {
        (true, None) => None,
        (true, Some(n)) => Some(sentence(format!("{}: {n}", w.t("Öffnungszeiten", "Opening hours")))),
        (false, Some(n)) => Some(format!("{s} ({n})")),
        (false, None) => Some(s),
    }
}

/// The sentences of a note, not cut at an abbreviation ("z. B.", "Nr.") or a date ("12. Mai"),
/// without their full stops.
fn note_sentences(note: &str) -> Vec<String> {
    const SHORT: &[&str] = &[
        "z", "B", "b", "bzw", "Nr", "ca", "u", "a", "d", "h", "o", "Str", "usw", "ggf", "inkl", "evtl", "Tel", "Abs",
        "S", "Dr", "vgl", "sog", "Mo", "Di", "Mi", "Do", "Fr", "Sa", "So", "St", "gem", "lt", "Jan", "Feb", "Mär",
        "Apr", "Jun", "Jul", "Aug", "Sep", "Sept", "Okt", "Nov", "Dez",
    ];
    let mut out = Vec::new();
    let mut start = 0;
    let mut from = 0;
    while let Some(i) = note[from..].find(". ").map(|i| i + from) {
        let before = &note[..i];
        let word = before.rsplit(|c: char| !c.is_alphanumeric()).next().unwrap_or("");
        // A day ("12. Mai") has one or two digits; "… 49-3800. Fertige …" ends a sentence.
        let ordinal = (1..=2).contains(&word.len()) && word.chars().all(|c| c.is_ascii_digit());
        let abbreviation = SHORT.contains(&word) || ordinal;
        if !abbreviation || before.ends_with(')') {
            out.push(note[start..i].trim().to_string());
            start = i + 2;
        }
        from = i + 2;
    }
    out.push(note[start..].trim().trim_end_matches('.').trim().to_string());
    out.retain(|s| s.chars().any(char::is_alphanumeric));
    out
}

/// What of a note is said on the phone: its first sentence, which usually qualifies the hours,
/// and the next sentence that restricts a visit (a word starting with "Termin", "nur",
/// "geschlossen", "kein"), if any.
pub(crate) fn phone_note(note: &str) -> String {
    const RESTRICTING: &[&str] = &["termin", "nur", "geschlossen", "kein", "appointment", "only", "closed"];
    let sentences = note_sentences(note);
    let restricts = |s: &str| {
        let folded = lotse_search::fold(s).to_lowercase();
        lotse_search::analysis::words(&folded).any(|w| RESTRICTING.iter().any(|k| w.starts_with(k)))
    };
    let mut chosen: Vec<&str> = sentences.iter().take(1).map(String::as_str).collect();
    chosen.extend(sentences.iter().skip(1).find(|s| restricts(s)).map(String::as_str));
    chosen.join(". ")
}

fn office_sentences(office: &Office, req: &Request<'_>, with_hours: bool) -> Vec<String> {
    let w = Words { lang: req.lang };
    let mut out = Vec::new();
    let mut first = match req.lang {
        Lang::De => format!("Zuständig ist {}", office.name),
        Lang::En => format!("Responsible: {}", office.name),
    };
    if let Some(a) = &office.address {
        first.push_str(&format!(", {a}"));
    }
    first.push('.');
    out.push(first);
    if let Some(p) = &office.phone {
        out.push(format!("{} {p}.", w.t("Telefon", "Phone")));
    }
    if let Some(e) = &office.email {
        out.push(format!("{} {e}.", w.t("E-Mail", "E-mail")));
    }
    if with_hours && let Some(s) = open_sentence(office, req.now, req.state, req.lang, req.channel == Channel::Phone) {
        out.push(s);
    }
    out
}

/// Joins list items for one sentence, at most `max`, and says that there are more. On the phone
/// there is no source to look at: the caller is pointed to the city's pages instead.
fn list(items: &[String], max: usize, lang: Lang, channel: Channel) -> String {
    let shown: Vec<&str> = items.iter().take(max).map(|s| s.trim_end_matches(['.', ';'])).collect();
    let mut s = shown.join("; ");
    if items.len() > max {
        // No count here: every number in a reply must come from a record.
        s.push_str(match (lang, channel == Channel::Phone) {
            (Lang::De, false) => " (und weitere, siehe Quelle)",
            (Lang::En, false) => " (and more, see the source)",
            (Lang::De, true) => " und weitere, die auf den Seiten der Stadt stehen",
            (Lang::En, true) => " and more, listed on the city's web pages",
        });
    }
    s
}

/// The lines of a record that mention one of the focus words (for "Und für Kinder?").
fn focus_lines(service: &Service, focus: &[String], lang: Lang) -> Vec<String> {
    let matches = |text: &str| {
        let folded = lotse_search::fold(text);
        focus.iter().any(|f| folded.contains(f.as_str()))
    };
    let mut out = Vec::new();
    for f in &service.fees {
        let t = format!("{} {}", f.condition.clone().unwrap_or_default(), f.text.clone().unwrap_or_default());
        if matches(&t) {
            out.push(format!("{}: {}.", Words { lang }.t("Kosten", "Fee"), fee_text(f, lang)));
        }
    }
    for item in service.documents.iter().chain(&service.prerequisites) {
        if matches(item) {
            out.push(format!("{}.", item.trim_end_matches('.')));
        }
    }
    for sentence in service.description.split_inclusive(['.', '\n']) {
        if matches(sentence) && out.len() < 4 {
            out.push(sentence.trim().to_string());
        }
    }
    out
}

/// A record's text as a sentence: capitalised, with a full stop where it has no closing mark.
fn as_sentence(text: &str) -> String {
    let text = text.trim();
    // "eID-Karte" and "iPhone" keep their first letter ("online-Antrag" does not).
    let mut out: String = if text.chars().nth(1).is_some_and(char::is_uppercase) {
        text.to_string()
    } else {
        let mut chars = text.chars();
        chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
    };
    if !out.ends_with(['.', '!', '?', ':', ')', '"', '“']) {
        out.push('.');
    }
    out
}

impl Composer for RecordComposer {
    fn answer(&self, req: &Request<'_>, g: &Grounding<'_>) -> String {
        let s = g.service;
        let lang = req.lang;
        let w = Words { lang };
        let office = g.offices.first().copied();
        let mut lines: Vec<String> = Vec::new();
        let name = match lang {
            Lang::En => s.name_en.clone().map_or_else(|| s.name.clone(), |en| format!("{en} ({})", s.name)),
            Lang::De => s.name.clone(),
        };
        let general = req.aspects.is_empty() && req.focus.is_empty();
        // A general question on the phone gets the overview a caller can take in by ear (the
        // fees, who is responsible, today's hours) and is told what else to ask; read out in
        // full, a record takes minutes.
        let brief = general && req.channel == Channel::Phone;
        let asked = |a: Aspect| general || req.aspects.contains(&a);
        let unknown = |what_de: &str, what_en: &str| match lang {
            Lang::De => format!("Zu {what_de} liegt mir keine gesicherte Angabe vor."),
            Lang::En => format!("I have no verified information on {what_en}."),
        };
        // Whether the reply says that the record does not hold something that was asked.
        let mut unknown_said = false;

        if general {
            match (lang, req.plain) {
                // Plain language keeps what the service is: the teaser is the record's one
                // sentence on it, and without it "Es geht um: Wohngeld beantragen" explains
                // nothing.
                (Lang::De, true) => {
                    lines.push(format!("Es geht um: {}.", s.name));
                    if !s.teaser.trim().is_empty() {
                        lines.push(s.teaser.trim().to_string());
                    }
                }
                _ => {
                    lines.push(format!("{name}."));
                    // In English the German teaser is given marked as such (its figures and
                    // names help), but not read out on the phone by an English voice.
                    match lang {
                        _ if s.teaser.trim().is_empty() => {}
                        Lang::De => lines.push(s.teaser.trim().to_string()),
                        Lang::En if req.channel != Channel::Phone => {
                            lines.push(format!("From the record (in German): {}", s.teaser.trim()))
                        }
                        Lang::En => {}
                    }
                }
            }
        } else {
            lines.push(format!("{name}:"));
            if req.introduce && lang == Lang::De && req.channel != Channel::Phone && !s.teaser.trim().is_empty() {
                lines.push(s.teaser.trim().to_string());
            }
        }

        // The record's own sentences for what was asked, before the structured facts; in
        // English the German sentence is marked as such.
        for p in req.passages {
            if !lines.iter().any(|l| l.contains(p.as_str())) {
                // A list item of the record ("mindestens fünf Stunden … pro Woche") is said as
                // a sentence.
                let p = as_sentence(p);
                lines.push(match lang {
                    Lang::De => p,
                    Lang::En => format!("From the record (in German): {p}"),
                });
            }
        }
        if !req.focus.is_empty() {
            let found = focus_lines(s, req.focus, lang);
            if found.is_empty() {
                lines.push(match lang {
                    Lang::De => "Dazu steht in meinen Unterlagen nichts Besonderes.".to_string(),
                    Lang::En => "My records say nothing specific about that.".to_string(),
                });
                unknown_said = true;
            } else {
                lines.extend(found);
            }
        }

        if asked(Aspect::Fees) {
            let fees: Vec<String> = s
                .fees
                .iter()
                .enumerate()
                .filter(|(i, _)| req.fees.is_empty() || req.fees.contains(i))
                .map(|(_, f)| fee_text(f, lang))
                .filter(|t| !t.is_empty())
                .collect();
            if !fees.is_empty() {
                if req.plain {
                    for f in fees.iter().take(3) {
                        lines.push(format!("{} {f}.", w.t("Das kostet:", "It costs:")));
                    }
                } else {
                    let max = if brief { 2 } else { 4 };
                    lines.push(format!("{}: {}.", w.t("Kosten", "Fees"), list(&fees, max, lang, req.channel)));
                }
            } else if !general {
                lines.push(unknown("den Kosten", "the fees"));
                unknown_said = true;
            }
        }
        if asked(Aspect::Documents) && !brief {
            if !s.documents.is_empty() {
                let max = if req.plain || req.channel == Channel::Phone { 3 } else { 6 };
                lines.push(format!("{}: {}.", w.t("Mitbringen", "Bring"), list(&s.documents, max, lang, req.channel)));
            } else if !general {
                lines.push(unknown("den Unterlagen", "the documents needed"));
                unknown_said = true;
            }
        }
        // How to go about it: the record's steps, for a general question where there is room
        // (the phone's overview says what else to ask instead).
        if general && !brief && !s.procedure.is_empty() {
            let max = if req.plain { 3 } else { 4 };
            lines.push(format!("{}: {}.", w.t("So geht es", "Steps"), list(&s.procedure, max, lang, req.channel)));
        }
        if asked(Aspect::Prerequisites) && !s.prerequisites.is_empty() && !general {
            lines.push(format!(
                "{}: {}.",
                w.t("Voraussetzungen", "Requirements"),
                list(&s.prerequisites, 4, lang, req.channel)
            ));
        }
        if asked(Aspect::Duration) && !brief {
            match &s.processing_time {
                Some(t) => {
                    lines.push(format!("{}: {}.", w.t("Bearbeitungsdauer", "Processing time"), t.trim_end_matches('.')))
                }
                None if !general => {
                    lines.push(unknown("der Bearbeitungsdauer", "the processing time"));
                    unknown_said = true;
                }
                None => {}
            }
        }
        if asked(Aspect::Deadline) {
            if !s.deadlines.is_empty() {
                lines.push(format!("{}: {}.", w.t("Frist", "Deadline"), list(&s.deadlines, 2, lang, req.channel)));
            } else if !general && req.passages.is_empty() {
                lines.push(unknown("einer Frist", "a deadline"));
                unknown_said = true;
            }
        }
        // Validity has no field of its own: the record's sentences answer it, or nothing does.
        if req.aspects.contains(&Aspect::Validity) && req.passages.is_empty() {
            lines.push(unknown("der Gültigkeit", "how long it is valid"));
            unknown_said = true;
        }
        // What the record does not say, the office can: it is named with its phone number.
        // (An online service asked for and missing is said below, after the office.)
        let said_unknown = unknown_said || req.aspects.contains(&Aspect::Online) && s.online_services.is_empty();
        let where_asked = general || req.aspects.iter().any(|a| matches!(a, Aspect::Where | Aspect::Hours | Aspect::Appointment))
            // A specific question gets where to go as the next thing a citizen needs.
            || req.aspects.iter().any(|a| matches!(a, Aspect::Fees | Aspect::Documents))
            || said_unknown;
        if where_asked {
            match office {
                Some(o) if brief => {
                    lines.push(match lang {
                        Lang::De => format!("Zuständig ist {}.", o.name),
                        Lang::En => format!("Responsible: {}.", o.name),
                    });
                    lines.extend(open_sentence(o, req.now, req.state, lang, true));
                }
                Some(o) => {
                    lines.extend(office_sentences(o, req, general || asked(Aspect::Hours) || asked(Aspect::Where)))
                }
                None if !general => lines.push(unknown("der zuständigen Stelle", "the responsible office")),
                None => {}
            }
        }
        if asked(Aspect::Online) || asked(Aspect::Appointment) {
            let urls = req.channel.shows_urls();
            for link in s.online_services.iter().take(2) {
                if urls {
                    lines.push(format!("{}: {} – {}", w.t("Online", "Online"), link.title, link.url));
                } else {
                    lines.push(format!("{}: {}.", w.t("Online möglich", "Available online"), link.title));
                }
            }
            if s.online_services.is_empty() && req.aspects.contains(&Aspect::Online) {
                lines.push(unknown("einem Online-Angebot", "an online service"));
            }
        }
        if asked(Aspect::Appointment) {
            let url = s.appointment_url.as_ref().or(office.and_then(|o| o.appointment_url.as_ref()));
            match url {
                Some(u) if req.channel.shows_urls() => {
                    lines.push(format!("{}: {u}", w.t("Termin buchen", "Book an appointment")))
                }
                Some(_) => lines.push(
                    w.t("Termine können online gebucht werden.", "Appointments can be booked online.").to_string(),
                ),
                None => {}
            }
        }
        if brief {
            // Only what the records hold is offered.
            let mut more: Vec<&str> = Vec::new();
            if !s.documents.is_empty() {
                more.push(w.t("den Unterlagen", "the documents"));
            }
            if office.is_some_and(|o| o.address.is_some()) {
                more.push(w.t("der Adresse", "the address"));
            }
            if s.processing_time.is_some() {
                more.push(w.t("der Bearbeitungsdauer", "the processing time"));
            }
            if let Some((last, rest)) = more.split_last() {
                let items = if rest.is_empty() {
                    last.to_string()
                } else {
                    format!("{} {} {last}", rest.join(", "), w.t("oder", "or"))
                };
                lines.push(match lang {
                    Lang::De => format!("Fragen Sie mich gern auch nach {items}."),
                    Lang::En => format!("You can also ask me about {items}."),
                });
            }
        }
        if lang == Lang::En && general {
            lines.push(if req.channel == Channel::Phone {
                "The details in my records are in German; the full text is on the city's web pages.".to_string()
            } else {
                "The details in my records are in German; see the source for the full text.".to_string()
            });
        }
        lines.join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_note_is_split_into_sentences_not_at_an_abbreviation_or_a_date() {
        assert_eq!(
            note_sentences("Nur nach Terminvereinbarung. Montag keine Sprechzeiten."),
            ["Nur nach Terminvereinbarung", "Montag keine Sprechzeiten"]
        );
        assert_eq!(
            note_sentences("Termine z. B. am 12. Mai. Sonst nicht."),
            ["Termine z. B. am 12. Mai", "Sonst nicht"]
        );
        assert_eq!(
            note_sentences("Samstags 9 Uhr bis 13 Uhr (nach Termin). Sonst nicht."),
            ["Samstags 9 Uhr bis 13 Uhr (nach Termin)", "Sonst nicht"]
        );
        assert_eq!(note_sentences("Ohne Punkt"), ["Ohne Punkt"]);
        assert!(note_sentences(".").is_empty() && phone_note(" . ").is_empty());
        // On the phone: the first sentence and the next that restricts a visit.
        assert_eq!(
            phone_note(
                "Nur nach Terminvereinbarung. Barrierefrei. Montag keine Sprechzeiten. Trauungen nur mittwochs."
            ),
            "Nur nach Terminvereinbarung. Montag keine Sprechzeiten"
        );
        assert_eq!(
            phone_note(
                "Zeiten können abweichen. Auszahlungstermine stehen im Bescheid. Weitere Termine nach Vereinbarung."
            ),
            "Zeiten können abweichen. Weitere Termine nach Vereinbarung"
        );
        assert_eq!(phone_note("Eingang über den Hof. Parkplätze vorhanden."), "Eingang über den Hof");
        assert_eq!(note_sentences("Telefon 03641 49-3800. Danach"), ["Telefon 03641 49-3800", "Danach"]);
    }

    #[test]
    fn a_line_ends_with_one_full_stop() {
        assert_eq!(sentence("Öffnungszeiten: nach Vereinbarung.".into()), "Öffnungszeiten: nach Vereinbarung.");
        assert_eq!(sentence("Öffnungszeiten: nach Vereinbarung".into()), "Öffnungszeiten: nach Vereinbarung.");
    }

    #[test]
    fn money_formats() {
        assert_eq!(money(46.0, Lang::De), "46,00 €");
        assert_eq!(money(27.6, Lang::En), "€27.60");
    }
}

//! Offices as answers (the Zuständigkeitsfinder's "where and when"): which office a question
//! names, by the names citizens use for it ("Bürgeramt", "Einwohnermeldeamt", "citizens'
//! office"), which day it asks about, and the answer from the office record alone: address,
//! phone, e-mail, the hours of the day asked for (the configured state's holidays closed), the week's hours
//! and the record's note.

use jiff::civil::{Date, DateTime};
use lotse_core::calendar::{OpenState, State, holiday, open_state, weekday};
use lotse_core::{Channel, Lang, Office, Weekday};
use lotse_knowledge::KnowledgeBase;
use lotse_search::Analyzer;
use lotse_search::analysis::words;
use lotse_search::fold;

use crate::compose::hhmm;
use crate::understand::Aspect;

/// Words in office names that name no office by themselves.
const GENERIC: &[&str] = &[
    "team",
    "fachdienst",
    "fachbereich",
    "stadt",
    "jena",
    "city",
    "of",
    "the",
    "and",
    "fuer",
    "und",
    "der",
    "die",
    "das",
    "des",
    "im",
    "in",
    "am",
    "service",
    "services",
];

/// The names of every office, analysed for matching.
pub struct OfficeFinder {
    /// (office index, stems of one name's words, whether the name is the office's own rather
    /// than a note of where it sits: "Fundbüro (im Bürgerservice)")
    phrases: Vec<(usize, Vec<String>, bool)>,
    /// Each office's German name and synonyms as folded words.
    name_words: Vec<Vec<String>>,
}

/// An office word that ends the names of this many offices or more ("Amt": Finanzamt,
/// Jugendamt, Gesundheitsamt) says what kind of place it is, not which one.
const KIND_OF_OFFICE: usize = 3;

/// Words that open a part of an office's name saying where it sits, not what it is called.
const LOCATED: &[&str] = &["im", "in", "am", "beim", "bei", "part", "within", "inside", "at"];

/// An office a question names.
#[derive(Debug, Clone, PartialEq)]
pub struct Named {
    pub office: usize,
    /// The question's folded words that name it.
    pub words: Vec<String>,
}

impl OfficeFinder {
    pub fn new(kb: &KnowledgeBase, analyzer: &Analyzer) -> OfficeFinder {
        let mut phrases = Vec::new();
        for (i, o) in kb.offices.iter().enumerate() {
            let mut names: Vec<&str> = o.synonyms.iter().map(String::as_str).collect();
            // "Team Bürgerservice (Fachdienst Bürgerdienste)": each part is a name of its own.
            names.extend(o.name.split(['(', ')', ',', '–', '/']));
            if let Some(en) = o.name_en.as_deref() {
                names.push(en);
                names.extend(en.split(['(', ')', ',', '–', '/']));
            }
            for name in names {
                let folded = fold(name);
                let own = words(&folded).next().is_none_or(|w| !LOCATED.contains(&w));
                let stems: Vec<String> = words(&folded)
                    .filter(|w| !GENERIC.contains(w) && !analyzer.is_stop_word(w))
                    .map(|w| analyzer.stem(w))
                    .collect();
                if stems.is_empty() {
                    continue;
                }
                match phrases.iter_mut().find(|(o, s, _)| *o == i && *s == stems) {
                    Some(p) => p.2 |= own,
                    None => phrases.push((i, stems, own)),
                }
            }
        }
        let name_words = kb
            .offices
            .iter()
            .map(|o| {
                let folded = fold(&format!("{} {}", o.name, o.synonyms.join(" ")));
                words(&folded).map(String::from).collect()
            })
            .collect();
        OfficeFinder { phrases, name_words }
    }

    /// Whether a folded word names a kind of office rather than one ("das Amt", "die Behörde",
    /// "die Stelle"): the last part of words in the names of [`KIND_OF_OFFICE`] offices or
    /// more, read from the knowledge's offices, not from a list.
    pub fn is_kind_of_office(&self, folded: &str) -> bool {
        folded.chars().count() >= 3
            && self.name_words.iter().filter(|ws| ws.iter().any(|w| w.ends_with(folded))).count() >= KIND_OF_OFFICE
    }

    /// The office whose name the question uses: every word of one of its names stands in the
    /// question. The longest such name wins, an office's own name before a note of where
    /// another sits; a tie between offices names none.
    pub fn named(&self, text: &str, analyzer: &Analyzer) -> Option<Named> {
        let folded = fold(text);
        let asked: Vec<(&str, String)> = words(&folded).map(|w| (w, analyzer.stem(w))).collect();
        let mut best: Option<(usize, (usize, bool), Vec<String>)> = None;
        let mut tie = false;
        for (office, stems, own) in &self.phrases {
            let matched: Option<Vec<&str>> =
                stems.iter().map(|s| asked.iter().find(|(_, a)| a == s).map(|(w, _)| *w)).collect();
            let Some(matched) = matched else { continue };
            let len = (matched.iter().map(|w| w.len()).sum::<usize>(), *own);
            match &best {
                Some((o, l, _)) if *o == *office && *l >= len => {}
                Some((o, l, _)) if *o != *office && *l == len => tie = true,
                Some((_, l, _)) if *l > len => {}
                _ => {
                    tie = false;
                    best = Some((*office, len, matched.iter().map(|w| w.to_string()).collect()));
                }
            }
        }
        let (office, _, words) = best.filter(|_| !tie)?;
        Some(Named { office, words })
    }
}

/// The day a question asks about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Day {
    /// "heute", "jetzt", "gerade", "today", "now", or no day named.
    Today,
    Tomorrow,
    On(Weekday),
}

/// The day named in a question: a weekday ("Donnerstag", "montags", "Mittwochnachmittag",
/// "on Friday"), "morgen"/"tomorrow", or today.
pub fn day_asked(text: &str) -> Option<Day> {
    const DE: [&str; 7] = ["montag", "dienstag", "mittwoch", "donnerstag", "freitag", "samstag", "sonntag"];
    const EN: [&str; 7] = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"];
    let folded = fold(text);
    for w in words(&folded) {
        for (i, (de, en)) in DE.iter().zip(EN).enumerate() {
            if w.starts_with(de) || w.starts_with(en) || w == "sonnabend" && i == 5 {
                return Weekday::from_index(i).map(Day::On);
            }
        }
        match w {
            "morgen" | "tomorrow" => return Some(Day::Tomorrow),
            "heute" | "jetzt" | "gerade" | "today" | "now" | "tonight" => return Some(Day::Today),
            _ => {}
        }
    }
    None
}

fn ranges_text(ranges: &[lotse_core::TimeRange], lang: Lang) -> String {
    let (to, and, suffix) = match lang {
        Lang::De => (" bis ", " und ", " Uhr"),
        Lang::En => (" to ", " and ", ""),
    };
    let parts: Vec<String> = ranges.iter().map(|r| format!("{}{to}{}", hhmm(r.from), hhmm(r.to))).collect();
    format!("{}{suffix}", parts.join(and))
}

fn day_name(d: Weekday, lang: Lang) -> &'static str {
    match lang {
        Lang::De => d.name_de(),
        Lang::En => d.name_en(),
    }
}

/// The sentence for one day's hours: "Am Donnerstag hat … von 08:30 bis 16:00 Uhr geöffnet." or
/// "Am Mittwoch ist … geschlossen."; `None` when the record has no weekly hours.
fn day_sentence(o: &Office, day: Weekday, date: Option<Date>, state: State, lang: Lang) -> Option<String> {
    let hours = o.opening_hours.as_ref().filter(|h| !h.is_empty())?;
    let name = day_name(day, lang);
    if let Some(h) = date.and_then(|d| holiday(state, d)) {
        return Some(match lang {
            Lang::De => format!("{name} ist Feiertag ({h}): geschlossen."),
            Lang::En => format!("{name} is a public holiday ({h}): closed."),
        });
    }
    let ranges = hours.ranges(day).unwrap_or_default();
    Some(match (ranges.is_empty(), lang) {
        (true, Lang::De) => format!("Am {name} geschlossen."),
        (true, Lang::En) => format!("Closed on {name}."),
        (false, Lang::De) => format!("Am {name} geöffnet: {}.", ranges_text(&ranges, lang)),
        (false, Lang::En) => format!("Open on {name}: {}.", ranges_text(&ranges, lang)),
    })
}

/// The week's hours in one line: "Montag 08:30 bis 13:00 Uhr; Dienstag …".
fn week_line(o: &Office, lang: Lang) -> Option<String> {
    let hours = o.opening_hours.as_ref().filter(|h| !h.is_empty())?;
    let days: Vec<String> = Weekday::ALL
        .iter()
        .filter_map(|&d| {
            let r = hours.ranges(d).unwrap_or_default();
            (!r.is_empty()).then(|| format!("{} {}", day_name(d, lang), ranges_text(&r, lang)))
        })
        .collect();
    Some(match lang {
        Lang::De => format!("Öffnungszeiten: {}.", days.join("; ")),
        Lang::En => format!("Opening hours: {}.", days.join("; ")),
    })
}

/// Today's state: "Heute, Dienstag, geöffnet von 08:30 bis 18:00 Uhr, jetzt noch bis 18:00 Uhr."
fn today_sentence(o: &Office, now: DateTime, region: State, lang: Lang) -> Option<String> {
    let hours = o.opening_hours.as_ref().filter(|h| !h.is_empty())?;
    let today = weekday(now.date());
    let name = day_name(today, lang);
    let minute = now.hour() as u16 * 60 + now.minute() as u16;
    let state = open_state(hours, now.date(), minute, region);
    Some(match state {
        OpenState::OpenUntil(r) => match lang {
            Lang::De => format!("Heute, {name}, jetzt geöffnet bis {} Uhr.", hhmm(r.to)),
            Lang::En => format!("Today, {name}, open now until {}.", hhmm(r.to)),
        },
        OpenState::Opens { date, range, holiday_today } => {
            let holiday = holiday_today.map(|h| match lang {
                Lang::De => format!("Heute ist Feiertag ({h}). "),
                Lang::En => format!("Today is a public holiday ({h}). "),
            });
            let when = if date == now.date() {
                match lang {
                    Lang::De => "heute".to_string(),
                    Lang::En => "today".to_string(),
                }
            } else {
                match lang {
                    Lang::De => format!("am {}", day_name(weekday(date), lang)),
                    Lang::En => format!("on {}", day_name(weekday(date), lang)),
                }
            };
            match lang {
                Lang::De => format!(
                    "{}Jetzt geschlossen. Wieder geöffnet {when} von {} bis {} Uhr.",
                    holiday.unwrap_or_default(),
                    hhmm(range.from),
                    hhmm(range.to)
                ),
                Lang::En => format!(
                    "{}Closed now. Open again {when} from {} to {}.",
                    holiday.unwrap_or_default(),
                    hhmm(range.from),
                    hhmm(range.to)
                ),
            }
        }
        OpenState::Unknown => return None,
    })
}

/// The date of the next `day` from `today` (today itself when it is that day).
fn next_date(today: Date, day: Weekday) -> Date {
    let mut d = today;
    for _ in 0..7 {
        if weekday(d) == day {
            return d;
        }
        d = d.tomorrow().unwrap_or(d);
    }
    today
}

/// The answer about an office itself, from its record alone.
pub fn office_answer(
    o: &Office,
    aspects: &[Aspect],
    day: Option<Day>,
    now: DateTime,
    state: State,
    lang: Lang,
    channel: Channel,
) -> String {
    let general = !aspects.iter().any(|a| matches!(a, Aspect::Where | Aspect::Hours | Aspect::Appointment));
    let hours_asked = general || aspects.contains(&Aspect::Hours) || day.is_some();
    let where_asked = general || aspects.contains(&Aspect::Where);
    let appointment = aspects.contains(&Aspect::Appointment);
    let name = match lang {
        Lang::En => o.name_en.as_deref().map_or_else(|| o.name.clone(), |en| format!("{en} ({})", o.name)),
        Lang::De => o.name.clone(),
    };
    let mut lines = vec![format!("{name}.")];
    if where_asked || appointment {
        if let Some(a) = &o.address {
            lines.push(match lang {
                Lang::De => format!("Adresse: {a}."),
                Lang::En => format!("Address: {a}."),
            });
        }
        if let Some(p) = &o.phone {
            lines.push(match lang {
                Lang::De => format!("Telefon {p}."),
                Lang::En => format!("Phone {p}."),
            });
        }
        if let Some(e) = &o.email {
            lines.push(match lang {
                Lang::De => format!("E-Mail {e}."),
                Lang::En => format!("E-mail {e}."),
            });
        }
        if o.address.is_none()
            && o.phone.is_none()
            && o.email.is_none()
            && channel.shows_urls()
            && let Some(w) = &o.website
        {
            lines.push(format!("{}: {w}", if lang == Lang::De { "Webseite" } else { "Website" }));
        }
    }
    if hours_asked || appointment {
        let today = now.date();
        match day {
            Some(Day::On(d)) => lines.extend(day_sentence(o, d, Some(next_date(today, d)), state, lang)),
            Some(Day::Tomorrow) => {
                let t = today.tomorrow().unwrap_or(today);
                lines.extend(day_sentence(o, weekday(t), Some(t), state, lang).map(|s| match lang {
                    Lang::De => format!("Morgen: {s}"),
                    Lang::En => format!("Tomorrow: {s}"),
                }));
            }
            Some(Day::Today) | None => {
                lines.extend(today_sentence(o, now, state, lang));
                if day.is_none() && channel != Channel::Phone {
                    lines.extend(week_line(o, lang));
                }
            }
        }
        if let Some(note) = o.opening_hours.as_ref().and_then(|h| h.note.as_deref()).filter(|n| !n.trim().is_empty()) {
            let note = note.trim().trim_end_matches('.');
            lines.push(match (lang, channel == Channel::Phone) {
                (_, true) => format!("{}.", crate::compose::phone_note(note)),
                (Lang::De, false) => format!("Hinweis: {note}."),
                (Lang::En, false) => format!("Note (in German): {note}."),
            });
        }
        if o.opening_hours.as_ref().is_none_or(|h| h.is_empty() && h.note.is_none()) {
            lines.push(match lang {
                Lang::De => "Zu den Öffnungszeiten liegt mir keine gesicherte Angabe vor.".to_string(),
                Lang::En => "I have no verified information on the opening hours.".to_string(),
            });
        }
    }
    if appointment && let Some(u) = &o.appointment_url {
        lines.push(match (lang, channel.shows_urls()) {
            (Lang::De, true) => format!("Termin buchen: {u}"),
            (Lang::En, true) => format!("Book an appointment: {u}"),
            (Lang::De, false) => "Termine können online gebucht werden.".to_string(),
            (Lang::En, false) => "Appointments can be booked online.".to_string(),
        });
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    const TH: State = State::Thueringen;
    use lotse_core::{Address, OpeningHours};

    fn office() -> Office {
        Office {
            id: "buergerservice".into(),
            name: "Team Bürgerservice (Fachdienst Bürgerdienste)".into(),
            name_en: Some("Citizens' Service".into()),
            synonyms: vec!["Bürgeramt".into(), "Einwohnermeldeamt".into(), "citizens' office".into()],
            kind: Default::default(),
            address: Some(Address { street: "Engelplatz 1".into(), postcode: "07743".into(), city: "Jena".into() }),
            phone: Some("03641 49-3800".into()),
            email: None,
            website: None,
            appointment_url: None,
            opening_hours: Some(OpeningHours {
                mo: Some("08:30-13:00".into()),
                di: Some("08:30-18:00".into()),
                mi: Some("09:00-13:00".into()),
                r#do: Some("08:30-16:00".into()),
                fr: Some("08:30-13:00".into()),
                note: Some("Für die meisten Anliegen ist ein Termin nötig.".into()),
                ..Default::default()
            }),
            notes: None,
            source: "https://example.org".into(),
            as_of: "2025-06-01".into(),
        }
    }

    fn other() -> Office {
        Office {
            id: "standesamt".into(),
            name: "Standesamt".into(),
            name_en: Some("Registry Office".into()),
            synonyms: vec!["registry office".into()],
            ..office()
        }
    }

    fn finder() -> (OfficeFinder, Analyzer) {
        // An office that sits inside another and says so in its name.
        let inside = Office {
            id: "fundbuero".into(),
            name: "Fundbüro der Stadt Jena (im Bürgerservice)".into(),
            name_en: Some("Lost and Found Office (part of the Citizens' Office)".into()),
            synonyms: vec!["Fundamt".into()],
            ..office()
        };
        let kb =
            KnowledgeBase { services: vec![], offices: vec![office(), other(), inside], synonyms: Default::default() };
        let analyzer = Analyzer::new(std::iter::empty());
        (OfficeFinder::new(&kb, &analyzer), analyzer)
    }

    #[test]
    fn a_word_that_ends_many_offices_names_is_a_kind_of_office() {
        // Bürgeramt, Einwohnermeldeamt, Standesamt, Fundamt: "amt" ends names of all three.
        let (f, _) = finder();
        assert!(f.is_kind_of_office("amt"));
        assert!(!f.is_kind_of_office("standesamt"), "one office's own name");
        assert!(!f.is_kind_of_office("buero"), "only the lost-and-found office's");
        assert!(!f.is_kind_of_office("am"), "too short to tell");
    }

    #[test]
    fn finds_the_office_by_the_names_citizens_use() {
        let (f, a) = finder();
        for (q, want) in [
            ("Wann hat das Bürgeramt offen?", Some(0)),
            ("Wo ist der Bürgerservice?", Some(0)),
            ("Hat das Einwohnermeldeamt am Donnerstag geöffnet?", Some(0)),
            ("Where is the citizens' office in Jena?", Some(0)),
            ("Wo ist das Standesamt?", Some(1)),
            ("Where is the registry office?", Some(1)),
            ("Wo ist das Fundbüro?", Some(2)),
            ("Where is the lost and found office?", Some(2)),
            ("Was kostet ein Reisepass?", None),
            ("Wo ist die Stadt Jena?", None),
        ] {
            assert_eq!(f.named(q, &a).map(|n| n.office), want, "{q}");
        }
    }

    #[test]
    fn reads_the_day_asked_for() {
        assert_eq!(day_asked("Hat das Bürgeramt am Mittwochnachmittag offen?"), Some(Day::On(Weekday::Mi)));
        assert_eq!(day_asked("Wann ist die Ausländerbehörde montags geöffnet?"), Some(Day::On(Weekday::Mo)));
        assert_eq!(day_asked("Is it open on Friday?"), Some(Day::On(Weekday::Fr)));
        assert_eq!(day_asked("Hat es jetzt offen?"), Some(Day::Today));
        assert_eq!(day_asked("Hat es morgen offen?"), Some(Day::Tomorrow));
        assert_eq!(day_asked("Wann hat es offen?"), None);
    }

    #[test]
    fn answers_hours_for_a_day_today_and_the_week() {
        // Tuesday 24 Nov 2026, 10:00.
        let now = jiff::civil::date(2026, 11, 24).at(10, 0, 0, 0);
        let o = office();
        let thu = office_answer(&o, &[Aspect::Hours], Some(Day::On(Weekday::Do)), now, TH, Lang::De, Channel::Web);
        assert!(thu.contains("Am Donnerstag geöffnet: 08:30 bis 16:00 Uhr."), "{thu}");
        let sat = office_answer(&o, &[Aspect::Hours], Some(Day::On(Weekday::Sa)), now, TH, Lang::De, Channel::Web);
        assert!(sat.contains("Am Samstag geschlossen."), "{sat}");
        let today = office_answer(&o, &[Aspect::Hours], None, now, TH, Lang::De, Channel::Web);
        assert!(today.contains("Heute, Dienstag, jetzt geöffnet bis 18:00 Uhr."), "{today}");
        assert!(today.contains("Mittwoch 09:00 bis 13:00 Uhr"), "{today}");
        assert!(today.contains("Termin"), "the note: {today}");
        assert!(!today.contains("Engelplatz"), "only what was asked: {today}");
        let place = office_answer(&o, &[Aspect::Where], None, now, TH, Lang::En, Channel::Web);
        assert!(place.contains("Engelplatz 1, 07743 Jena") && place.contains("03641 49-3800"), "{place}");
        // Whit Monday 2027 is a holiday.
        let holiday = jiff::civil::date(2027, 5, 17).at(10, 0, 0, 0);
        let closed = office_answer(&o, &[Aspect::Hours], Some(Day::Today), holiday, TH, Lang::De, Channel::Phone);
        assert!(closed.contains("Feiertag (Pfingstmontag)") && closed.contains("am Dienstag"), "{closed}");
    }
}

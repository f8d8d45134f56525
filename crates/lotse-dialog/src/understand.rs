//! Understanding a message: cleaning it, its language, what the citizen wants (an [`Intent`]) and
//! which facts of a service the question asks for ([`Aspect`]). Rule-based and fast; user text is
//! only ever matched against, never followed.

use lotse_core::Lang;
use lotse_search::analysis::{fold, looks_english, words};

/// Longest message the engine reads, in characters (the API rejects longer ones).
pub const MAX_MESSAGE_CHARS: usize = 2000;

/// The message without markup: `<script>alert(1)</script> Ausweis` → `alert(1) Ausweis`.
/// Used for understanding only; what was written is kept as written.
pub fn strip_markup(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_tag = false;
    for c in text.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                out.push(' ');
            }
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

/// The clauses of a message: split at sentence marks, semicolons, colons, brackets, and the
/// conjunctions that join a story to a question ("und", "aber", "weil", "dass").
pub fn clauses(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for part in text.split(['.', '?', '!', ';', ':', '(', ')', '[', ']', '\n', ',']) {
        let mut current: Vec<&str> = Vec::new();
        for w in part.split_whitespace() {
            let f = w.to_lowercase();
            if matches!(f.as_str(), "und" | "aber" | "weil" | "dass" | "denn" | "and" | "but" | "because")
                && !current.is_empty()
            {
                out.push(current.join(" "));
                current.clear();
            } else {
                current.push(w);
            }
        }
        if !current.is_empty() {
            out.push(current.join(" "));
        }
    }
    out.retain(|c| c.chars().any(char::is_alphanumeric));
    out
}

/// Removes control characters (keeping line breaks as spaces), collapses whitespace and trims;
/// at most the first [`MAX_MESSAGE_CHARS`] characters are read.
pub fn clean(text: &str) -> String {
    squeeze(text.chars().take(MAX_MESSAGE_CHARS), text.len())
}

/// Free text from a citizen as it may be kept (a plug-in's comment, an unanswered question): control characters and runs of spaces
/// gone, at most `max` characters, and what identifies a person by its form replaced: e-mail
/// addresses, IBANs, phone and other long numbers. (A name cannot be told by its form; the
/// forms say so and the text is dropped after the plug-in's retention.)
pub fn redact(text: &str, max: usize) -> String {
    use std::sync::LazyLock;
    static EMAIL: LazyLock<regex::Regex> =
        LazyLock::new(|| regex::Regex::new(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+").expect("valid pattern"));
    static IBAN: LazyLock<regex::Regex> = LazyLock::new(|| {
        regex::Regex::new(r"\b[A-Za-z]{2}\d{2}(?:[ ]?[A-Za-z0-9]{4}){2,7}(?:[ ]?[A-Za-z0-9]{1,4})?\b")
            .expect("valid pattern")
    });
    static NUMBER: LazyLock<regex::Regex> =
        LazyLock::new(|| regex::Regex::new(r"\+?\d(?:[\d /().-]*\d){5,}").expect("valid pattern"));
    // The chat input's own cleaning, over the whole text (it is cut after redaction).
    let clean = squeeze(text.chars(), text.len().min(max * 4));
    let clean = EMAIL.replace_all(&clean, "[E-Mail]");
    let clean = IBAN.replace_all(&clean, "[IBAN]");
    let clean = NUMBER.replace_all(&clean, |c: &regex::Captures<'_>| {
        if c[0].chars().filter(char::is_ascii_digit).count() >= 6 { "[Nummer]".to_string() } else { c[0].to_string() }
    });
    clean.chars().take(max).collect()
}

/// [`clean`] of any length: the characters without control and invisible direction marks,
/// whitespace collapsed to single spaces, trimmed (`capacity`: the expected length in bytes).
pub fn squeeze(chars: impl Iterator<Item = char>, capacity: usize) -> String {
    let mut out = String::with_capacity(capacity);
    let mut space = false;
    for c in chars {
        if c.is_whitespace() {
            space = true;
        } else if !c.is_control() && !matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{feff}') {
            if space && !out.is_empty() {
                out.push(' ');
            }
            space = false;
            out.push(c);
        }
    }
    out
}

/// What the citizen wants with this message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    Greeting,
    Thanks,
    Bye,
    HowAreYou,
    Abuse,
    /// Wants to talk to a person.
    Human,
    /// Asks for answers in another language (and maybe a question with it).
    SwitchLang(Lang),
    /// Asks for plain language (Einfache Sprache).
    Plain,
    /// A topic no city service covers (weather, sports, poems, code, …).
    OffTopic,
    /// Anything else: a question to look up.
    Question,
}

/// A fact of a service the question asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub enum Aspect {
    Fees,
    Documents,
    Where,
    Hours,
    Online,
    Duration,
    /// How long a document or permit is valid (answered from the record's sentences).
    Validity,
    Deadline,
    Appointment,
    Prerequisites,
}

fn has_any(folded_words: &[&str], list: &[&str]) -> bool {
    folded_words.iter().any(|w| list.contains(w))
}

fn has_phrase(folded: &str, list: &[&str]) -> bool {
    list.iter().any(|p| folded.contains(p))
}

/// Whether the words hold one of the phrases as whole words in a row ("drop by", not the
/// "come by" inside "income by").
fn has_words(folded_words: &[&str], list: &[&str]) -> bool {
    list.iter().any(|p| {
        let phrase: Vec<&str> = p.split(' ').collect();
        folded_words.windows(phrase.len()).any(|w| w == phrase.as_slice())
    })
}

/// The aspects a question asks for, in a stable order.
pub fn aspects(text: &str) -> Vec<Aspect> {
    let folded = fold(text);
    let w: Vec<&str> = words(&folded).collect();
    let mut out = Vec::new();
    let starts = |prefixes: &[&str]| w.iter().any(|x| prefixes.iter().any(|p| x.starts_with(p)));
    if starts(&["kost", "gebuehr", "preis", "teuer", "bezahl", "zahlen", "cost", "fee", "price", "charge"])
        || has_phrase(&folded, &["how much", "wie viel kostet", "was muss ich zahlen"])
    {
        out.push(Aspect::Fees);
    }
    // "Was brauche ich dafür?" asks what to bring, as "Welche Unterlagen?" does; "ich brauche
    // einen Pass" alone asks for the matter, and "what do I need to know" for all of it.
    let asks_need =
        has_words(&w, &["was brauche ich", "was brauch ich", "was brauchen wir", "what do i need", "what do we need"])
            && !has_words(&w, &["what do i need to", "what do we need to"]);
    if starts(&["unterlag", "dokument", "papiere", "mitbring", "nachweis", "document", "bring", "paperwork"])
        || asks_need
    {
        out.push(Aspect::Documents);
    }
    // An address that changes or is registered ("die Adresse im Fahrzeugschein ändern", "new
    // address", "register my address") is the matter itself, not a question where to go.
    let is_address = |x: &str| matches!(x, "adresse" | "address") || x.starts_with("anschrift");
    // Verb forms only: "die Adresse der Meldebehörde" or "of the registry office" asks where.
    let changes = |x: &str| {
        ["aender", "umgezogen", "umzug", "ummeld", "change", "update", "moved", "moving"]
            .iter()
            .any(|p| x.starts_with(p))
            || matches!(
                x,
                "melde"
                    | "melden"
                    | "meldet"
                    | "gemeldet"
                    | "anmelden"
                    | "anmelde"
                    | "angemeldet"
                    | "abmelden"
                    | "abmelde"
                    | "abgemeldet"
                    | "register"
                    | "registered"
                    | "registering"
            )
    };
    // The change must be next to the address ("die neue Adresse", "Adresse im Fahrzeugschein
    // ändern"): "Welche Adresse hat das neue Bürgerbüro?" still asks where.
    let address_asked = w.iter().enumerate().any(|(i, x)| {
        let new_before = i > 0 && matches!(w[i - 1], "neue" | "neuen" | "new");
        is_address(x) && !new_before && !w[i.saturating_sub(3)..(i + 4).min(w.len())].iter().any(|y| changes(y))
    });
    if address_asked
        || has_any(
            &w,
            &[
                "wo",
                "wohin",
                "where",
                "zustaendig",
                "responsible",
                "telefon",
                "phone",
                "anrufen",
                "call",
                "kontakt",
                "contact",
                "email",
                "mail",
                "reach",
            ],
        )
        || starts(&["erreich"])
    {
        out.push(Aspect::Where);
    }
    // Opening hours, validity, a deadline and the processing time are all asked with "wann"
    // and "wie lange"; the words around them decide.
    // "Bis wann ist … erreichbar?" asks for the hours too.
    let opening_word = starts(&["oeffnungszeit", "geoeffnet", "offen", "open", "hours", "sprechzeit"])
        || starts(&["erreichbar"]) && has_phrase(&folded, &["wann"]);
    let valid_word = starts(&["gueltig", "gilt", "gelten", "valid", "expire"]);
    let bis_wann = has_phrase(&folded, &["bis wann"]);
    let how_long = has_phrase(&folded, &["wie lange", "how long"]);
    if opening_word
        || has_phrase(&folded, &["wann hat"])
        || has_phrase(&folded, &["wann ist"]) && !valid_word && !bis_wann
    {
        out.push(Aspect::Hours);
    }
    if has_any(&w, &["online", "internet", "digital", "website", "webseite", "link"]) {
        out.push(Aspect::Online);
    }
    let validity = valid_word && (how_long || has_phrase(&folded, &["wann"]));
    const TIME_LEFT: &[&str] = &[
        "bis wann",
        "wie lange habe ich",
        "wie lange hab ich",
        "wie viel zeit habe",
        "wie viel zeit hab",
        "wieviel zeit habe",
        "wieviel zeit hab",
        "how long do i have",
    ];
    // "Wie lange habe ich Zeit, bis ich … bekomme" waits for something; a "bekommen" before the
    // question ("Ich hab ein Knöllchen bekommen, wie lange hab ich Zeit?") does not.
    let time_left = TIME_LEFT.iter().filter_map(|p| folded.find(p)).min().is_some_and(|at| {
        !words(&folded[at..]).any(|x| ["wait", "wart", "bekomm", "krieg"].iter().any(|p| x.starts_with(p)))
    });
    // "Wie lange habe ich Zeit, das zu bezahlen?" asks when, not how much.
    if time_left
        && !starts(&["kost", "gebuehr", "preis", "teuer", "cost", "fee", "price"])
        && !has_phrase(&folded, &["how much", "wie viel kostet"])
    {
        out.retain(|a| *a != Aspect::Fees);
    }
    let hours = out.contains(&Aspect::Hours);
    if validity {
        out.push(Aspect::Validity);
    }
    if starts(&["dauer", "dauert", "bearbeitung", "wartezeit"])
        || has_phrase(&folded, &["wann bekomme", "wann krieg", "does it take"])
        || how_long && !validity && !time_left && !hours
    {
        out.push(Aspect::Duration);
    }
    // "Bis wann hat … offen?" asks for the hours, "bis wann ist … gültig" the validity.
    if starts(&["frist", "deadline", "spaetestens"]) || time_left && !hours && !validity {
        out.push(Aspect::Deadline);
    }
    // A visit ("Kann ich einfach vorbeikommen?", "Can I just walk in?") asks whether it takes an
    // appointment.
    if starts(&["termin", "appointment", "buchen", "book", "vorbeikomm", "vorbeigeh", "vorbeischau", "vorsprech"])
        || has_words(&w, &["walk in", "drop by", "come by", "stop by"])
        || w.ends_with(&["drop", "in"])
    {
        out.push(Aspect::Appointment);
    }
    if starts(&["voraussetzung", "requirement", "berechtigt", "darf ich", "eligible"])
        || has_phrase(&folded, &["wer kann", "wer darf"])
    {
        out.push(Aspect::Prerequisites);
    }
    out
}

/// Words that say the asker is an adult, folded.
const ADULT: &[&str] =
    &["erwachsene", "erwachsenen", "erwachsener", "volljaehrige", "volljaehrigen", "volljaehriger", "adult", "adults"];

/// Words after which an adult word ends what it says ("für Erwachsene in München").
const AFTER_ADULT: &[&str] = &[
    "in", "im", "bei", "at", "if", "wenn", "und", "and", "oder", "or", "who", "mit", "with", "ab", "ueber", "over",
    "unter", "under", "der", "die", "das",
];

/// The message without its greetings, thanks and requests for a language or for plain
/// language ("Leichte Sprache bitte. Mein Hund ist tot." → "bitte. Mein Hund ist tot.",
/// "guten Tag ich brauche …" → "ich brauche …"): they say how to talk, not what about, and
/// their words ("Sprache", "Tag") would otherwise count as a topic no service covers. The last
/// word of a dropped run of words keeps the mark that ends its clause.
pub fn without_requests(text: &str) -> String {
    let tokens: Vec<&str> = text.split_whitespace().collect();
    let bare = |t: &str| fold(t.trim_matches(|c: char| !c.is_alphanumeric()));
    let words: Vec<String> = tokens.iter().map(|t| bare(t)).collect();
    let mut drop = vec![false; tokens.len()];
    for phrase in ENGLISH_REQUEST.iter().chain(GERMAN_REQUEST).chain(PLAIN_REQUEST).chain(GREETINGS).chain(THANKS) {
        // Whole words in a row, as `has_words` reads a phrase.
        let phrase: Vec<&str> = phrase.split(' ').collect();
        for (start, window) in words.windows(phrase.len()).enumerate() {
            if window == phrase.as_slice() {
                drop[start..start + phrase.len()].iter_mut().for_each(|d| *d = true);
            }
        }
    }
    if !drop.contains(&true) {
        return text.to_string();
    }
    let mut out: Vec<&str> = Vec::with_capacity(tokens.len());
    for (i, t) in tokens.iter().enumerate() {
        if !drop[i] {
            out.push(t);
        } else if !drop.get(i + 1).copied().unwrap_or(false) {
            // The mark after the request's last word ends its clause still.
            let mark = t.trim_start_matches(|c: char| !matches!(c, '.' | '?' | '!' | ':' | ';' | ','));
            if !mark.is_empty() {
                out.push(mark);
            }
        }
    }
    out.join(" ")
}

/// The message without the ages it states ("Ich bin 30, was kostet der Personalausweis?" →
/// "Ich bin, was kostet der Personalausweis?"): an age chooses the fee, not the service, and
/// its number would otherwise match every record that mentions it. A number is an age when a
/// word of being comes before it ("bin", "ist", "I'm", "she's") or years follow it ("Jahre alt",
/// "years old"); "2 Urkunden" keeps its number. In a question about a fee, being an adult is an
/// age too ("Was kostet ein Reisepass für Erwachsene?", "for an adult"), unless it starts a name
/// ("adult education"); elsewhere it may be what the question is about ("Kurse für
/// Erwachsene", "junge Volljährige").
pub fn without_stated_ages(text: &str) -> String {
    let tokens: Vec<&str> = text.split_whitespace().collect();
    let fee_asked = aspects(text).contains(&Aspect::Fees);
    let bare = |t: &str| fold(t.trim_matches(|c: char| !c.is_alphanumeric() && c != '\''));
    let unit =
        |w: &str| w.starts_with("jahr") || w.starts_with("jaehrig") || matches!(w, "alt" | "years" | "year" | "old");
    let mut drop = vec![false; tokens.len()];
    for (i, t) in tokens.iter().enumerate() {
        if fee_asked && ADULT.contains(&bare(t).as_str()) {
            let clause_ends = i + 1 == tokens.len() || t.ends_with([',', '.', '?', '!', ';', ':']);
            let next = tokens.get(i + 1).map(|t| bare(t)).unwrap_or_default();
            drop[i] = clause_ends || AFTER_ADULT.contains(&next.as_str());
            continue;
        }
        let Ok(n) = bare(t).parse::<u32>() else { continue };
        if n == 0 || n > 120 {
            continue;
        }
        let before = i.checked_sub(1).map(|j| bare(tokens[j])).unwrap_or_default();
        let after = tokens.get(i + 1).map(|t| bare(t)).unwrap_or_default();
        let being = matches!(before.as_str(), "bin" | "ist" | "wird" | "werde" | "is" | "turned" | "am" | "i'm")
            || before.ends_with("'s");
        if !(being || unit(&after)) {
            continue;
        }
        drop[i] = true;
        // "… 30 Jahre alt", "… 12 years old": the unit goes with the number.
        for (j, next) in tokens.iter().enumerate().skip(i + 1) {
            if !unit(&bare(next)) {
                break;
            }
            drop[j] = true;
        }
    }
    if !drop.contains(&true) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    for (t, dropped) in tokens.iter().zip(&drop) {
        if *dropped {
            // Keep the punctuation that ended the dropped words ("Ich bin 30, was …").
            if let Some(p) = t.chars().last().filter(|c| matches!(c, ',' | '.' | '?' | '!' | ';' | ':'))
                && !out.ends_with(p)
            {
                out.push(p);
            }
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(t);
    }
    out
}

/// Words that set a thing aside ("außer Kindergeld", "besides the ID card"), folded, by their
/// number of words.
const EXCLUDING: &[&[&str]] =
    &[&["ausser"], &["abgesehen", "von"], &["besides"], &["except"], &["apart", "from"], &["other", "than"]];

/// Words after "außer" that make it "unless" ("außer wenn", "außer ich habe eine Vollmacht") or
/// a fixed phrase ("außer Haus", "außer Betrieb"): then nothing is set aside.
const NOT_EXCLUDING: &[&str] = &[
    "wenn",
    "falls",
    "dass",
    "ich",
    "man",
    "du",
    "sie",
    "er",
    "wir",
    "ihr",
    "es",
    "if",
    "when",
    "that",
    "i",
    "you",
    "haus",
    "hauses",
    "betrieb",
    "kraft",
    "landes",
    "acht",
    "frage",
    "dienst",
    "kontrolle",
    "atem",
    "gefecht",
];

/// Words that join what is set aside ("außer Kindergeld und Elterngeld").
const JOINING: &[&str] = &["und", "oder", "sowie", "and", "or"];

/// The message without what it sets aside ("Gibt es außer Kindergeld noch was?" → "Gibt es noch
/// was?"): a service the citizen already has is not the one asked for, and its name would
/// otherwise be the strongest evidence of the search. What goes: the marker, the articles after
/// it and the thing: up to a capitalised noun ("einem gültigen Reisepass"), or while the words
/// are written small, up to the next stop or aspect word ("the child benefit"), and more of the
/// same joined by "und", "oder" or a comma ("Kindergeld, Elterngeld und Wohngeld"). The verb of
/// the question stays ("Was muss ich außer dem Ausweis mitbringen?" → "Was muss ich
/// mitbringen?"), and so does the clause's end.
pub fn without_exclusions(text: &str, analyzer: &lotse_search::Analyzer) -> String {
    let tokens: Vec<&str> = text.split_whitespace().collect();
    let bare = |t: &str| fold(t.trim_matches(|c: char| !c.is_alphanumeric()));
    let ends_clause = |t: &str| t.ends_with([',', '.', '?', '!', ';', ':']);
    let capitalised = |t: &str| t.trim_start_matches(|c: char| !c.is_alphanumeric()).starts_with(char::is_uppercase);
    let content = |t: &str| {
        let w = bare(t);
        !w.is_empty() && !analyzer.is_stop_word(&w) && !analyzer.is_aspect_word(&w)
    };
    let mut drop = vec![false; tokens.len()];
    let mut i = 0;
    while i < tokens.len() {
        let Some(marker) = EXCLUDING.iter().find(|m| {
            m.iter().enumerate().all(|(k, w)| tokens.get(i + k).is_some_and(|t| bare(t) == *w))
                && !ends_clause(tokens[i + m.len() - 1])
                && !tokens.get(i + m.len()).is_some_and(|t| NOT_EXCLUDING.contains(&bare(t).as_str()))
        }) else {
            i += 1;
            continue;
        };
        drop[i..i + marker.len()].iter_mut().for_each(|d| *d = true);
        let mut j = i + marker.len();
        // Articles and other stop words before the thing.
        while j < tokens.len() && !content(tokens[j]) && analyzer.is_stop_word(&bare(tokens[j])) {
            drop[j] = true;
            j += 1;
            if ends_clause(tokens[j - 1]) {
                break;
            }
        }
        // The thing, and more joined to it.
        while j < tokens.len() && content(tokens[j]) {
            drop[j] = true;
            j += 1;
            let last = tokens[j - 1];
            if ends_clause(last) && !last.ends_with(',') {
                break;
            }
            let next = tokens.get(j).copied();
            if next.is_some_and(|n| JOINING.contains(&bare(n).as_str()))
                && tokens.get(j + 1).is_some_and(|n| content(n))
            {
                drop[j] = true;
                j += 1;
                continue;
            }
            if last.ends_with(',') {
                if next.is_some_and(|n| content(n) && capitalised(n)) {
                    continue;
                }
                break;
            }
            // A noun ends the thing; small words go on until a stop or aspect word.
            if capitalised(last) {
                break;
            }
        }
        i = j;
    }
    if !drop.contains(&true) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    for (t, dropped) in tokens.iter().zip(&drop) {
        if *dropped {
            // The clause's end stays ("Was brauche ich außer dem Ausweis? Einen Pass?"), in
            // place of a comma before the dropped words.
            if let Some(p) = t.chars().last().filter(|c| matches!(c, '.' | '?' | '!' | ';' | ':')) {
                if out.ends_with([',', ';']) {
                    out.pop();
                }
                if !out.is_empty() && !out.ends_with(p) {
                    out.push(p);
                }
            }
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(t);
    }
    out
}

/// Whether a message asks how to go about something ("Wie fange ich an?", "Wie läuft das
/// ab?", "How do I do that?"): the steps answer it.
pub fn asks_how(text: &str) -> bool {
    let folded = fold(text);
    has_phrase(
        &folded,
        &[
            "wie fange",
            "wie fang",
            "wie gehe ich vor",
            "wie geh ich vor",
            "wie geht das",
            "wie geht man vor",
            "wie laeuft das",
            "wie lauft das",
            "wie mache ich das",
            "wie mach ich das",
            "was muss ich tun",
            "was muss ich machen",
            "wie starte",
            "how do i",
            "how does it work",
            "how does that work",
            "what do i do",
            "where do i start",
            "what are the steps",
        ],
    )
}

/// The language a message is written in.
pub fn language(text: &str) -> Lang {
    if looks_english(text) { Lang::En } else { Lang::De }
}

const GREETINGS: &[&str] = &[
    "hallo",
    "hi",
    "hey",
    "moin",
    "servus",
    "gruess",
    "guten tag",
    "guten morgen",
    "guten abend",
    "hello",
    "good morning",
    "good afternoon",
    "good evening",
];
const THANKS: &[&str] = &["danke", "dankeschoen", "vielen dank", "thanks", "thank you", "merci", "super, danke"];
const BYES: &[&str] = &["tschuess", "tschau", "ciao", "auf wiedersehen", "bis dann", "bye", "goodbye", "see you"];
const HOW_ARE_YOU: &[&str] = &[
    "wie geht",
    "how are you",
    "wer bist du",
    "who are you",
    "was bist du",
    "what are you",
    "bist du ein bot",
    "are you a bot",
];
const ABUSE: &[&str] = &[
    "idiot",
    "bloed",
    "dumm",
    "scheiss",
    "scheiße",
    "arsch",
    "fick",
    "fuck",
    "stupid",
    "shit",
    "depp",
    "trottel",
    "halt die klappe",
    "nutzlos",
    "useless",
];
/// Requests for a person, as phrases.
const HUMAN: &[&str] = &[
    "person sprechen",
    "echte person",
    "echten person",
    "jemandem sprechen",
    "jemanden sprechen",
    "verbinden sie",
    "verbinde mich",
    "weiterleiten",
    "real person",
    "talk to a person",
    "speak to a person",
    "talk to someone",
    "speak to someone",
    "talk to somebody",
    "speak to somebody",
    "rueckruf",
    "zurueckrufen",
    "callback",
    "call me back",
];
/// Words for a person that ask for one in a short message or with a verb of talking ("Mensch
/// bitte", "Ich will mit einem Mitarbeiter sprechen"), not in a story ("Someone stole my
/// wallet", "die Agentur für Arbeit").
const HUMAN_WORDS: &[&str] = &[
    "mensch",
    "menschen",
    "mitarbeiter",
    "mitarbeiterin",
    "sachbearbeiter",
    "sachbearbeiterin",
    "human",
    "agent",
    "staff",
    "operator",
];
const ENGLISH_REQUEST: &[&str] = &[
    "in english",
    "auf englisch",
    "english please",
    "speak english",
    "englisch bitte",
    "answer in english",
    "can you answer in english",
];
const GERMAN_REQUEST: &[&str] = &["auf deutsch", "in german", "deutsch bitte", "german please"];
const PLAIN_REQUEST: &[&str] = &[
    "einfache sprache",
    "einfacher sprache",
    "leichte sprache",
    "leichter sprache",
    "einfacher erklaeren",
    "einfach erklaeren",
    "plain language",
    "simple language",
    "simpler",
    "verstehe das nicht",
    "versteh ich nicht",
    "zu kompliziert",
];
const OFF_TOPIC: &[&str] = &[
    "wetter",
    "weather",
    "regnet",
    "fussball",
    "bundesliga",
    "football",
    "soccer",
    "spiel gestern",
    "ergebnis",
    "tor geschossen",
    "gedicht",
    "poem",
    "lied",
    "song",
    "witz",
    "joke",
    "aktie",
    "aktien",
    "stock",
    "bitcoin",
    "krypto",
    "boerse",
    "invest",
    "programmier",
    "python",
    "javascript",
    "code schreiben",
    "write code",
    "sql",
    "rezept",
    "recipe",
    "kochen",
    "lotto",
    "horoskop",
    "film",
    "movie",
    "netflix",
    "chatgpt",
    "hausaufgabe",
    "homework",
    "liebe",
    "dating",
    "urlaubstipp",
    "restaurant empfehlung",
];

/// Classifies a cleaned message. Questions about a service are `Question`; the engine decides
/// the rest with the search.
pub fn intent(text: &str) -> Intent {
    let folded = fold(text);
    let w: Vec<&str> = words(&folded).collect();
    let n = w.len();
    let short = n <= 4;
    if has_phrase(&folded, ABUSE) && n <= 12 {
        return Intent::Abuse;
    }
    let talk = has_any(
        &w,
        &[
            "sprechen",
            "reden",
            "talk",
            "speak",
            "telefonieren",
            "verbinden",
            "connect",
            "transfer",
            "schreiben",
            "chatten",
            "chat",
        ],
    );
    let someone = w.iter().any(|x| {
        ["jemand", "person", "mensch", "mitarbeiter", "sachbearbeiter", "human", "someone", "somebody"]
            .iter()
            .any(|p| x.starts_with(p))
    });
    // A person set against the bot: "einen echten Sachbearbeiter", "not a bot".
    let not_a_bot = has_any(
        &w,
        &["echt", "echte", "echten", "echter", "real", "bot", "chatbot", "maschine", "machine", "computer", "ki"],
    );
    let person = someone || has_any(&w, HUMAN_WORDS);
    if has_phrase(&folded, HUMAN) || (talk || not_a_bot) && person || n <= 6 && has_any(&w, HUMAN_WORDS) {
        return Intent::Human;
    }
    if has_phrase(&folded, ENGLISH_REQUEST) {
        return Intent::SwitchLang(Lang::En);
    }
    if has_phrase(&folded, GERMAN_REQUEST) {
        return Intent::SwitchLang(Lang::De);
    }
    if has_phrase(&folded, PLAIN_REQUEST) && n <= 10 {
        return Intent::Plain;
    }
    if short && has_phrase(&folded, HOW_ARE_YOU) {
        return Intent::HowAreYou;
    }
    let brief = n <= 6;
    // "Danke, tschüss" takes leave: the thanks goes with the goodbye.
    if brief && has_phrase(&folded, BYES) {
        return Intent::Bye;
    }
    if brief && has_phrase(&folded, THANKS) {
        return Intent::Thanks;
    }
    if n <= 3 && GREETINGS.iter().any(|g| folded.trim_start().starts_with(g)) {
        return Intent::Greeting;
    }
    let off =
        OFF_TOPIC.iter().any(|t| if t.contains(' ') { folded.contains(t) } else { w.iter().any(|x| x.starts_with(t)) });
    if off {
        return Intent::OffTopic;
    }
    Intent::Question
}

/// A yes or a no to a question the bot asked ("Geht es um den Reisepass?"): `Some(true)` for
/// "Ja", "Ja, genau", "Richtig", "Yes please"; `Some(false)` for "Nein", "Nee, …", "No";
/// `None` for anything else. Only the first word decides, so that "Nein, den Reisepass" is a
/// no with a new question after it (see [`after_yes_no`]).
pub fn yes_no(text: &str) -> Option<bool> {
    let folded = fold(text);
    // Hesitations and fillers before the answer: "Ähm, ja", "Das stimmt", "That's right".
    let mut rest = words(&folded).skip_while(|w| HESITATIONS.contains(w));
    let first = rest.next()?;
    if matches!(first, "nicht" | "not") {
        // "Nicht richtig", "That's not right".
        return rest.next().filter(|w| YES.contains(w)).map(|_| false);
    }
    if YES.contains(&first) {
        // "Das stimmt nicht", "Genau das nicht": a no.
        let negated = rest.take(2).any(|w| matches!(w, "nicht" | "not" | "nein" | "no") || w.starts_with("kein"));
        Some(!negated)
    } else if NO.contains(&first) {
        Some(false)
    } else {
        None
    }
}

/// Whether a message starts with a mere acknowledgement ("ok", "okay"): on the phone that
/// answers "Geht es um …?", but not a written offer to pick.
pub fn only_acknowledges(text: &str) -> bool {
    let folded = fold(text);
    words(&folded).next().is_some_and(|w| matches!(w, "ok" | "okay" | "jo" | "jap" | "alles"))
}

const YES: &[&str] = &[
    "ja", "jawohl", "jap", "jo", "genau", "richtig", "korrekt", "stimmt", "ok", "okay", "yes", "yeah", "yep",
    "correct", "right", "exactly",
];
const NO: &[&str] = &["nein", "nee", "noe", "falsch", "no", "nope", "wrong"];
const HESITATIONS: &[&str] =
    &["aehm", "aeh", "ehm", "hm", "hmm", "also", "das", "thats", "that", "s", "is", "um", "uh"];

/// The rest of a message after its yes or no and the words that only confirm it ("Nein, ich
/// meine den Reisepass" → "ich meine den Reisepass"; "Ja genau, bitte" → "").
pub fn after_yes_no(text: &str) -> String {
    const MORE: &[&str] = &["bitte", "danke", "please", "thanks"];
    let mut rest = text.trim_start_matches(|c: char| !c.is_alphanumeric());
    loop {
        let word_end = rest.find(|c: char| !c.is_alphanumeric()).unwrap_or(rest.len());
        let word = fold(&rest[..word_end]);
        let word = word.trim();
        if word_end == 0
            || !(YES.contains(&word) || NO.contains(&word) || HESITATIONS.contains(&word) || MORE.contains(&word))
        {
            break;
        }
        rest = rest[word_end..].trim_start_matches(|c: char| !c.is_alphanumeric());
    }
    rest.trim().to_string()
}

/// Words that say something is needed soon ("sofort", "dringend", "urgently"). Days
/// ("morgen", "tomorrow") are left out: they ask about opening hours as often.
const URGENT: &[&str] = &[
    "sofort",
    "dringend",
    "eilig",
    "eilt",
    "schnellstens",
    "schnellstmoeglich",
    "express",
    "urgent",
    "urgently",
    "asap",
    "immediately",
];
const URGENT_PHRASES: &[&str] = &["so schnell wie moeglich", "right away", "as soon as possible"];

/// Whether a question says that the citizen needs it soon: then the record's quick way
/// (a provisional document, an express fee) is what it asks about.
/// A question about a deadline ("Bis wann muss ich das sofort melden?") asks by when, not
/// for the quick way.
pub fn is_urgent(text: &str) -> bool {
    let folded = fold(text);
    let w: Vec<&str> = words(&folded).collect();
    (has_any(&w, URGENT) || has_words(&w, URGENT_PHRASES)) && !aspects(text).contains(&Aspect::Deadline)
}

/// Words that point back at what was said before ("das", "dafür", "dort", "it", …).
const REFERRING: &[&str] =
    &["das", "dafuer", "dazu", "dort", "da", "hin", "den", "die", "it", "that", "there", "this", "ihn", "sie", "es"];

/// Whether a message points back at what was said before: it names it ("das", "dafür",
/// "dort", "it", …), or goes on from it without a question of its own ("Und für Kinder?",
/// "Aber ohne Termin?"). "das", "die" and "den" before a noun are articles ("Wann öffnet das
/// Freibad?"), "es" with "gibt" asks for nothing said before ("Wo gibt es …?"), and "Sie"
/// inside a sentence is the polite "you": none of them points back. A follow-up that does not
/// point back is one by its question word alone ("Wo melde ich … an?", "Und wo gibt es …?").
pub fn refers_back(text: &str) -> bool {
    let written: Vec<&str> = text.split_whitespace().collect();
    let folded: Vec<String> = written.iter().map(|w| fold(w)).collect();
    let word = |i: usize| folded.get(i).and_then(|f| words(f).next()).unwrap_or("").to_string();
    let capital =
        |w: &str| w.trim_start_matches(|c: char| !c.is_alphanumeric()).chars().next().is_some_and(char::is_uppercase);
    const QUESTION_WORDS: &[&str] = &[
        "wo", "wie", "was", "wann", "wer", "welche", "welcher", "welches", "wohin", "woher", "warum", "where", "how",
        "what", "when", "who", "which", "why",
    ];
    let goes_on = matches!(word(0).as_str(), "und" | "and" | "aber" | "but" | "auch" | "also")
        && !(1..written.len()).any(|i| QUESTION_WORDS.contains(&word(i).as_str()));
    goes_on
        || (0..written.len()).any(|i| {
            let w = word(i);
            if !REFERRING.contains(&w.as_str()) {
                return false;
            }
            match w.as_str() {
                // An article stands right before its noun, in the same clause ("Was kostet
                // das? Mein Sohn …" ends with the pronoun).
                "das" | "die" | "den" => {
                    written[i].ends_with(|c: char| !c.is_alphanumeric())
                        || !written.get(i + 1).is_some_and(|next| capital(next))
                }
                "sie" => i == 0 || !capital(written[i]),
                "es" => !["gibt", "gab", "geben"].iter().any(|g| (i > 0 && word(i - 1) == *g) || word(i + 1) == *g),
                _ => true,
            }
        })
}

/// Whether a message reads like a follow-up to the service under discussion ("Und was kostet
/// das?", "Welche Unterlagen brauche ich dafür?", "And for children?").
pub fn is_follow_up(text: &str) -> bool {
    let folded = fold(text);
    let w: Vec<&str> = words(&folded).collect();
    if w.is_empty() || w.len() > 10 {
        return false;
    }
    let opener = matches!(
        w[0],
        "und"
            | "and"
            | "aber"
            | "what"
            | "auch"
            | "also"
            | "wie"
            | "wo"
            | "was"
            | "welche"
            | "brauche"
            | "muss"
            | "kann"
            | "gilt"
            | "how"
            | "where"
            | "do"
            | "is"
            | "can"
            | "which"
            | "who"
            | "wer"
            | "wann"
            | "when"
    );
    let refers = has_any(&w, REFERRING);
    (opener || refers) && (refers || !aspects(text).is_empty() || w[0] == "und" || w[0] == "and")
}

#[cfg(test)]
mod tests {

    #[test]
    fn urgency_is_read_from_the_words() {
        for q in ["Und wenn ich sofort einen brauche?", "I need it urgently", "Geht das so schnell wie möglich?"] {
            assert!(is_urgent(q), "{q}");
        }
        for q in [
            "Was kostet ein Reisepass?",
            "Guten Morgen schon mal, wo ist das Bürgeramt?",
            "Hat das Bürgeramt morgen offen?",
            "Bis wann muss ich das sofort melden?",
        ] {
            assert!(!is_urgent(q), "{q}");
        }
    }

    #[test]
    fn greetings_and_requests_for_a_language_are_not_searched() {
        assert_eq!(without_requests("Leichte Sprache bitte. Mein Hund ist tot."), "bitte. Mein Hund ist tot.");
        assert_eq!(
            without_requests("Bitte in einfacher Sprache: Wie melde ich mich an?"),
            "Bitte in : Wie melde ich mich an?"
        );
        assert_eq!(without_requests("What does a passport cost? In English please."), "What does a passport cost? .");
        assert_eq!(without_requests("Was kostet ein Pass?"), "Was kostet ein Pass?");
        assert_eq!(without_requests("guten tag ich brauche meine geburtsurkunde"), "ich brauche meine geburtsurkunde");
        assert_eq!(without_requests("Hallo! Danke, was kostet das?"), ", was kostet das?");
        assert_eq!(without_requests("Wie lange habe ich am Tag Zeit?"), "Wie lange habe ich am Tag Zeit?");
        assert_eq!(without_requests("Sprachkurs für Deutsch"), "Sprachkurs für Deutsch");
    }

    #[test]
    fn yes_and_no_are_read_from_the_first_word() {
        for y in
            ["Ja", "ja, genau", "Richtig.", "Yes please", "Genau das", "Ähm, ja", "Das stimmt", "That's right", "Okay"]
        {
            assert_eq!(yes_no(y), Some(true), "{y}");
        }
        for n in [
            "Nein",
            "Nee, das nicht",
            "No.",
            "Falsch",
            "- Nein",
            "„Nein“",
            "Das stimmt nicht",
            "Genau das nicht",
            "Stimmt nicht",
            "That's not right",
        ] {
            assert_eq!(yes_no(n), Some(false), "{n}");
        }
        for other in ["Was kostet ein Reisepass?", "Jena", "Nebenkosten", ""] {
            assert_eq!(yes_no(other), None, "{other}");
        }
        assert_eq!(after_yes_no("Nein, ich meine den Reisepass"), "ich meine den Reisepass");
        assert_eq!(after_yes_no("Ja genau, das stimmt, danke."), "");
        assert_eq!(after_yes_no("Yes, how much is it?"), "how much is it?");
        assert_eq!(after_yes_no("„Nein“"), "");
        assert_eq!(after_yes_no("Ähm, nein, das Auto"), "Auto");
    }

    use super::*;

    #[test]
    fn cleans_control_characters() {
        assert_eq!(clean("  Hallo\u{0007}\n\tWelt\u{200b} "), "Hallo Welt");
        assert_eq!(clean("\u{0000}\u{0001}"), "");
        assert_eq!(clean(&"a".repeat(5000)).chars().count(), MAX_MESSAGE_CHARS);
    }

    #[test]
    fn what_a_message_sets_aside_is_not_searched() {
        let a = lotse_search::Analyzer::new(std::iter::empty());
        let cases = [
            ("wir verdienen nicht viel, gibts außer Kindergeld noch was?", "wir verdienen nicht viel, gibts noch was?"),
            ("gibts außer kindergeld noch was", "gibts noch was"),
            ("Was brauche ich außer dem Personalausweis? Einen Reisepass?", "Was brauche ich? Einen Reisepass?"),
            ("Was brauche ich, außer dem Ausweis?", "Was brauche ich?"),
            ("Gibt es außer Kindergeld und Elterngeld noch Hilfe?", "Gibt es noch Hilfe?"),
            ("Gibt es außer Kindergeld, Elterngeld und Wohngeld noch Hilfe?", "Gibt es noch Hilfe?"),
            ("Was gilt außer einem gültigen Reisepass noch?", "Was gilt noch?"),
            ("Is there help besides the child benefit?", "Is there help?"),
            ("Abgesehen von der Miete, was zahle ich?", "was zahle ich?"),
            // The question's verb stays.
            ("Was muss ich außer dem Personalausweis mitbringen?", "Was muss ich mitbringen?"),
            ("Kann ich außer Wohngeld Kinderzuschlag beantragen?", "Kann ich Kinderzuschlag beantragen?"),
            // Nothing set aside: "außer" as "unless", a fixed phrase, or the marker ends the sentence.
            ("Was kostet ein Reisepass?", "Was kostet ein Reisepass?"),
            (
                "Kann das jemand anders abholen, außer ich habe eine Vollmacht?",
                "Kann das jemand anders abholen, außer ich habe eine Vollmacht?",
            ),
            ("Der Automat ist außer Betrieb, was nun?", "Der Automat ist außer Betrieb, was nun?"),
            ("Wer hilft außer?", "Wer hilft außer?"),
            ("Termine außerhalb der Öffnungszeiten?", "Termine außerhalb der Öffnungszeiten?"),
            ("Außerdem brauche ich einen Pass.", "Außerdem brauche ich einen Pass."),
        ];
        for (text, searched) in cases {
            assert_eq!(without_exclusions(text, &a), searched, "{text}");
        }
    }

    #[test]
    fn intents() {
        let table = [
            ("Hallo", Intent::Greeting),
            ("Guten Tag!", Intent::Greeting),
            ("danke!", Intent::Thanks),
            ("Tschüss", Intent::Bye),
            ("Danke, tschüss!", Intent::Bye),
            ("Wie geht's?", Intent::HowAreYou),
            ("Du bist so dumm", Intent::Abuse),
            ("Ich will mit einem Menschen sprechen", Intent::Human),
            ("Can I talk to a human?", Intent::Human),
            ("Mitarbeiter bitte", Intent::Human),
            ("Habt ihr auch echte Mitarbeiter? Mit einer Maschine will ich das nicht klären.", Intent::Human),
            ("Someone took my bike from the station. What now?", Intent::Question),
            ("Muss ich mich bei der Agentur für Arbeit melden?", Intent::Question),
            ("Can you answer in English?", Intent::SwitchLang(Lang::En)),
            ("Bitte in einfacher Sprache", Intent::Plain),
            ("Wie wird das Wetter morgen?", Intent::OffTopic),
            ("Schreib mir ein Gedicht über Jena", Intent::OffTopic),
            ("Write Python code for a web scraper", Intent::OffTopic),
            ("Was kostet ein Personalausweis?", Intent::Question),
            ("Hallo, ich brauche einen neuen Reisepass", Intent::Question),
            ("Danke, und was kostet der Reisepass für Kinder?", Intent::Question),
        ];
        for (text, want) in table {
            assert_eq!(intent(text), want, "{text:?}");
        }
    }

    #[test]
    fn aspects_and_follow_ups() {
        assert_eq!(aspects("Was kostet das?"), vec![Aspect::Fees]);
        assert_eq!(aspects("Kann ich da einfach vorbeikommen?"), vec![Aspect::Appointment]);
        assert_eq!(aspects("Wie ist die Adresse des Standesamts?"), vec![Aspect::Where]);
        assert_eq!(aspects("Muss ich im Fahrzeugschein die Adresse ändern lassen?"), vec![]);
        assert_eq!(aspects("Wo trage ich die neue Adresse ein?"), vec![Aspect::Where]);
        assert_eq!(aspects("How do I register my address after moving?"), vec![]);
        assert_eq!(aspects("Wie melde ich meine Adresse an?"), vec![]);
        assert_eq!(aspects("What is the address of the citizens' office?"), vec![Aspect::Where]);
        assert_eq!(aspects("What is the address of the registry office?"), vec![Aspect::Where]);
        assert_eq!(aspects("Wie ist die Adresse der Meldebehörde?"), vec![Aspect::Where]);
        assert_eq!(aspects("Welche Adresse hat das neue Bürgerbüro?"), vec![Aspect::Where]);
        assert_eq!(aspects("Can I drop in?"), vec![Aspect::Appointment]);
        assert_eq!(aspects("Bis wann ist die Familienkasse erreichbar?"), vec![Aspect::Where, Aspect::Hours]);
        assert_eq!(aspects("Can I just walk in?"), vec![Aspect::Appointment]);
        assert_eq!(aspects("I had a drop in income by half."), vec![]);
        assert_eq!(aspects("Welche Unterlagen muss ich mitbringen?"), vec![Aspect::Documents]);
        assert_eq!(aspects("ich muss mich anmelden, was brauch ich da alles"), vec![Aspect::Documents]);
        assert_eq!(aspects("What do I need for a passport?"), vec![Aspect::Documents]);
        assert!(aspects("Ich brauche einen neuen Reisepass").is_empty());
        assert!(aspects("What do I need to know about the property tax?").is_empty());
        assert_eq!(aspects("Wie lange dauert das und was kostet es?"), vec![Aspect::Fees, Aspect::Duration]);
        assert_eq!(aspects("Wie lange ist der Pass gültig?"), vec![Aspect::Validity]);
        assert_eq!(aspects("How long is the licence valid?"), vec![Aspect::Validity]);
        assert_eq!(aspects("Bis wann muss ich den Antrag stellen?"), vec![Aspect::Deadline]);
        assert_eq!(aspects("Wie lange hab ich Zeit, mich anzumelden?"), vec![Aspect::Deadline]);
        assert_eq!(aspects("Bis wann hat das Amt heute offen?"), vec![Aspect::Hours]);
        assert_eq!(aspects("Bis wann ist mein Ausweis gültig?"), vec![Aspect::Validity]);
        assert_eq!(aspects("Bis wann ist der Antrag einzureichen?"), vec![Aspect::Deadline]);
        assert_eq!(aspects("How long do I have to wait for my passport?"), vec![Aspect::Duration]);
        assert_eq!(aspects("How long do I have to register?"), vec![Aspect::Deadline]);
        assert_eq!(
            aspects("Ich habe einen Strafzettel bekommen. Wie lange habe ich Zeit, ihn zu bezahlen?"),
            vec![Aspect::Deadline]
        );
        assert_eq!(
            aspects("Bis wann muss ich die Gebühr bezahlen und was kostet sie?"),
            vec![Aspect::Fees, Aspect::Deadline]
        );
        assert_eq!(aspects("Wie lange hat das Bürgeramt offen?"), vec![Aspect::Hours]);
        assert_eq!(
            aspects("Mein Pass ist nicht mehr gültig, wie lange dauert ein neuer?"),
            vec![Aspect::Validity, Aspect::Duration]
        );
        assert!(aspects("Personalausweis").is_empty());
        assert_eq!(
            without_stated_ages("Ich bin 30, was kostet der Personalausweis?"),
            "Ich bin, was kostet der Personalausweis?"
        );
        assert_eq!(
            without_stated_ages("Mein Sohn ist 10 Jahre alt. Was kostet sein Pass?"),
            "Mein Sohn ist. Was kostet sein Pass?"
        );
        assert_eq!(without_stated_ages("How much is an ID card? I'm 40."), "How much is an ID card? I'm.");
        assert_eq!(without_stated_ages("Was kosten 2 Urkunden?"), "Was kosten 2 Urkunden?");
        assert_eq!(without_stated_ages("Was kostet ein Reisepass für Erwachsene?"), "Was kostet ein Reisepass für?");
        assert_eq!(
            without_stated_ages("How much is a passport for an adult in Munich?"),
            "How much is a passport for an in Munich?"
        );
        assert_eq!(without_stated_ages("Kurse für Erwachsene Bildung"), "Kurse für Erwachsene Bildung");
        assert_eq!(without_stated_ages("Gibt es Kurse für Erwachsene?"), "Gibt es Kurse für Erwachsene?");
        assert_eq!(without_stated_ages("adult education centre"), "adult education centre");
        assert!(asks_how("Und wie fange ich da an?"));
        assert!(asks_how("How does that work?"));
        assert!(!asks_how("Und für Kinder?"));
        assert!(is_follow_up("Und was kostet das?"));
        assert!(is_follow_up("Welche Unterlagen brauche ich dafür?"));
        assert!(is_follow_up("Und für Kinder?"));
        assert!(is_follow_up("How much does it cost?"));
        assert!(!is_follow_up("Ich möchte meinen Hund anmelden"));
        assert!(
            refers_back("Und für Kinder?")
                && refers_back("Was kostet das?")
                && refers_back("Kann ich das online machen?")
        );
        assert!(refers_back("Wo bekomme ich ihn?") && refers_back("Muss ich dafür hin?"));
        assert!(!refers_back("Wann öffnet das Freibad?"), "an article");
        assert!(!refers_back("Wo melde ich meinen Dackel an?"));
        assert!(!refers_back("Können Sie mir helfen, wo ich die Katze anmelde?"), "the polite Sie, an article");
        assert!(refers_back("Aber ohne Termin?") && refers_back("Und wie lange dauert es?"));
        assert!(!refers_back("Und wo gibt es Gelbe Säcke?"), "a question of its own");
        assert!(refers_back("Was kostet das? Mein Sohn ist 8."), "a pronoun before a new sentence");
        assert_eq!(language("How much is a passport?"), Lang::En);
        assert_eq!(language("Was kostet ein Pass?"), Lang::De);
    }

    #[test]
    fn free_text_loses_what_identifies_a_person_by_its_form() {
        let t = redact(
            "Schreiben Sie an max.muster@example.org oder 0176 123 45 67, IBAN DE89 3704 0044 0532 0130 00.",
            500,
        );
        assert!(!t.contains("muster") && !t.contains("0176") && !t.contains("3704"), "{t}");
        assert!(t.contains("[E-Mail]") && t.contains("[Nummer]") && t.contains("[IBAN]"), "{t}");
        // Fees, years and opening hours stay.
        assert_eq!(
            redact("Die 46 Euro seit 2024 sind zu viel, 8:30 bis 12 Uhr", 500),
            "Die 46 Euro seit 2024 sind zu viel, 8:30 bis 12 Uhr"
        );
        assert_eq!(redact("a\u{0}\u{202e}b   c", 500), "ab c");
        assert_eq!(redact(&"x".repeat(900), 500).chars().count(), 500);
    }
}

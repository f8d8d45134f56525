//! German (and English) text analysis, used identically for indexing and for queries: lower-case,
//! umlaut and ß folding (ä = ae), stop words, compound splitting against the knowledge base's own
//! vocabulary, and Snowball German stemming.
//!
//! tantivy's built-in analyzers cannot split compounds against a vocabulary, so the analysis runs
//! here and tantivy indexes the resulting terms with its whitespace tokenizer.

use std::collections::HashSet;

use rust_stemmers::{Algorithm, Stemmer};

/// Whether a word (any case) is one of the German and English function words retrieval
/// ignores ("meinen", "keinen", "ich", "the").
pub fn is_function_word(word: &str) -> bool {
    let folded = fold(word);
    STOP_WORDS.contains(&folded.as_str()) || MORE_STOP_WORDS.contains(&folded.as_str())
}

/// Lower-cases and folds German special letters and common accents: "Führerschein" →
/// "fuehrerschein", "Straße" → "strasse", "Café" → "cafe".
pub fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            'ä' | 'Ä' => out.push_str("ae"),
            'ö' | 'Ö' => out.push_str("oe"),
            'ü' | 'Ü' => out.push_str("ue"),
            'ß' | 'ẞ' => out.push_str("ss"),
            'á' | 'à' | 'â' | 'Á' | 'À' | 'Â' => out.push('a'),
            'é' | 'è' | 'ê' | 'É' | 'È' | 'Ê' => out.push('e'),
            'í' | 'ì' | 'î' => out.push('i'),
            'ó' | 'ò' | 'ô' => out.push('o'),
            'ú' | 'ù' | 'û' => out.push('u'),
            'ç' => out.push('c'),
            'ñ' => out.push('n'),
            _ => out.extend(c.to_lowercase()),
        }
    }
    out
}

/// The infinitive of a separable verb's zu-form, folded: "anzumelden" → "anmelden",
/// "abzumelden" → "abmelden", "zuzuordnen" → "zuordnen". German puts "zu" between the particle
/// and the verb ("um ein Gewerbe anzumelden"), where the records write the plain infinitive.
pub fn without_infix_zu(folded: &str) -> Option<String> {
    const PARTICLES: &[&str] = &[
        "ab", "an", "auf", "aus", "bei", "dar", "ein", "fest", "frei", "her", "hin", "hinzu", "los", "mit", "nach",
        "teil", "um", "vor", "weg", "weiter", "wieder", "zu", "zurueck", "zusammen",
    ];
    PARTICLES.iter().find_map(|p| {
        let verb = folded.strip_prefix(p)?.strip_prefix("zu")?;
        (verb.len() >= 4 && verb.ends_with('n')).then(|| format!("{p}{verb}"))
    })
}

/// The nouns a German verb in "-ieren" is made into, folded: "demonstrieren" → "demonstration",
/// "registriert" → "registrierung", "reparieren" → "reparatur", "studieren" → "studium". A
/// citizen writes the verb ("Wir wollen demonstrieren") where the record names the act.
pub fn nouns_of_verb(folded: &str) -> Vec<String> {
    const ENDINGS: &[&str] = &["ieren", "ierst", "ierte", "ierten", "iertes", "ierter", "iert", "iere"];
    let Some(base) = ENDINGS.iter().find_map(|e| folded.strip_suffix(e)).filter(|b| b.len() >= 3) else {
        return Vec::new();
    };
    ["ation", "ierung", "atur", "ium"].iter().map(|n| format!("{base}{n}")).collect()
}

/// A folded word or stem without its umlauts ("tagesmuett" → "tagesmutt"), so that the forms
/// of a word that differ by an umlaut ("Mutter", "Mütter"; "Antrag", "Anträge") meet. A word
/// that spells "ue" without an umlaut ("Steuer") loses it too; the form is only ever compared
/// with forms made the same way.
pub fn without_umlauts(folded: &str) -> String {
    folded.replace("ae", "a").replace("oe", "o").replace("ue", "u")
}

/// Splits text into sentences at ". ", "! ", "? " and line breaks, not after a number ("1. Mai")
/// or a short abbreviation ("z. B.", "Nr.").
pub fn split_sentences(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let chars: Vec<char> = text.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if c == '\n' {
            if !current.trim().is_empty() {
                out.push(current.trim().to_string());
            }
            current.clear();
            continue;
        }
        current.push(c);
        let next_space = chars.get(i + 1).is_none_or(|n| n.is_whitespace());
        if matches!(c, '.' | '!' | '?') && next_space {
            let before = current.trim_end_matches(['.', '!', '?']);
            let word = before.rsplit(|ch: char| !ch.is_alphanumeric()).next().unwrap_or("");
            let number = !word.is_empty() && word.chars().all(|ch| ch.is_ascii_digit());
            // "z. B.": a one-letter word before the full stop is an abbreviation's part.
            let short = word.chars().count() == 1
                || word.chars().count() <= 3 && word.chars().next().is_some_and(char::is_lowercase)
                || ["Nr", "Abs", "Str", "bzw", "ca", "ggf", "inkl", "evtl", "Tel", "vgl", "Dr"].contains(&word);
            if c != '.' || !(number && word.len() <= 2 || short) {
                out.push(current.trim().to_string());
                current.clear();
            }
        }
    }
    if !current.trim().is_empty() {
        out.push(current.trim().to_string());
    }
    out
}

/// Splits folded text into word tokens (letters and digits).
pub fn words(folded: &str) -> impl Iterator<Item = &str> {
    folded.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty())
}

/// Prepositions that place a question in the home town ("in Jena", "aus München").
const HOME_PREPOSITIONS: &[&str] = &["in", "im", "aus", "nach", "von", "bei", "fuer", "of"];

/// Words that carry no meaning for finding a service, German and English, already folded.
const STOP_WORDS: &[&str] = &[
    // German function words and question words
    "der",
    "die",
    "das",
    "den",
    "dem",
    "des",
    "ein",
    "eine",
    "einen",
    "einem",
    "einer",
    "eines",
    "und",
    "oder",
    "aber",
    "ich",
    "du",
    "er",
    "sie",
    "es",
    "wir",
    "ihr",
    "mich",
    "mir",
    "dich",
    "dir",
    "uns",
    "euch",
    "ihnen",
    "man",
    "mein",
    "meine",
    "meinen",
    "meinem",
    "meiner",
    "meines",
    "dein",
    "deine",
    "sein",
    "seine",
    "seinen",
    "unser",
    "unsere",
    "ist",
    "sind",
    "bin",
    "bist",
    "war",
    "waren",
    "wird",
    "werden",
    "wurde",
    "habe",
    "hab",
    "hast",
    "hat",
    "haben",
    "hatte",
    "kann",
    "koennen",
    "kannst",
    "muss",
    "muessen",
    "musst",
    "soll",
    "sollte",
    "will",
    "moechte",
    "moechten",
    "wuerde",
    "darf",
    "wie",
    "was",
    "wo",
    "wann",
    "wer",
    "wen",
    "wem",
    "warum",
    "wieso",
    "weshalb",
    "welche",
    "welcher",
    "welches",
    "welchen",
    "woher",
    "wohin",
    "womit",
    "wozu",
    "worauf",
    "im",
    "in",
    "an",
    "am",
    "auf",
    "aus",
    "bei",
    "beim",
    "mit",
    "nach",
    "von",
    "vom",
    "zu",
    "zum",
    "zur",
    "fuer",
    "ueber",
    "unter",
    "um",
    "vor",
    "hinter",
    "durch",
    "gegen",
    "ohne",
    "bis",
    "seit",
    "als",
    "wenn",
    "dass",
    "ob",
    "weil",
    "da",
    "so",
    "auch",
    "noch",
    "schon",
    "nur",
    "mal",
    "doch",
    "denn",
    "ja",
    "nein",
    "nicht",
    "kein",
    "keine",
    "keinen",
    "bitte",
    "danke",
    "hallo",
    "gibt",
    "geht",
    "gehts",
    "tun",
    "mache",
    "machen",
    "macht",
    "brauche",
    "brauchen",
    "braucht",
    "bekomme",
    "bekommen",
    "kriege",
    "krieg",
    "kriegen",
    "hier",
    "dort",
    "dann",
    "jetzt",
    "heute",
    "etwas",
    "was",
    "alles",
    "viel",
    "sehr",
    "gern",
    "gerne",
    "eigentlich",
    "stadt",
    "einfach",
    "genau",
    "hi",
    "guten",
    "tag",
    "infos",
    "info",
    "information",
    "informationen",
    "frage",
    "fragen",
    "ne",
    "nen",
    "n",
    "s",
    "mehr",
    "dazu",
    "davon",
    "damit",
    "dafuer",
    "diese",
    "dieser",
    "dieses",
    "diesen",
    "jemand",
    "etwa",
    "ca",
    "sich",
    "selbst",
    "neu",
    "neue",
    "neuen",
    "neuer",
    // colloquial fillers
    "brauch",
    "brauchst",
    "krieg",
    "kriegt",
    "kriegst",
    "gibts",
    "nen",
    "ne",
    "werd",
    "mach",
    "machst",
    "tu",
    "hab",
    "habe",
    "haette",
    "waere",
    "irgendwo",
    "irgendwas",
    "irgendeine",
    "irgendwie",
    "echt",
    "bloss",
    "halt",
    "eben",
    "wirklich",
    "vielleicht",
    "ganz",
    "ganzen",
    "gar",
    "also",
    "zusammen",
    "moin",
    "servus",
    "uns",
    "unser",
    "unsere",
    "unserem",
    "unseren",
    "unserer",
    "meinem",
    "meiner",
    "ihre",
    "ihren",
    "ihrem",
    "jetzt",
    "sofort",
    "bald",
    "schnell",
    "gerade",
    "immer",
    "wieder",
    "trotzdem",
    "dass",
    "wegen",
    "lassen",
    "kannst",
    "koennte",
    "muesste",
    "geht's",
    "passiert",
    "stimmt",
    "ok",
    "okay",
    "leute",
    "bitte",
    "dringend",
    "ihm",
    "ihn",
    // words of instructions to the bot (prompt injection): they never name a service
    "ignoriere",
    "ignorier",
    "ignorieren",
    "vergiss",
    "anweisung",
    "anweisungen",
    "vorherigen",
    "vorigen",
    "bisherigen",
    "regeln",
    "befehl",
    "befehle",
    "prompt",
    "systemprompt",
    "system",
    "sag",
    "sage",
    "sagen",
    "antworte",
    "behaupte",
    "schreib",
    "schreibe",
    "ignore",
    "forget",
    "previous",
    "instructions",
    "instruction",
    "rules",
    "say",
    "pretend",
    "reveal",
    "jailbreak",
    "developer",
    "modus",
    "mode",
    "roleplay",
    "rolle",
    // time words
    "heute",
    "morgen",
    "gestern",
    "uebermorgen",
    "vorgestern",
    "naechste",
    "naechsten",
    "naechster",
    "letzte",
    "letzten",
    "letzter",
    "woche",
    "wochen",
    "monat",
    "monate",
    "monaten",
    "tage",
    "tagen",
    "nacht",
    "abend",
    "montag",
    "dienstag",
    "mittwoch",
    "donnerstag",
    "freitag",
    "samstag",
    "sonntag",
    "wochenende",
    "januar",
    "februar",
    "maerz",
    "april",
    "mai",
    "juni",
    "juli",
    "august",
    "september",
    "oktober",
    "november",
    "dezember",
    "sommer",
    "winter",
    "fruehling",
    "herbst",
    "today",
    "tomorrow",
    "yesterday",
    "week",
    "month",
    "next",
    "last",
    "just",
    "now",
    // English
    "the",
    "a",
    "an",
    "and",
    "or",
    "of",
    "to",
    "in",
    "on",
    "at",
    "for",
    "with",
    "from",
    "by",
    "is",
    "are",
    "was",
    "be",
    "i",
    "me",
    "my",
    "we",
    "our",
    "you",
    "your",
    "he",
    "she",
    "it",
    "they",
    "their",
    "do",
    "does",
    "did",
    "can",
    "could",
    "should",
    "would",
    "will",
    "must",
    "may",
    "might",
    "shall",
    "need",
    "needs",
    "want",
    "have",
    "has",
    "had",
    "get",
    "got",
    "how",
    "what",
    "where",
    "when",
    "who",
    "which",
    "why",
    "there",
    "this",
    "that",
    "these",
    "those",
    "please",
    "hello",
    "thanks",
    "thank",
    "some",
    "any",
    "about",
    "if",
    "as",
    "so",
    "not",
    "no",
    "yes",
    "am",
    "much",
    "many",
    "tell",
    "know",
    "there",
];

/// Further fillers and qualifiers seen in real questions ("new", "hin", "gezogen" is not one).
#[rustfmt::skip]
const MORE_STOP_WORDS: &[&str] = &[
    "new", "old", "really", "still", "again", "we", "them", "him", "her", "its", "arr", "lieber", "hin", "her",
    "dahin", "hier", "laut", "tell", "me", "give", "show", "now", "bestaetige", "bestaetigen", "confirm", "print",
    "persoenlich", "dafuer", "jemandem", "ab", "mal", "nur", "noch", "schon", "gerne",
];

/// Further aspect words: how a fee is asked about, including common misspellings.
#[rustfmt::skip]
const MORE_ASPECT_WORDS: &[&str] = &[
    "kostenlos", "gratis", "umsonst", "free", "kostn", "kosen", "kostet's", "telefonnummer", "erreiche", "erreichen",
    "mitnehmen", "benoetige", "brauch",
];

/// A folded word without one inflection ending (German plural and case endings, an English
/// plural), when at least four letters stay: "formulare" and "formularen" → "formular",
/// "unterlage" and "unterlagen" → "unterlag".
fn inflection_base(word: &str) -> &str {
    ["en", "er", "es", "e", "n", "s"]
        .iter()
        .find_map(|e| word.strip_suffix(e).filter(|b| b.chars().count() >= 4))
        .unwrap_or(word)
}

/// Short English function words, to tell an English question from a German one.
const ENGLISH_MARKERS: &[&str] = &[
    "and", "your", "ignore", "print", "previous", "hello", "hi", "thanks", "the", "is", "are", "how", "what", "where",
    "when", "can", "do", "does", "my", "i", "you", "to", "for", "of", "a", "need", "want", "get", "with", "which",
    "who", "have", "please",
];

/// Whether a text reads as English rather than German (by its function words).
pub fn looks_english(text: &str) -> bool {
    let folded = fold(text);
    let words: Vec<&str> = words(&folded).collect();
    let english = words.iter().filter(|w| ENGLISH_MARKERS.contains(w)).count();
    let german = words
        .iter()
        .filter(|w| {
            [
                "der", "die", "das", "ist", "ich", "wie", "was", "wo", "und", "ein", "eine", "mein", "meine", "fuer",
                "mit", "kann", "muss", "nicht",
            ]
            .contains(w)
        })
        .count();
    english > german
}

/// Words that ask about an aspect of a service (its cost, its duration, where to go) rather than
/// name the service. They steer which facts an answer gives, not which service it is about, so
/// retrieval gives them little weight and leaves them out of the confidence. Folded.
const ASPECT_WORDS: &[&str] = &[
    "kosten",
    "kostet",
    "kostets",
    "gebuehr",
    "gebuehren",
    "preis",
    "teuer",
    "euro",
    "bezahlen",
    "zahlen",
    "dauer",
    "dauert",
    "lange",
    "frist",
    "fristen",
    "termin",
    "termine",
    "terminvereinbarung",
    "online",
    "internet",
    "unterlagen",
    "dokumente",
    "papiere",
    "mitbringen",
    "oeffnungszeiten",
    "offen",
    "geoeffnet",
    "oeffnet",
    "adresse",
    "telefon",
    "telefonnummer",
    "nummer",
    "email",
    "zustaendig",
    "zustaendige",
    "wohin",
    "antrag",
    "beantragen",
    "beantrage",
    "formular",
    "ablauf",
    "voraussetzungen",
    "schnell",
    "wartezeit",
    "cost",
    "costs",
    "fee",
    "fees",
    "price",
    "long",
    "take",
    "takes",
    "documents",
    "bring",
    "appointment",
    "opening",
    "hours",
    "open",
    "phone",
    "number",
    "apply",
    "application",
    "form",
    "online",
    "office",
    "where",
    "erledigen",
    "vorbeikommen",
    "abholen",
];

/// Stems and splits text. Built once per knowledge base (the vocabulary decides how compounds
/// are split) and shared read-only between threads.
pub struct Analyzer {
    stemmer: Stemmer,
    stop: HashSet<&'static str>,
    /// The names of the place every record is about ("jena", "jenaer"; see [`Analyzer::at_home`]).
    home: HashSet<String>,
    aspect: HashSet<&'static str>,
    /// The aspect words without an inflection ending ([`inflection_base`]).
    aspect_bases: HashSet<&'static str>,
    /// The stems of the aspect words that are verbs ("kosten" → "kost", "zahlen" → "zahl"), whose
    /// other forms ("zahlt", "gezahlt", "kostete") ask the same.
    aspect_verbs: HashSet<&'static str>,
    /// Folded words of the knowledge base that may stand as parts of a compound.
    vocabulary: HashSet<String>,
    /// The common German and English function words of the stopwords-iso lists, folded. Many
    /// of them also carry meaning in a record ("groß", "Ende", "offen"), so they are not stop
    /// words; but one that no record uses ("jemanden", "sondern") says nothing of a topic the
    /// knowledge lacks (see [`Analyzer::is_function_word`]).
    function: HashSet<String>,
}

/// One analysed word of a text: its stem and the stems of its compound parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// The folded word as written.
    pub word: String,
    pub stem: String,
    pub parts: Vec<String>,
}

const MIN_HEAD: usize = 4;
const MIN_TAIL: usize = 3;
const MIN_COMPOUND: usize = 7;

impl Analyzer {
    /// Builds an analyzer whose compound splitting knows the words of `texts`.
    pub fn new<'a>(texts: impl IntoIterator<Item = &'a str>) -> Analyzer {
        let stop: HashSet<&'static str> = STOP_WORDS.iter().chain(MORE_STOP_WORDS).copied().collect();
        let mut vocabulary = HashSet::new();
        for t in texts {
            for w in words(&fold(t)) {
                if w.len() >= MIN_TAIL && !stop.contains(w) && !w.chars().all(|c| c.is_ascii_digit()) {
                    vocabulary.insert(w.to_string());
                }
            }
        }
        let aspect: HashSet<&'static str> = ASPECT_WORDS.iter().chain(MORE_ASPECT_WORDS).copied().collect();
        // German infinitives end in "en"; the nouns among the words ("kosten", "unterlagen",
        // "fristen") give stems no verb form of another word meets.
        let aspect_verbs = aspect.iter().filter(|w| w.len() >= 6).filter_map(|w| w.strip_suffix("en")).collect();
        let aspect_bases = aspect.iter().copied().map(inflection_base).collect();
        Analyzer {
            stemmer: Stemmer::create(Algorithm::German),
            stop,
            home: HashSet::new(),
            aspect,
            aspect_verbs,
            aspect_bases,
            vocabulary,
            function: stop_words::get("de").iter().chain(stop_words::get("en")).map(|w| fold(w)).collect(),
        }
    }

    /// Whether a folded word is a common function word of German or English (stopwords-iso),
    /// whatever the records make of it.
    pub fn is_function_word(&self, folded_word: &str) -> bool {
        self.function.contains(folded_word)
    }

    /// The same analyzer, for knowledge about one place: its name ("Jena", "München") and the
    /// adjective made from it ("Jenaer", "Münchner") are stop words, because every record is
    /// about that place and its name tells one service from another no more than "Stadt" does.
    pub fn at_home(mut self, place: &str) -> Analyzer {
        self.add_home(place);
        self
    }

    /// Another name of the place every record is about (see [`Analyzer::at_home`]): the
    /// English "Munich" of München.
    pub fn add_home(&mut self, place: &str) {
        let name = fold(place.trim());
        if name.is_empty() || name.contains(char::is_whitespace) {
            return;
        }
        // Jenas, Jenaer.
        let mut forms = vec![format!("{name}s"), format!("{name}er")];
        // München → Münchner, Dresden → Dresdner, Bremen → Bremer.
        if let Some(stem) = name.strip_suffix("en") {
            forms.extend([format!("{stem}ner"), format!("{stem}er")]);
        }
        forms.push(name);
        // Nor is the town a part of compounds ("JenaKultur" is not about Jena's services).
        for f in &forms {
            self.vocabulary.remove(f);
        }
        self.home.extend(forms);
    }

    /// The text without the home town and the preposition before it ("Personalausweis in
    /// München" → "Personalausweis"), for the embedding: the lexical side reads the town as a
    /// stop word, but in meaning it draws a question towards whatever record names the town most.
    pub fn without_home<'t>(&self, text: &'t str) -> std::borrow::Cow<'t, str> {
        if self.home.is_empty() {
            return text.into();
        }
        let core = |token: &str| fold(token.trim_matches(|c: char| !c.is_alphanumeric()));
        let tokens: Vec<&str> = text.split_whitespace().collect();
        if !tokens.iter().any(|t| self.home.contains(&core(t))) {
            return text.into();
        }
        let mut kept: Vec<String> = Vec::with_capacity(tokens.len());
        for t in tokens {
            if !self.home.contains(&core(t)) {
                kept.push(t.to_string());
                continue;
            }
            if kept.last().is_some_and(|p| HOME_PREPOSITIONS.contains(&fold(p).as_str())) {
                kept.pop();
            }
            // What follows the name ("München?", "Jena,") stays with the sentence.
            let tail: String = t.chars().rev().take_while(|c| !c.is_alphanumeric()).collect();
            match kept.last_mut() {
                Some(last) if !tail.is_empty() => last.extend(tail.chars().rev()),
                _ => {}
            }
        }
        kept.join(" ").into()
    }

    pub fn is_stop_word(&self, folded_word: &str) -> bool {
        self.stop.contains(folded_word) || self.home.contains(folded_word)
    }

    /// Whether a folded word asks about an aspect (cost, time, place) rather than a topic.
    pub fn is_aspect_word(&self, folded_word: &str) -> bool {
        // Numbers ("5 Euro", "Jahrgang 1971") qualify a question; they do not name a service.
        // An inflected form counts as its word ("Formulare", "Unterlage", "Gebühren").
        let base = inflection_base(folded_word);
        self.aspect.contains(folded_word)
            || self.aspect.contains(base)
            || self.aspect_bases.contains(base)
            || folded_word.chars().all(|c| c.is_ascii_digit())
            || self.is_aspect_verb_form(folded_word)
    }

    /// Whether a folded word is a form of an aspect verb: its stem with a verb ending, after
    /// taking out the "ge" of a participle, also after a separable prefix ("zahlt", "gezahlt",
    /// "kostete", "abgeholt").
    fn is_aspect_verb_form(&self, word: &str) -> bool {
        const ENDINGS: &[&str] = &["e", "st", "t", "et", "te", "ten", "tet", "test", "ete", "eten", "est"];
        let verb = |w: &str| ENDINGS.iter().any(|e| w.strip_suffix(e).is_some_and(|s| self.aspect_verbs.contains(s)));
        verb(word)
            || word
                .match_indices("ge")
                .filter(|(i, _)| *i <= 6)
                .any(|(i, _)| verb(&format!("{}{}", &word[..i], &word[i + 2..])))
    }

    pub fn stem(&self, folded_word: &str) -> String {
        self.stemmer.stem(folded_word).into_owned()
    }

    /// Analyses a text into tokens, stop words removed.
    pub fn tokens(&self, text: &str) -> Vec<Token> {
        let folded = fold(text);
        words(&folded)
            .filter(|w| !self.is_stop_word(w) && (w.len() > 1 || w.chars().all(|c| c.is_ascii_digit())))
            .map(|w| self.token(w))
            .collect()
    }

    /// Analyses one folded word.
    pub fn token(&self, word: &str) -> Token {
        let parts = self.split(word).map(|p| p.iter().map(|p| self.stem(p)).collect()).unwrap_or_default();
        Token { word: word.to_string(), stem: self.stem(word), parts }
    }

    /// The index terms of a text: every stem and every compound part's stem.
    pub fn terms(&self, text: &str) -> Vec<String> {
        let mut out = Vec::new();
        for t in self.tokens(text) {
            out.push(t.stem);
            out.extend(t.parts);
        }
        out
    }

    /// Splits a folded compound into known words ("hundesteuer" → ["hund", "steuer"],
    /// "personalausweisantrag" → ["personalausweis", "antrag"]), allowing the linking letters
    /// (Fugenelemente) s, es, n, en, e between parts. Prefers the split with the longest head.
    pub fn split(&self, word: &str) -> Option<Vec<String>> {
        if word.len() < MIN_COMPOUND || !word.is_ascii() {
            return None;
        }
        self.split_rec(word, 0)
    }

    fn split_rec(&self, word: &str, depth: usize) -> Option<Vec<String>> {
        if depth > 3 {
            return None;
        }
        // Longest head first, so that "personalausweisantrag" keeps "personalausweis" whole.
        for head_len in (MIN_HEAD..=word.len().saturating_sub(MIN_TAIL)).rev() {
            let head = &word[..head_len];
            if !self.vocabulary.contains(head) {
                continue;
            }
            let rest = &word[head_len..];
            for fuge in ["", "s", "es", "n", "en", "e"] {
                let Some(tail) = rest.strip_prefix(fuge) else { continue };
                if tail.len() < MIN_TAIL {
                    continue;
                }
                if self.vocabulary.contains(tail) {
                    return Some(vec![head.to_string(), tail.to_string()]);
                }
                if tail.len() >= MIN_COMPOUND
                    && let Some(mut parts) = self.split_rec(tail, depth + 1)
                {
                    parts.insert(0, head.to_string());
                    return Some(parts);
                }
            }
        }
        None
    }

    /// The folded words of the knowledge base.
    pub fn vocabulary(&self) -> impl Iterator<Item = &str> {
        self.vocabulary.iter().map(String::as_str)
    }

    pub fn knows_word(&self, folded_word: &str) -> bool {
        self.vocabulary.contains(folded_word)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn analyzer() -> Analyzer {
        Analyzer::new(["Personalausweis Antrag Hund Steuer Hunde Wohnsitz Anmeldung Führerschein Standesamt Amt Stand"])
    }

    #[test]
    fn inflected_aspect_nouns_are_aspect_words() {
        let a = analyzer();
        for w in ["formulare", "formularen", "unterlage", "dokument", "adressen", "termins", "nummern"] {
            assert!(a.is_aspect_word(w), "{w}");
        }
        for w in ["hunde", "ausweise", "steuern", "gebaeude"] {
            assert!(!a.is_aspect_word(w), "{w}");
        }
    }

    #[test]
    fn forms_of_an_aspect_verb_ask_about_the_aspect() {
        let a = analyzer();
        for w in ["zahlt", "gezahlt", "bezahlt", "kostete", "zahle", "beantragt", "abgeholt"] {
            assert!(a.is_aspect_word(w), "{w}");
        }
        for w in ["zahlung", "kostuem", "personalausweis", "hund", "stadt"] {
            assert!(!a.is_aspect_word(w), "{w}");
        }
    }

    #[test]
    fn the_embedding_reads_a_question_without_its_home_town() {
        let a = analyzer().at_home("München");
        assert_eq!(a.without_home("Was kostet der Personalausweis in München?"), "Was kostet der Personalausweis?");
        assert_eq!(a.without_home("Münchner Hundesteuer, wie hoch?"), "Hundesteuer, wie hoch?");
        assert_eq!(a.without_home("Wo ist das Bürgerbüro"), "Wo ist das Bürgerbüro");
        assert_eq!(analyzer().without_home("Reisepass in München"), "Reisepass in München");
    }

    #[test]
    fn verbs_in_ieren_lead_to_their_nouns() {
        assert!(nouns_of_verb("demonstrieren").contains(&"demonstration".to_string()));
        assert!(nouns_of_verb("registriert").contains(&"registrierung".to_string()));
        assert!(nouns_of_verb("studiere").contains(&"studium".to_string()));
        assert!(nouns_of_verb("anmelden").is_empty());
    }

    #[test]
    fn a_separable_verbs_zu_form_reads_as_its_infinitive() {
        assert_eq!(without_infix_zu("anzumelden").as_deref(), Some("anmelden"));
        assert_eq!(without_infix_zu("anzuzeigen").as_deref(), Some("anzeigen"));
        assert_eq!(without_infix_zu("zuzuordnen").as_deref(), Some("zuordnen"));
        assert_eq!(without_infix_zu("zurueckzugeben").as_deref(), Some("zurueckgeben"));
        for w in ["anmelden", "anzug", "zug", "umzug", "abzuege"] {
            assert_eq!(without_infix_zu(w), None, "{w}");
        }
    }

    #[test]
    fn the_home_town_and_its_adjective_are_stop_words() {
        let a = analyzer().at_home("München");
        for w in ["muenchen", "muenchner", "muencher", "muenchens"] {
            assert!(a.is_stop_word(w), "{w}");
        }
        assert_eq!(a.terms("Personalausweis in München"), analyzer().terms("Personalausweis"));
        let jena = analyzer().at_home("Jena");
        assert!(jena.is_stop_word("jena") && jena.is_stop_word("jenaer") && !jena.is_stop_word("muenchen"));
        // Without a home every place is a word; a name of several words is left alone.
        assert!(!analyzer().is_stop_word("jena"));
        assert!(!analyzer().at_home("Frankfurt am Main").is_stop_word("frankfurt"));
    }

    #[test]
    fn folds_umlauts_and_case() {
        assert_eq!(fold("Führerschein Straße ÄRGER Café"), "fuehrerschein strasse aerger cafe");
    }

    #[test]
    fn splits_compounds_with_the_vocabulary() {
        let a = analyzer();
        let table: &[(&str, Option<&[&str]>)] = &[
            ("personalausweisantrag", Some(&["personalausweis", "antrag"])),
            ("hundesteuer", Some(&["hunde", "steuer"])),
            ("wohnsitzanmeldung", Some(&["wohnsitz", "anmeldung"])),
            ("fuehrerscheinantrag", Some(&["fuehrerschein", "antrag"])),
            ("hund", None),
            ("xyzsteuerabc", None),
        ];
        for (word, want) in table {
            let got = a.split(word);
            let want = want.map(|w| w.iter().map(|s| s.to_string()).collect::<Vec<_>>());
            assert_eq!(got, want, "word {word}");
        }
    }

    #[test]
    fn query_and_document_agree() {
        let a = analyzer();
        // The same word in different forms must meet in the index.
        assert_eq!(a.terms("Führerschein"), a.terms("fuehrerschein"));
        assert!(a.terms("Hundesteuer anmelden").contains(&a.stem("steuer")));
        assert!(a.terms("Wie kann ich meinen Personalausweisantrag stellen?").contains(&a.stem("personalausweis")));
        assert!(a.tokens("Wie und wo?").is_empty());
    }
}

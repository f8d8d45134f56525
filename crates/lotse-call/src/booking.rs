//! A callback booked by phone: when nobody can take the caller (outside staff hours, or a
//! transfer that failed), the bot offers to call back in the team's next window. The number is
//! the one the caller rings from (read back), or one keyed in (ended by `#` or a pause) or
//! said; the consent is asked in words and given by yes or the key 1, and only once the
//! consent question has been heard to its end. Nothing is stored without that yes.
//!
//! This module decides (what was heard or keyed, and what the bot says next); the call
//! ([`crate::Live`]) speaks, tells the booking when the question was heard, and stores.
//! Deciding on words is pure, because a reply made in the caller's pause may be void when they
//! go on.

use std::time::Duration;

use lotse_core::Lang;

/// Keys typed and then nothing for this long: the number is taken as complete.
pub const KEYS_DONE: Duration = Duration::from_secs(5);

/// The most digits a phone number has (E.164: 15, with some room for an extension).
const MAX_DIGITS: usize = 20;
const MIN_DIGITS: usize = 6;

/// Where the booking stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stage {
    /// Waiting for a number (keys or words).
    Number,
    /// The caller said no to the number read back: another number, or the offer ends with
    /// their next words.
    Another,
    /// The number was read back with the consent question: waiting for yes or no.
    Confirm(String),
}

/// What comes of what the caller said or keyed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The bot says this and the booking goes on at the stage.
    Ask(Stage, String),
    /// The bot says this again; the stage and the digits keyed so far stay.
    Again(String),
    /// The caller agreed: the callback is stored for this number.
    Book(String),
    /// The caller does not want a callback: nothing is stored.
    Decline(String),
    /// Not an answer to the offer (a new question): the booking ends and the engine answers.
    Leave,
}

/// A callback on offer in a call.
#[derive(Debug, Clone)]
pub struct Booking {
    /// The window in words (`Montag, 7. Dezember, 08:00–16:00 Uhr`).
    slot: String,
    /// The consent question ([`lotse_handoff::Desk::phone_consent`]).
    consent: String,
    lang: Lang,
    pub stage: Stage,
    /// The consent question of the current stage has been heard to its end: only now does a
    /// yes count.
    asked: bool,
    /// Digits keyed so far, and when the last came.
    keyed: String,
    last_key: Duration,
}

impl Booking {
    /// The offer: with the number the caller rings from, read back for a yes; without one, a
    /// request to key it in. `lead` is said first (why nobody takes the call now).
    pub fn start(slot: &str, consent: &str, caller: Option<&str>, lang: Lang, lead: &str) -> (Booking, String) {
        let mut b = Booking {
            slot: slot.to_string(),
            consent: consent.to_string(),
            lang,
            stage: Stage::Number,
            asked: false,
            keyed: String::new(),
            last_key: Duration::ZERO,
        };
        let en = lang == Lang::En;
        // Short: the consent question comes as early as it can, and a yes counts only after it.
        let text = match caller.and_then(number) {
            Some(n) => {
                let text = if en {
                    format!(
                        "{lead} We can call you back on {slot}, on the number {}. {} Say yes, or press 1. For another number, press 2.",
                        grouped(&n),
                        b.consent
                    )
                } else {
                    format!(
                        "{lead} Wir können Sie zurückrufen, am {slot}, unter der Nummer {}. {} Sagen Sie Ja, oder drücken Sie die 1. Für eine andere Nummer drücken Sie die 2.",
                        grouped(&n),
                        b.consent
                    )
                };
                b.stage = Stage::Confirm(n);
                text
            }
            None if en => format!("{lead} We can call you back on {slot}. {}", b.ask_number()),
            None => format!("{lead} Wir können Sie zurückrufen, am {slot}. {}", b.ask_number()),
        };
        (b, text)
    }

    fn en(&self) -> bool {
        self.lang == Lang::En
    }

    /// The last sentence of the consent: the question a yes answers.
    fn question(&self) -> &str {
        let c = self.consent.trim_end_matches(['?', ' ']);
        let start = c.rfind(['.', '!']).map_or(0, |i| i + 1);
        self.consent[start..].trim()
    }

    /// What the caller has heard of the current reply: once it holds the consent question,
    /// a yes counts.
    pub fn heard_so_far(&mut self, heard: &str) {
        if matches!(self.stage, Stage::Confirm(_)) && !self.asked && heard.contains(self.question()) {
            self.asked = true;
        }
    }

    fn ask_number(&self) -> String {
        if self.en() {
            "Please key in your phone number and then press the hash key. You can also say it.".into()
        } else {
            "Bitte tippen Sie Ihre Telefonnummer ein und drücken Sie danach die Raute. Sie können die Nummer auch sagen."
                .into()
        }
    }

    fn confirm_text(&self, n: &str) -> String {
        if self.en() {
            format!("The number is {}. {} Say yes, or press 1. Otherwise say no.", grouped(n), self.consent)
        } else {
            format!(
                "Die Nummer ist {}. {} Sagen Sie Ja, oder drücken Sie die 1. Sonst sagen Sie Nein.",
                grouped(n),
                self.consent
            )
        }
    }

    fn confirm(&self, n: &str) -> Step {
        Step::Ask(Stage::Confirm(n.to_string()), self.confirm_text(n))
    }

    /// The prompt of the current stage, said again.
    fn again(&self) -> Step {
        Step::Again(match &self.stage {
            Stage::Confirm(n) => self.confirm_text(n),
            _ => self.ask_number(),
        })
    }

    fn incomplete(&self) -> Step {
        let text = if self.en() {
            "That was not a complete phone number. Please key it in again and then press the hash key."
        } else {
            "Das war keine vollständige Telefonnummer. Bitte tippen Sie sie noch einmal ein und drücken Sie danach die Raute."
        };
        Step::Ask(Stage::Number, text.into())
    }

    fn decline(&self) -> Step {
        Step::Decline(if self.en() {
            "All right, I will not store anything. You can ask me something else.".into()
        } else {
            "Gut, ich speichere nichts. Sie können mich gern weiter fragen.".into()
        })
    }

    fn another(&self) -> Step {
        Step::Ask(
            Stage::Another,
            if self.en() {
                "All right. You can key in another number and press the hash key, or say it. Or just ask me something else."
                    .into()
            } else {
                "Gut. Sie können eine andere Nummer eintippen und danach die Raute drücken, oder sie sagen. Oder fragen Sie mich einfach weiter."
                    .into()
            },
        )
    }

    /// What the caller hears once the callback is stored.
    pub fn booked(&self) -> String {
        booked(self.lang, &self.slot)
    }

    /// What the caller hears when the callback could not be stored.
    pub fn not_stored(&self) -> String {
        not_stored(self.lang)
    }

    /// The answer to words the caller said (pure: the call applies the step when the reply
    /// plays).
    pub fn heard(&self, text: &str) -> Step {
        let said = number_in_words(text);
        let answer = yes_or_no(text);
        let short = words(text).len() <= 3;
        if let Some(n) = said {
            return self.confirm(&n);
        }
        if self.keying() {
            // Words while keying: the prompt again, the digits kept.
            return self.again();
        }
        match (&self.stage, answer) {
            (Stage::Confirm(n), Some(true)) if self.asked => Step::Book(n.clone()),
            // A yes before the question was heard to its end consents to nothing: the number
            // and the question again.
            (Stage::Confirm(_), Some(true)) => self.again(),
            (Stage::Confirm(_), Some(false)) => self.another(),
            (Stage::Number | Stage::Another, Some(false)) => self.decline(),
            (Stage::Number | Stage::Another, Some(true)) => Step::Ask(Stage::Number, self.ask_number()),
            // A word or two ("Wie bitte?", "Moment"): the prompt again.
            (Stage::Number | Stage::Confirm(_), None) if short => self.again(),
            (_, None) => Step::Leave,
        }
    }

    /// A key the caller pressed at `at` (call time): a step when it completes something.
    /// Keys are digits of a number here, `0` included; `*` is left to the call (repeat).
    pub fn key(&mut self, digit: char, at: Duration) -> Option<Step> {
        let fresh = self.keyed.is_empty();
        match (&self.stage, digit) {
            (Stage::Confirm(n), '1') if fresh && self.asked => Some(Step::Book(n.clone())),
            (Stage::Confirm(_), '1') if fresh => Some(self.again()),
            (Stage::Confirm(_), '2') if fresh => Some(self.another()),
            (_, d) if d.is_ascii_digit() => {
                // Another number keyed over the one read back.
                self.stage = match &self.stage {
                    Stage::Confirm(_) => Stage::Number,
                    s => s.clone(),
                };
                if self.keyed.len() < MAX_DIGITS {
                    self.keyed.push(d);
                }
                self.last_key = at;
                None
            }
            (_, '#') if !fresh => Some(self.keys_done()),
            _ => None,
        }
    }

    /// Keys were typed and then none for [`KEYS_DONE`]: the number is complete.
    pub fn pause(&mut self, now: Duration) -> Option<Step> {
        (!self.keyed.is_empty() && now.saturating_sub(self.last_key) >= KEYS_DONE).then(|| self.keys_done())
    }

    /// Whether the caller is keying a number (the call stays quiet meanwhile).
    pub fn keying(&self) -> bool {
        !self.keyed.is_empty()
    }

    /// The digits keyed so far are dropped (the caller pressed `*` to start again).
    pub fn clear_keys(&mut self) {
        self.keyed.clear();
    }

    fn keys_done(&mut self) -> Step {
        let keyed = std::mem::take(&mut self.keyed);
        match number(&keyed) {
            Some(n) => self.confirm(&n),
            None => self.incomplete(),
        }
    }

    /// The step is taken: the stage it leads to (its question not yet heard).
    pub fn advance(&mut self, step: &Step) {
        if let Step::Ask(stage, _) = step {
            self.stage = stage.clone();
            self.keyed.clear();
            self.asked = false;
        }
        if let Step::Again(_) = step {
            self.asked = false;
        }
    }
}

/// What the caller hears once the callback is stored.
pub fn booked(lang: Lang, slot: &str) -> String {
    match lang {
        Lang::En => {
            format!("Thank you. We will call you back on {slot}. You can hang up now, or ask me something else.")
        }
        _ => format!("Danke. Wir rufen Sie zurück, am {slot}. Sie können jetzt auflegen, oder mich weiter fragen."),
    }
}

/// What the caller hears when the callback could not be stored.
pub fn not_stored(lang: Lang) -> String {
    match lang {
        Lang::En => "Sorry, I could not note your callback. Please call again during office hours.".into(),
        _ => {
            "Leider konnte ich den Rückruf nicht eintragen. Bitte rufen Sie zu den Sprechzeiten noch einmal an.".into()
        }
    }
}

/// Whether a prompt asks for a number: the caller's turn may then pause between digit groups.
pub fn asks_for_number(text: &str) -> bool {
    ["Telefonnummer", "Rufnummer", "Postleitzahl", "andere Nummer", "phone number", "postcode", "another number"]
        .iter()
        .any(|w| text.contains(w))
}

/// A phone number from a caller identity or keys: digits with an optional leading `+`,
/// 6 to 20 digits.
pub fn number(s: &str) -> Option<String> {
    let s = s.trim();
    let (plus, rest) = match s.strip_prefix('+') {
        Some(r) => ("+", r),
        None => ("", s),
    };
    let digits: String = rest.chars().filter(|c| !matches!(c, ' ' | '-' | '/' | '(' | ')' | '.')).collect();
    (digits.chars().all(|c| c.is_ascii_digit()) && (MIN_DIGITS..=MAX_DIGITS).contains(&digits.len()))
        .then(|| format!("{plus}{digits}"))
}

/// The number to be read back: digit by digit, in groups of three with a pause between them;
/// a German number as it is dialled within Germany (0 for +49), as callers know their own.
pub fn grouped(n: &str) -> String {
    let (plus, digits) = match n.strip_prefix("+49") {
        Some(r) => ("", format!("0{r}")),
        None => match n.strip_prefix('+') {
            Some(r) => ("plus ", r.to_string()),
            None => ("", n.to_string()),
        },
    };
    let groups: Vec<String> = digits
        .as_bytes()
        .chunks(3)
        .map(|c| c.iter().map(|&d| (d as char).to_string()).collect::<Vec<_>>().join(" "))
        .collect();
    format!("{plus}{}", groups.join(", "))
}

fn words(text: &str) -> Vec<String> {
    text.to_lowercase()
        .split(|c: char| c.is_whitespace() || matches!(c, ',' | '.' | '!' | '?' | ';' | ':' | '-'))
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// Digits a caller said, as the recogniser writes them ("0 3 6 4 1", "03641-490") or as
/// words ("null drei sechs", "zero three six"); a number only with 6 to 20 digits. "ein" and
/// "eine" are not taken for 1: they are articles far more often.
pub fn number_in_words(text: &str) -> Option<String> {
    let mut out = String::new();
    for w in words(text) {
        if out.is_empty() && (w == "plus" || w.starts_with('+')) {
            out.push('+');
        }
        let digit = match w.as_str() {
            "null" | "zero" | "oh" => Some('0'),
            "eins" | "one" => Some('1'),
            "zwei" | "zwo" | "two" => Some('2'),
            "drei" | "three" => Some('3'),
            "vier" | "four" => Some('4'),
            "fünf" | "fuenf" | "five" => Some('5'),
            "sechs" | "six" => Some('6'),
            "sieben" | "seven" => Some('7'),
            "acht" | "eight" => Some('8'),
            "neun" | "nine" => Some('9'),
            _ => None,
        };
        match digit {
            Some(d) => out.push(d),
            None => out.extend(w.chars().filter(char::is_ascii_digit)),
        }
    }
    number(&out)
}

/// Yes or no in the caller's words (German or English). A question is neither ("Ist das
/// richtig?"); no wins over yes, since a consent must be clear; a yes is the first word
/// (after a filler) of a short answer.
pub fn yes_or_no(text: &str) -> Option<bool> {
    const YES: &[&str] = &[
        "ja",
        "jawohl",
        "jo",
        "genau",
        "gerne",
        "gern",
        "okay",
        "ok",
        "einverstanden",
        "richtig",
        "korrekt",
        "yes",
        "yeah",
        "yep",
        "sure",
        "correct",
        "agree",
        "agreed",
    ];
    const NO: &[&str] =
        &["nein", "nee", "nö", "ne", "nicht", "abbrechen", "falsch", "no", "nope", "not", "don't", "cancel", "wrong"];
    const QUESTION: &[&str] = &[
        "was", "wie", "wo", "wann", "warum", "wieso", "weshalb", "wer", "wen", "wem", "welche", "welcher", "welches",
        "what", "how", "where", "when", "why", "who", "which", "ist", "is", "kann", "can", "does", "do",
    ];
    const FILLER: &[&str] = &["äh", "ähm", "öh", "hm", "hmm", "also", "oh", "uh", "um", "well"];
    let w = words(text);
    if text.trim_end().ends_with('?') || w.first().is_some_and(|f| QUESTION.contains(&f.as_str())) {
        return None;
    }
    if w.iter().any(|w| NO.contains(&w.as_str())) {
        return Some(false);
    }
    let first = w.iter().find(|w| !FILLER.contains(&w.as_str()))?;
    (w.len() <= 6 && YES.contains(&first.as_str())).then_some(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONSENT: &str = "Wir speichern Ihre Nummer. Sind Sie einverstanden?";

    #[test]
    fn numbers_from_identities_keys_and_words() {
        assert_eq!(number("+49 3641 490").as_deref(), Some("+493641490"));
        assert_eq!(number("03641/49-0").as_deref(), Some("03641490"));
        assert_eq!(number("12345"), None);
        assert_eq!(number("anonymous"), None);
        assert_eq!(number(&"1".repeat(21)), None);
        assert_eq!(number_in_words("Meine Nummer ist 0 3 6 4 1, 4 9 0.").as_deref(), Some("03641490"));
        assert_eq!(number_in_words("null drei sechs vier eins vier neun null").as_deref(), Some("03641490"));
        assert_eq!(number_in_words("plus four nine three six four one").as_deref(), Some("+493641"));
        // A question with a count in it is no number.
        assert_eq!(number_in_words("Was kostet ein Reisepass für eine Familie mit 2 Kindern?"), None);
    }

    #[test]
    fn numbers_are_read_back_digit_by_digit_whatever_their_form() {
        assert_eq!(grouped("+493641490"), "0 3 6, 4 1 4, 9 0");
        assert_eq!(grouped("+4312345678"), "plus 4 3 1, 2 3 4, 5 6 7, 8");
        assert_eq!(grouped("414900"), "4 1 4, 9 0 0");
        // The spoken form leaves them as they are (it reads written numbers as numbers).
        for n in ["+493641490", "+4312345678", "414900", "0364149000123456"] {
            let g = grouped(n);
            let said = lotse_speech::spoken::spoken(&format!("Die Nummer ist {g}."), Lang::De);
            assert!(said.contains(&g), "{said}");
        }
    }

    #[test]
    fn yes_no_and_neither() {
        assert_eq!(yes_or_no("Ja."), Some(true));
        assert_eq!(yes_or_no("Ja, gerne."), Some(true));
        assert_eq!(yes_or_no("Ähm, ja."), Some(true));
        assert_eq!(yes_or_no("Yes, please."), Some(true));
        assert_eq!(yes_or_no("Nein, danke."), Some(false));
        assert_eq!(yes_or_no("Ja, äh, nein, lieber nicht."), Some(false));
        // Questions, even with a yes-word in them, are no answer.
        for q in [
            "Was kostet ein Personalausweis?",
            "Ist das richtig?",
            "Passt das auch am Dienstag?",
            "Okay, und wann genau?",
            "Is that right?",
            "Ja, und was kostet eigentlich ein neuer Personalausweis für mich",
        ] {
            assert_eq!(yes_or_no(q), None, "{q}");
        }
    }

    /// A booking whose prompt the caller has heard to its end.
    fn heard(mut b: Booking, text: &str) -> Booking {
        b.heard_so_far(text);
        b
    }

    #[test]
    fn the_callers_own_number_is_read_back_and_booked_on_yes_or_1_once_asked() {
        let (b, text) = Booking::start("Montag", CONSENT, Some("+493641490"), Lang::De, "Niemand da.");
        assert!(text.contains("0 3 6, 4 1 4, 9 0") && text.contains(CONSENT), "{text}");
        // Before the question was heard, a yes or a 1 consents to nothing: asked again.
        assert!(matches!(b.heard("Ja."), Step::Again(_)));
        assert!(matches!(b.clone().key('1', Duration::ZERO), Some(Step::Again(_))));
        let mut b = heard(b, &text);
        assert_eq!(b.heard("Ja."), Step::Book("+493641490".into()));
        assert_eq!(b.key('1', Duration::ZERO), Some(Step::Book("+493641490".into())));
        // No (or 2): nothing is stored; another number may follow, else the offer ends.
        let step = b.heard("Nein.");
        assert_eq!(Some(step.clone()), b.clone().key('2', Duration::ZERO));
        assert!(matches!(&step, Step::Ask(Stage::Another, _)), "{step:?}");
        b.advance(&step);
        assert_eq!(b.heard("Nein."), b.decline());
        assert_eq!(b.heard("Danke"), Step::Leave);
        assert!(matches!(b.heard("null drei sechs vier eins, vier neun null"), Step::Ask(Stage::Confirm(_), _)));
    }

    #[test]
    fn a_keyed_number_ends_with_hash_or_a_pause_and_is_confirmed() {
        let (mut b, text) = Booking::start("Montag", CONSENT, None, Lang::De, "Niemand da.");
        assert!(text.contains("Raute"), "{text}");
        for (i, d) in "03641490".chars().enumerate() {
            // 0 is a digit here, not a request for a person.
            assert_eq!(b.key(d, Duration::from_millis(300 * i as u64)), None);
        }
        assert!(b.keying());
        // Words while keying: the prompt again, the digits kept.
        assert!(matches!(b.heard("Moment, wie war das"), Step::Again(_)));
        let step = b.key('#', Duration::from_secs(3)).expect("complete");
        let Step::Ask(Stage::Confirm(n), said) = &step else { panic!("{step:?}") };
        assert_eq!(n, "03641490");
        assert!(said.contains("0 3 6, 4 1 4, 9 0") && said.contains(CONSENT), "{said}");
        b.advance(&step);
        let b = heard(b, said);
        assert_eq!(b.heard("Ja, bitte."), Step::Book("03641490".into()));
        // Too short, ended by a pause: asked again.
        let (mut b, _) = Booking::start("Montag", CONSENT, None, Lang::En, "Nobody.");
        b.key('4', Duration::from_secs(1));
        b.key('9', Duration::from_secs(2));
        assert_eq!(b.pause(Duration::from_secs(6)), None);
        assert!(matches!(b.pause(Duration::from_secs(7)), Some(Step::Ask(Stage::Number, _))));
    }

    #[test]
    fn another_number_keyed_over_the_one_read_back_replaces_it() {
        let (b, text) = Booking::start("Montag", CONSENT, Some("+493641490"), Lang::De, "Niemand da.");
        let mut b = heard(b, &text);
        for d in "0364155".chars() {
            assert_eq!(b.key(d, Duration::ZERO), None);
        }
        assert_eq!(b.stage, Stage::Number);
        // A yes while keying is no yes to the number read back.
        assert!(matches!(b.heard("Ja."), Step::Again(_)));
        let step = b.key('#', Duration::ZERO).expect("complete");
        assert_eq!(step, b.confirm("0364155"));
    }

    #[test]
    fn a_question_leaves_the_offer_and_a_word_or_two_repeat_it() {
        let (b, _) = Booking::start("Montag", CONSENT, Some("03641490"), Lang::De, "Niemand da.");
        assert_eq!(b.heard("Was kostet ein Personalausweis?"), Step::Leave);
        assert!(matches!(b.heard("Wie bitte?"), Step::Again(_)));
        let (b, _) = Booking::start("Montag", CONSENT, None, Lang::De, "Niemand da.");
        assert_eq!(b.heard("Wo kann ich mein Auto anmelden?"), Step::Leave);
    }
}

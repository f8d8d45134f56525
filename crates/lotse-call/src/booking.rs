//! A callback booked by phone: when nobody can take the caller (outside staff hours, or a
//! transfer that failed), the bot offers to call back in the team's next window. The number is
//! the one the caller rings from (read back), or one keyed in (ended by `#` or a pause) or
//! said; the consent is asked in words and given by yes or the key 1. Nothing is stored
//! without that yes.
//!
//! This module decides (what was heard or keyed, and what the bot says next); the call
//! ([`crate::Live`]) speaks and stores. Deciding is pure, because a reply made in the caller's
//! pause may be void when they go on.

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
    /// The number was read back with the consent question: waiting for yes or no.
    Confirm(String),
}

/// What comes of what the caller said or keyed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The bot says this and the booking goes on at the stage.
    Ask(Stage, String),
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
            keyed: String::new(),
            last_key: Duration::ZERO,
        };
        let en = lang == Lang::En;
        let offer = if en {
            format!("{lead} We can call you back on {slot}.")
        } else {
            format!("{lead} Wir können Sie zurückrufen, am {slot}.")
        };
        let text = match caller.and_then(number) {
            Some(n) => {
                let ask = if en {
                    format!(
                        "Shall we call you on the number you are calling from, {}? {} Then say yes, or press 1. For another number, key it in and press the hash key.",
                        grouped(&n),
                        b.consent
                    )
                } else {
                    format!(
                        "Sollen wir Sie unter der Nummer anrufen, von der Sie anrufen, {}? {} Dann sagen Sie Ja, oder drücken Sie die 1. Für eine andere Nummer tippen Sie diese ein und drücken danach die Raute.",
                        grouped(&n),
                        b.consent
                    )
                };
                b.stage = Stage::Confirm(n);
                format!("{offer} {ask}")
            }
            None => format!("{offer} {}", b.ask_number()),
        };
        (b, text)
    }

    fn en(&self) -> bool {
        self.lang == Lang::En
    }

    fn ask_number(&self) -> String {
        if self.en() {
            "Please key in your phone number and then press the hash key. You can also say it.".into()
        } else {
            "Bitte tippen Sie Ihre Telefonnummer ein und drücken Sie danach die Raute. Sie können die Nummer auch sagen."
                .into()
        }
    }

    fn confirm(&self, n: &str) -> Step {
        let text = if self.en() {
            format!("I have the number {}. {} Then say yes, or press 1. Otherwise say no.", grouped(n), self.consent)
        } else {
            format!(
                "Ich habe die Nummer {} verstanden. {} Dann sagen Sie Ja, oder drücken Sie die 1. Sonst sagen Sie Nein.",
                grouped(n),
                self.consent
            )
        };
        Step::Ask(Stage::Confirm(n.to_string()), text)
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

    /// What the caller hears once the callback is stored.
    pub fn booked(&self) -> String {
        if self.en() {
            format!("Thank you. We will call you back on {}. You can hang up now, or ask me something else.", self.slot)
        } else {
            format!(
                "Danke. Wir rufen Sie zurück, am {}. Sie können jetzt auflegen, oder mich weiter fragen.",
                self.slot
            )
        }
    }

    /// What the caller hears when the callback could not be stored.
    pub fn not_stored(&self) -> String {
        if self.en() {
            "Sorry, I could not note your callback. Please call again during office hours.".into()
        } else {
            "Leider konnte ich den Rückruf nicht eintragen. Bitte rufen Sie zu den Sprechzeiten noch einmal an.".into()
        }
    }

    /// The answer to words the caller said (pure: the call applies the step when the reply
    /// plays).
    pub fn heard(&self, text: &str) -> Step {
        let said = number_in_words(text);
        match (&self.stage, yes_or_no(text)) {
            (Stage::Number, _) if said.is_some() => self.confirm(said.as_deref().unwrap_or_default()),
            (Stage::Confirm(_), _) if said.is_some() => self.confirm(said.as_deref().unwrap_or_default()),
            (Stage::Number, Some(false)) => self.decline(),
            (Stage::Number, Some(true)) => Step::Ask(Stage::Number, self.ask_number()),
            (Stage::Confirm(n), Some(true)) => Step::Book(n.clone()),
            // Not this number: another one, or nothing.
            (Stage::Confirm(_), Some(false)) => Step::Ask(
                Stage::Number,
                if self.en() {
                    "All right. You can key in another number and press the hash key, or just ask me something else."
                        .into()
                } else {
                    "Gut. Sie können eine andere Nummer eintippen und danach die Raute drücken, oder mich einfach weiter fragen."
                        .into()
                },
            ),
            (_, None) => Step::Leave,
        }
    }

    /// A key the caller pressed at `at` (call time): a step when it completes something.
    /// Keys are digits of a number here, `0` included; `*` is left to the call (repeat).
    pub fn key(&mut self, digit: char, at: Duration) -> Option<Step> {
        match (&self.stage, digit) {
            (Stage::Confirm(n), '1') if self.keyed.is_empty() => Some(Step::Book(n.clone())),
            (Stage::Confirm(_), '2') if self.keyed.is_empty() => Some(self.heard("nein")),
            (_, d) if d.is_ascii_digit() => {
                if self.keyed.len() < MAX_DIGITS {
                    self.keyed.push(d);
                }
                self.last_key = at;
                None
            }
            (_, '#') if !self.keyed.is_empty() => Some(self.keys_done()),
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

    fn keys_done(&mut self) -> Step {
        let keyed = std::mem::take(&mut self.keyed);
        match number(&keyed) {
            Some(n) => self.confirm(&n),
            None => self.incomplete(),
        }
    }

    /// The step is taken: the stage it leads to.
    pub fn advance(&mut self, step: &Step) {
        if let Step::Ask(stage, _) = step {
            self.stage = stage.clone();
            self.keyed.clear();
        }
    }
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

/// The number in groups of three, which the spoken form reads digit by digit with a pause
/// between groups; a German number as it is dialled within Germany (0 for +49), as callers
/// know their own.
pub fn grouped(n: &str) -> String {
    let (plus, digits) = match n.strip_prefix("+49") {
        Some(r) => ("", format!("0{r}")),
        None => match n.strip_prefix('+') {
            Some(r) => ("+", r.to_string()),
            None => ("", n.to_string()),
        },
    };
    let groups: Vec<String> = digits.as_bytes().chunks(3).map(|c| String::from_utf8_lossy(c).into_owned()).collect();
    format!("{plus}{}", groups.join(" "))
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

/// Yes or no in the caller's words (German or English): no wins over yes, since a
/// consent must be clear; `None` when the words are neither (a question, say).
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
        "passt",
        "yes",
        "yeah",
        "yep",
        "sure",
        "correct",
        "right",
        "agree",
        "agreed",
        "fine",
    ];
    const NO: &[&str] =
        &["nein", "nee", "nö", "ne", "nicht", "abbrechen", "falsch", "no", "nope", "not", "don't", "cancel", "wrong"];
    let w = words(text);
    if w.iter().any(|w| NO.contains(&w.as_str())) {
        return Some(false);
    }
    // A short answer that starts with yes; a longer sentence is a question of its own.
    (w.len() <= 6 && w.iter().take(3).any(|w| YES.contains(&w.as_str()))).then_some(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONSENT: &str = "Sind Sie einverstanden?";

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
        assert_eq!(grouped("+493641490"), "036 414 90");
        assert_eq!(grouped("+4312345678"), "+431 234 567 8");
    }

    #[test]
    fn yes_no_and_neither() {
        assert_eq!(yes_or_no("Ja."), Some(true));
        assert_eq!(yes_or_no("Ja, gerne."), Some(true));
        assert_eq!(yes_or_no("Yes, please."), Some(true));
        assert_eq!(yes_or_no("Nein, danke."), Some(false));
        assert_eq!(yes_or_no("Ja, äh, nein, lieber nicht."), Some(false));
        assert_eq!(yes_or_no("Was kostet ein Personalausweis?"), None);
        assert_eq!(yes_or_no("Ja, und was kostet eigentlich ein neuer Personalausweis für mich?"), None);
    }

    #[test]
    fn the_callers_own_number_is_read_back_and_booked_on_yes_or_1() {
        let (mut b, text) = Booking::start("Montag", CONSENT, Some("+493641490"), Lang::De, "Niemand da.");
        assert!(text.contains("036 414 90") && text.contains(CONSENT), "{text}");
        assert_eq!(b.heard("Ja."), Step::Book("+493641490".into()));
        assert_eq!(b.key('1', Duration::ZERO), Some(Step::Book("+493641490".into())));
        // No: nothing is stored, another number may follow.
        let step = b.heard("Nein.");
        assert!(matches!(&step, Step::Ask(Stage::Number, _)), "{step:?}");
        b.advance(&step);
        assert_eq!(b.heard("Nein."), b.decline());
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
        let step = b.key('#', Duration::from_secs(3)).expect("complete");
        let Step::Ask(Stage::Confirm(n), said) = &step else { panic!("{step:?}") };
        assert_eq!(n, "03641490");
        assert!(said.contains("036 414 90") && said.contains(CONSENT), "{said}");
        b.advance(&step);
        assert_eq!(b.heard("Ja, bitte."), Step::Book("03641490".into()));
        // Too short, ended by a pause: asked again.
        let (mut b, _) = Booking::start("Montag", CONSENT, None, Lang::En, "Nobody.");
        b.key('4', Duration::from_secs(1));
        b.key('9', Duration::from_secs(2));
        assert_eq!(b.pause(Duration::from_secs(6)), None);
        assert!(matches!(b.pause(Duration::from_secs(7)), Some(Step::Ask(Stage::Number, _))));
    }

    #[test]
    fn a_question_leaves_the_offer() {
        let (b, _) = Booking::start("Montag", CONSENT, Some("03641490"), Lang::De, "Niemand da.");
        assert_eq!(b.heard("Was kostet ein Personalausweis?"), Step::Leave);
        let (b, _) = Booking::start("Montag", CONSENT, None, Lang::De, "Niemand da.");
        assert_eq!(b.heard("Wo kann ich mein Auto anmelden?"), Step::Leave);
    }
}

//! Every sentence the engine itself says, in German and English: greetings, asking back,
//! offers, declines, the handoff's states and the suggestions. (The record composer's words for
//! an answer are in `compose`.)

#[allow(unused_imports)]
use super::*;

/// What a handoff comes to where no staff queue takes it: an offer to call back or call in.
pub fn no_staff() -> HandoffInfo {
    HandoffInfo { state: HandoffState::CallbackOffered, ..Default::default() }
}

/// What a citizen is told about a handoff's state, in short sentences that also work spoken.
/// The staff queue sends the same words with every update.
pub fn handoff_text(info: &HandoffInfo, lang: Lang) -> String {
    let en = lang == Lang::En;
    match info.state {
        HandoffState::Queued => {
            let mut s = match (info.position, en) {
                (Some(1), false) => "Sie sind als Nächste oder Nächster an der Reihe.".to_string(),
                (Some(1), true) => "You are next in the queue.".to_string(),
                (Some(p), false) => format!("Sie sind in der Warteschlange auf Platz {p}."),
                (Some(p), true) => format!("You are number {p} in the queue."),
                (None, false) => "Sie sind in der Warteschlange.".to_string(),
                (None, true) => "You are in the queue.".to_string(),
            };
            s.push(' ');
            s.push_str(&match (info.wait_minutes, en) {
                (Some(m), false) if m <= 1 => "Es dauert voraussichtlich etwa eine Minute.".to_string(),
                (Some(m), true) if m <= 1 => "It will probably take about a minute.".to_string(),
                (Some(m), false) => format!("Es dauert voraussichtlich etwa {m} Minuten."),
                (Some(m), true) => format!("It will probably take about {m} minutes."),
                (None, false) => "Wie lange es dauert, kann ich noch nicht sicher sagen.".to_string(),
                (None, true) => "I can't yet say reliably how long it will take.".to_string(),
            });
            s
        }
        HandoffState::Connected => match (&info.staff, en) {
            (Some(n), false) => format!("{n} ist jetzt für Sie da."),
            (Some(n), true) => format!("{n} is with you now."),
            (None, false) => "Eine Mitarbeiterin oder ein Mitarbeiter ist jetzt für Sie da.".to_string(),
            (None, true) => "A member of staff is with you now.".to_string(),
        },
        HandoffState::CallbackOffered => match (&info.callback, en) {
            (Some(c), false) => format!(
                "Im Moment ist niemand erreichbar. Wir melden uns gern bei Ihnen, am {}. Dafür brauche ich Ihre Telefonnummer oder E-Mail-Adresse und Ihr Einverständnis.",
                c.slot
            ),
            (Some(c), true) => format!(
                "Nobody is available right now. We can get back to you on {}. For that I need your phone number or e-mail address and your consent.",
                c.slot
            ),
            (None, false) => "Im Moment kann ich Sie hier nicht direkt weiterleiten.".to_string(),
            (None, true) => "Right now I can't transfer you here directly.".to_string(),
        },
        HandoffState::CallbackScheduled => match (&info.callback, en) {
            (Some(c), false) => format!("Danke. Wir melden uns am {}.", c.slot),
            (Some(c), true) => format!("Thank you. We will get back to you on {}.", c.slot),
            (None, false) => "Danke. Wir melden uns bei Ihnen.".to_string(),
            (None, true) => "Thank you. We will get back to you.".to_string(),
        },
        HandoffState::Closed => t(
            lang,
            "Das Gespräch mit den Mitarbeitenden ist beendet. Ich bin wieder für Sie da.",
            "The conversation with staff has ended. I'm here for you again.",
        ),
    }
}

pub(super) fn t(lang: Lang, de: &str, en: &str) -> String {
    match lang {
        Lang::De => de.to_string(),
        Lang::En => en.to_string(),
    }
}

pub(super) const HUMAN_DE: &str = "Mit einem Menschen sprechen";

pub(super) const HUMAN_EN: &str = "Talk to a person";

pub(super) fn join_or(items: &[String], or: &str) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} {or} {last}", rest.join(", ")),
    }
}

impl Engine {
    pub(super) fn human_suggestion(lang: Lang) -> String {
        t(lang, HUMAN_DE, HUMAN_EN)
    }

    pub(super) fn greeting(&self, lang: Lang) -> Reply {
        let mut r = Self::reply(
            ReplyKind::Greeting,
            t(
                lang,
                "Guten Tag! Ich bin Lotse, der digitale Assistent der Stadt. Fragen Sie mich zu Dienstleistungen der Stadtverwaltung, zum Beispiel zum Personalausweis oder zur Anmeldung einer Wohnung.",
                "Hello! I am Lotse, the city's digital assistant. Ask me about the city's services, for example identity cards or registering your address.",
            ),
            lang,
        );
        r.suggestions = match lang {
            Lang::De => {
                vec!["Personalausweis beantragen".into(), "Wohnung anmelden".into(), "Sperrmüll anmelden".into()]
            }
            Lang::En => vec!["Apply for an ID card".into(), "Register my address".into(), "Talk to a person".into()],
        };
        r
    }

    /// The first words a caller hears.
    pub(super) fn phone_greeting(&self, lang: Lang) -> Reply {
        Self::reply(
            ReplyKind::Greeting,
            t(
                lang,
                "Guten Tag! Hier ist Lotse, der automatische Assistent der Stadtverwaltung. Das Gespräch wird nicht aufgezeichnet. Stellen Sie einfach Ihre Frage. Mit der Taste 0 erreichen Sie einen Menschen.",
                "Hello! This is Lotse, the city administration's automated assistant. This call is not recorded. Just ask your question. Press 0 to reach a person.",
            ),
            lang,
        )
    }

    /// "Geht es um …?" for a service the engine is not sure it heard.
    pub(super) fn confirm(&self, conv: &Conversation, index: usize) -> Reply {
        let lang = conv.lang;
        let s = &self.kb.services[index];
        let text = match lang {
            Lang::De => format!(
                "Ich bin nicht sicher, ob ich Sie richtig verstanden habe. Geht es um: {}? Bitte sagen Sie ja oder nein.",
                s.name
            ),
            Lang::En => format!(
                "I'm not sure I understood you correctly. Is it about: {}? Please say yes or no.",
                s.name_en.as_deref().unwrap_or(&s.name)
            ),
        };
        let mut r = Self::reply(ReplyKind::Clarify, text, lang);
        r.sources = vec![self.service_source(index)];
        r.suggestions = vec![t(lang, "Ja", "Yes"), t(lang, "Nein", "No"), Self::human_suggestion(lang)];
        r
    }

    /// After a no to "Geht es um …?".
    pub(super) fn rephrase(&self, conv: &Conversation) -> Reply {
        let lang = conv.lang;
        let text = if conv.channel == Channel::Phone {
            t(
                lang,
                "Entschuldigung. Sagen Sie mir bitte mit anderen Worten, worum es geht. Oder sagen Sie: einen Menschen sprechen.",
                "Sorry. Please tell me in other words what it is about. Or say: talk to a person.",
            )
        } else {
            t(
                lang,
                "Entschuldigung. Schreiben Sie mir bitte mit anderen Worten, worum es geht. Oder wählen Sie: Mit einem Menschen sprechen.",
                "Sorry. Please write in other words what it is about. Or choose: Talk to a person.",
            )
        };
        let mut r = Self::reply(ReplyKind::Clarify, text, lang);
        r.suggestions = vec![Self::human_suggestion(lang)];
        r
    }

    pub(super) fn clarify(&self, conv: &Conversation, options: &[usize]) -> Reply {
        let lang = conv.lang;
        let names: Vec<String> = options.iter().map(|&i| self.kb.services[i].name.clone()).collect();
        let text = match lang {
            Lang::De => format!("Meinen Sie {}?", join_or(&names, "oder")),
            Lang::En => format!("Do you mean {}?", join_or(&names, "or")),
        };
        let mut r = Self::reply(ReplyKind::Clarify, text, lang);
        r.sources = options.iter().map(|&i| self.service_source(i)).collect();
        r.suggestions = names;
        r
    }

    /// "Da bin ich mir nicht sicher. Meinen Sie: …?" with the near misses to pick, and the
    /// general contact for a citizen who meant none of them. It counts as a failure to answer
    /// (three in a row hand over to a person), as a decline does.
    pub(super) fn suggest(&self, conv: &Conversation, options: &[usize]) -> Reply {
        let lang = conv.lang;
        let names: Vec<String> = options
            .iter()
            .map(|&i| {
                let s = &self.kb.services[i];
                match lang {
                    Lang::De => s.name.clone(),
                    Lang::En => s.name_en.clone().unwrap_or_else(|| s.name.clone()),
                }
            })
            .collect();
        let mut text = match lang {
            Lang::De => format!("Da bin ich mir nicht sicher. Meinen Sie: {}?", join_or(&names, "oder")),
            Lang::En => format!("I'm not sure about that. Do you mean: {}?", join_or(&names, "or")),
        };
        let mut sources: Vec<Source> = options.iter().map(|&i| self.service_source(i)).collect();
        if let Some((o, phone)) = self.general_contact() {
            text.push_str(&match lang {
                Lang::De => format!(" Sonst gibt {} unter Telefon {phone} allgemeine Auskunft.", o.name),
                Lang::En => format!(" Otherwise, call {} on {phone} for general enquiries.", o.name),
            });
            sources.push(office_source(o));
        }
        let mut r = Self::reply(ReplyKind::Clarify, text, lang);
        r.sources = sources;
        r.suggestions = options.iter().map(|&i| self.kb.services[i].name.clone()).collect();
        r.suggestions.push(Self::human_suggestion(lang));
        r
    }

    pub(super) fn out_of_scope(&self, conv: &Conversation, result: Option<&SearchResult>, off_topic: bool) -> Reply {
        let lang = conv.lang;
        let mut text = if off_topic {
            t(
                lang,
                "Dazu kann ich leider nichts sagen. Ich beantworte Fragen zu den Dienstleistungen der Stadtverwaltung.",
                "I'm sorry, I can't help with that. I answer questions about the city administration's services.",
            )
        } else {
            t(
                lang,
                "Dazu habe ich leider keine gesicherte Auskunft. Ich möchte Ihnen nichts Falsches sagen.",
                "I'm sorry, I have no verified information on that, and I don't want to tell you anything wrong.",
            )
        };
        let mut sources = Vec::new();
        if !off_topic && let Some((o, phone)) = self.general_contact() {
            text.push_str(&match lang {
                Lang::De => format!(" Allgemeine Auskunft gibt {} unter Telefon {phone}.", o.name),
                Lang::En => format!(" For general enquiries, call {} on {phone}.", o.name),
            });
            sources.push(office_source(o));
        }
        let mut r = Self::reply(ReplyKind::OutOfScope, text, lang);
        r.sources = sources;
        if let Some(result) = result {
            // Near misses as suggestions, so that a citizen who meant one can pick it.
            r.suggestions.extend(
                result
                    .hits
                    .iter()
                    .filter(|h| h.coverage >= 0.3)
                    .take(2)
                    .map(|h| self.kb.services[h.index].name.clone()),
            );
        }
        r.suggestions.push(Self::human_suggestion(lang));
        r
    }

    pub(super) fn handoff_text_reply(&self, lang: Lang, reason: HandoffReason, info: &HandoffInfo) -> Reply {
        let mut text = match (reason, lang) {
            (HandoffReason::Asked, Lang::De) => "Gern bringe ich Sie mit einem Menschen zusammen.".to_string(),
            (HandoffReason::Asked, Lang::En) => "Of course, I will put you in touch with a person.".to_string(),
            (HandoffReason::RepeatedFailure, Lang::De) => "Ich konnte Ihre Fragen leider nicht beantworten. Eine Mitarbeiterin oder ein Mitarbeiter hilft Ihnen besser weiter.".to_string(),
            (HandoffReason::RepeatedFailure, Lang::En) => "I'm sorry I couldn't answer your questions. A member of staff can help you better.".to_string(),
        };
        let mut sources = Vec::new();
        text.push(' ');
        text.push_str(&handoff_text(info, lang));
        if info.state == HandoffState::CallbackOffered && info.callback.is_none() {
            // No staff queue: the city's general contact.
            if let Some((o, phone)) = self.general_contact() {
                text.push_str(&match lang {
                    Lang::De => format!(" Sie erreichen {} unter Telefon {phone}.", o.name),
                    Lang::En => format!(" You can reach {} on {phone}.", o.name),
                });
                sources.push(office_source(o));
            }
        }
        let mut r = Self::reply(ReplyKind::Handoff, text, lang);
        r.handoff = Some(info.clone());
        r.sources = sources;
        r
    }

    pub(super) fn follow_up_suggestions(&self, lang: Lang, asked: &[Aspect]) -> Vec<String> {
        let mut s = Vec::new();
        let options: [(Aspect, &str, &str); 3] = [
            (Aspect::Fees, "Was kostet das?", "How much does it cost?"),
            (Aspect::Documents, "Welche Unterlagen brauche ich?", "Which documents do I need?"),
            (Aspect::Where, "Wo muss ich hin?", "Where do I go?"),
        ];
        for (a, de, en) in options {
            if !asked.is_empty() && !asked.contains(&a) {
                s.push(t(lang, de, en));
            }
        }
        s.push(Self::human_suggestion(lang));
        s
    }
}

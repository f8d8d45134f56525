//! Deciding a turn: intent, the search of the message and its clauses, follow-ups, offices,
//! and answer, offer, clarify or decline.

#[allow(unused_imports)]
use super::*;

/// The least confidence at which an unsure web answer's best services are offered to pick
/// rather than declined (on the training data about two in three such tops were right).
pub(super) const SUGGEST_FLOOR: f32 = 0.3;

/// The least share of the question an offered service must cover.
pub(super) const SUGGEST_COVERAGE: f32 = 0.3;

/// A story ("Mir wurde am Wochenende die Tasche mit dem Führerschein geklaut. Darf ich …?")
/// covers little of itself and is rarely sure: its words of circumstance weigh on the
/// confidence as much as an unknown topic does. From this many content words (not stop words)
/// its best service is offered from [`STORY_FLOOR`] and [`STORY_COVERAGE`] on: on the training
/// data about one such top in three between 0.1 and 0.2 was right and one in two between 0.2
/// and 0.3 (`lotse train ranker`'s calibration), an offer states nothing of the record and comes
/// with the general contact, and a decline helps no one who meant it. A short question that
/// unsure names something the city does not do ("Wie beantrage ich einen Pflegegrad?") is
/// declined.
pub(super) const STORY_WORDS: usize = 4;

pub(super) const STORY_FLOOR: f32 = 0.15;

pub(super) const STORY_COVERAGE: f32 = 0.1;

impl Engine {
    pub(super) fn decide(&self, conv: &mut Conversation, text: &str, turn: &mut Turn<'_>) -> Reply {
        let (at, retrieval) = (turn.at, turn.retrieval);
        // The answer to "Geht es um …?" (phone) or to the one service offered ("Meinen Sie: …?",
        // web): a yes answers that service (with the facts the first
        // question asked for, or those this message asks for) unless what follows the yes
        // clearly asks about another one; a no asks for other words, unless a new question
        // follows it ("Nein, den Reisepass").
        // On the web the offer is no yes/no question: only a clear yes or no counts, and thanks
        // ("Ok, danke") are thanks.
        let answerable = |c: &Confirm, conv: &Conversation| {
            c.is_answered_by_last_message(conv)
                && (conv.channel == Channel::Phone
                    || !matches!(understand::intent(text), Intent::Thanks | Intent::Bye)
                        && !understand::only_acknowledges(text))
        };
        if let Some(pending) = conv.confirm.take().filter(|c| answerable(c, conv)) {
            match understand::yes_no(text) {
                Some(true) => {
                    let rest = understand::after_yes_no(text);
                    if rest.chars().any(char::is_alphanumeric)
                        && let Some(other) = self.search(&rest, retrieval).filter(|r| self.confident(r))
                        && other.top().is_some_and(|h| h.index != pending.service)
                    {
                        return self.question(conv, &rest, Some(other), turn);
                    }
                    let mut aspects = understand::aspects(&rest);
                    if aspects.is_empty() {
                        aspects = understand::aspects(&pending.question);
                    }
                    conv.failures = 0;
                    conv.topic = Some(pending.service);
                    // The model reads the service the yes confirmed and the question as heard.
                    let name = &self.kb.services[pending.service].name;
                    turn.question = format!("{name}. {} {rest}", pending.question).trim().to_string();
                    return self.answer(conv, pending.service, &aspects, &[], turn);
                }
                Some(false) => {
                    let rest = understand::after_yes_no(text);
                    if !rest.chars().any(char::is_alphanumeric) {
                        return self.rephrase(conv);
                    }
                    return self.decide(conv, &rest, turn);
                }
                // On the web a question about the one service offered, asked right after the
                // offer ("Meinen Sie: Personalausweis beantragen?" – "Und wie lange ist der
                // gültig?"), takes it as meant, as a person at a counter would, unless it names
                // another service. On the phone the question back asks for yes or no.
                None if conv.channel == Channel::Web => {
                    let aspects = understand::aspects(text);
                    let searched = self.search(text, retrieval);
                    let about_it = |r: &SearchResult| r.top().is_some_and(|h| h.index == pending.service);
                    if understand::is_follow_up(text)
                        && !aspects.is_empty()
                        && searched.as_ref().filter(|r| self.confident(r)).is_none_or(about_it)
                        && (searched.as_ref().is_some_and(about_it) || self.names_nothing_but(text, pending.service))
                    {
                        conv.failures = 0;
                        conv.topic = Some(pending.service);
                        let name = &self.kb.services[pending.service].name;
                        turn.question = format!("{name}. {text}");
                        return self.answer(conv, pending.service, &aspects, &[], turn);
                    }
                }
                None => {}
            }
        }
        if !text.chars().any(char::is_alphanumeric) {
            let lang = conv.lang;
            let mut r = Self::reply(
                ReplyKind::OutOfScope,
                t(
                    lang,
                    "Bitte schreiben Sie Ihre Frage in Worten, zum Beispiel: Was kostet ein Reisepass?",
                    "Please write your question in words, for example: How much is a passport?",
                ),
                lang,
            );
            r.suggestions = vec![Self::human_suggestion(lang)];
            return r;
        }
        // The language of the message wins when it is clear; otherwise the conversation's.
        let detected = understand::language(text);
        if !conv.lang_chosen
            && (detected == Lang::En || lotse_search::analysis::fold(text).split_whitespace().count() > 3)
        {
            conv.lang = detected;
        }
        let intent = understand::intent(text);
        let lang = conv.lang;
        match intent {
            Intent::Greeting => return self.greeting(lang),
            Intent::Thanks => {
                return Self::reply(
                    ReplyKind::Smalltalk,
                    t(
                        lang,
                        "Gern geschehen! Kann ich noch etwas für Sie tun?",
                        "You're welcome! Is there anything else I can do for you?",
                    ),
                    lang,
                );
            }
            Intent::Bye => {
                return Self::reply(
                    ReplyKind::Smalltalk,
                    t(lang, "Auf Wiedersehen und alles Gute!", "Goodbye and all the best!"),
                    lang,
                );
            }
            Intent::HowAreYou => {
                return Self::reply(
                    ReplyKind::Smalltalk,
                    t(
                        lang,
                        "Ich bin ein digitaler Assistent der Stadtverwaltung und helfe Ihnen gern bei Fragen zu städtischen Dienstleistungen.",
                        "I am the city administration's digital assistant and happy to help with questions about city services.",
                    ),
                    lang,
                );
            }
            Intent::Abuse => {
                let mut r = Self::reply(
                    ReplyKind::Smalltalk,
                    t(
                        lang,
                        "Ich merke, dass Sie verärgert sind. Ich helfe Ihnen gern weiter. Worum geht es?",
                        "I can tell you are upset. I am happy to help. What is it about?",
                    ),
                    lang,
                );
                r.suggestions = vec![Self::human_suggestion(lang)];
                return r;
            }
            Intent::Human => return self.handoff(conv, HandoffReason::Asked, at),
            Intent::SwitchLang(l) => {
                conv.lang = l;
                conv.lang_chosen = true;
                // A language request may carry a question ("In English please: passport fees?").
                if let Some(result) = self.probe(text, retrieval) {
                    return self.question(conv, text, Some(result), turn);
                }
                if let Some(topic) = conv.topic {
                    return self.answer(conv, topic, &[], &[], turn);
                }
                return Self::reply(
                    ReplyKind::Smalltalk,
                    t(
                        l,
                        "Gern, ich antworte auf Deutsch. Was möchten Sie wissen?",
                        "Sure, I will answer in English. What would you like to know?",
                    ),
                    l,
                );
            }
            Intent::Plain => {
                conv.plain = true;
                if let Some(result) = self.probe(text, retrieval) {
                    return self.question(conv, text, Some(result), turn);
                }
                if let Some(topic) = conv.topic {
                    return self.answer(conv, topic, &[], &[], turn);
                }
                return Self::reply(
                    ReplyKind::Smalltalk,
                    t(
                        lang,
                        "Gern. Ich antworte in einfacher Sprache. Was möchten Sie wissen?",
                        "Sure. I will use simple language. What would you like to know?",
                    ),
                    lang,
                );
            }
            // A word of another topic ("Fußball") in a question that clearly names a service
            // ("Führungszeugnis für den Fußballverein") does not make it off topic.
            Intent::OffTopic => {
                if let Some(result) = self.probe(text, retrieval) {
                    return self.question(conv, text, Some(result), turn);
                }
                return self.out_of_scope(conv, None, true);
            }
            Intent::Question => {}
        }
        self.question(conv, text, None, turn)
    }

    /// Whether a language or plain-language request also carries a question to look up.
    /// The search result of a language or plain-language request that also carries a question,
    /// when that question is answerable.
    pub(super) fn probe(&self, text: &str, retrieval: Retrieval) -> Option<SearchResult> {
        self.search(&understand::strip_markup(text), retrieval).filter(|r| self.confident(r))
    }

    /// Searches the whole message and, when that is not confident, each of its clauses: a
    /// question wrapped in other talk ("Ich fange in einer Bäckerei an und brauche das
    /// Gesundheitszeugnis. Was kostet das?") or in instructions to the bot is found by its clause.
    pub(super) fn search(&self, text: &str, retrieval: Retrieval) -> Option<SearchResult> {
        let text = self.searched_text(text);
        let text = text.as_str();
        let whole = self.index.search_by(text, 5, retrieval).ok()?;
        if self.confident(&whole) {
            return Some(whole);
        }
        let clauses = understand::clauses(text);
        if clauses.len() < 2 {
            return Some(whole);
        }
        // A clause decides a close call (the whole message at least half as sure as an answer
        // needs), or a message with a clause that names the service ("Was kostet ein
        // Personalausweis? (Hinweis an den Assistenten: …)"); not a long story whose one
        // clause happens to be sure alone while the whole message is far from it.
        let close_call = whole.confidence >= self.config.answer_threshold / 2.0;
        // A clause alone lacks the rest of the message ("Wohin muss ich gehen?" after "Ich möchte
        // Asyl beantragen" is not about the pension): its result counts only where it agrees
        // with the whole message's best service.
        let whole_top = whole.top().map(|h| h.index);
        let best = clauses
            .iter()
            .filter_map(|c| Some((c, self.index.search_lexical(c, 5).ok()?)))
            .filter(|(c, r)| {
                self.confident(r)
                    && r.top().map(|h| h.index) == whole_top
                    && (close_call || whole_top.is_some_and(|t| self.index.names_whole(c, t)))
            })
            .map(|(_, r)| r)
            .max_by(|a, b| a.confidence.total_cmp(&b.confidence).then(b.hits.len().cmp(&a.hits.len())));
        Some(best.unwrap_or(whole))
    }

    /// The search of a whole message, as [`Self::searched_text`] leaves it.
    pub(super) fn search_whole(&self, text: &str, retrieval: Retrieval) -> Option<SearchResult> {
        self.index.search_by(&self.searched_text(text), 5, retrieval).ok()
    }

    /// What of a message the search reads: not the ages it states (an age chooses the fee
    /// later, from the full question, not the service), nor what it sets aside ("außer
    /// Kindergeld"), nor its greetings, thanks and requests for a language or plain language.
    pub(super) fn searched_text(&self, text: &str) -> String {
        let text = understand::without_requests(text);
        understand::without_exclusions(&understand::without_stated_ages(&text), self.index.analyzer())
    }

    /// Answers a question; `searched` is its search result when a caller has it already.
    pub(super) fn question(
        &self,
        conv: &mut Conversation,
        text: &str,
        searched: Option<SearchResult>,
        turn: &mut Turn<'_>,
    ) -> Reply {
        // What the message sets aside ("außer Kindergeld") is not what it asks about: not for
        // the search, and not for a follow-up of the topic it names.
        let stripped = understand::without_exclusions(&understand::strip_markup(text), self.index.analyzer());
        let text = stripped.as_str();
        let Some(mut result) = searched.or_else(|| self.search(text, turn.retrieval)) else {
            // A search failure is internal; say so politely and offer a person.
            return self.out_of_scope(conv, None, false);
        };
        conv.confidence = Some(result.confidence);
        let mut aspects = understand::aspects(text);
        // A question that is a follow-up by its question word alone, and names a thing the
        // topic's record does not know ("Wo melde ich meinen Dackel an?" after a lost ID card,
        // "Wann öffnet das Freibad?"), or no record knows where there is no topic, asks about
        // that thing, not about the topic.
        let follow_up = understand::is_follow_up(text)
            && (understand::refers_back(text) || !self.names_other_thing(conv.topic, text));
        // A follow-up on the office just answered ("Und montags?", "Und wo ist das?") is about
        // that office, unless it names another office or a service.
        if let Some(office) = conv.office
            && (follow_up || crate::offices::day_asked(text).is_some())
            && aspects.iter().all(|a| matches!(a, Aspect::Where | Aspect::Hours | Aspect::Appointment))
            && (!aspects.is_empty() || crate::offices::day_asked(text).is_some())
            && self.offices.named(text, self.index.analyzer()).is_none()
            && !self.confident(&result)
        {
            // "Und am Freitag?" after "Wann hat … geöffnet?" asks for the hours again.
            let asked = if aspects.is_empty() { conv.asked.clone() } else { aspects };
            return self.office_reply(conv, office, &asked, text, turn);
        }
        // A follow-up that changes only who or what it is for asks what the last question
        // asked ("Was kostet ein Reisepass?" – "Und für mein Kind? Es ist 8." or "Und der
        // Personalausweis?").
        if aspects.is_empty() && follow_up && !conv.asked.is_empty() {
            let words = lotse_search::analysis::words(&lotse_search::fold(text)).count();
            // Needing it soon is a condition of a fee only after a question about fees; after
            // one about documents it asks for the quick way itself (below), however short.
            let quick_way = understand::is_urgent(text) && !conv.asked.contains(&Aspect::Fees);
            let condition = conv
                .topic
                .is_some_and(|t| !crate::passages::fitting_fees(&self.index, &self.kb.services[t], text).is_empty());
            if !quick_way && (words <= 4 || condition) {
                aspects = conv.asked.clone();
            }
        }
        let clarification = self.clarification(&result, text);
        // On the phone, an unsure hearing that names another service is asked back below, not
        // taken as a follow-up of the topic, unless the topic's record holds its words ("Und
        // für Kinder?").
        if let Some(topic) = conv.topic
            && follow_up
            && !self.strays(topic, text, &result)
            && (self.ask_back(conv, &result, text).is_none_or(|i| i == topic) || self.record_mentions(topic, text))
            && (clarification.is_some() || !self.clearly_other(&result, topic, text))
        {
            // "Und wie fange ich an?" asks for the whole answer (with the steps), not for lines
            // that mention its words.
            let mut focus =
                if aspects.is_empty() && !understand::asks_how(text) { self.focus_words(text) } else { Vec::new() };
            // Needing it soon ("Und wenn ich ihn sofort brauche?") asks for the record's quick
            // way, in the record's words.
            if aspects.is_empty() && understand::is_urgent(text) {
                focus.extend(crate::passages::QUICK_WAY.iter().map(|q| q.to_string()));
            }
            conv.failures = 0;
            return self.answer(conv, topic, &aspects, &focus, turn);
        }
        if let Some(reply) = self.office_question(conv, text, &aspects, &result, turn) {
            return reply;
        }
        // A message that is unsure alone is read in the conversation's context: with the
        // topic's (or the office's) name before it ("Ich melde ein Nebengewerbe an." – "… was kostet dann die
        // Abmeldung?"). The context may decide between the services the message's own words
        // ranked best, never bring another one, and never the topic itself (that is a follow-up).
        let context = match (conv.topic, conv.office) {
            (Some(topic), _) => Some((self.kb.services[topic].name.as_str(), Some(topic))),
            (None, Some(office)) => Some((self.kb.offices[office].name.as_str(), None)),
            (None, None) => None,
        };
        // (A clause may have made the result sure: "was kostet die Abmeldung" alone is the
        // car's; the whole message is what the context completes.)
        if let Some((name, topic)) = context
            && let Some(alone) = self.search_whole(text, turn.retrieval).filter(|r| !self.confident(r))
            && let Some(better) = self
                .search_whole(&format!("{name}. {text}"), turn.retrieval)
                .filter(|r| self.confident(r))
                .filter(|r| {
                    r.top().is_some_and(|h| {
                        Some(h.index) != topic
                            && alone.hits.iter().take(3).any(|o| o.index == h.index && o.coverage > 0.0)
                    })
                })
        {
            result = better;
        }
        // Several services that the question covers equally well: ask which one, confident or
        // not ("Ich will was abmelden").
        if !self.confident(&result)
            && let Some(options) = clarification.as_ref()
        {
            conv.failures = 0;
            return self.clarify(conv, options);
        }
        if !self.confident(&result) {
            conv.failures += 1;
            if conv.failures >= self.config.max_failures {
                conv.failures = 0;
                return self.handoff(conv, HandoffReason::RepeatedFailure, turn.at);
            }
            // On the phone a misheard word is the likely cause: a service the question names
            // is asked about (the spoken form of the web's suggestions), never answered unasked.
            if let Some(index) = self.ask_back(conv, &result, text) {
                let asked_at = conv.events.len();
                conv.confirm = Some(Confirm { service: index, question: text.to_string(), asked_at });
                // The caller has moved on: "Was kostet das?" must not answer the old topic.
                conv.topic = None;
                return self.confirm(conv, index);
            }
            // On the web, a near miss is offered rather than declined: the citizen who meant
            // it picks it, one who did not sees the general contact as well.
            if let Some(options) = self.near_misses(conv, text, &result) {
                // One service offered: a "ja" takes it, as on the phone ("Meinen Sie: …?" –
                // "Ja").
                if let [index] = options[..] {
                    let asked_at = conv.events.len();
                    conv.confirm = Some(Confirm { service: index, question: text.to_string(), asked_at });
                }
                return self.suggest(conv, &options);
            }
            return self.out_of_scope(conv, Some(&result), false);
        }
        conv.failures = 0;
        if let Some(options) = clarification {
            return self.clarify(conv, &options);
        }
        let top = result.hits[0].index;
        // A citizen who told a situation ("Ich hab total viele Schulden … Wo kann ich mich
        // beraten lassen?") learns what the service is before the aspect they asked for.
        turn.introduce = conv.topic != Some(top) && self.is_story(text);
        conv.topic = Some(top);
        self.answer(conv, top, &aspects, &[], turn)
    }

    /// A question about an office itself ("Wann hat das Bürgeramt offen?", "Wo ist das
    /// Standesamt?"): it names an office, asks where, when or for an appointment (or nothing
    /// else), and without the office's name the rest of it names no service ("Wo beantrage ich
    /// beim Bürgeramt einen Reisepass?" is about the passport).
    pub(super) fn office_question(
        &self,
        conv: &mut Conversation,
        text: &str,
        aspects: &[Aspect],
        whole: &SearchResult,
        turn: &Turn<'_>,
    ) -> Option<Reply> {
        let named = self.offices.named(text, self.index.analyzer())?;
        let day = crate::offices::day_asked(text);
        let office_aspect =
            aspects.iter().any(|a| matches!(a, Aspect::Where | Aspect::Hours | Aspect::Appointment)) || day.is_some();
        let folded = lotse_search::fold(text);
        let rest: Vec<&str> =
            lotse_search::analysis::words(&folded).filter(|w| !named.words.iter().any(|n| n == w)).collect();
        let rest = rest.join(" ");
        let other = self.search(&rest, turn.retrieval).filter(|r| self.confident(r));
        if other.is_some() || !(office_aspect || aspects.is_empty()) {
            return None;
        }
        if !office_aspect {
            // Only the office's name and nothing to look up: its name must be most of the
            // question, and the question as a whole must not name a service ("Ich will ein
            // Gewerbe anmelden" is about the service, not Team Gewerbe).
            if self.confident(whole) {
                return None;
            }
            let analyzer = self.index.analyzer();
            let content =
                lotse_search::analysis::words(&rest).filter(|w| w.len() > 2 && !analyzer.is_stop_word(w)).count();
            if content > 1 {
                return None;
            }
        }
        Some(self.office_reply(conv, named.office, aspects, text, turn))
    }

    /// The answer about an office itself; the office becomes the conversation's subject.
    pub(super) fn office_reply(
        &self,
        conv: &mut Conversation,
        index: usize,
        aspects: &[Aspect],
        text: &str,
        turn: &Turn<'_>,
    ) -> Reply {
        let office = &self.kb.offices[index];
        let day = crate::offices::day_asked(text);
        let text =
            crate::offices::office_answer(office, aspects, day, turn.now, self.config.state, conv.lang, conv.channel);
        conv.office = Some(index);
        conv.topic = None;
        conv.asked = aspects.to_vec();
        conv.failures = 0;
        let mut r = Self::reply(ReplyKind::Answer, text, conv.lang);
        r.sources.push(office_source(office));
        r
    }

    /// Whether a follow-up-shaped message is really about another service ("Und der
    /// Reisepass?" after the ID card): a confident hit that clearly outscores the topic, unless
    /// the topic's record holds the message's words and the message does not name the hit
    /// ("Und wo gibt es die Formulare?" after the dog tax, whose record has its form).
    pub(super) fn clearly_other(&self, result: &SearchResult, topic: usize, text: &str) -> bool {
        let Some(top) = result.top() else { return false };
        if !self.confident(result) || top.index == topic || top.coverage < 0.9 {
            return false;
        }
        if self.record_mentions(topic, text) && !self.index.names_whole(text, top.index) {
            return false;
        }
        match result.hits.iter().find(|h| h.index == topic) {
            Some(t) => top.score >= 1.5 * t.score,
            None => true,
        }
    }

    /// Content words of a follow-up without aspect words ("Und für Kinder?" → ["kinder"]).
    pub(super) fn focus_words(&self, text: &str) -> Vec<String> {
        let analyzer = self.index.analyzer();
        lotse_search::analysis::words(&lotse_search::fold(text))
            .filter(|w| w.len() > 2 && !analyzer.is_stop_word(w) && !analyzer.is_aspect_word(w))
            .filter(|w| !matches!(*w, "das" | "dafuer" | "dazu" | "dort" | "und" | "auch" | "what" | "about"))
            .map(|w| {
                // Compare on a stem-like prefix so that "Kinder" finds "Kind".
                let stem = analyzer.stem(w);
                if stem.len() >= 4 { stem } else { w.to_string() }
            })
            .collect()
    }

    /// Two or three services that fit about equally well, when the question does not decide.
    pub(super) fn clarification(&self, result: &SearchResult, text: &str) -> Option<Vec<usize>> {
        let first = result.hits.first()?;
        // A question whose only content is a generic verb ("Ich will was abmelden", "Ich habe
        // etwas verloren") that several services answer equally: ask which one. A noun (in
        // German capitalised: "Personalausweis") names the service and is answered directly.
        let analyzer = self.index.analyzer();
        let content: Vec<&str> = text
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .filter(|w| {
                let f = lotse_search::fold(w);
                !analyzer.is_stop_word(&f) && !analyzer.is_aspect_word(&f)
            })
            .collect();
        // Only German marks nouns by capitals.
        let verbs_only = understand::language(text) == Lang::De
            && !content.is_empty()
            && content.len() <= 2
            && content.iter().all(|w| w.starts_with(char::is_lowercase));
        let full: Vec<&lotse_search::Hit> = result.hits.iter().take(4).filter(|h| h.coverage >= 0.99).collect();
        let runner_up = full.iter().skip(1).map(|h| h.score).fold(0.0f32, f32::max);
        if verbs_only && full.len() >= 3 && full[0].score < 1.7 * runner_up {
            return Some(full.iter().take(3).map(|h| h.index).collect());
        }
        let close: Vec<usize> = result
            .hits
            .iter()
            .skip(1)
            .take(2)
            .filter(|h| h.coverage >= first.coverage - 0.05 && h.score >= first.score * 0.9 && h.coverage >= 0.99)
            .map(|h| h.index)
            .collect();
        if close.is_empty() || first.coverage < 0.99 {
            return None;
        }
        // The question names each of them, but the first by a longer name ("Was kostet ein
        // vorläufiger Reisepass?" names "Vorläufiger Reisepass" with two words, "Reisepass"
        // with one): that is the one meant. ("Führerschein" alone names one service whole and
        // is still ambiguous.)
        // A longer own name counts before another's synonym of the same length.
        let asked: Vec<String> = self.index.question_terms(text).into_iter().map(|(t, _)| t).collect();
        let analyzer = self.index.analyzer();
        let named = |i: usize| {
            let own = lotse_search::fold(self.kb.services[i].name.split('(').next().unwrap_or_default());
            let own: Vec<String> = lotse_search::analysis::words(&own)
                .filter(|w| !analyzer.is_stop_word(w))
                .map(|w| analyzer.stem(w))
                .collect();
            let own_whole = if own.iter().all(|t| asked.contains(t)) { own.len() } else { 0 };
            (self.index.whole_name_terms(text, i), own_whole)
        };
        let first_named = named(first.index);
        if close.iter().all(|&i| named(i).0 > 0 && named(i) < first_named) {
            return None;
        }
        // The question says the first one's own name whole ("Auto abmelden": *Fahrzeug
        // abmelden*) and names none of the others: they only mention its words.
        if first_named.1 > 0 && close.iter().all(|&i| named(i) == (0, 0)) {
            return None;
        }
        let mut options = vec![first.index];
        options.extend(close);
        Some(options)
    }

    /// Whether a message names nothing beside service `index`: none of its content words is a
    /// noun (capitalised inside the message) or a word of another service's name that is not
    /// also in this one's ("Und wie lange ist der gültig?" names nothing; "Und wo beantrage ich
    /// Bürgergeld?" and "und was kostet ein angelschein" name something).
    pub(super) fn names_nothing_but(&self, text: &str, index: usize) -> bool {
        let analyzer = self.index.analyzer();
        for (word, noun) in written_words(text, false) {
            let folded = lotse_search::fold(&word);
            if folded.len() <= 2 || analyzer.is_stop_word(&folded) || analyzer.is_aspect_word(&folded) {
                continue;
            }
            let stem = analyzer.stem(&folded);
            if !self.index.name_has_term(index, &stem) && (noun || self.index.names_term(&stem)) {
                return false;
            }
        }
        true
    }

    /// Whether the service's record holds one of the question's content words (by stem).
    pub(super) fn record_mentions(&self, index: usize, text: &str) -> bool {
        let record = self.record_text(index);
        self.focus_words(text).iter().any(|f| record.contains(f.as_str()))
    }

    /// Whether a follow-up-shaped message brings a thing of its own that the topic's record
    /// does not know and another service's does ("Und wohin mit alten Farbeimern?" after bulky
    /// waste): a noun (capitalised inside the message) that the knowledge has, absent from the
    /// topic's record, while the best hit is another service covering at least half of it.
    pub(super) fn strays(&self, topic: usize, text: &str, result: &SearchResult) -> bool {
        let Some(top) = result.top() else { return false };
        if top.index == topic || top.coverage < 0.5 {
            return false;
        }
        let analyzer = self.index.analyzer();
        let record = self.record_text(topic);
        for word in self.thing_nouns(text) {
            let folded = lotse_search::fold(&word);
            let stem = analyzer.stem(&folded);
            if self.index.rarity(&stem) < 1.0 {
                let key = if stem.len() >= 4 { stem } else { folded };
                if !record.contains(key.as_str()) {
                    return true;
                }
                continue;
            }
            // A word the knowledge does not know as written ("Farbeimern"): the terms the search
            // reads it as (compound parts, a corrected typo).
            let parts: Vec<String> = self
                .index
                .question_terms(&word)
                .into_iter()
                .map(|(t, _)| t)
                .filter(|t| t.len() >= 4 && self.index.rarity(t) < 1.0)
                .collect();
            if !parts.is_empty() && parts.iter().all(|p| !record.contains(p.as_str())) {
                return true;
            }
        }
        false
    }

    /// Whether the message names a thing (a noun, capitalised inside it, not an aspect such as
    /// "Gebühr") that the record of `topic` does not hold in any reading the search has (its
    /// compound parts, a corrected typo, a colloquial word's target), or, without a topic, that
    /// no record and no office knows.
    fn names_other_thing(&self, topic: Option<usize>, text: &str) -> bool {
        let analyzer = self.index.analyzer();
        if topic.is_none() && self.offices.named(text, analyzer).is_some() {
            return false;
        }
        let record = topic.map(|t| self.record_text(t));
        self.thing_nouns(text).any(|word| {
            let known: Vec<String> = self
                .index
                .question_terms(&word)
                .into_iter()
                .map(|(t, _)| t)
                .filter(|t| self.index.rarity(t) < 1.0)
                .collect();
            match &record {
                Some(record) => known.iter().all(|t| !record.contains(t.as_str())),
                None => known.is_empty(),
            }
        })
    }

    /// The nouns of a message (capitalised inside it) that name a thing: not stop words, not
    /// a facet of a matter, by the search's aspect words or the aspects a question asks
    /// ("Gebühr", "Bearbeitung", "Öffnungszeiten"), and not a kind of office ("das Amt": the
    /// one responsible, as a pronoun would say).
    fn thing_nouns<'t>(&'t self, text: &'t str) -> impl Iterator<Item = String> + 't {
        let analyzer = self.index.analyzer();
        written_words(text, true).filter_map(move |(word, noun)| {
            let folded = lotse_search::fold(&word);
            let thing = noun
                && word.chars().count() >= 3
                && !analyzer.is_stop_word(&folded)
                && !analyzer.is_aspect_word(&folded)
                && understand::aspects(&word).is_empty()
                && !self.offices.is_kind_of_office(&folded);
            thing.then_some(word)
        })
    }

    /// A service's record as one folded text: names, teaser, description, fee conditions,
    /// documents and prerequisites.
    pub(super) fn record_text(&self, index: usize) -> String {
        let s = &self.kb.services[index];
        let mut record = format!("{} {} {} {}", s.name, s.teaser, s.description, s.synonyms.join(" "));
        for f in &s.fees {
            record.push(' ');
            record.push_str(f.condition.as_deref().unwrap_or_default());
        }
        for d in s.documents.iter().chain(&s.prerequisites) {
            record.push(' ');
            record.push_str(d);
        }
        lotse_search::fold(&record)
    }

    /// The services an unsure web result nearly answered: its best one or two, when the
    /// confidence is at least [`SUGGEST_FLOOR`] and they cover enough of the question; for a
    /// story ([`STORY_WORDS`]), its best one from [`STORY_FLOOR`].
    pub(super) fn near_misses(&self, conv: &Conversation, text: &str, result: &SearchResult) -> Option<Vec<usize>> {
        if conv.channel == Channel::Phone {
            return None;
        }
        let top = result.top()?;
        // A question that names the service by a name or synonym ("Was kostet der
        // Personalausweis für Erwachsene?") is offered it however little of it the name covers.
        if result.confidence >= SUGGEST_FLOOR
            && (top.coverage >= SUGGEST_COVERAGE || self.index.names_whole(text, top.index))
        {
            // The runner-up too when it covers the question about as well.
            let mut options = vec![top.index];
            let runner_up = result.hits.get(1).filter(|h| h.coverage >= SUGGEST_COVERAGE.max(0.8 * top.coverage));
            options.extend(runner_up.map(|h| h.index));
            return Some(options);
        }
        (self.is_story(text) && result.confidence >= STORY_FLOOR && top.coverage >= STORY_COVERAGE)
            .then(|| vec![top.index])
    }

    /// Whether a message tells a situation rather than naming a matter: [`STORY_WORDS`]
    /// content words or more.
    fn is_story(&self, text: &str) -> bool {
        let analyzer = self.index.analyzer();
        let folded = lotse_search::fold(text);
        lotse_search::analysis::words(&folded).filter(|w| !analyzer.is_stop_word(w)).count() >= STORY_WORDS
    }

    /// Whether a search result is sure enough to answer from.
    pub(super) fn confident(&self, result: &SearchResult) -> bool {
        result.confidence >= self.config.answer_threshold
    }
}

/// The words of a message as written (letters and digits, and hyphens where `hyphens`), each
/// with whether it is a noun: capitalised inside a sentence, as German writes nouns.
fn written_words(text: &str, hyphens: bool) -> impl Iterator<Item = (String, bool)> + '_ {
    let mut sentence_start = true;
    text.split_whitespace().map(move |raw| {
        let word: String = raw.chars().filter(|c| c.is_alphanumeric() || hyphens && *c == '-').collect();
        let noun = !sentence_start && word.chars().next().is_some_and(char::is_uppercase);
        sentence_start = raw.ends_with(['.', '?', '!', ':']);
        (word, noun)
    })
}

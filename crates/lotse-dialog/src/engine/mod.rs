//! The conversation engine: one turn in, one [`Reply`] out, for every channel.
//!
//! `mod.rs` holds the engine, its settings and the turn's entry points (`start`, `respond`,
//! `request_person`, `handoff_reply`) and writes an answer from a record (`answer`);
//! `conversation` the state a turn reads and appends to; `decide` how a turn is decided (intent,
//! search of the message and its clauses, follow-ups, offices, answer or offer or decline);
//! `phone` which service an unsure hearing names; `generate` the language model's part; and
//! `texts` every sentence the engine says itself, German and English, so that a wording or a
//! third language touches one file.

use std::sync::Arc;

use jiff::civil::DateTime;
use jiff::{Timestamp, tz::TimeZone};
use lotse_core::{Channel, ConversationId, HandoffInfo, HandoffState, Lang, Reply, ReplyKind, Source};
use lotse_knowledge::KnowledgeBase;
use lotse_search::{Retrieval, SearchIndex, SearchResult};

use lotse_llm::{Generator, Params};

use crate::assist::{self, LlmMode, LlmStats, Outcome};
use crate::compose::{Composer, Grounding, RecordComposer, Request};
use crate::understand::{self, Aspect, Intent};
use crate::verify::{fee_without_condition, left_out, ungrounded, unsupported_claim, unsupported_terms};

mod conversation;
mod decide;
mod generate;
mod phone;
#[cfg(test)]
mod tests;
mod texts;

use conversation::Turn;
pub use conversation::{Confirm, Conversation, Event, HandoffReason, Partial, TurnRequest};
use generate::*;
use texts::*;
pub use texts::{handoff_text, no_staff};

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The office named for general enquiries (its phone is offered when the bot cannot help).
    pub general_office: Option<String>,
    /// The city's time zone, for opening hours.
    pub time_zone: String,
    /// The city's state, whose public holidays close its offices.
    pub state: lotse_core::calendar::State,
    /// Questions in a row without an answer before the engine offers a person.
    pub max_failures: u8,
    /// The retrieval confidence at or above which the engine answers (the calibrated default:
    /// [`lotse_search::answer_threshold`]).
    pub answer_threshold: f32,
    /// The city's administration as the language model is told whom it speaks for, read after
    /// "der" ("Stadtverwaltung Jena").
    pub administration: String,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            general_office: Some("stadtverwaltung".into()),
            time_zone: "Europe/Berlin".into(),
            state: lotse_core::calendar::State::default(),
            max_failures: 3,
            answer_threshold: lotse_search::answer_threshold(),
            administration: "Stadtverwaltung Jena".into(),
        }
    }
}

/// The conversation engine. Cheap to share (`Arc`); all methods take `&self`.
pub struct Engine {
    kb: Arc<KnowledgeBase>,
    index: Arc<SearchIndex>,
    composer: Box<dyn Composer>,
    config: EngineConfig,
    tz: TimeZone,
    llm: Option<Llm>,
    /// Folded, stemmed words that stand in the names of several services ("beantragen",
    /// "anmelden"): they name no service.
    generic: std::collections::HashSet<String>,
    /// The names citizens use for each office.
    offices: crate::offices::OfficeFinder,
    /// The model's system prompt, for the configured administration.
    system: String,
}

/// An office as a reply source: its website where it has one, else where its facts come from.
fn office_source(o: &lotse_core::Office) -> Source {
    Source {
        id: o.id.clone(),
        title: o.name.clone(),
        url: o.website.clone().unwrap_or_else(|| o.source.clone()),
        as_of: o.as_of.clone(),
    }
}

impl Engine {
    pub fn new(kb: Arc<KnowledgeBase>, index: Arc<SearchIndex>, config: EngineConfig) -> Engine {
        let tz = TimeZone::get(&config.time_zone).unwrap_or(TimeZone::UTC);
        let mut counts: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
        for s in &kb.services {
            let mut seen = std::collections::HashSet::new();
            let names = format!("{} {}", s.name, s.name_en.as_deref().unwrap_or_default());
            for w in lotse_search::analysis::words(&lotse_search::fold(&names)) {
                let stem = index.analyzer().stem(w);
                if seen.insert(stem.clone()) {
                    *counts.entry(stem).or_default() += 1;
                }
            }
        }
        let generic = counts.into_iter().filter(|(_, n)| *n >= 3).map(|(w, _)| w).collect();
        let offices = crate::offices::OfficeFinder::new(&kb, index.analyzer());
        let system = assist::system(&config.administration);
        Engine { offices, kb, index, composer: Box::new(RecordComposer), config, tz, llm: None, generic, system }
    }

    /// Lets a language model answer where `mode` allows (see `assist`); every sentence it writes
    /// is verified against the records before it is shown.
    pub fn with_generator(mut self, generator: Arc<dyn Generator>, mode: LlmMode) -> Engine {
        self.llm = (mode != LlmMode::Off).then(|| Llm {
            generator,
            mode,
            params: Params { max_tokens: 96, ..Params::default() },
            stats: LlmStats::default(),
        });
        self
    }

    /// The system prompt the model is given (the configured administration's).
    pub fn system_prompt(&self) -> &str {
        &self.system
    }

    /// The model's counters; `None` without a model.
    pub fn llm_stats(&self) -> Option<&LlmStats> {
        self.llm.as_ref().map(|l| &l.stats)
    }

    /// The model's mode and name, when one is configured.
    pub fn llm(&self) -> Option<(LlmMode, &str)> {
        self.llm.as_ref().map(|l| (l.mode, l.generator.name()))
    }

    /// Replaces the composer (the LLM plugs in here); its replies are still verified.
    pub fn with_composer(mut self, composer: Box<dyn Composer>) -> Engine {
        self.composer = composer;
        self
    }

    pub fn knowledge(&self) -> &KnowledgeBase {
        &self.kb
    }

    /// The search index the engine answers from.
    pub fn index(&self) -> &Arc<SearchIndex> {
        &self.index
    }

    fn now(&self) -> (Timestamp, DateTime) {
        let ts = Timestamp::now();
        (ts, ts.to_zoned(self.tz.clone()).datetime())
    }

    fn reply(kind: ReplyKind, text: String, lang: Lang) -> Reply {
        Reply {
            kind,
            text,
            lang,
            sources: Vec::new(),
            handoff: None,
            suggestions: Vec::new(),
            generated_by: lotse_core::GeneratedBy::Composer,
        }
    }

    /// Starts a conversation and returns its greeting.
    pub fn start(&self, id: ConversationId, channel: Channel, lang: Lang) -> (Conversation, Reply) {
        let mut conv = Conversation::new(id, channel, lang);
        let reply = match channel {
            // A caller cannot see that a machine answers: the first words say so (EU AI Act,
            // Art. 50), that nothing is recorded, and how to reach a person.
            Channel::Phone => self.phone_greeting(lang),
            _ => self.greeting(lang),
        };
        conv.events.push(Event::ReplyOut { at: Timestamp::now(), reply: reply.clone() });
        (conv, reply)
    }

    /// Answers one message: the one entry point of every channel.
    pub fn respond(&self, conv: &mut Conversation, request: TurnRequest<'_>) -> Reply {
        let (at, now) = request.at.unwrap_or_else(|| self.now());
        let text = understand::clean(request.text);
        let previous = conv.events.iter().rev().find_map(|e| match e {
            Event::MessageIn { text, .. } => Some(text.clone()),
            _ => None,
        });
        conv.events.push(Event::MessageIn { at, text: text.clone() });
        conv.confidence = None;
        if request.plain {
            conv.plain = true;
        }
        let mut turn = Turn {
            at,
            now,
            retrieval: request.retrieval,
            sink: request.sink,
            cancel: request.cancel,
            question: understand::strip_markup(&text),
            previous,
            introduce: false,
        };
        let reply = self.decide(conv, &text, &mut turn);
        conv.events.push(Event::ReplyOut { at, reply: reply.clone() });
        reply
    }

    /// A typed request for a person (the phone's key 0): nothing to understand, the engine
    /// hands over at once. The transcript keeps it as "[Taste 0]" / "[key 0]".
    pub fn request_person(&self, conv: &mut Conversation, at: Option<Timestamp>) -> Reply {
        let at = at.unwrap_or_else(|| self.now().0);
        let key = t(conv.lang, "[Taste 0]", "[key 0]");
        conv.events.push(Event::MessageIn { at, text: key });
        conv.failures = 0;
        conv.confirm = None;
        let reply = self.handoff(conv, HandoffReason::Asked, at);
        conv.events.push(Event::ReplyOut { at, reply: reply.clone() });
        reply
    }

    fn service_source(&self, index: usize) -> Source {
        let s = &self.kb.services[index];
        Source { id: s.id.clone(), title: s.name.clone(), url: s.source.clone(), as_of: s.as_of.clone() }
    }

    /// The office for general enquiries and its phone number, when both are known.
    fn general_contact(&self) -> Option<(&lotse_core::Office, &str)> {
        let office = self.config.general_office.as_deref().and_then(|id| self.kb.office(id))?;
        Some((office, office.phone.as_deref()?))
    }

    /// The engine decides that a person should take over; it asks no one. The reply says what
    /// happens where no staff queue takes the conversation ([`no_staff`]); a channel with a
    /// queue asks it ([`Conversation::requested_handoff`]) and words the outcome with
    /// [`Engine::handoff_reply`].
    fn handoff(&self, conv: &mut Conversation, reason: HandoffReason, at: Timestamp) -> Reply {
        conv.events.push(Event::HandoffRequested { at, reason });
        self.handoff_text_reply(conv.lang, reason, &no_staff())
    }

    /// The reply to a handoff request once the staff queue has said what comes of it (queued
    /// with a place, or a callback offered); it replaces the turn's reply in the conversation.
    pub fn handoff_reply(&self, conv: &mut Conversation, reason: HandoffReason, info: &HandoffInfo) -> Reply {
        let reply = self.handoff_text_reply(conv.lang, reason, info);
        if let Some(Event::ReplyOut { reply: last, .. }) =
            conv.events.iter_mut().rev().find(|e| matches!(e, Event::ReplyOut { .. }))
        {
            *last = reply.clone();
        }
        reply
    }

    fn answer(
        &self,
        conv: &mut Conversation,
        index: usize,
        aspects: &[Aspect],
        focus: &[String],
        turn: &mut Turn<'_>,
    ) -> Reply {
        let service = &self.kb.services[index];
        conv.office = None;
        conv.asked = aspects.to_vec();
        let offices: Vec<&lotse_core::Office> =
            service.responsible.iter().filter_map(|r| self.kb.office(&r.office)).collect();
        let grounding = Grounding { service, offices: offices.clone() };
        // The question's specifics from the record's own sentences, and the fees whose
        // condition it meets; a general question ("Personalausweis") gets neither.
        let max = if conv.channel == Channel::Phone { 1 } else { 2 };
        // Under load (lexical retrieval) the question is not embedded again for its sentences.
        let unanswered = crate::passages::unanswered(aspects, service, &offices);
        let passages = crate::passages::best(
            &self.index,
            service,
            &turn.question,
            max,
            (turn.retrieval == Retrieval::Full).then_some(index),
            &unanswered,
            conv.lang,
        );
        // An office with neither phone nor e-mail leaves a general or where question without a
        // way to reach anyone; the record's own sentence that gives one is said.
        let mut passages = passages;
        if (aspects.is_empty() || aspects.contains(&Aspect::Where))
            && !offices.iter().any(|o| o.phone.is_some() || o.email.is_some())
            && let Some(contact) = crate::passages::contact_sentence(service, conv.channel == Channel::Phone)
            && !passages.contains(&contact)
        {
            passages.push(contact);
        }
        let fees = if aspects.contains(&Aspect::Fees) || aspects.is_empty() {
            crate::passages::fitting_fees(&self.index, service, &turn.question)
        } else {
            Vec::new()
        };
        let request = Request {
            lang: conv.lang,
            plain: conv.plain,
            channel: conv.channel,
            aspects,
            focus,
            now: turn.now,
            state: self.config.state,
            passages: &passages,
            fees: &fees,
            introduce: turn.introduce,
        };
        let mut text = self.composer.answer(&request, &grounding);
        if !ungrounded(&text, std::slice::from_ref(&grounding)).is_empty() {
            // A composer that states a fact no record holds is overruled by the record composer.
            text = RecordComposer.answer(&request, &grounding);
        }
        let mut r = Self::reply(ReplyKind::Answer, text, conv.lang);
        r.sources.push(self.service_source(index));
        for o in offices.iter().take(1) {
            r.sources.push(office_source(o));
        }
        r.suggestions = self.follow_up_suggestions(conv.lang, aspects);
        // German only: the claim check reads German record passages, and an English sentence
        // can put a record's time or amount in the wrong place without any check noticing (the
        // evaluation found one). English answers come from the composer until a cross-lingual
        // check exists.
        if let Some(llm) = &self.llm
            && conv.lang == Lang::De
            && (llm.mode == LlmMode::Full
                || assist::wanted(&request, &turn.question, &grounding, self.index.analyzer()))
            && let Some(generated) = self.generate_answer(llm, &request, &grounding, &r, turn)
        {
            // The model is not shown web addresses; the composer's lines with links (online
            // service, appointment booking) follow its answer where the channel shows links.
            let links: Vec<&str> = r.text.lines().filter(|l| l.contains("http")).collect();
            r.text = if links.is_empty() { generated } else { format!("{generated}\n{}", links.join("\n")) };
            r.generated_by = lotse_core::GeneratedBy::Model(llm.generator.name().to_string());
        }
        r
    }
}

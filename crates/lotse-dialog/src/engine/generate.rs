//! The language model: writing an answer from the records, every sentence verified as it
//! streams. It never chooses the service: that is the search's, measured on its own.

#[allow(unused_imports)]
use super::*;

/// The language model and how it may be used.
pub(super) struct Llm {
    pub(super) generator: Arc<dyn Generator>,
    pub(super) mode: LlmMode,
    pub(super) params: Params,
    pub(super) stats: LlmStats,
}

impl Engine {
    /// The model's answer from the records, every sentence verified; `None` (and the
    /// composer's answer stands) when the model is busy, fails, abstains or states anything
    /// that the records do not hold.
    pub(super) fn generate_answer(
        &self,
        llm: &Llm,
        request: &Request<'_>,
        grounding: &Grounding<'_>,
        facts: &Reply,
        turn: &mut Turn<'_>,
    ) -> Option<String> {
        if let Some(sink) = turn.sink.as_mut() {
            sink(Partial::Facts(facts));
        }
        let groundings = std::slice::from_ref(grounding);
        let analyzer = self.index.analyzer();
        let question = turn.question.clone();
        let check = |sentence: &str| -> Result<(), String> {
            let facts = ungrounded(sentence, groundings);
            if !facts.is_empty() {
                return Err(format!("not in the records: {facts:?}"));
            }
            let terms = unsupported_terms(sentence, groundings, &question, analyzer, false);
            if !terms.is_empty() {
                return Err(format!("terms not in the records: {terms:?}"));
            }
            if let Some(why) = fee_without_condition(sentence, groundings, analyzer) {
                return Err(why);
            }
            // What the sentence says must stand in one record passage.
            if let Some(why) = unsupported_claim(sentence, groundings, analyzer) {
                return Err(format!("{why}: {sentence:?}"));
            }
            if assist::echoes(sentence, &question, analyzer) {
                return Err("repeats the question without answering it".into());
            }
            if sentence.contains("QUELLE") || sentence.to_lowercase().contains("in der quelle") {
                return Err("talks about the prompt".into());
            }
            if !request.channel.shows_urls() && (sentence.contains("http") || sentence.contains("www.")) {
                return Err("a web address on a channel without links".into());
            }
            Ok(())
        };
        let prompt =
            assist::answer_prompt(&self.system, request, grounding, &turn.question, turn.previous.as_deref(), analyzer);
        tracing::trace!(prompt = %prompt.messages[0].content, "asking the model");
        LlmStats::inc(&llm.stats.calls);
        let mut on_sentence = |s: &str| {
            if let Some(sink) = turn.sink.as_mut() {
                sink(Partial::Text(s));
            }
        };
        let (outcome, generation) = assist::generate_checked(
            llm.generator.as_ref(),
            &prompt,
            &turn.question,
            &Params { cancel: turn.cancel.clone(), ..llm.params.clone() },
            &check,
            &mut on_sentence,
        );
        if let Some(g) = &generation {
            llm.stats.first_token_ms.fetch_add(g.first_token.as_millis() as u64, std::sync::atomic::Ordering::Relaxed);
        }
        match outcome {
            Outcome::Accepted(text) => {
                // The record composer's answer to what was asked is the floor: a figure it
                // would state (the record sentence's date, the fitting fee, the deadline) that
                // the model's phrasing leaves out is a fact the citizen loses.
                // (Held to what the prompt showed the model: the floor's lines come first there,
                // within its room.)
                let shown = &prompt.messages[0].content;
                let floor: Vec<String> = assist::floor(request, grounding.service)
                    .into_iter()
                    .filter(|l| shown.contains(l.as_str()))
                    .collect();
                let missing = left_out(&text, &floor);
                if !missing.is_empty() {
                    tracing::debug!(?missing, "generated answer leaves out a figure of the record's answer");
                    LlmStats::inc(&llm.stats.rejected);
                    return None;
                }
                LlmStats::inc(&llm.stats.accepted);
                Some(text)
            }
            Outcome::Rejected(why) => {
                // The reason names record facts, never the citizen's words: safe to log.
                tracing::debug!(%why, "generated answer rejected");
                LlmStats::inc(&llm.stats.rejected);
                None
            }
            Outcome::Abstained => {
                tracing::debug!("the model found no answer in the records");
                LlmStats::inc(&llm.stats.abstained);
                None
            }
            Outcome::Busy => {
                LlmStats::inc(&llm.stats.busy);
                None
            }
            Outcome::Cancelled => {
                tracing::debug!("generation cancelled");
                LlmStats::inc(&llm.stats.cancelled);
                None
            }
            Outcome::Failed(e) => {
                tracing::warn!(error = %e, "generation failed");
                LlmStats::inc(&llm.stats.errors);
                None
            }
        }
    }
}

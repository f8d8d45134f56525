//! The language model: rewriting a vague question into the administration's terms, and
//! writing an answer from the records, every sentence verified as it streams.

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
    /// A vague question rewritten by the model into the administration's terms, searched again;
    /// the result only when that search is confident and its best service was among the three
    /// the question itself ranked best (the model may choose between candidates, never bring a
    /// service the citizen's words did not point to: "Waffenschein" must not become some other
    /// permit).
    pub(super) fn rewritten(&self, text: &str, original: &SearchResult, turn: &Turn<'_>) -> Option<SearchResult> {
        let llm = self.llm.as_ref()?;
        LlmStats::inc(&llm.stats.rewrites);
        let params =
            Params { max_tokens: 12, stop: vec!["\n".into()], cancel: turn.cancel.clone(), ..llm.params.clone() };
        let out =
            llm.generator.try_generate(&assist::rewrite_prompt(&self.system, text), &params, &mut |_| true)?.ok()?;
        let terms = out.text.trim().trim_end_matches('.');
        if terms.is_empty() || terms.len() > 80 {
            return None;
        }
        // The model may choose between what the question's own words nearly decided: a close
        // call (at least half the answer threshold) among its best three. A rewritten question
        // in the administration's terms always looks sure of itself; the citizen's words must
        // have pointed there already.
        if original.confidence < self.config.answer_threshold / 2.0 {
            return None;
        }
        let result = self.search(terms, turn.retrieval).filter(|r| self.confident(r))?;
        let top = result.top()?.index;
        if !original.hits.iter().take(3).any(|h| h.index == top && h.coverage > 0.0) {
            return None;
        }
        LlmStats::inc(&llm.stats.rewrites_found);
        Some(result)
    }

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

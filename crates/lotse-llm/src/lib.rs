//! Text generation for Lotse: the [`Generator`] trait and the types around it.
//!
//! Two back-ends implement it, each in its own crate: `lotse-llm-candle` runs a GGUF model on
//! the local CPU, `lotse-llm-remote` asks an OpenAI-compatible server (llama.cpp server, vLLM)
//! for deployments that put generation on GPU nodes. The conversation engine only sees this
//! trait: it knows nothing of models, tokens or HTTP.
//!
//! Useful for: turning a prompt into streamed text with timings. Not useful for: deciding what
//! is true. Generated text is never trusted; the engine verifies every fact in it.
//!
//! Threading: a generator is `Send + Sync` and is called from blocking threads, never from an
//! async reactor. A call blocks until generation ends; `on_text` runs on the calling thread.
//! A local back-end runs one generation at a time (its matrix kernels already use every core);
//! [`Generator::try_generate`] lets a busy server answer without it instead of queueing.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Who said a message of the prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    User,
    Assistant,
}

impl Role {
    /// The role's name in chat templates and the OpenAI API.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

/// What to generate from. `system` should stay the same across requests: a local back-end keeps
/// its attention cache and only computes what follows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    pub system: String,
    pub messages: Vec<Message>,
}

impl Prompt {
    /// A prompt of one user message.
    pub fn user(system: impl Into<String>, user: impl Into<String>) -> Prompt {
        Prompt { system: system.into(), messages: vec![Message { role: Role::User, content: user.into() }] }
    }
}

/// A flag that stops a generation from another thread (barge-in, a client that went away).
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// A cancel flag shared with another part (the call's barge-in).
    pub fn from_flag(flag: Arc<AtomicBool>) -> Cancel {
        Cancel(flag)
    }

    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Sampling and stopping.
#[derive(Debug, Clone)]
pub struct Params {
    pub max_tokens: usize,
    /// 0 means greedy (always the most likely token): reproducible, and best for short
    /// factual answers.
    pub temperature: f64,
    pub top_p: f64,
    /// Generation stops before the first of these strings; it is not part of the text.
    pub stop: Vec<String>,
    pub seed: u64,
    pub cancel: Cancel,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            max_tokens: 120,
            temperature: 0.0,
            top_p: 0.9,
            stop: Vec::new(),
            seed: 299_792_458,
            cancel: Cancel::default(),
        }
    }
}

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// The model ended its answer or a stop string came.
    Stop,
    /// `max_tokens` were generated.
    Length,
    /// [`Cancel`] was set, or `on_text` asked to stop.
    Cancelled,
}

/// The result of a generation, with the figures that the benchmarks and the metrics report.
#[derive(Debug, Clone, PartialEq)]
pub struct Generation {
    pub text: String,
    pub finish: Finish,
    /// Prompt tokens, including those taken from the cache.
    pub prompt_tokens: usize,
    /// Prompt tokens whose attention state came from the cache and were not computed.
    pub cached_tokens: usize,
    pub generated_tokens: usize,
    /// Time to compute the prompt (the uncached part).
    pub prefill: Duration,
    /// From the call to the first generated text.
    pub first_token: Duration,
    pub total: Duration,
}

impl Generation {
    /// Prompt tokens per second over the computed part.
    pub fn prefill_rate(&self) -> f64 {
        per_second(self.prompt_tokens - self.cached_tokens, self.prefill)
    }

    /// Generated tokens per second after the first.
    pub fn generation_rate(&self) -> f64 {
        per_second(self.generated_tokens.saturating_sub(1), self.total.saturating_sub(self.first_token))
    }
}

fn per_second(n: usize, d: Duration) -> f64 {
    if d.is_zero() { 0.0 } else { n as f64 / d.as_secs_f64() }
}

#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    #[error("model file {path}: {message}")]
    Model { path: String, message: String },
    #[error("generation failed: {0}")]
    Inference(String),
    #[error("the prompt has {tokens} tokens, more than the {limit} this generator allows")]
    PromptTooLong { tokens: usize, limit: usize },
    #[error("generation server {url}: {message}")]
    Remote { url: String, message: String },
}

/// Turns a prompt into text, streaming it as it comes.
pub trait Generator: Send + Sync {
    /// The model's name, as reported in replies (`"llm:<name>"`).
    fn name(&self) -> &str;

    /// Generates an answer to `prompt`. `on_text` receives each new piece of text as soon as it
    /// is final (never a part of a stop string) and returns `false` to stop generation.
    fn generate(
        &self,
        prompt: &Prompt,
        params: &Params,
        on_text: &mut dyn FnMut(&str) -> bool,
    ) -> Result<Generation, LlmError>;

    /// Like [`Generator::generate`], but returns `None` at once when the generator is busy
    /// with another request, so that the caller can answer without it. The default waits.
    fn try_generate(
        &self,
        prompt: &Prompt,
        params: &Params,
        on_text: &mut dyn FnMut(&str) -> bool,
    ) -> Option<Result<Generation, LlmError>> {
        Some(self.generate(prompt, params, on_text))
    }
}

/// Holds back the end of streamed text that could still become a stop string, and cuts the
/// text at the first stop string. Shared by the back-ends so that they stop alike.
#[derive(Debug, Default)]
pub struct StopScanner {
    stops: Vec<String>,
    text: String,
    /// Bytes of `text` already handed out.
    emitted: usize,
    stopped: bool,
}

impl StopScanner {
    pub fn new(stops: &[String]) -> StopScanner {
        StopScanner { stops: stops.iter().filter(|s| !s.is_empty()).cloned().collect(), ..Default::default() }
    }

    /// Adds generated text; returns the part that is now safe to show, and whether a stop
    /// string was reached (then nothing more is to be added).
    pub fn push(&mut self, piece: &str) -> (String, bool) {
        if self.stopped {
            return (String::new(), true);
        }
        self.text.push_str(piece);
        if let Some(cut) = self.stops.iter().filter_map(|s| self.text.find(s.as_str())).min() {
            self.text.truncate(cut);
            self.stopped = true;
            return (self.flush(), true);
        }
        // Keep back the longest tail of the text that is the start of a stop string.
        let mut keep = 0;
        for s in &self.stops {
            for (i, _) in s.char_indices().skip(1) {
                if self.text.ends_with(&s[..i]) {
                    keep = keep.max(i);
                }
            }
        }
        let safe = self.text.len() - keep;
        let out = self.text[self.emitted..safe].to_string();
        self.emitted = safe;
        (out, false)
    }

    /// Ends the stream: everything not yet shown.
    pub fn flush(&mut self) -> String {
        let out = self.text[self.emitted..].to_string();
        self.emitted = self.text.len();
        out
    }

    /// The whole text so far, without any stop string.
    pub fn text(&self) -> &str {
        &self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_strings_are_held_back_and_cut() {
        let mut s = StopScanner::new(&["\nFrage:".to_string()]);
        assert_eq!(s.push("Das kostet"), ("Das kostet".to_string(), false));
        // "\nFr" could start the stop string: held back.
        assert_eq!(s.push(" 46 Euro.\nFr"), (" 46 Euro.".to_string(), false));
        // It did not: released with what follows.
        assert_eq!(s.push("eitags"), ("\nFreitags".to_string(), false));
        assert_eq!(s.push(" zu.\nFrage: mehr"), (" zu.".to_string(), true));
        assert_eq!(s.text(), "Das kostet 46 Euro.\nFreitags zu.");
        assert_eq!(s.push("später"), (String::new(), true));
    }

    #[test]
    fn without_stop_strings_everything_passes() {
        let mut s = StopScanner::new(&[]);
        assert_eq!(s.push("ä"), ("ä".to_string(), false));
        assert_eq!(s.flush(), "");
    }

    #[test]
    fn rates() {
        let g = Generation {
            text: String::new(),
            finish: Finish::Stop,
            prompt_tokens: 110,
            cached_tokens: 10,
            generated_tokens: 11,
            prefill: Duration::from_secs(2),
            first_token: Duration::from_secs(3),
            total: Duration::from_secs(5),
        };
        assert_eq!(g.prefill_rate(), 50.0);
        assert_eq!(g.generation_rate(), 5.0);
    }
}

//! Lotse's local generator: a Qwen2-family GGUF model (Qwen2.5-Coder-1.5B/0.5B-Instruct, see
//! `models/manifest.toml`) on the CPU with candle.
//!
//! What makes it fast on two cores: the attention state of the fixed system prompt is computed
//! once and copied into every request ([`qwen2::KvCache::fork`]), so a request only computes its
//! own question and records; the cache is allocated once per request; grouped-query attention
//! does not copy keys per head; projections of one type share one fused kernel call.
//!
//! Threading: [`CandleGenerator`] is `Send + Sync`; it runs one generation at a time (candle's
//! matrix kernels use every core already, two generations at once would only both be slow).
//! Call it from a blocking thread, never from an async reactor.

pub mod qwen2;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use candle_core::quantized::gguf_file;
use candle_core::{Device, Tensor};
use candle_transformers::generation::{LogitsProcessor, Sampling};
use lotse_llm::{Finish, Generation, Generator, LlmError, Params, Prompt, StopScanner};
use tokenizers::Tokenizer;

use qwen2::{KvCache, Qwen2};

/// Positions computed per forward pass while reading the prompt: long enough for the matrix
/// kernels to work on batches, short enough to notice a cancellation soon.
const PREFILL_CHUNK: usize = 96;

/// The system prompt whose attention state is kept, and that state.
struct Prefix {
    tokens: Vec<u32>,
    cache: KvCache,
}

pub struct CandleGenerator {
    name: String,
    model: Qwen2,
    tokenizer: Tokenizer,
    /// Tokens that end the model's turn.
    end_tokens: Vec<u32>,
    /// Held for the whole of a generation: one at a time.
    prefix: Mutex<Option<Prefix>>,
}

fn model_error(path: &Path, message: impl ToString) -> LlmError {
    LlmError::Model { path: path.display().to_string(), message: message.to_string() }
}

fn inference(e: impl ToString) -> LlmError {
    LlmError::Inference(e.to_string())
}

impl CandleGenerator {
    /// Loads a GGUF model and its `tokenizer.json`. `name` is what replies report.
    pub fn load(name: &str, gguf: &Path, tokenizer: &Path) -> Result<CandleGenerator, LlmError> {
        let mut file = std::fs::File::open(gguf).map_err(|e| model_error(gguf, e))?;
        let content =
            gguf_file::Content::read(&mut file).map_err(|e| model_error(gguf, format!("not a GGUF file: {e}")))?;
        match content.metadata.get("general.architecture").and_then(|v| v.to_string().ok()) {
            Some(a) if a == "qwen2" => {}
            other => {
                return Err(model_error(gguf, format!("architecture {other:?} is not supported (only qwen2)")));
            }
        }
        let device = Device::Cpu;
        let model = Qwen2::from_gguf(&content, &mut file, &device).map_err(|e| model_error(gguf, e))?;
        let tokenizer = Tokenizer::from_file(tokenizer).map_err(|e| model_error(tokenizer, e))?;
        let end_tokens: Vec<u32> =
            ["<|im_end|>", "<|endoftext|>"].iter().filter_map(|t| tokenizer.token_to_id(t)).collect();
        if end_tokens.is_empty() {
            return Err(model_error(gguf, "the tokenizer has no end-of-turn token <|im_end|>"));
        }
        Ok(CandleGenerator { name: name.to_string(), model, tokenizer, end_tokens, prefix: Mutex::new(None) })
    }

    /// Loads `<dir>/model.gguf` with `<tokenizer_dir>/tokenizer.json`, the layout that
    /// `lotse models fetch` writes; the model's name is the folder's.
    pub fn load_dir(dir: &Path, tokenizer_dir: &Path) -> Result<CandleGenerator, LlmError> {
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "local".into());
        CandleGenerator::load(&name, &dir.join("model.gguf"), &tokenizer_dir.join("tokenizer.json"))
    }

    /// The files [`CandleGenerator::load_dir`] needs, for a clear message when one is missing.
    pub fn files(dir: &Path, tokenizer_dir: &Path) -> [PathBuf; 2] {
        [dir.join("model.gguf"), tokenizer_dir.join("tokenizer.json")]
    }

    /// Forgets the cached system prompt, so that the next request computes its whole prompt
    /// (the benchmark compares uncached prompts).
    pub fn clear_cache(&self) {
        *self.prefix.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// The prompt as the model reads it, in ChatML (for a benchmark that feeds another engine
    /// the very same text).
    pub fn render(prompt: &Prompt) -> String {
        let mut s = format!("<|im_start|>system\n{}<|im_end|>\n", prompt.system);
        for m in &prompt.messages {
            s.push_str(&format!("<|im_start|>{}\n{}<|im_end|>\n", m.role.as_str(), m.content));
        }
        s.push_str("<|im_start|>assistant\n");
        s
    }

    fn encode(&self, text: &str) -> Result<Vec<u32>, LlmError> {
        Ok(self.tokenizer.encode(text, false).map_err(inference)?.get_ids().to_vec())
    }

    /// The ChatML form of the prompt (the template in these models' GGUF files), as the tokens
    /// of the system part and of the rest.
    fn tokens(&self, prompt: &Prompt) -> Result<(Vec<u32>, Vec<u32>), LlmError> {
        let text = CandleGenerator::render(prompt);
        // The system part ends at its first end-of-turn marker; special tokens always start a
        // new token, so the two parts tokenize as the whole does.
        let split = text.find("<|im_end|>\n").map_or(0, |i| i + "<|im_end|>\n".len());
        Ok((self.encode(&text[..split])?, self.encode(&text[split..])?))
    }

    fn run(
        &self,
        prefix: &mut Option<Prefix>,
        prompt: &Prompt,
        params: &Params,
        on_text: &mut dyn FnMut(&str) -> bool,
        started: Instant,
    ) -> Result<Generation, LlmError> {
        let config = &self.model.config;
        let device = self.model.device();
        let (system, rest) = self.tokens(prompt)?;
        let prompt_tokens = system.len() + rest.len();
        let limit = config.context.saturating_sub(params.max_tokens);
        if prompt_tokens > limit {
            return Err(LlmError::PromptTooLong { tokens: prompt_tokens, limit });
        }
        let capacity = prompt_tokens + params.max_tokens;
        let prefill_started = Instant::now();
        // The system prompt's state: from the cache when it is the same prompt as last time.
        let cached = matches!(prefix, Some(p) if p.tokens == system);
        if !cached {
            let mut cache = KvCache::new(config, system.len(), device).map_err(inference)?;
            for chunk in system.chunks(PREFILL_CHUNK) {
                self.model.forward(chunk, &mut cache).map_err(inference)?;
            }
            *prefix = Some(Prefix { tokens: system.clone(), cache });
        }
        let cached_tokens = if cached { system.len() } else { 0 };
        // `prefix` was set just above when it was not cached.
        let base = &prefix.as_ref().expect("system prompt computed").cache;
        let mut cache = base.fork(config, capacity, device).map_err(inference)?;
        let mut logits: Option<Tensor> = None;
        for chunk in rest.chunks(PREFILL_CHUNK) {
            if params.cancel.is_cancelled() {
                return Ok(self.finished(
                    String::new(),
                    Finish::Cancelled,
                    prompt_tokens,
                    cached_tokens,
                    0,
                    started,
                    prefill_started.elapsed(),
                    None,
                ));
            }
            logits = Some(self.model.forward(chunk, &mut cache).map_err(inference)?);
        }
        let prefill = prefill_started.elapsed();
        // `rest` always holds at least the assistant header, so one forward pass ran.
        let mut logits = logits.expect("the prompt ends with the assistant header");
        let sampling = if params.temperature <= 0.0 {
            Sampling::ArgMax
        } else {
            Sampling::TopP { p: params.top_p, temperature: params.temperature }
        };
        let mut sampler = LogitsProcessor::from_sampling(params.seed, sampling);
        let mut stops = StopScanner::new(&params.stop);
        let mut generated: Vec<u32> = Vec::new();
        let mut decoded_len = 0;
        let mut first_token = None;
        let mut finish = Finish::Length;
        while generated.len() < params.max_tokens {
            let token = sampler.sample(&logits).map_err(inference)?;
            first_token.get_or_insert_with(|| started.elapsed());
            if self.end_tokens.contains(&token) {
                finish = Finish::Stop;
                break;
            }
            generated.push(token);
            // Decode everything generated and pass on what is new, once it is whole UTF-8
            // (a character can span tokens).
            let text = self.tokenizer.decode(&generated, true).map_err(inference)?;
            if !text.ends_with('\u{FFFD}') && text.len() > decoded_len {
                let (safe, stopped) = stops.push(&text[decoded_len..]);
                decoded_len = text.len();
                if !safe.is_empty() && !on_text(&safe) {
                    finish = Finish::Cancelled;
                    break;
                }
                if stopped {
                    finish = Finish::Stop;
                    break;
                }
            }
            if params.cancel.is_cancelled() {
                finish = Finish::Cancelled;
                break;
            }
            if generated.len() == params.max_tokens {
                break;
            }
            logits = self.model.forward(&[token], &mut cache).map_err(inference)?;
        }
        let rest = stops.flush();
        if !rest.is_empty() && finish != Finish::Cancelled {
            on_text(&rest);
        }
        Ok(self.finished(
            stops.text().to_string(),
            finish,
            prompt_tokens,
            cached_tokens,
            generated.len(),
            started,
            prefill,
            first_token,
        ))
    }

    #[allow(clippy::too_many_arguments)]
    fn finished(
        &self,
        text: String,
        finish: Finish,
        prompt_tokens: usize,
        cached_tokens: usize,
        generated_tokens: usize,
        started: Instant,
        prefill: std::time::Duration,
        first_token: Option<std::time::Duration>,
    ) -> Generation {
        let total = started.elapsed();
        Generation {
            text,
            finish,
            prompt_tokens,
            cached_tokens,
            generated_tokens,
            prefill,
            first_token: first_token.unwrap_or(total),
            total,
        }
    }
}

impl Generator for CandleGenerator {
    fn name(&self) -> &str {
        &self.name
    }

    fn generate(
        &self,
        prompt: &Prompt,
        params: &Params,
        on_text: &mut dyn FnMut(&str) -> bool,
    ) -> Result<Generation, LlmError> {
        let started = Instant::now();
        // A panic inside a generation leaves the prefix either whole or absent: safe to reuse.
        let mut prefix = self.prefix.lock().unwrap_or_else(|p| p.into_inner());
        self.run(&mut prefix, prompt, params, on_text, started)
    }

    fn try_generate(
        &self,
        prompt: &Prompt,
        params: &Params,
        on_text: &mut dyn FnMut(&str) -> bool,
    ) -> Option<Result<Generation, LlmError>> {
        let started = Instant::now();
        let mut prefix = match self.prefix.try_lock() {
            Ok(p) => p,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return None,
        };
        Some(self.run(&mut prefix, prompt, params, on_text, started))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The small real model, fetched by `lotse models fetch qwen2.5-coder-0.5b-instruct`; the
    /// test fails without it when `LOTSE_REQUIRE_MODELS` is set (as in `scripts/test`).
    fn small() -> Option<CandleGenerator> {
        let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models");
        let (dir, tok) = (models.join("qwen2.5-coder-0.5b-instruct"), models.join("qwen-tokenizer"));
        if CandleGenerator::files(&dir, &tok).iter().any(|f| !f.exists()) {
            assert!(std::env::var_os("LOTSE_REQUIRE_MODELS").is_none(), "the small model is not fetched");
            eprintln!("skipped: the small model is not fetched");
            return None;
        }
        Some(CandleGenerator::load_dir(&dir, &tok).expect("the small model loads"))
    }

    #[test]
    fn the_cached_system_prompt_gives_the_same_answer_as_computing_it() {
        let Some(g) = small() else { return };
        let prompt = Prompt::user(
            "Du bist ein Assistent. Antworte in einem kurzen Satz auf Deutsch.",
            "QUELLE: Der Personalausweis kostet 37,00 Euro.\nFrage: Was kostet der Personalausweis?",
        );
        let params = Params { max_tokens: 24, ..Default::default() };
        let mut pieces = String::new();
        let first = g
            .generate(&prompt, &params, &mut |p| {
                pieces.push_str(p);
                true
            })
            .unwrap();
        assert_eq!(first.cached_tokens, 0);
        assert_eq!(pieces, first.text, "the streamed pieces make up the text");
        assert!(first.text.contains("37"), "{}", first.text);
        assert!(first.generated_tokens <= 24);
        let again = g.generate(&prompt, &params, &mut |_| true).unwrap();
        assert!(again.cached_tokens > 5, "{again:?}");
        assert_eq!(again.text, first.text, "greedy generation from the cached state is the same");
    }

    #[test]
    fn stop_strings_cancellation_and_busy() {
        let Some(g) = small() else { return };
        let prompt = Prompt::user("Du bist ein Assistent.", "Zähle von 1 bis 20, durch Kommas getrennt.");
        let params = Params { max_tokens: 60, stop: vec!["5".into()], ..Default::default() };
        let out = g.generate(&prompt, &params, &mut |_| true).unwrap();
        assert_eq!(out.finish, Finish::Stop, "{out:?}");
        assert!(!out.text.contains('5') && out.text.contains('4'), "{}", out.text);
        // Asking to stop from the stream ends generation at once.
        let mut n = 0;
        let params = Params { max_tokens: 60, ..Default::default() };
        let out = g
            .generate(&prompt, &params, &mut |_| {
                n += 1;
                n < 3
            })
            .unwrap();
        assert_eq!((out.finish, n), (Finish::Cancelled, 3));
        // While one generation runs, try_generate answers None at once.
        let busy = std::sync::Arc::new(g);
        let other = busy.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let worker = std::thread::spawn(move || {
            other
                .generate(&prompt, &Params { max_tokens: 40, ..Default::default() }, &mut |_| {
                    let _ = tx.send(());
                    true
                })
                .unwrap()
        });
        rx.recv().unwrap();
        let p = Prompt::user("S", "Q");
        assert!(busy.try_generate(&p, &Params::default(), &mut |_| true).is_none());
        worker.join().unwrap();
    }
}

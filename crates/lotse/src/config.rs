//! The operator's configuration: `lotse.toml` (or `--config FILE`), overridden by environment
//! variables `LOTSE_<SECTION>__<KEY>` (e.g. `LOTSE_LLM__MODE=assist`), read with figment.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use figment::Figment;
use figment::providers::{Env, Format, Toml};
use lotse_dialog::LlmMode;
use lotse_llm::Generator;
use serde::Deserialize;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub llm: LlmConfig,
    /// The staff handoff: database, retention, timeouts, teams and their hours.
    #[serde(default)]
    pub handoff: lotse_handoff::HandoffConfig,
}

/// The language model: off by default, because the record composer answers alone.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LlmConfig {
    pub mode: LlmMode,
    /// A model of `models/manifest.toml`, run locally with candle.
    pub model: String,
    /// The tokenizer model of the manifest.
    pub tokenizer: String,
    /// An OpenAI-compatible server to generate on instead (e.g. `http://gpu-node:8000`).
    pub remote_url: Option<String>,
    /// The model name that server serves.
    pub remote_model: String,
    pub remote_timeout_seconds: u64,
}

impl Default for LlmConfig {
    fn default() -> Self {
        LlmConfig {
            mode: LlmMode::Off,
            model: "qwen2.5-coder-1.5b-instruct".into(),
            tokenizer: "qwen-tokenizer".into(),
            remote_url: None,
            remote_model: "default".into(),
            remote_timeout_seconds: 20,
        }
    }
}

impl Config {
    /// Reads `path` when it exists (an explicitly named file must exist), then the environment.
    pub fn load(path: Option<&Path>) -> Result<Config> {
        let file = path.map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("lotse.toml"));
        if path.is_some() && !file.exists() {
            anyhow::bail!("configuration file {} does not exist", file.display());
        }
        Figment::new()
            .merge(Toml::file(&file))
            // Only LOTSE_LLM__* and LOTSE_HANDOFF__*: other LOTSE_ variables (LOTSE_CACHE, …) are not settings.
            .merge(
                Env::prefixed("LOTSE_")
                    .filter(|k| {
                        let k = k.as_str().to_lowercase();
                        k.starts_with("llm__") || k.starts_with("handoff__")
                    })
                    .split("__"),
            )
            .extract()
            .with_context(|| format!("reading the configuration ({} and LOTSE_* variables)", file.display()))
    }
}

impl LlmConfig {
    /// The configured generator: the remote server when one is named, else the local model.
    pub fn generator(&self, models: &Path) -> Result<Arc<dyn Generator>> {
        if let Some(url) = &self.remote_url {
            let timeout = std::time::Duration::from_secs(self.remote_timeout_seconds);
            return Ok(Arc::new(lotse_llm_remote::RemoteGenerator::new(url, &self.remote_model, timeout)));
        }
        let dir = models.join(&self.model);
        let tokenizer = models.join(&self.tokenizer);
        for f in lotse_llm_candle::CandleGenerator::files(&dir, &tokenizer) {
            if !f.exists() {
                anyhow::bail!(
                    "{} is missing: fetch the model first with `lotse models fetch {}`",
                    f.display(),
                    self.model
                );
            }
        }
        Ok(Arc::new(lotse_llm_candle::CandleGenerator::load_dir(&dir, &tokenizer)?))
    }
}

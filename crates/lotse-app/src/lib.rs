//! `lotse-app`: Lotse assembled from the operator's settings. The configuration (`lotse.toml`
//! and `LOTSE_…` variables), the model files (`lotse models fetch`), and what the command line,
//! the evaluation and the benchmarks build from them: the knowledge, its search index (with the
//! embedding stage when its model is fetched), the conversation engine with or without the
//! language model, the staff desk and the voice stack. One place, so that `lotse serve`,
//! `lotse eval` and `lotse bench` run the same engine a citizen meets.

pub mod bridge;
pub mod config;
pub mod models;
pub mod voice;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use lotse_knowledge::KnowledgeBase;
use lotse_search::SearchIndex;

pub use config::Config;

/// The language model switch of `ask`, `serve`, `voice`, `eval dialog` and `eval cases`:
/// `--llm` alone means assist.
#[derive(clap::Args, Clone, Copy, Debug, Default)]
pub struct LlmArg {
    /// Use the language model for this run: `--llm` (assist) or `--llm=full`, `--llm=off`.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "assist", value_name = "MODE")]
    pub llm: Option<lotse_dialog::LlmMode>,
}

/// The operator's settings: where the models are, which configuration file, and whether the
/// embedding stage may be used.
#[derive(Debug, Clone)]
pub struct App {
    models: PathBuf,
    config: Option<PathBuf>,
    embeddings: bool,
}

impl Default for App {
    fn default() -> Self {
        App::new(PathBuf::from("models"), None, true)
    }
}

impl App {
    /// `models`: the folder `lotse models fetch` fills; `config`: the configuration file
    /// (`lotse.toml` when `None` and it exists); `embeddings`: use the embedding stage when its
    /// model is fetched.
    pub fn new(models: PathBuf, config: Option<PathBuf>, embeddings: bool) -> App {
        App { models, config, embeddings }
    }

    /// The models folder.
    pub fn models_dir(&self) -> &Path {
        &self.models
    }

    /// The configuration file given (`--config`), when one was.
    pub fn config_path(&self) -> Option<&Path> {
        self.config.as_deref()
    }

    /// The configuration (read again on every call: a test or a command may change the file).
    pub fn configuration(&self) -> Result<Config> {
        Config::load(self.config.as_deref())
    }

    /// Builds the search index for `kb`, with the embedding stage when its model is fetched and
    /// not switched off.
    pub fn build_index(&self, kb: &KnowledgeBase) -> Result<SearchIndex> {
        // The records' own town is read from their offices; the configured city's names
        // (its English one among them) are that town too.
        let mut index = SearchIndex::build(kb)?.with_home_names(self.configuration()?.city.names());
        // The Hunspell dictionaries (Debian's hunspell-de-de and hunspell-en-us; another
        // folder with LOTSE_HUNSPELL_DIR): typo correction leaves real words alone.
        let dir = std::env::var_os("LOTSE_HUNSPELL_DIR")
            .filter(|d| !d.is_empty())
            .map_or_else(|| PathBuf::from(HUNSPELL_DIR), PathBuf::from);
        match load_lexicon(&dir) {
            Ok(lexicon) => index = index.with_lexicon(Arc::new(lexicon)),
            Err(e) => tracing::warn!(
                "no Hunspell dictionaries ({e:#}): real words may be read as typos; \
                 scripts/system-packages installs them"
            ),
        }
        // Foreign countries' names (Debian's iso-codes): a country a question names is read
        // as abroad, the records' word for the matters of other countries.
        match load_countries(Path::new(ISO_CODES_DIR), Path::new(ISO_CODES_LOCALE)) {
            Ok((german, english)) => index = index.with_countries(german, english),
            Err(e) => tracing::warn!(
                "no country names ({e:#}): a question naming a country is not read as abroad; \
                 scripts/system-packages installs iso-codes"
            ),
        }
        // Everyday words' frequencies (wordfreq, fetched by scripts/fetch-models): a common
        // word no record uses weighs less as a topic the knowledge lacks.
        match commonness(&self.models) {
            Ok(c) => index = index.with_commonness(c),
            Err(e) => tracing::warn!(
                "no word frequencies ({e:#}): everyday words weigh as much as rare ones; \
                 scripts/fetch-models fetches them"
            ),
        }
        // The German-English glossary (`glossary()`, `SearchIndex::with_glossary`) is not read
        // yet: on its own, without the readings in the embedded question (which made vague
        // English questions confident), it measured slightly below the search without it
        // (docs/ranking.md).
        let dir = lotse_embed::Embedder::default_dir(&self.models);
        if !self.embeddings || !lotse_embed::Embedder::available(&dir) {
            return Ok(index);
        }
        let embedder = Arc::new(lotse_embed::Embedder::load(&dir)?);
        Ok(index.with_embeddings(kb, embedder)?)
    }

    /// Loads the knowledge, builds the index and the conversation engine.
    pub fn build_engine(&self, knowledge: &Path) -> Result<lotse_dialog::Engine> {
        self.build_engine_over(Arc::new(load(knowledge)?))
    }

    /// The conversation engine over knowledge already loaded.
    pub fn build_engine_over(&self, kb: Arc<KnowledgeBase>) -> Result<lotse_dialog::Engine> {
        let index = Arc::new(self.build_index(&kb)?);
        self.engine(kb, index)
    }

    /// The conversation engine over knowledge and an index already built, with the city's
    /// settings of the configuration.
    pub fn engine(&self, kb: Arc<KnowledgeBase>, index: Arc<SearchIndex>) -> Result<lotse_dialog::Engine> {
        let city = self.configuration()?.city;
        // A time zone the engine cannot find is an error here, as in the server, not UTC.
        city.zone()?;
        Ok(lotse_dialog::Engine::new(kb, index, city.engine_config()))
    }

    /// Adds the language model to `engine` as the configuration and `--llm` say. With `measure`
    /// (the server), one generation at start measures what this machine affords, and a full
    /// mode that would keep citizens waiting too long is lowered to assist.
    pub fn with_llm(&self, engine: lotse_dialog::Engine, arg: LlmArg, measure: bool) -> Result<lotse_dialog::Engine> {
        use lotse_dialog::LlmMode;
        let config = self.configuration()?;
        let mut mode = arg.llm.unwrap_or(config.llm.mode);
        if mode == LlmMode::Off {
            return Ok(engine);
        }
        let started = std::time::Instant::now();
        let generator = config.llm.generator(&self.models)?;
        if measure {
            let prompt = lotse_llm::Prompt::user(
                engine.system_prompt(),
                "QUELLE:\nLeistung: Test\n\nFrage: Was ist das?\nAntworte kurz.",
            );
            let params = lotse_llm::Params { max_tokens: 16, ..Default::default() };
            // The first generation also lays out the weights for the fast kernels: measure the second.
            generator.generate(&prompt, &params, &mut |_| true)?;
            let g = generator.generate(&prompt, &params, &mut |_| true)?;
            // A typical answer: 150 new prompt tokens and 60 generated.
            let answer_s = 150.0 / g.prefill_rate().max(0.1) + 60.0 / g.generation_rate().max(0.1);
            eprintln!(
                "language model {} ready in {:.1} s: prefill {:.0} tokens/s, generation {:.1} tokens/s, a typical answer about {answer_s:.1} s",
                generator.name(),
                started.elapsed().as_secs_f64(),
                g.prefill_rate(),
                g.generation_rate()
            );
            if mode == LlmMode::Full && answer_s > 8.0 {
                eprintln!("this machine cannot afford llm mode full (every answer generated): using assist");
                mode = LlmMode::Assist;
            }
        }
        Ok(engine.with_generator(generator, mode))
    }

    /// The staff desk of the configuration's `[handoff]`: its store opened (and migrated).
    pub fn open_desk(
        &self,
        config: Config,
        kb: Arc<KnowledgeBase>,
        runtime: &tokio::runtime::Runtime,
    ) -> Result<lotse_handoff::Desk> {
        let zone = config.city.zone()?;
        let mut handoff = config.handoff;
        // The consent text names the city's administration unless [handoff] names another.
        if handoff.organisation == lotse_handoff::HandoffConfig::default().organisation {
            handoff.organisation = config.city.administration();
        }
        handoff.schedule.validate().context("the [handoff.schedule] of the configuration")?;
        runtime.block_on(async {
            let store = lotse_handoff::Store::open(&handoff.database)
                .await
                .with_context(|| format!("opening the handoff database {}", handoff.database))?;
            anyhow::Ok(lotse_handoff::Desk::new(store, handoff, kb, zone).await?)
        })
    }
}

/// The plug-ins `config` switches on, over the desk's store, started (their schema changes
/// applied).
pub fn start_plugins(
    config: &config::PluginsConfig,
    desk: &lotse_handoff::Desk,
    engine: &lotse_dialog::Engine,
    runtime: &tokio::runtime::Runtime,
) -> Result<Option<Arc<lotse_plugin::Host>>> {
    let store = &desk.store;
    config.validate().map_err(anyhow::Error::msg)?;
    // A switched-off inbox leaves no citizen's question behind.
    if !config.enabled.iter().any(|n| n == "inbox") {
        let n = runtime.block_on(lotse_plugin_inbox::forget(store))?;
        if n > 0 {
            tracing::info!(records = n, "the inbox is off: its questions were deleted");
        }
    }
    if config.enabled.is_empty() {
        return Ok(None);
    }
    let mut plugins: Vec<Arc<dyn lotse_plugin::Plugin>> = Vec::new();
    for name in &config.enabled {
        match name.as_str() {
            "feedback" => {
                let services = engine.knowledge().services.iter().map(|s| s.id.to_string()).collect();
                plugins.push(lotse_plugin_feedback::Feedback::new(
                    store.clone(),
                    config.feedback_comment_days,
                    services,
                    desk.zone().tz.clone(),
                    config.chat_survey.clone(),
                ))
            }
            "figures" => plugins.push(lotse_plugin_figures::Figures::new(store.clone(), desk.zone().tz.clone())),
            "inbox" => {
                let services = engine.knowledge().services.iter().map(|s| (s.id.to_string(), s.name.clone())).collect();
                plugins.push(lotse_plugin_inbox::Inbox::new(
                    store.clone(),
                    engine.index().clone(),
                    services,
                    config.inbox_days,
                ))
            }
            other => anyhow::bail!("no plug-in is called {other:?}"),
        }
    }
    let host = runtime.block_on(lotse_plugin::Host::start(store.clone(), plugins, lotse_handoff::store::now_ms()))?;
    Ok(Some(Arc::new(host)))
}

/// Loads the knowledge of a folder (`services/`, `offices/`, `synonyms.toml`).
pub fn load(dir: &Path) -> Result<KnowledgeBase> {
    lotse_knowledge::load_dir(dir).with_context(|| format!("loading knowledge from {}", dir.display()))
}

/// The folder under `models/` with wordfreq's lists (`large_de.msgpack.gz`,
/// `large_en.msgpack.gz`), which `scripts/fetch-models` fills.
pub const WORDFREQ_DIR: &str = "wordfreq";

/// The word frequencies of German and English from `models/wordfreq`, read once per process
/// (about 70,000 common words).
pub fn commonness(models: &Path) -> Result<Arc<lotse_search::Commonness>> {
    static LOADED: std::sync::OnceLock<std::sync::Mutex<HashMap<PathBuf, Arc<lotse_search::Commonness>>>> =
        std::sync::OnceLock::new();
    let dir = models.join(WORDFREQ_DIR);
    let mut loaded = LOADED.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner());
    if let Some(c) = loaded.get(&dir) {
        return Ok(c.clone());
    }
    let mut c = lotse_search::Commonness::default();
    for lang in ["de", "en"] {
        let path = dir.join(format!("large_{lang}.msgpack.gz"));
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        c.add_wordfreq(lang, &bytes).with_context(|| format!("reading {}", path.display()))?;
    }
    let c = Arc::new(c);
    loaded.insert(dir, c.clone());
    Ok(c)
}

/// Where Debian's package `trans-de-en` puts the Ding German–English dictionary.
pub const GLOSSARY_FILE: &str = "/usr/share/trans/de-en";

/// The German–English dictionary the search reads English questions with (LOTSE_GLOSSARY names
/// another file in its format), parsed once per process (about 25 MB of text).
pub fn glossary() -> Result<&'static lotse_search::Glossary> {
    static GLOSSARY: std::sync::OnceLock<Result<lotse_search::Glossary, String>> = std::sync::OnceLock::new();
    let parsed = GLOSSARY.get_or_init(|| {
        let path = std::env::var_os("LOTSE_GLOSSARY")
            .filter(|p| !p.is_empty())
            .map_or_else(|| PathBuf::from(GLOSSARY_FILE), PathBuf::from);
        let text = std::fs::read(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
        Ok(lotse_search::Glossary::parse_ding(&String::from_utf8_lossy(&text)))
    });
    parsed.as_ref().map_err(|e| anyhow::anyhow!("{e}"))
}

/// Where Debian's package `iso-codes` puts its lists (JSON, English names).
pub const ISO_CODES_DIR: &str = "/usr/share/iso-codes/json";

/// Where `iso-codes` puts its German translations (a gettext catalogue per list).
pub const ISO_CODES_LOCALE: &str = "/usr/share/locale/de/LC_MESSAGES";

/// The names of the world's countries but Germany, German and English: each country's name and
/// common name, the part before a comma ("Iran, Islamic Republic of" → "Iran"), read from
/// `iso-codes`' ISO 3166-1 list in `dir` and its German catalogue in `locale`.
pub fn load_countries(dir: &Path, locale: &Path) -> Result<(Vec<String>, Vec<String>)> {
    #[derive(serde::Deserialize)]
    struct List {
        #[serde(rename = "3166-1")]
        countries: Vec<Country>,
    }
    #[derive(serde::Deserialize)]
    struct Country {
        alpha_2: String,
        name: String,
        common_name: Option<String>,
    }
    let path = dir.join("iso_3166-1.json");
    let text = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let list: List = serde_json::from_slice(&text).with_context(|| format!("reading {}", path.display()))?;
    let path = locale.join("iso_3166-1.mo");
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let catalog: HashMap<String, String> = rspolib::mofile(bytes)
        .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?
        .entries
        .into_iter()
        .filter_map(|e| Some((e.msgid, e.msgstr.filter(|s| !s.is_empty())?)))
        .collect();
    let short = |name: &str| name.split(',').next().unwrap_or_default().trim().to_string();
    let (mut german, mut english) = (Vec::new(), Vec::new());
    for c in list.countries.iter().filter(|c| c.alpha_2 != "DE") {
        for name in std::iter::once(&c.name).chain(&c.common_name) {
            english.push(short(name));
            german.push(short(catalog.get(name).unwrap_or(name)));
        }
    }
    Ok((german, english))
}

/// Where Debian's Hunspell packages (`hunspell-de-de`, `hunspell-en-us`) put their
/// dictionaries.
pub const HUNSPELL_DIR: &str = "/usr/share/hunspell";

/// The dictionaries the search reads: German, the records' language, and English, the other
/// language citizens ask in.
pub const HUNSPELL_NAMES: &[&str] = &["de_DE", "en_US"];

/// Reads [`HUNSPELL_NAMES`]' `.aff` and `.dic` files from `dir` for the search's typo
/// correction (`lotse_search::Lexicon`).
pub fn load_lexicon(dir: &Path) -> Result<lotse_search::Lexicon> {
    let mut texts = Vec::new();
    for name in HUNSPELL_NAMES {
        let read = |ext: &str| {
            let path = dir.join(format!("{name}.{ext}"));
            std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
        };
        texts.push((*name, read("aff")?, read("dic")?));
    }
    Ok(lotse_search::Lexicon::parse(texts.iter().map(|(name, aff, dic)| lotse_search::DictionaryText {
        name,
        aff,
        dic,
    }))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_dictionary_is_an_error_naming_its_file() {
        let e = load_lexicon(Path::new("/nonexistent")).err().expect("no dictionaries there");
        assert!(format!("{e:#}").contains("/nonexistent/de_DE.aff"), "{e:#}");
    }

    #[test]
    fn the_systems_country_names_are_german_and_english_without_germany() {
        let Ok((german, english)) = load_countries(Path::new(ISO_CODES_DIR), Path::new(ISO_CODES_LOCALE)) else {
            assert!(std::env::var_os("CI").is_none(), "scripts/system-packages installs iso-codes");
            return;
        };
        for name in ["Italien", "Syrien", "Türkei", "Ukraine", "Iran"] {
            assert!(german.iter().any(|g| g == name), "{name}");
        }
        for name in ["Italy", "Syria", "India", "Iran"] {
            assert!(english.iter().any(|e| e == name), "{name}");
        }
        assert!(!german.iter().any(|g| g == "Deutschland") && !english.iter().any(|e| e == "Germany"));
        let e = load_countries(Path::new("/nonexistent"), Path::new(ISO_CODES_LOCALE)).unwrap_err();
        assert!(format!("{e:#}").contains("/nonexistent/iso_3166-1.json"), "{e:#}");
    }

    #[test]
    fn the_systems_dictionaries_know_german_and_english_words() {
        let Ok(lexicon) = load_lexicon(Path::new(HUNSPELL_DIR)) else {
            assert!(std::env::var_os("CI").is_none(), "scripts/system-packages installs the Hunspell dictionaries");
            return;
        };
        assert!(lexicon.knows("Tasche") && lexicon.knows("night"));
        assert!(!lexicon.knows("Personalasuweis"));
    }

    #[test]
    fn the_fetched_word_frequencies_tell_everyday_words_from_rare_ones() {
        let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models");
        let Ok(c) = commonness(&models) else {
            assert!(std::env::var_os("LOTSE_REQUIRE_MODELS").is_none(), "scripts/fetch-models fetches wordfreq");
            return;
        };
        assert!(c.len("de") > 30_000 && c.len("en") > 20_000, "{} / {} words", c.len("de"), c.len("en"));
        // Folded as questions are: "Führerschein" is "fuehrerschein".
        assert!(c.zipf("de", "fuehrerschein").is_some());
        assert!(c.unknown_factor("de", "tasche") < 0.6, "an everyday noun");
        assert_eq!(c.unknown_factor("de", "waffenschein"), 1.0, "a rare one");
        assert!(c.unknown_factor("en", "bag") < 0.6 && c.unknown_factor("en", "tasche") == 1.0);
        assert!(Arc::ptr_eq(&c, &commonness(&models).unwrap()), "read once");
        let e = commonness(Path::new("/nonexistent")).err().expect("nothing there");
        assert!(format!("{e:#}").contains("/nonexistent/wordfreq/large_de.msgpack.gz"), "{e:#}");
    }

    #[test]
    fn the_systems_glossary_reads_english_words_as_the_records_german() {
        let Ok(glossary) = glossary() else {
            assert!(std::env::var_os("CI").is_none(), "scripts/system-packages installs trans-de-en");
            return;
        };
        assert!(glossary.len() > 50_000, "{} English words", glossary.len());
        assert!(glossary.translations("passport").iter().any(|g| g == "Reisepass"));
        let kb = load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../knowledge")).unwrap();
        let index = lotse_search::SearchIndex::build(&kb).unwrap().with_glossary(glossary);
        assert!(index.translated_words() > 1_000, "{} words read", index.translated_words());
    }
}

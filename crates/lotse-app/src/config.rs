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
    /// What is the city's own rather than Lotse's.
    #[serde(default)]
    pub city: CityConfig,
    #[serde(default)]
    pub llm: LlmConfig,
    /// The staff handoff: database, retention, timeouts, teams and their hours.
    #[serde(default)]
    pub handoff: lotse_handoff::HandoffConfig,
    /// The phone line (the SIP bridge), where `lotse serve --sip` answers calls.
    #[serde(default)]
    pub sip: SipConfig,
    /// SIP bridges on their own nodes (`lotse bridge`) and the server they talk to.
    #[serde(default)]
    pub bridge: BridgeConfig,
    /// The HTTP server's edges.
    #[serde(default)]
    pub server: ServerConfig,
    /// The plug-ins switched on, and their settings.
    #[serde(default)]
    pub plugins: PluginsConfig,
}

/// `[plugins]`: which plug-ins run (`enabled = ["feedback"]`) and their settings. Plug-ins
/// need the staff database (they are off under `lotse serve --no-staff`).
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields, default)]
pub struct PluginsConfig {
    pub enabled: Vec<String>,
    /// Days a citizen's comment under a thumbs down is kept (the vote stays, without it).
    pub feedback_comment_days: u32,
    /// The campaign codes the figures count (`?c=plakat-bus` on a page or a poster's QR
    /// code); a code not listed is not kept.
    pub campaigns: Vec<String>,
    /// Days a declined question is kept in the unanswered-questions inbox (at least 1).
    pub inbox_days: u32,
    /// The feedback plug-in's survey (its id) the chat widget offers when a citizen starts a
    /// new conversation after an answered one, while that survey runs.
    pub chat_survey: Option<String>,
}

impl Default for PluginsConfig {
    fn default() -> Self {
        PluginsConfig {
            enabled: Vec::new(),
            feedback_comment_days: 90,
            campaigns: Vec::new(),
            inbox_days: 30,
            chat_survey: None,
        }
    }
}

/// The plug-ins this build carries.
pub const PLUGINS: [&str; 3] = ["feedback", "figures", "inbox"];

impl PluginsConfig {
    /// Refuses a name this build does not carry (a typo must not switch a module off unseen)
    /// and a name given twice.
    pub fn validate(&self) -> Result<(), String> {
        if self.inbox_days == 0 {
            return Err("[plugins] inbox_days: keep a question at least 1 day".into());
        }
        if let Some(id) = &self.chat_survey
            && !lotse_plugin_feedback::surveys::definition::valid_id(id)
        {
            return Err(format!(
                "[plugins] chat_survey: {id:?} is not a survey's id (lower-case letters, digits, dashes)"
            ));
        }
        if let Some(n) = self.enabled.iter().find(|n| !PLUGINS.contains(&n.as_str())) {
            return Err(format!("[plugins] enabled: no plug-in is called {n:?} (there are: {})", PLUGINS.join(", ")));
        }
        match self.enabled.iter().enumerate().find(|(i, n)| self.enabled[..*i].contains(n)) {
            Some((_, n)) => Err(format!("[plugins] enabled: {n:?} is named twice")),
            None => Ok(()),
        }
    }
}

/// What the HTTP server needs to know about the network in front of it.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Reverse proxies in front of the server (`["10.0.0.1"]`): their connections carry many
    /// citizens, so they are not held to one client's share of connections.
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

/// A bridge on its own node runs its calls' conversations on a Lotse server. The same token is
/// set on both; best in the environment (`LOTSE_BRIDGE__TOKEN`) rather than in the file.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct BridgeConfig {
    /// On the server: bridges that present this token may connect (none: no bridge may).
    /// On a bridge: the token it presents.
    pub token: Option<String>,
    /// On a bridge: the server's address, `http://10.0.0.2:8080` (`lotse bridge --server`).
    pub server: Option<String>,
}

impl std::fmt::Debug for BridgeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BridgeConfig")
            .field("token", &self.token.as_ref().map(|_| "…"))
            .field("server", &self.server)
            .finish()
    }
}

/// The phone line's settings beyond its address (`--sip`) and its number of lines
/// (`--sip-max-calls`).
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct SipConfig {
    /// Seconds a call rings before the bridge answers (0: at once).
    pub ring_seconds: f32,
    /// Register with the PBX as an extension; without it the PBX routes calls to the bridge's
    /// address as a trunk.
    pub register: Option<SipRegister>,
    /// The UDP ports for the calls' audio, `30000-30999`, so the firewall opens a range and
    /// not every port (default: any free port).
    pub rtp_ports: Option<String>,
}

/// The bridge as an extension of the PBX. The password is best given in the environment
/// (`LOTSE_SIP__REGISTER__PASSWORD`) rather than in the file.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SipRegister {
    /// The registrar's URI: `sip:pbx.example.org`, `sip:10.0.0.5:5060`.
    pub registrar: String,
    /// The extension (the user part of the address of record).
    pub user: String,
    /// The digest user name, where the PBX gives one apart from the extension.
    pub auth_user: Option<String>,
    pub password: String,
    /// The registration's lifetime asked for, in seconds (default 600); it is refreshed at
    /// three quarters of what the registrar grants.
    #[serde(default = "SipRegister::default_expires")]
    pub expires: u32,
}

impl SipRegister {
    fn default_expires() -> u32 {
        600
    }
}

impl std::fmt::Debug for SipRegister {
    // The password never reaches a log or an error message.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SipRegister")
            .field("registrar", &self.registrar)
            .field("user", &self.user)
            .field("auth_user", &self.auth_user)
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}

impl SipConfig {
    /// How long a call rings, checked: 0 to 30 seconds.
    pub fn ring(&self) -> Result<std::time::Duration> {
        if !(0.0..=30.0).contains(&self.ring_seconds) {
            anyhow::bail!("[sip] ring_seconds must lie between 0 and 30, not {}", self.ring_seconds);
        }
        Ok(std::time::Duration::from_secs_f32(self.ring_seconds))
    }
}

/// What belongs to the city that runs Lotse rather than to Lotse: its name, its
/// administration, its state (whose public holidays close offices and staff teams), its time
/// zone, and the words its callers use. Defaults: Jena, Thuringia; what is not set follows from
/// the name (a city that sets only `name = "Erfurt"` is the "Stadtverwaltung Erfurt").
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CityConfig {
    /// The city's name ("Jena").
    pub name: String,
    /// The administration citizens deal with, as read after "der" (default: "Stadtverwaltung"
    /// and the name): the language model is told it speaks for it, and the callback consent
    /// names it (unless `[handoff] organisation` names another).
    administration: Option<String>,
    /// The office of the knowledge named for general enquiries when the assistant cannot help
    /// (its phone number is given).
    pub general_office: String,
    /// The state's two-letter code: "TH", "BY", "SN" …
    pub state: lotse_core::calendar::State,
    pub time_zone: String,
    /// Words the speech recogniser is primed with before the services' names: the city, its
    /// districts, the office callers ask for most (default: the name and "Bürgerservice").
    recognition_words: Option<Vec<String>>,
    /// How an English recogniser writes the city's name ("Gina" for Jena): read as the name
    /// (default: Jena's three, for Jena only).
    heard_as: Option<Vec<String>>,
    /// Other names citizens write for the city ("Munich" for München), read as the city as
    /// its own name is: a place every record is about, which chooses no service. A name of
    /// several words ("Frankfurt am Main") is not read (as the records' own town).
    #[serde(default)]
    pub other_names: Vec<String>,
}

impl Default for CityConfig {
    fn default() -> Self {
        CityConfig {
            name: "Jena".into(),
            administration: None,
            general_office: "stadtverwaltung".into(),
            state: lotse_core::calendar::State::Thueringen,
            time_zone: "Europe/Berlin".into(),
            recognition_words: None,
            heard_as: None,
            other_names: Vec::new(),
        }
    }
}

impl CityConfig {
    pub fn administration(&self) -> String {
        self.administration.clone().unwrap_or_else(|| format!("Stadtverwaltung {}", self.name))
    }

    pub fn recognition_words(&self) -> Vec<String> {
        self.recognition_words.clone().unwrap_or_else(|| vec![self.name.clone(), "Bürgerservice".into()])
    }

    pub fn heard_as(&self) -> Vec<String> {
        // Jena's are the call's defaults (`lotse_call::CityName`); another city has its own.
        self.heard_as.clone().unwrap_or_else(|| {
            let jena = lotse_call::CityName::default();
            if self.name == jena.name { jena.heard_as } else { Vec::new() }
        })
    }

    /// The city's names as citizens write them: its name and its other names.
    pub fn names(&self) -> Vec<String> {
        std::iter::once(self.name.clone()).chain(self.other_names.iter().cloned()).collect()
    }

    /// The engine's settings for this city.
    pub fn engine_config(&self) -> lotse_dialog::EngineConfig {
        lotse_dialog::EngineConfig {
            state: self.state,
            time_zone: self.time_zone.clone(),
            administration: self.administration(),
            general_office: Some(self.general_office.clone()).filter(|o| !o.is_empty()),
            ..Default::default()
        }
    }

    /// The city's clock and holidays for the staff schedule.
    pub fn zone(&self) -> Result<lotse_core::calendar::Zone> {
        let tz = jiff::tz::TimeZone::get(&self.time_zone)
            .with_context(|| format!("[city] time_zone `{}` is not a known time zone", self.time_zone))?;
        Ok(lotse_core::calendar::Zone { tz, state: self.state })
    }
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
            // Only LOTSE_CITY__, _LLM__, _HANDOFF__, _SIP__, _BRIDGE__ and _SERVER__: other LOTSE_ variables
            // (LOTSE_CACHE, …) are not settings.
            .merge(
                Env::prefixed("LOTSE_")
                    .filter(|k| {
                        let k = k.as_str().to_lowercase();
                        ["city__", "llm__", "handoff__", "sip__", "bridge__", "server__"]
                            .iter()
                            .any(|p| k.starts_with(p))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Config> {
        // Tests run in parallel: each load gets its own folder (two texts of one length once
        // shared one, and one test removed the other's file).
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("lotse-config-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let file = dir.join("lotse.toml");
        std::fs::write(&file, text)?;
        let config = Config::load(Some(&file));
        std::fs::remove_dir_all(&dir).ok();
        config
    }

    #[test]
    fn plugins_are_named_once_and_only_those_this_build_carries() {
        let p =
            load("[plugins]\nenabled = [\"feedback\", \"figures\"]\ncampaigns = [\"plakat-bus\"]\n").unwrap().plugins;
        assert!(p.validate().is_ok());
        assert_eq!(p.campaigns, vec!["plakat-bus".to_string()]);
        let twice = PluginsConfig { enabled: vec!["feedback".into(), "feedback".into()], ..Default::default() };
        assert!(twice.validate().unwrap_err().contains("twice"));
        let typo = PluginsConfig { enabled: vec!["feedbak".into()], ..Default::default() };
        assert!(typo.validate().unwrap_err().contains("feedbak"));
    }

    #[test]
    fn the_city_section_sets_holidays_and_time_zone() {
        let c = load("[city]\nstate = \"BY\"\ntime_zone = \"Europe/Berlin\"\n").unwrap();
        assert_eq!(c.city.state, lotse_core::calendar::State::Bayern);
        assert_eq!(c.city.engine_config().state, lotse_core::calendar::State::Bayern);
        assert_eq!(c.city.zone().unwrap().state, lotse_core::calendar::State::Bayern);
        // Without it: Jena's.
        assert_eq!(load("").unwrap().city.state, lotse_core::calendar::State::Thueringen);
        // An unknown state or time zone is a clear error, not a silent default.
        assert!(load("[city]\nstate = \"XX\"\n").is_err());
        let munich =
            load("[city]\nname = \"München\"\nadministration = \"Landeshauptstadt München\"\nstate = \"BY\"\n")
                .unwrap();
        assert_eq!(munich.city.engine_config().administration, "Landeshauptstadt München");
        assert!(
            lotse_dialog::assist::system(&munich.city.administration())
                .contains("Assistent der Landeshauptstadt München.")
        );
        assert_eq!(munich.city.recognition_words(), ["München", "Bürgerservice"]);
        assert!(munich.city.heard_as().is_empty(), "Jena's mishearings are Jena's");
        assert_eq!(munich.city.names(), ["München"]);
        let english = load("[city]\nname = \"München\"\nother_names = [\"Munich\"]\n").unwrap();
        assert_eq!(english.city.names(), ["München", "Munich"]);
        // What is not set follows from the name; Jena's defaults are Jena's.
        let erfurt = load("[city]\nname = \"Erfurt\"\n").unwrap();
        assert_eq!(erfurt.city.administration(), "Stadtverwaltung Erfurt");
        let jena = load("").unwrap();
        assert_eq!(jena.city.administration(), "Stadtverwaltung Jena");
        assert_eq!(jena.city.recognition_words(), ["Jena", "Bürgerservice"]);
        assert_eq!(jena.city.heard_as(), ["Gina", "Jenna", "Jina"]);
        assert!(load("[city]\ntime_zone = \"Mars/Olympus\"\n").unwrap().city.zone().is_err());
    }

    #[test]
    fn the_sip_section_rings_and_registers_without_showing_the_password() {
        let none = load("").unwrap();
        assert_eq!(none.sip.ring().unwrap(), std::time::Duration::ZERO);
        assert!(none.sip.register.is_none());
        let c = load(
            "[sip]\nring_seconds = 2.5\n[sip.register]\nregistrar = \"sip:pbx.example.org\"\nuser = \"4900\"\npassword = \"geheim-42\"\n",
        )
        .unwrap();
        assert_eq!(c.sip.ring().unwrap(), std::time::Duration::from_millis(2500));
        let r = c.sip.register.as_ref().unwrap();
        assert_eq!((r.user.as_str(), r.expires, r.auth_user.as_deref()), ("4900", 600, None));
        assert!(!format!("{c:?}").contains("geheim-42"), "the password is kept out of logs");
        assert!(load("[sip]\nring_seconds = 99\n").unwrap().sip.ring().is_err());
        let b = load("[bridge]\ntoken = \"s3cret-bridge\"\nserver = \"http://10.0.0.2:8080\"\n").unwrap();
        assert_eq!(b.bridge.token.as_deref(), Some("s3cret-bridge"));
        assert!(!format!("{b:?}").contains("s3cret-bridge"), "the bridge token is kept out of logs");
        assert!(load("").unwrap().bridge.token.is_none(), "no bridge may connect unless told");
        let proxied = load("[server]\ntrusted_proxies = [\"10.0.0.1\", \"::1\"]\n").unwrap();
        assert_eq!(proxied.server.trusted_proxies.len(), 2);
        assert!(load("[server]\ntrusted_proxies = [\"nginx\"]\n").is_err(), "an address, not a name");
        assert!(load("[sip.register]\nuser = \"4900\"\n").is_err(), "a registration needs its registrar and password");
        assert!(load("[sip]\nrign_seconds = 1\n").is_err(), "a misspelt setting is an error");
    }
}

//! A SIP bridge on a node of its own (`lotse bridge`): its calls' staff queue is a Lotse
//! server's, reached over the server's bridge API (`lotse_session::bridge`, served by
//! `lotse-web`). The call's thread waits for each answer (ureq, blocking).

use std::sync::Arc;
use std::time::Duration;

use lotse_call::{QueueError, Staff};
use lotse_core::{CallbackOffer, ConversationId, Lang, Reply};
use lotse_dialog::Conversation;
use lotse_session::bridge::{self, Callback, Commit, Committed, Consent, Hello, Offer, Start, Started, Transfer};

/// The staff queue of the Lotse server at `server` (`http://host:port`), reached with its
/// bridge token. Fails unless the server answers, takes the token and loaded the same
/// knowledge as `kb` (a conversation's topic is an index into it).
pub fn connect(server: &str, token: &str, kb: &lotse_knowledge::KnowledgeBase) -> Result<Staff, QueueError> {
    Ok(Staff::with(Arc::new(Remote::connect(server, token, kb)?)))
}

/// A Lotse server's bridge API. Each request waits at most a few seconds: a server that does
/// not answer leaves the call with the engine's replies (as a failed store does in-process).
/// After a request that found no server, the next 30 s of requests fail at once, so that
/// callers do not wait for a server that is down at every step of every call.
struct Remote {
    base: String,
    auth: String,
    knowledge: String,
    agent: ureq::Agent,
    down_until: std::sync::Mutex<Option<std::time::Instant>>,
}

/// How long one request to the server may take.
const REMOTE_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a server that did not answer is taken to be down.
const DOWN_FOR: Duration = Duration::from_secs(30);

impl Remote {
    fn connect(server: &str, token: &str, kb: &lotse_knowledge::KnowledgeBase) -> Result<Remote, QueueError> {
        if !server.starts_with("http://") {
            // ureq is built without TLS here: the token would not be protected anyway.
            return Err(QueueError(format!(
                "the server must be given as http://HOST:PORT on the city's internal network, not {server:?} \
                 (see docs/sip.md)"
            )));
        }
        if token.chars().count() < bridge::MIN_TOKEN {
            return Err(QueueError(format!("the bridge token needs at least {} characters", bridge::MIN_TOKEN)));
        }
        let config = ureq::Agent::config_builder()
            .timeout_connect(Some(Duration::from_secs(2)))
            .timeout_global(Some(REMOTE_TIMEOUT))
            .build();
        let remote = Remote {
            base: format!("{}{}", server.trim_end_matches('/'), bridge::PREFIX),
            auth: format!("Bearer {token}"),
            knowledge: bridge::fingerprint(kb),
            agent: ureq::Agent::new_with_config(config),
            down_until: std::sync::Mutex::new(None),
        };
        let hello: Hello = remote.get("/hello")?;
        if hello.knowledge != remote.knowledge {
            return Err(QueueError(format!(
                "the server loaded other services or offices ({}) than this bridge ({}): load the same knowledge on both",
                hello.knowledge, remote.knowledge
            )));
        }
        Ok(remote)
    }

    /// The request's error, in words an operator can act on (never a caller's data).
    fn error(&self, path: &str, e: ureq::Error) -> QueueError {
        let what = match e {
            ureq::Error::StatusCode(401) => "the server refused the bridge token".to_string(),
            ureq::Error::StatusCode(404) if path == "/hello" => {
                "the server has no bridge API (set [bridge] token on the server)".to_string()
            }
            ureq::Error::StatusCode(404) => "the server does not know this call (was it restarted?)".to_string(),
            ureq::Error::StatusCode(409) => {
                "the server refused: other knowledge, or a conversation it does not hold".to_string()
            }
            ureq::Error::StatusCode(code) => format!("the server answered {code}"),
            e => {
                // No server, or no answer in time: spare the next requests the wait.
                *self.down_until.lock().unwrap_or_else(|p| p.into_inner()) = Some(std::time::Instant::now() + DOWN_FOR);
                e.to_string()
            }
        };
        QueueError(what)
    }

    /// Fails at once while the server is taken to be down.
    fn up(&self) -> Result<(), QueueError> {
        let down = self.down_until.lock().unwrap_or_else(|p| p.into_inner());
        match *down {
            Some(until) if std::time::Instant::now() < until => {
                Err(QueueError("the server did not answer a moment ago".to_string()))
            }
            _ => Ok(()),
        }
    }

    fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, QueueError> {
        self.up()?;
        let mut response = self
            .agent
            .get(format!("{}{path}", self.base))
            .header("authorization", &self.auth)
            .call()
            .map_err(|e| self.error(path, e))?;
        response.body_mut().read_json().map_err(|e| self.error(path, e))
    }

    fn post<B: serde::Serialize, T: serde::de::DeserializeOwned>(&self, path: &str, body: &B) -> Result<T, QueueError> {
        self.up()?;
        let mut response = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("authorization", &self.auth)
            .send_json(body)
            .map_err(|e| self.error(path, e))?;
        response.body_mut().read_json().map_err(|e| self.error(path, e))
    }

    fn post_empty<B: serde::Serialize>(&self, path: &str, body: &B) -> Result<(), QueueError> {
        self.up()?;
        self.agent
            .post(format!("{}{path}", self.base))
            .header("authorization", &self.auth)
            .send_json(body)
            .map_err(|e| self.error(path, e))?;
        Ok(())
    }

    fn call(&self, id: &ConversationId, what: &str) -> String {
        format!("/calls/{}/{what}", id.as_str())
    }
}

impl lotse_call::staff::Queue for Remote {
    fn start(&self, lang: Lang) -> Result<Started, QueueError> {
        self.post("/calls", &Start { lang, knowledge: self.knowledge.clone() })
    }

    fn commit(&self, id: &ConversationId, conversation: Conversation, reply: Reply) -> Result<Committed, QueueError> {
        self.post(&self.call(id, "commit"), &Commit { conversation, reply, knowledge: self.knowledge.clone() })
    }

    fn put_through(&self, id: &ConversationId) -> Result<(), QueueError> {
        self.post_empty(&self.call(id, "put-through"), &serde_json::json!({}))
    }

    fn callback(&self, id: &ConversationId, phone: &str) -> Result<(), QueueError> {
        self.post_empty(&self.call(id, "callback"), &Callback { phone: phone.to_string() })
    }

    fn vote(&self, id: &ConversationId, helpful: bool) -> Result<Option<u32>, QueueError> {
        let voted: lotse_session::bridge::Voted =
            self.post(&self.call(id, "vote"), &lotse_session::bridge::Vote { helpful })?;
        Ok(voted.turn)
    }

    fn callback_offer(&self, id: &ConversationId, _: &Conversation) -> Option<CallbackOffer> {
        // The server's copy is the one committed: the same as the call's.
        match self.get::<Offer>(&self.call(id, "callback-offer")) {
            Ok(o) => o.offer,
            Err(e) => {
                tracing::warn!(error = %e, "no callback offer from the server");
                None
            }
        }
    }

    fn phone_consent(&self, lang: Lang) -> Option<String> {
        let lang = if lang == Lang::En { "en" } else { "de" };
        match self.get::<Consent>(&format!("/consent/{lang}")) {
            Ok(c) => Some(c.text),
            Err(e) => {
                tracing::warn!(error = %e, "no consent text from the server");
                None
            }
        }
    }

    fn transfer_target(&self, team: &str) -> Option<String> {
        // Team ids and names are the city's words: percent-encode them for the path.
        let team: String = team
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-_.".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        match self.get::<Transfer>(&format!("/teams/{team}/transfer")) {
            Ok(t) => t.target,
            Err(e) => {
                tracing::warn!(error = %e, "no transfer target from the server");
                None
            }
        }
    }
}

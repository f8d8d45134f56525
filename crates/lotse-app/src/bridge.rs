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
struct Remote {
    base: String,
    auth: String,
    knowledge: String,
    agent: ureq::Agent,
}

/// How long one request to the server may take.
const REMOTE_TIMEOUT: Duration = Duration::from_secs(3);

impl Remote {
    fn connect(server: &str, token: &str, kb: &lotse_knowledge::KnowledgeBase) -> Result<Remote, QueueError> {
        let config = ureq::Agent::config_builder()
            .timeout_connect(Some(Duration::from_secs(2)))
            .timeout_global(Some(REMOTE_TIMEOUT))
            .build();
        let remote = Remote {
            base: format!("{}{}", server.trim_end_matches('/'), bridge::PREFIX),
            auth: format!("Bearer {token}"),
            knowledge: bridge::fingerprint(kb),
            agent: ureq::Agent::new_with_config(config),
        };
        let hello: Hello = remote.get("/hello")?;
        if hello.knowledge != remote.knowledge {
            return Err(QueueError(format!(
                "the server loaded other knowledge ({}) than this bridge ({}): load the same directory on both",
                hello.knowledge, remote.knowledge
            )));
        }
        Ok(remote)
    }

    fn error(&self, e: ureq::Error) -> QueueError {
        QueueError(match e {
            ureq::Error::StatusCode(401) => "the server refused the bridge token".to_string(),
            ureq::Error::StatusCode(404) => "not found (does the server allow bridges: [bridge] token?)".to_string(),
            ureq::Error::StatusCode(409) => "the server loaded other knowledge than this bridge".to_string(),
            e => e.to_string(),
        })
    }

    fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, QueueError> {
        let mut response = self
            .agent
            .get(format!("{}{path}", self.base))
            .header("authorization", &self.auth)
            .call()
            .map_err(|e| self.error(e))?;
        response.body_mut().read_json().map_err(|e| self.error(e))
    }

    fn post<B: serde::Serialize, T: serde::de::DeserializeOwned>(&self, path: &str, body: &B) -> Result<T, QueueError> {
        let mut response = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("authorization", &self.auth)
            .send_json(body)
            .map_err(|e| self.error(e))?;
        response.body_mut().read_json().map_err(|e| self.error(e))
    }

    fn post_empty<B: serde::Serialize>(&self, path: &str, body: &B) -> Result<(), QueueError> {
        self.agent
            .post(format!("{}{path}", self.base))
            .header("authorization", &self.auth)
            .send_json(body)
            .map_err(|e| self.error(e))?;
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

//! Events between the nodes that share one PostgreSQL store.
//!
//! Each node keeps its citizens' streams and its staff consoles' streams in memory. With two
//! nodes behind one address, a citizen's stream may be on node A while the member of staff who
//! answers is on node B: B's reply must reach A's stream, and A's citizen's message B's
//! console. Every staff event, and every event of a staff action for a citizen (claimed,
//! typing, a message, closed), is told here as well and sent to the other nodes through
//! PostgreSQL (`NOTIFY` on one channel, in the order told; a [`lotse_handoff::store::Listener`]
//! on each node). A node passes what it receives to its own streams only: nothing is sent on
//! twice, and a node skips what it sent itself. What was said is in the store regardless (the
//! transcript); this carries the live view. With SQLite there is one node and nothing to carry.

use std::sync::Arc;
use std::time::Duration;

use lotse_core::ConversationId;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::{ConversationEvent, Sessions, StaffEvent};

/// The PostgreSQL channel the nodes talk on.
pub const CHANNEL: &str = "lotse_events";

/// Events waiting to be sent to the other nodes; beyond it, one is dropped with a warning
/// (the database is away: the live view suffers, the store keeps what was said).
const QUEUE: usize = 4096;

/// What one node tells the others.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Relayed {
    /// The node that sent it.
    pub node: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub staff: Option<StaffEvent>,
    /// A citizen's conversation and what its stream is told.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation: Option<ConversationId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub citizen: Option<ConversationEvent>,
}

/// This node's side: its name and the queue of what is to be sent.
pub(crate) struct Relay {
    pub node: String,
    /// Listening to the other nodes.
    pub listening: std::sync::atomic::AtomicBool,
    tx: mpsc::Sender<String>,
    rx: std::sync::Mutex<Option<mpsc::Receiver<String>>>,
}

impl Relay {
    pub fn new() -> Relay {
        let (tx, rx) = mpsc::channel(QUEUE);
        Relay {
            node: uuid::Uuid::new_v4().to_string(),
            listening: std::sync::atomic::AtomicBool::new(false),
            tx,
            rx: std::sync::Mutex::new(Some(rx)),
        }
    }

    /// Queues `what` for the other nodes.
    pub fn send(&self, what: Relayed) {
        let Ok(payload) = serde_json::to_string(&what) else { return };
        if payload.len() > lotse_handoff::store::MAX_NOTIFY_BYTES {
            // A staff message of 2,000 characters fits unless most are emoji.
            tracing::warn!(bytes = payload.len(), "an event too long for the other nodes; they show it on reload");
            return;
        }
        if self.tx.try_send(payload).is_err() {
            tracing::warn!("events for the other nodes are queued up; one was dropped");
        }
    }
}

impl Sessions {
    /// Tells the other nodes' staff consoles.
    pub(crate) fn relay_staff(&self, event: &StaffEvent) {
        if let Some(relay) = &self.relay {
            relay.send(Relayed {
                node: relay.node.clone(),
                staff: Some(event.clone()),
                conversation: None,
                citizen: None,
            });
        }
    }

    /// Tells a citizen's stream, here and on the other nodes (a staff action: the citizen's
    /// stream may be anywhere).
    pub(crate) fn to_citizen(&self, id: &ConversationId, event: ConversationEvent) {
        if let Some(relay) = &self.relay {
            relay.send(Relayed {
                node: relay.node.clone(),
                staff: None,
                conversation: Some(id.clone()),
                citizen: Some(event.clone()),
            });
        }
        if let Some(tx) = self.sender(id) {
            tx.send(event);
        }
    }

    /// Passes what another node told to this node's streams.
    async fn received(&self, what: Relayed) {
        if self.relay.as_ref().is_some_and(|r| r.node == what.node) {
            return;
        }
        if let Some(event) = what.staff {
            let queue_moved = matches!(event, StaffEvent::Queue);
            let _ = self.staff_events.send(event);
            if queue_moved {
                // This node's waiting citizens hear their new place.
                self.tell_positions().await;
            }
        }
        if let (Some(id), Some(event)) = (what.conversation, what.citizen)
            && let Some(tx) = self.sender(&id)
        {
            tx.send(event);
        }
    }

    /// Sends this node's events to the others and passes theirs on, until dropped.
    pub(crate) async fn run_relay(self: Arc<Self>) {
        let (Some(relay), Some(desk)) = (&self.relay, &self.desk) else { return };
        let Some(mut outgoing) = relay.rx.lock().unwrap_or_else(|p| p.into_inner()).take() else { return };
        let store = desk.store.clone();
        let sender = tokio::spawn(async move {
            while let Some(payload) = outgoing.recv().await {
                // In order: the next waits for this one (a database that is away is retried).
                for attempt in 0..5u64 {
                    match store.notify(CHANNEL, &payload).await {
                        Ok(()) => break,
                        Err(e) => {
                            tracing::warn!(error = %e, attempt, "an event for the other nodes was not sent yet");
                            tokio::time::sleep(Duration::from_millis(200 * (attempt + 1))).await;
                        }
                    }
                }
            }
        });
        let _abort = crate::AbortOnDrop(sender);
        let mut listener = loop {
            match desk.store.listen(CHANNEL).await {
                Ok(Some(l)) => {
                    relay.listening.store(true, std::sync::atomic::Ordering::SeqCst);
                    break l;
                }
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen to the other nodes yet");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        };
        loop {
            match listener.recv().await {
                Ok(payload) => match serde_json::from_str::<Relayed>(&payload) {
                    Ok(what) => self.received(what).await,
                    Err(e) => tracing::warn!(error = %e, "an event from another node this version cannot read"),
                },
                Err(e) => {
                    tracing::warn!(error = %e, "listening to the other nodes failed; again in a second");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_node_tells_reads_back_the_same() {
        let what = Relayed {
            node: "a".into(),
            staff: None,
            conversation: Some(ConversationId::new("c1")),
            citizen: Some(ConversationEvent::Staff {
                name: "Anna".into(), text: "Guten Tag – „grüß“ 👋".into()
            }),
        };
        let text = serde_json::to_string(&what).unwrap();
        let back: Relayed = serde_json::from_str(&text).unwrap();
        assert_eq!(serde_json::to_string(&back).unwrap(), text);
        let queue = Relayed { node: "b".into(), staff: Some(StaffEvent::Queue), conversation: None, citizen: None };
        let back: Relayed = serde_json::from_str(&serde_json::to_string(&queue).unwrap()).unwrap();
        assert!(matches!(back.staff, Some(StaffEvent::Queue)) && back.citizen.is_none());
    }
}

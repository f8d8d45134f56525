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

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Relayed {
    /// The node that sent it, and its number there (from 1, in the order sent): a receiver
    /// skips a number it has seen (a `NOTIFY` sent again after its reply was lost).
    pub node: String,
    #[serde(default)]
    pub n: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub staff: Option<StaffEvent>,
    /// A citizen's conversation and what its stream is told ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation: Option<ConversationId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub citizen: Option<ConversationEvent>,
    /// ... or, for a staff message too long for `NOTIFY`, its place in the transcript: the
    /// receiver reads it from the store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<i64>,
}

impl Relayed {
    fn staff(event: StaffEvent) -> Relayed {
        Relayed { staff: Some(event), ..Default::default() }
    }

    fn citizen(id: &ConversationId, event: ConversationEvent) -> Relayed {
        Relayed { conversation: Some(id.clone()), citizen: Some(event), ..Default::default() }
    }
}

/// This node's side: its name, the number of the last event it sent, and the queue of what
/// is to be sent.
pub(crate) struct Relay {
    pub node: String,
    sent: AtomicU64,
    /// [`Sessions::run_relay`] runs (a process that never starts it, a command line tool,
    /// queues nothing).
    running: AtomicBool,
    /// Listening to the other nodes.
    pub listening: AtomicBool,
    tx: mpsc::Sender<String>,
    rx: std::sync::Mutex<Option<mpsc::Receiver<String>>>,
    /// The other nodes' queue moved: tell this node's waiting citizens their place (at most
    /// every [`POSITIONS_EVERY`]).
    positions: tokio::sync::Notify,
}

/// How often a node tells its waiting citizens their place after other nodes' queue changes.
const POSITIONS_EVERY: Duration = Duration::from_millis(500);

impl Relay {
    pub fn new() -> Relay {
        let (tx, rx) = mpsc::channel(QUEUE);
        Relay {
            node: uuid::Uuid::new_v4().to_string(),
            sent: AtomicU64::new(0),
            running: AtomicBool::new(false),
            listening: AtomicBool::new(false),
            tx,
            rx: std::sync::Mutex::new(Some(rx)),
            positions: tokio::sync::Notify::new(),
        }
    }

    /// Queues `what` for the other nodes; `shorter` is sent instead when `what` is too long
    /// for `NOTIFY`.
    fn send(&self, mut what: Relayed, shorter: Option<Relayed>) {
        if !self.running.load(Ordering::SeqCst) {
            return;
        }
        what.node.clone_from(&self.node);
        what.n = self.sent.fetch_add(1, Ordering::SeqCst) + 1;
        let Ok(mut payload) = serde_json::to_string(&what) else { return };
        if payload.len() > lotse_handoff::store::MAX_NOTIFY_BYTES {
            let Some(mut shorter) = shorter else {
                tracing::warn!(bytes = payload.len(), "an event too long for the other nodes was not sent");
                return;
            };
            shorter.node.clone_from(&self.node);
            shorter.n = what.n;
            let Ok(p) = serde_json::to_string(&shorter) else { return };
            payload = p;
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
            // A message too long to send: the consoles fetch the transcript instead.
            let shorter = match event {
                StaffEvent::Message { handoff_id, .. } => {
                    Some(Relayed::staff(StaffEvent::Transcript { handoff_id: handoff_id.clone() }))
                }
                _ => None,
            };
            relay.send(Relayed::staff(event.clone()), shorter);
        }
    }

    /// Tells a citizen's stream, here and on the other nodes (a staff action: the citizen's
    /// stream may be anywhere). `line`: the event is that transcript line (a staff message),
    /// which a node reads from the store when the event is too long to send.
    pub(crate) fn to_citizen(&self, id: &ConversationId, event: ConversationEvent, line: Option<i64>) {
        if let Some(relay) = &self.relay {
            let shorter = line.map(|l| Relayed { conversation: Some(id.clone()), line: Some(l), ..Default::default() });
            relay.send(Relayed::citizen(id, event.clone()), shorter);
        }
        if let Some(tx) = self.sender(id) {
            tx.send(event);
        }
    }

    /// Passes what another node told to this node's streams.
    async fn received(&self, what: Relayed, seen: &mut HashMap<String, u64>) {
        let Some(relay) = &self.relay else { return };
        if relay.node == what.node {
            return;
        }
        let last = seen.entry(what.node.clone()).or_default();
        if what.n != 0 && what.n <= *last {
            return;
        }
        *last = what.n;
        if let Some(event) = what.staff {
            if matches!(event, StaffEvent::Queue) {
                relay.positions.notify_one();
            }
            let _ = self.staff_events.send(event);
        }
        let Some(id) = what.conversation else { return };
        let Some(tx) = self.sender(&id) else { return };
        if let Some(event) = what.citizen {
            tx.send(event);
        } else if let (Some(line), Some(desk)) = (what.line, &self.desk) {
            match desk.store.transcript(&id).await {
                Ok(lines) => {
                    if let Some(m) = lines.into_iter().find(|m| m.seq == line) {
                        tx.send(ConversationEvent::Staff {
                            name: m.staff.unwrap_or_default(),
                            text: m.text,
                            line: Some(m.seq),
                        });
                    }
                }
                Err(e) => tracing::warn!(error = %e, "a long staff message from another node could not be read"),
            }
        }
    }

    /// Sends this node's events to the others and passes theirs on, until dropped.
    pub(crate) async fn run_relay(self: Arc<Self>) {
        let (Some(relay), Some(desk)) = (&self.relay, &self.desk) else { return };
        let Some(mut outgoing) = relay.rx.lock().unwrap_or_else(|p| p.into_inner()).take() else { return };
        relay.running.store(true, Ordering::SeqCst);
        let store = desk.store.clone();
        let sender = tokio::spawn(async move {
            while let Some(payload) = outgoing.recv().await {
                // In order: the next waits for this one (a database that is away is retried;
                // one sent twice is skipped by its number).
                for attempt in 1..=5u64 {
                    match store.notify(CHANNEL, &payload).await {
                        Ok(()) => break,
                        Err(e) if attempt == 5 => {
                            tracing::warn!(error = %e, "an event for the other nodes was dropped: the database is away");
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, attempt, "an event for the other nodes was not sent yet");
                            tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
                        }
                    }
                }
            }
        });
        let _sender = crate::AbortOnDrop(sender);
        let positions = {
            let sessions = self.clone();
            tokio::spawn(async move {
                let Some(relay) = &sessions.relay else { return };
                loop {
                    relay.positions.notified().await;
                    sessions.tell_positions().await;
                    tokio::time::sleep(POSITIONS_EVERY).await;
                }
            })
        };
        let _positions = crate::AbortOnDrop(positions);
        let mut listener = loop {
            match desk.store.listen(CHANNEL).await {
                Ok(Some(l)) => {
                    relay.listening.store(true, Ordering::SeqCst);
                    break l;
                }
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen to the other nodes yet");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        };
        let mut seen = HashMap::new();
        loop {
            match listener.recv().await {
                Ok(payload) => match serde_json::from_str::<Relayed>(&payload) {
                    Ok(what) => self.received(what, &mut seen).await,
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
            n: 7,
            ..Relayed::citizen(
                &ConversationId::new("c1"),
                ConversationEvent::Staff {
                    name: "Anna".into(), text: "Guten Tag – „grüß“ 👋".into(), line: Some(7)
                },
            )
        };
        let text = serde_json::to_string(&what).unwrap();
        let back: Relayed = serde_json::from_str(&text).unwrap();
        assert_eq!(serde_json::to_string(&back).unwrap(), text);
        let queue = Relayed::staff(StaffEvent::Queue);
        let back: Relayed = serde_json::from_str(&serde_json::to_string(&queue).unwrap()).unwrap();
        assert!(matches!(back.staff, Some(StaffEvent::Queue)) && back.citizen.is_none() && back.line.is_none());
        // A newer node's event with fields this one does not know still reads.
        let newer = r#"{"node":"c","n":3,"staff":{"type":"queue"},"priority":1}"#;
        assert_eq!(serde_json::from_str::<Relayed>(newer).unwrap().n, 3);
    }
}

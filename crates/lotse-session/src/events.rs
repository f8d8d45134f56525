//! What a conversation's participants are told, live: the citizen's channel gets
//! [`ConversationEvent`]s (the web's server-sent events, the phone), staff consoles get
//! [`StaffEvent`]s. Both are closed enums: a new channel or plug-in subscribes, it adds nothing.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use lotse_core::{HandoffInfo, Reply};
use lotse_handoff::{Author, HandoffId};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

/// What a conversation's stream carries.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ConversationEvent {
    /// The citizen's message, as received (cleaned).
    Message { text: String },
    /// The grounded part of a reply that the language model is writing: shown at once.
    Facts {
        #[serde(with = "shared")]
        reply: Arc<Reply>,
    },
    /// A verified sentence of the generated text.
    Delta { text: String },
    /// A reply of the assistant (final: it replaces the facts and deltas before it).
    /// Shared: the kept events and every subscriber's slot hold one copy, not one each.
    Reply {
        #[serde(with = "shared")]
        reply: Arc<Reply>,
    },
    /// Where the handoff stands now, with the words to show or say.
    Handoff { handoff: Box<HandoffInfo>, text: String },
    /// A staff member's message; `line` is its place in the stored conversation, which its
    /// line in the transcript carries too (a client that read both shows it once).
    Staff {
        name: String,
        text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        line: Option<i64>,
    },
    /// Staff started or stopped typing.
    Typing { typing: bool },
}

/// A shared reply, written and read as the reply itself.
mod shared {
    use std::sync::Arc;

    use lotse_core::Reply;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(reply: &Arc<Reply>, s: S) -> Result<S::Ok, S::Error> {
        reply.as_ref().serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Arc<Reply>, D::Error> {
        Reply::deserialize(d).map(Arc::new)
    }
}

impl ConversationEvent {
    /// The event's name (the `type` tag).
    pub fn name(&self) -> &'static str {
        match self {
            ConversationEvent::Message { .. } => "message",
            ConversationEvent::Facts { .. } => "facts",
            ConversationEvent::Delta { .. } => "delta",
            ConversationEvent::Reply { .. } => "reply",
            ConversationEvent::Handoff { .. } => "handoff",
            ConversationEvent::Staff { .. } => "staff",
            ConversationEvent::Typing { .. } => "typing",
        }
    }
}

impl ConversationEvent {
    /// Whether a client that reconnects gets the event again: what was said and where the
    /// handoff stands, not typing notices or the parts of a reply its final form replaces.
    fn replayable(&self) -> bool {
        !matches!(
            self,
            ConversationEvent::Typing { .. } | ConversationEvent::Facts { .. } | ConversationEvent::Delta { .. }
        )
    }
}

/// An event with its number in the conversation's stream.
pub type Numbered = (u64, ConversationEvent);

/// How many of a conversation's events are kept for a client that reconnects.
pub const KEPT_EVENTS: usize = 64;

/// A conversation's events, numbered, with the last [`KEPT_EVENTS`] kept, so that a client
/// whose stream broke (a train's tunnel, a phone that slept) gets what it missed when it
/// reconnects with the number of the last event it saw (`Last-Event-ID`). Numbers go on
/// across restarts of the process (they start from the clock), so a number from before a
/// restart is below every new one.
#[derive(Clone)]
pub struct EventLog(Arc<LogInner>);

struct LogInner {
    tx: broadcast::Sender<(u64, ConversationEvent)>,
    /// The last number given, and the events kept.
    kept: Mutex<(u64, VecDeque<(u64, ConversationEvent)>)>,
}

impl Default for EventLog {
    fn default() -> Self {
        Self::new()
    }
}

impl EventLog {
    pub fn new() -> EventLog {
        let first = lotse_handoff::store::now_ms().max(0) as u64 * 1000;
        EventLog(Arc::new(LogInner {
            tx: broadcast::channel(64).0,
            // Grown as events come: most conversations have a few.
            kept: Mutex::new((first, VecDeque::new())),
        }))
    }

    /// Numbers the event, keeps it if a reconnecting client needs it, and tells the
    /// subscribers.
    pub fn send(&self, event: ConversationEvent) {
        let mut kept = self.0.kept.lock().unwrap_or_else(|p| p.into_inner());
        kept.0 += 1;
        let seq = kept.0;
        if event.replayable() {
            if kept.1.len() == KEPT_EVENTS {
                kept.1.pop_front();
            }
            kept.1.push_back((seq, event.clone()));
        }
        // Sent under the lock: a subscriber gets each event once, replayed or live.
        let _ = self.0.tx.send((seq, event));
    }

    /// The number of the last event sent.
    pub fn last(&self) -> u64 {
        self.0.kept.lock().unwrap_or_else(|p| p.into_inner()).0
    }

    /// How many clients listen (a citizen with an open stream is present).
    pub fn receiver_count(&self) -> usize {
        self.0.tx.receiver_count()
    }

    /// The kept events after number `after` (none without one), and the live ones from now.
    pub fn subscribe(&self, after: Option<u64>) -> (Vec<Numbered>, broadcast::Receiver<Numbered>) {
        let kept = self.0.kept.lock().unwrap_or_else(|p| p.into_inner());
        let replay = after.map(|a| kept.1.iter().filter(|(seq, _)| *seq > a).cloned().collect()).unwrap_or_default();
        (replay, self.0.tx.subscribe())
    }
}

/// What staff consoles are told, live.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StaffEvent {
    /// The queue changed (arrival, claim, release, close): fetch it again.
    Queue,
    /// New transcript lines of a handed-over conversation (fetch them if it is open).
    Transcript {
        handoff_id: HandoffId,
    },
    /// A line in a handed-over conversation.
    Message {
        handoff_id: HandoffId,
        author: Author,
        staff: Option<String>,
        text: String,
        at_ms: i64,
    },
    Typing {
        handoff_id: HandoffId,
        who: Author,
        typing: bool,
    },
    /// A conversation ended (closed, abandoned, deleted by the citizen).
    Closed {
        handoff_id: HandoffId,
    },
    /// The callback list changed.
    Callbacks,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn staff(text: &str) -> ConversationEvent {
        ConversationEvent::Staff { name: "Anna".into(), text: text.into(), line: None }
    }

    #[test]
    fn a_reconnecting_client_gets_what_it_missed_once() {
        let log = EventLog::new();
        let (_, mut rx) = log.subscribe(None);
        log.send(staff("eins"));
        let (seen, _) = rx.try_recv().unwrap();
        log.send(ConversationEvent::Typing { typing: true });
        log.send(staff("zwei"));
        log.send(staff("drei"));
        let (replay, mut live) = log.subscribe(Some(seen));
        let texts: Vec<String> = replay
            .iter()
            .map(|(_, e)| match e {
                ConversationEvent::Staff { text, .. } => text.clone(),
                other => panic!("not kept: {other:?}"),
            })
            .collect();
        assert_eq!(texts, ["zwei", "drei"]);
        assert!(replay.windows(2).all(|w| w[0].0 < w[1].0), "numbered in order");
        assert!(live.try_recv().is_err(), "nothing twice");
        log.send(staff("vier"));
        assert!(live.try_recv().unwrap().0 > replay[1].0);
        // Only the last KEPT_EVENTS are kept; a fresh client gets none.
        for i in 0..100 {
            log.send(staff(&i.to_string()));
        }
        assert_eq!(log.subscribe(Some(0)).0.len(), KEPT_EVENTS);
        assert!(log.subscribe(None).0.is_empty());
        // A number from before a restart (a millisecond or more ago) is below every new one.
        std::thread::sleep(std::time::Duration::from_millis(2));
        let restarted = EventLog::new();
        restarted.send(staff("nach dem Neustart"));
        assert_eq!(restarted.subscribe(Some(seen)).0.len(), 1);
    }
}

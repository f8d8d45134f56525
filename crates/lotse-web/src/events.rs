//! What the server tells the people in a conversation, live: staff consoles get [`StaffEvent`]s,
//! a citizen's open stream gets the handoff's state and place in the queue ([`tell`]). Both the
//! citizen's side (`handoff`) and the console (`staff`) send them; neither imports the other.

use lotse_dialog::handoff_text;
use lotse_handoff::{Author, Handoff, QueueState};
use serde::Serialize;
use tokio::sync::broadcast;

use crate::{AppState, StreamEvent};

/// What staff consoles are told, live.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StaffEvent {
    /// The queue changed (arrival, claim, release, close): fetch it again.
    Queue,
    /// New transcript lines of a conversation (fetch them if it is open).
    Transcript {
        conversation_id: String,
    },
    /// A line in a handed-over conversation.
    Message {
        handoff_id: String,
        author: Author,
        staff: Option<String>,
        text: String,
        at_ms: i64,
    },
    Typing {
        handoff_id: String,
        who: Author,
        typing: bool,
    },
    /// A conversation ended (closed, abandoned, deleted by the citizen).
    Closed {
        handoff_id: String,
    },
    /// The callback list changed.
    Callbacks,
}

/// The event stream of a conversation the server holds.
pub(crate) fn sender(state: &AppState, id: &str) -> Option<broadcast::Sender<StreamEvent>> {
    state.lock().get(id).map(|e| e.events.clone())
}

/// Tells a conversation's client where its handoff stands.
pub(crate) async fn tell(state: &AppState, h: &Handoff) {
    let (Some(desk), Some(tx)) = (&state.desk, sender(state, &h.conversation_id)) else { return };
    if let Ok(info) = desk.info(h).await {
        let _ = tx.send(StreamEvent::Handoff { text: handoff_text(&info, h.lang), handoff: info });
    }
}

/// Tells every waiting citizen their place and estimate again (after the queue moved).
pub(crate) async fn tell_positions(state: &AppState) {
    let Some(desk) = &state.desk else { return };
    let Ok(queue) = desk.store.queue().await else { return };
    for h in queue.iter().filter(|h| h.state == QueueState::Waiting) {
        tell(state, h).await;
    }
}

//! The staff side of a handoff: claim, reply, typing, release, hand back or close, callbacks
//! scheduled and done, suggestions from the knowledge, and who is present. The console's HTTP
//! layer checks the login and the request; what happens to the conversation happens here.

use std::sync::Arc;

use lotse_core::{HandoffInfo, HandoffState, ReplyKind, Source};
use lotse_dialog::{handoff_text, understand};
use lotse_handoff::store::{StaffAccount, now_ms};
use lotse_handoff::{Author, Callback, CallbackId, Desk, Handoff, HandoffId, Outcome, QueueState};

use crate::{ConversationEvent, SessionError, Sessions, StaffEvent};

/// An answer from the knowledge for one of the citizen's questions, for staff to adapt and send.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Suggestion {
    pub question: String,
    pub text: String,
    pub sources: Vec<Source>,
}

/// A staff member's open console: present while it lives.
pub struct Presence {
    sessions: Arc<Sessions>,
    name: String,
}

impl Drop for Presence {
    fn drop(&mut self) {
        let mut p = self.sessions.presence.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = p.get_mut(&self.name) {
            *n = n.saturating_sub(1);
        }
    }
}

fn ensure_mine(h: &Handoff, account: &StaffAccount) -> Result<(), SessionError> {
    if h.claimed_by.as_deref() != Some(account.name.as_str())
        || !matches!(h.state, QueueState::Claimed | QueueState::Active)
    {
        return Err(SessionError::NotYours);
    }
    Ok(())
}

impl Sessions {
    fn staff_desk(&self) -> Result<&Desk, SessionError> {
        self.desk.as_ref().ok_or(SessionError::NoStaff)
    }

    /// A staff member opened the console: present (for the sweeper) until the guard drops.
    pub async fn staff_present(self: &Arc<Self>, name: &str) -> Presence {
        *self.presence.lock().unwrap_or_else(|p| p.into_inner()).entry(name.to_string()).or_default() += 1;
        if let Some(desk) = &self.desk {
            let _ = desk.store.staff_seen(name, now_ms()).await;
        }
        Presence { sessions: self.clone(), name: name.to_string() }
    }

    pub async fn claim(&self, handoff_id: &HandoffId, account: &StaffAccount) -> Result<Handoff, SessionError> {
        let desk = self.staff_desk()?;
        let now = now_ms();
        let h = desk.store.claim(handoff_id, &account.name, now).await?;
        let line = format!("{} hat das Gespräch übernommen.", account.display_name);
        desk.store.append(&h.conversation_id, Author::System, None, &line, &[], now).await?;
        tracing::info!(handoff = %h.id, "claimed");
        self.note(
            &h.conversation_id,
            lotse_handoff::log::Event::Handoff { channel: h.channel, state: "claimed".into() },
        );
        self.tell_everywhere(&h).await;
        self.tell_staff(StaffEvent::Queue);
        self.tell_positions().await;
        Ok(h)
    }

    /// A staff member's message to the citizen (stored first); returns its place in the transcript.
    pub async fn staff_reply(
        &self,
        handoff_id: &HandoffId,
        account: &StaffAccount,
        text: &str,
    ) -> Result<i64, SessionError> {
        let desk = self.staff_desk()?;
        let h = desk.store.handoff(handoff_id).await?;
        ensure_mine(&h, account)?;
        let now = now_ms();
        let seq =
            desk.store.append(&h.conversation_id, Author::Staff, Some(&account.display_name), text, &[], now).await?;
        desk.store.activate(&h.id, &account.name, now).await?;
        // Into the conversation's log even when this process no longer held it (a restart):
        // the citizen's stream, or their next connection, gets it.
        // (And on the other nodes: the citizen's stream may be there.)
        let _ = self.entry(&h.conversation_id).await;
        self.to_citizen(&h.conversation_id, ConversationEvent::Typing { typing: false }, None);
        self.to_citizen(
            &h.conversation_id,
            ConversationEvent::Staff { name: account.display_name.clone(), text: text.to_string(), line: Some(seq) },
            Some(seq),
        );
        self.tell_staff(StaffEvent::Message {
            handoff_id: h.id.clone(),
            author: Author::Staff,
            staff: Some(account.display_name.clone()),
            text: text.to_string(),
            at_ms: now,
        });
        Ok(seq)
    }

    pub async fn staff_typing(
        &self,
        handoff_id: &HandoffId,
        account: &StaffAccount,
        typing: bool,
    ) -> Result<(), SessionError> {
        let desk = self.staff_desk()?;
        let h = desk.store.handoff(handoff_id).await?;
        ensure_mine(&h, account)?;
        self.to_citizen(&h.conversation_id, ConversationEvent::Typing { typing }, None);
        Ok(())
    }

    /// Back into the queue, for someone else.
    pub async fn release(&self, handoff_id: &HandoffId, account: &StaffAccount) -> Result<Handoff, SessionError> {
        let desk = self.staff_desk()?;
        let h = desk.store.handoff(handoff_id).await?;
        ensure_mine(&h, account)?;
        let h = desk.store.release(handoff_id).await?;
        let line = "Zurück in die Warteschlange gelegt.";
        let _ = desk.store.append(&h.conversation_id, Author::System, None, line, &[], now_ms()).await;
        self.tell_staff(StaffEvent::Queue);
        self.tell_positions().await;
        Ok(h)
    }

    /// Ends the staff part with an outcome (`HandedBack`: the assistant answers again).
    /// Anyone may close a waiting conversation (a duplicate, spam); a claimed one only its owner.
    pub async fn finish(
        &self,
        handoff_id: &HandoffId,
        account: &StaffAccount,
        outcome: Outcome,
        note: Option<&str>,
    ) -> Result<Handoff, SessionError> {
        let desk = self.staff_desk()?;
        let h = desk.store.handoff(handoff_id).await?;
        if h.state != QueueState::Waiting {
            ensure_mine(&h, account)?;
        }
        let now = now_ms();
        let h = desk.store.close(handoff_id, outcome, note, now).await?;
        let line = if outcome == Outcome::HandedBack {
            format!("{} hat das Gespräch an den Assistenten zurückgegeben.", account.display_name)
        } else {
            format!("{} hat das Gespräch beendet.", account.display_name)
        };
        let _ = desk.store.append(&h.conversation_id, Author::System, None, &line, &[], now).await;
        tracing::info!(handoff = %h.id, outcome = outcome.as_str(), "closed");
        let info = HandoffInfo { state: HandoffState::Closed, ..Default::default() };
        self.to_citizen(
            &h.conversation_id,
            ConversationEvent::Handoff { text: handoff_text(&info, h.lang), handoff: Box::new(info) },
            None,
        );
        self.tell_staff(StaffEvent::Closed { handoff_id: h.id.clone() });
        self.tell_staff(StaffEvent::Queue);
        self.tell_positions().await;
        Ok(h)
    }

    /// Answers from the knowledge for the citizen's last two questions. A scratch conversation
    /// answers them: the citizen's is not touched, and no handoff happens.
    pub async fn suggestions(&self, handoff_id: &HandoffId) -> Result<Vec<Suggestion>, SessionError> {
        let desk = self.staff_desk()?;
        let h = desk.store.handoff(handoff_id).await?;
        let transcript = desk.store.transcript(&h.conversation_id).await?;
        let questions: Vec<String> = transcript
            .iter()
            .rev()
            .filter(|m| m.author == Author::Citizen && understand::intent(&m.text) == understand::Intent::Question)
            .map(|m| m.text.clone())
            .take(2)
            .collect();
        let engine = self.engine.clone();
        let lang = h.lang;
        let out = tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            for q in questions {
                let mut scratch = lotse_dialog::Conversation::new("suggestion".into(), lotse_core::Channel::Web, lang);
                scratch.lang_chosen = true;
                let r = engine.respond(&mut scratch, lotse_dialog::TurnRequest::new(&q));
                if r.kind == ReplyKind::Answer {
                    out.push(Suggestion { question: q, text: r.text, sources: r.sources });
                }
            }
            out
        })
        .await
        .unwrap_or_default();
        Ok(out)
    }

    /// A staff member plans to call back at `at_ms`.
    pub async fn schedule_callback(
        &self,
        id: &CallbackId,
        account: &StaffAccount,
        at_ms: i64,
    ) -> Result<Callback, SessionError> {
        let c = self.staff_desk()?.store.schedule_callback(id, &account.name, at_ms).await?;
        self.tell_staff(StaffEvent::Callbacks);
        Ok(c)
    }

    /// The callback happened (with an optional note).
    pub async fn complete_callback(
        &self,
        id: &CallbackId,
        account: &StaffAccount,
        note: Option<&str>,
    ) -> Result<Callback, SessionError> {
        let c = self.staff_desk()?.store.complete_callback(id, &account.name, note, now_ms()).await?;
        self.tell_staff(StaffEvent::Callbacks);
        Ok(c)
    }
}

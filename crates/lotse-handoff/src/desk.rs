//! The staff desk: what a channel asks once the engine has decided on a person. It routes a
//! conversation to its team, queues it within staff hours and offers a callback outside them,
//! and tells the citizen where they stand.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, RwLock};

use jiff::Timestamp;
use lotse_core::calendar::Zone;
use lotse_core::{CallbackOffer, HandoffInfo, HandoffState, Lang, Source};
use lotse_dialog::{Conversation, HandoffReason};
use lotse_knowledge::KnowledgeBase;
use serde::Deserialize;

use crate::schedule::{Schedule, Window};
use crate::store::{Callback, CallbackState, Handoff, NewHandoff, QueueState, Store, StoreError};

/// The `[handoff]` section of `lotse.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HandoffConfig {
    /// `sqlite:data/lotse.db` (the default, embedded) or `postgres://user:password@host/db`.
    pub database: String,
    /// Transcripts and contact data are deleted this many days after a handoff ended.
    pub retention_days: u32,
    /// A citizen gone (no open events stream, no message) this long is marked abandoned.
    pub abandon_after_seconds: u64,
    /// A staff member whose console has been disconnected this long loses their
    /// conversations back to the queue.
    pub staff_timeout_seconds: u64,
    /// A staff session ends after this much inactivity, and after `session_max_hours` in any case.
    pub session_idle_minutes: u64,
    pub session_max_hours: u64,
    /// Send staff cookies with `Secure` (only over HTTPS, and on localhost). Leave on.
    pub secure_cookies: bool,
    /// Teams, reachable hours and exceptions; admins can change them in the console.
    pub schedule: Schedule,
    /// Who is named in the callback consent text.
    pub organisation: String,
    /// How often presence, abandonment and staff timeouts are checked.
    pub sweep_millis: u64,
}

impl Default for HandoffConfig {
    fn default() -> Self {
        HandoffConfig {
            database: "sqlite:data/lotse.db".into(),
            retention_days: 30,
            abandon_after_seconds: 300,
            staff_timeout_seconds: 120,
            session_idle_minutes: 30,
            session_max_hours: 12,
            secure_cookies: true,
            schedule: Schedule::default(),
            organisation: "Stadtverwaltung Jena".into(),
            sweep_millis: 5000,
        }
    }
}

/// The staff desk. Cheap to clone.
#[derive(Clone)]
pub struct Desk {
    pub store: Store,
    schedule: Arc<RwLock<Schedule>>,
    /// Days to keep transcripts and contact data (the configuration's, or an admin's choice).
    retention_days: Arc<AtomicU32>,
    zone: Zone,
    kb: Arc<KnowledgeBase>,
    pub config: Arc<HandoffConfig>,
}

/// The schedule setting's name in the store (admins' edits override `lotse.toml`).
pub const SCHEDULE_SETTING: &str = "schedule";
pub const RETENTION_SETTING: &str = "retention_days";

impl Desk {
    /// A desk over `store`; an admin's saved schedule and retention (if any) override the
    /// configuration's.
    pub async fn new(
        store: Store,
        config: HandoffConfig,
        kb: Arc<KnowledgeBase>,
        zone: Zone,
    ) -> Result<Desk, StoreError> {
        let mut config = config;
        if let Some(text) = store.setting(SCHEDULE_SETTING).await?
            && let Ok(s) = Schedule::from_toml(&text)
        {
            config.schedule = s;
        }
        if let Some(days) = store.setting(RETENTION_SETTING).await?.and_then(|d| d.parse().ok()) {
            config.retention_days = days;
        }
        Ok(Desk {
            store,
            schedule: Arc::new(RwLock::new(config.schedule.clone())),
            retention_days: Arc::new(AtomicU32::new(config.retention_days)),
            zone,
            kb,
            config: Arc::new(config),
        })
    }

    pub fn schedule(&self) -> Schedule {
        self.schedule.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Replaces the schedule (validated) and stores it.
    pub async fn set_schedule(&self, schedule: Schedule) -> Result<(), StoreError> {
        self.store.set_setting(SCHEDULE_SETTING, &schedule.to_toml()).await?;
        *self.schedule.write().unwrap_or_else(|p| p.into_inner()) = schedule;
        Ok(())
    }

    pub fn retention_days(&self) -> u32 {
        self.retention_days.load(Ordering::Relaxed)
    }

    /// Sets the retention period and stores it.
    pub async fn set_retention_days(&self, days: u32) -> Result<(), StoreError> {
        self.store.set_setting(RETENTION_SETTING, &days.to_string()).await?;
        self.retention_days.store(days, Ordering::Relaxed);
        Ok(())
    }

    /// The city's time zone and state (for the schedule's hours and holidays).
    pub fn zone(&self) -> &Zone {
        &self.zone
    }

    /// Whether the general team is reachable at `at` (staff hours).
    pub fn general_open(&self, at: Timestamp) -> bool {
        let schedule = self.schedule.read().unwrap_or_else(|p| p.into_inner());
        schedule.is_open(&schedule.general, at, &self.zone)
    }

    pub fn team_name(&self, id: &str) -> String {
        let schedule = self.schedule.read().unwrap_or_else(|p| p.into_inner());
        schedule.team(id).map(|t| t.name.clone()).unwrap_or_else(|| id.to_string())
    }

    /// Where a team's calls are put through (its `transfer` URI), for a team named by its id or
    /// its name, as the schedule is now (the console edits it).
    pub fn transfer_target(&self, team: &str) -> Option<String> {
        let schedule = self.schedule.read().unwrap_or_else(|p| p.into_inner());
        schedule.teams.iter().find(|t| t.name == team || t.id == team)?.transfer.clone()
    }

    /// The consent a citizen gives with a callback request.
    pub fn consent_text(&self, lang: Lang) -> String {
        let days = self.retention_days();
        let org = &self.config.organisation;
        match lang {
            Lang::De => format!(
                "Ich bin einverstanden, dass die {org} meine Telefonnummer oder E-Mail-Adresse speichert, um mich zu meinem Anliegen anzurufen oder mir zu schreiben. Die Angaben werden {days} Tage nach der Bearbeitung gelöscht."
            ),
            Lang::En => format!(
                "I agree that the {org} stores my phone number or e-mail address to call or write to me about my request. The data is deleted {days} days after it has been dealt with."
            ),
        }
    }

    /// The consent a caller is asked for in words before a callback by phone: a question,
    /// answered by yes or a key.
    pub fn phone_consent(&self, lang: Lang) -> String {
        // "We": the greeting has named the administration whose assistant answers.
        let days = self.retention_days();
        match lang {
            Lang::De => format!(
                "Dafür speichern wir Ihre Nummer und Ihr Anliegen, bis {days} Tage nach dem Rückruf. Sind Sie einverstanden?"
            ),
            Lang::En => {
                format!(
                    "For that, we store your number and your request until {days} days after the call. Do you agree?"
                )
            }
        }
    }

    /// The callback the conversation's team can offer from now: within its hours the current
    /// window (a caller whose transfer failed), outside them the next one.
    pub fn callback_offer(&self, conv: &Conversation) -> Option<CallbackOffer> {
        let team = self.team_for(conv);
        let window = self.callback_window(&team, Timestamp::now())?;
        Some(self.offer(&window, conv.lang))
    }

    /// The service a conversation is about, its responsible offices and its source.
    fn topic(&self, conv: &Conversation) -> (Option<String>, Vec<String>, Vec<Source>) {
        let Some(s) = conv.topic.and_then(|i| self.kb.services.get(i)) else {
            return (None, Vec::new(), Vec::new());
        };
        let offices = s.responsible.iter().map(|r| r.office.to_string()).collect();
        let sources =
            vec![Source { id: s.id.clone(), title: s.name.clone(), url: s.source.clone(), as_of: s.as_of.clone() }];
        (Some(s.name.clone()), offices, sources)
    }

    /// The team a conversation goes to.
    pub fn team_for(&self, conv: &Conversation) -> String {
        let (_, offices, _) = self.topic(conv);
        let schedule = self.schedule.read().unwrap_or_else(|p| p.into_inner());
        schedule.route(offices.iter().map(String::as_str)).id.clone()
    }

    fn offer(&self, window: &Window, lang: Lang) -> CallbackOffer {
        CallbackOffer {
            slot: window.describe(lang == Lang::En),
            slot_start: window.start.timestamp().to_string(),
            consent: self.consent_text(lang),
        }
    }

    /// The next window in which `team` handles callbacks, from `at`.
    pub fn callback_window(&self, team: &str, at: Timestamp) -> Option<Window> {
        let s = self.schedule();
        s.current(team, at, &self.zone).or_else(|| s.next_opening(team, at, &self.zone))
    }

    /// What the citizen of a queued conversation is told now.
    pub async fn info(&self, h: &Handoff) -> Result<HandoffInfo, StoreError> {
        let team = Some(self.team_name(&h.team));
        Ok(match h.state {
            QueueState::Waiting => {
                let position = self.store.position(h).await?;
                let wait = match position {
                    Some(p) => self.store.wait_estimate(&h.team, p, crate::store::now_ms()).await?,
                    None => None,
                };
                HandoffInfo { state: HandoffState::Queued, position, wait_minutes: wait, team, ..Default::default() }
            }
            QueueState::Claimed | QueueState::Active => {
                let staff = match &h.claimed_by {
                    Some(name) => self.store.staff(name).await?.map(|a| a.display_name),
                    None => None,
                };
                HandoffInfo { state: HandoffState::Connected, staff, team, ..Default::default() }
            }
            QueueState::Closed | QueueState::Abandoned => {
                HandoffInfo { state: HandoffState::Closed, team, ..Default::default() }
            }
        })
    }

    /// What the citizen is told about their stored callback request.
    pub fn callback_info(&self, c: &Callback, lang: Lang) -> HandoffInfo {
        let start = Timestamp::from_millisecond(c.slot_start_ms).unwrap_or(Timestamp::UNIX_EPOCH);
        let end = Timestamp::from_millisecond(c.slot_end_ms).unwrap_or(Timestamp::UNIX_EPOCH);
        let window = Window { start: start.to_zoned(self.zone.tz.clone()), end: end.to_zoned(self.zone.tz.clone()) };
        let state = if c.state == CallbackState::Done { HandoffState::Closed } else { HandoffState::CallbackScheduled };
        HandoffInfo {
            state,
            team: Some(self.team_name(&c.team)),
            callback: Some(self.offer(&window, lang)),
            ..Default::default()
        }
    }

    /// Queues the conversation within staff hours, or offers a callback outside them. The
    /// session calls it after the engine decided on a handoff ([`Conversation::requested_handoff`]).
    pub async fn request(
        &self,
        conv: &Conversation,
        reason: HandoffReason,
        at: Timestamp,
    ) -> Result<HandoffInfo, StoreError> {
        if let Some(open) = self.store.open_handoff(&conv.id).await? {
            return self.info(&open).await;
        }
        if let Some(c) = self.store.pending_callback(&conv.id).await? {
            return Ok(self.callback_info(&c, conv.lang));
        }
        let team = self.team_for(conv);
        let schedule = self.schedule();
        if schedule.is_open(&team, at, &self.zone) {
            let (service, _, sources) = self.topic(conv);
            let new = NewHandoff {
                conversation_id: conv.id.clone(),
                team,
                reason: match reason {
                    HandoffReason::Asked => "asked",
                    HandoffReason::RepeatedFailure => "repeated_failure",
                }
                .into(),
                lang: conv.lang,
                channel: conv.channel,
                service,
                sources,
                retention_days: self.retention_days(),
            };
            let h = self.store.enqueue(new, at.as_millisecond()).await?;
            tracing::info!(handoff = %h.id, team = %h.team, "conversation queued for staff");
            return self.info(&h).await;
        }
        let window = schedule.next_opening(&team, at, &self.zone);
        Ok(HandoffInfo {
            state: HandoffState::CallbackOffered,
            team: Some(self.team_name(&team)),
            callback: window.map(|w| self.offer(&w, conv.lang)),
            ..Default::default()
        })
    }
}

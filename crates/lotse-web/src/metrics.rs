//! Counters for `/metrics` in the Prometheus text format. A handful of atomics rendered by hand:
//! the format is a few lines of text and a metrics library would add more than it saves.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use lotse_core::ReplyKind;

#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Upper bounds of the turn latency histogram, in seconds.
const BUCKETS: [f64; 8] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0];

#[derive(Debug, Default)]
pub struct Metrics {
    pub conversations: Counter,
    pub rate_limited: Counter,
    /// Connections closed at once: the server's or the client's connections were all open.
    pub connections_refused: Counter,
    /// Event streams refused: all open, in all or for the conversation.
    pub streams_refused: Counter,
    /// Turns answered without the costly retrieval stage because the server was busy.
    pub shed: Counter,
    replies: [Counter; 6],
    turn_buckets: [Counter; 8],
    turns: Counter,
    turn_micros: Counter,
}

fn kind_index(kind: ReplyKind) -> usize {
    match kind {
        ReplyKind::Answer => 0,
        ReplyKind::Clarify => 1,
        ReplyKind::OutOfScope => 2,
        ReplyKind::Handoff => 3,
        ReplyKind::Greeting => 4,
        ReplyKind::Smalltalk => 5,
    }
}

const KIND_NAMES: [&str; 6] = ["answer", "clarify", "out_of_scope", "handoff", "greeting", "smalltalk"];

impl Metrics {
    pub fn reply(&self, kind: ReplyKind) {
        self.replies[kind_index(kind)].inc();
    }

    pub fn turn(&self, took: Duration) {
        self.turns.inc();
        self.turn_micros.0.fetch_add(took.as_micros() as u64, Ordering::Relaxed);
        let secs = took.as_secs_f64();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                self.turn_buckets[i].inc();
            }
        }
    }

    pub fn render(&self, active_conversations: usize) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# HELP lotse_conversations_started_total Conversations started.");
        let _ = writeln!(s, "# TYPE lotse_conversations_started_total counter");
        let _ = writeln!(s, "lotse_conversations_started_total {}", self.conversations.get());
        let _ = writeln!(s, "# HELP lotse_conversations_active Conversations held in memory.");
        let _ = writeln!(s, "# TYPE lotse_conversations_active gauge");
        let _ = writeln!(s, "lotse_conversations_active {active_conversations}");
        let _ = writeln!(s, "# HELP lotse_replies_total Replies by kind.");
        let _ = writeln!(s, "# TYPE lotse_replies_total counter");
        for (i, name) in KIND_NAMES.iter().enumerate() {
            let _ = writeln!(s, "lotse_replies_total{{kind=\"{name}\"}} {}", self.replies[i].get());
        }
        let _ = writeln!(s, "# HELP lotse_rate_limited_total Requests refused by the rate limiter.");
        let _ = writeln!(s, "# TYPE lotse_rate_limited_total counter");
        let _ = writeln!(s, "lotse_rate_limited_total {}", self.rate_limited.get());
        let _ = writeln!(s, "# HELP lotse_connections_refused_total Connections closed at once: too many open.");
        let _ = writeln!(s, "# TYPE lotse_connections_refused_total counter");
        let _ = writeln!(s, "lotse_connections_refused_total {}", self.connections_refused.get());
        let _ = writeln!(s, "# HELP lotse_streams_refused_total Event streams refused: too many open.");
        let _ = writeln!(s, "# TYPE lotse_streams_refused_total counter");
        let _ = writeln!(s, "lotse_streams_refused_total {}", self.streams_refused.get());
        let _ = writeln!(s, "# HELP lotse_turns_shed_total Turns answered without embedding re-ranking under load.");
        let _ = writeln!(s, "# TYPE lotse_turns_shed_total counter");
        let _ = writeln!(s, "lotse_turns_shed_total {}", self.shed.get());
        let _ = writeln!(s, "# HELP lotse_turn_seconds Time to answer a message.");
        let _ = writeln!(s, "# TYPE lotse_turn_seconds histogram");
        for (i, bound) in BUCKETS.iter().enumerate() {
            let _ = writeln!(s, "lotse_turn_seconds_bucket{{le=\"{bound}\"}} {}", self.turn_buckets[i].get());
        }
        let _ = writeln!(s, "lotse_turn_seconds_bucket{{le=\"+Inf\"}} {}", self.turns.get());
        let _ = writeln!(s, "lotse_turn_seconds_sum {}", self.turn_micros.get() as f64 / 1e6);
        let _ = writeln!(s, "lotse_turn_seconds_count {}", self.turns.get());
        s
    }
}

/// The language model's counters in Prometheus text.
pub fn render_llm(stats: &lotse_dialog::LlmStats) -> String {
    use lotse_dialog::LlmStats as S;
    let mut s = String::new();
    let _ = writeln!(s, "# HELP lotse_llm_answers_total Answers the language model was asked for, by outcome.");
    let _ = writeln!(s, "# TYPE lotse_llm_answers_total counter");
    for (outcome, counter) in [
        ("accepted", &stats.accepted),
        ("rejected_by_verifier", &stats.rejected),
        ("abstained", &stats.abstained),
        ("busy", &stats.busy),
        ("cancelled", &stats.cancelled),
        ("error", &stats.errors),
    ] {
        let _ = writeln!(s, "lotse_llm_answers_total{{outcome=\"{outcome}\"}} {}", S::get(counter));
    }
    // Every generation that ran adds its first-token time: the outcomes after a generation.
    let generations =
        S::get(&stats.accepted) + S::get(&stats.rejected) + S::get(&stats.abstained) + S::get(&stats.cancelled);
    let _ = writeln!(s, "# HELP lotse_llm_first_token_seconds Time from a turn's request to the model's first token.");
    let _ = writeln!(s, "# TYPE lotse_llm_first_token_seconds summary");
    let _ = writeln!(s, "lotse_llm_first_token_seconds_sum {}", S::get(&stats.first_token_ms) as f64 / 1e3);
    let _ = writeln!(s, "lotse_llm_first_token_seconds_count {generations}");
    s
}

//! The SIP bridge: Lotse on the city's telephone line. It answers calls (rsipstack for the
//! signalling), carries their audio as G.711 over RTP on a 20 ms clock, and runs one
//! conversation per call (`lotse-call`) on a thread of its own. See ARCHITECTURE.md.

pub mod jitter;
pub mod media;
pub mod probe;
pub mod sip;

pub use lotse_sip_wire::{dtmf, rtp, sdp, tones};

pub use sip::{Bridge, Calls, Config, Line, Register, Registered};

/// The calls of a Lotse installation: the engine, the voice models loaded once per process,
/// and, where staff can be reached, the staff queue of the server: its live conversations in
/// this process, or a server on another node (so that a caller is a conversation of channel
/// `phone` in the same queue as the web's).
pub struct LotseCalls {
    pub engine: std::sync::Arc<lotse_dialog::Engine>,
    pub stack: std::sync::Arc<lotse_app::voice::Stack>,
    pub staff: Option<lotse_call::Staff>,
    /// Where the turns of ended calls go, for a benchmark or a test. They hold what callers
    /// said: a server never sets it.
    pub record: Option<std::sync::Arc<std::sync::Mutex<Vec<lotse_call::TurnRecord>>>>,
}

impl Calls for LotseCalls {
    fn run(&self, line: Line) {
        let Line { inbound, on_player, hangup, caller, transfer } = line;
        // A team's transfer target, from the staff schedule as it is now (the console edits it).
        let target = |team: &str| self.staff.as_ref()?.transfer_target(team);
        let phone = lotse_app::voice::Phone { caller, target: &target, transfer: &*transfer };
        self.stack.ready_another();
        match lotse_app::voice::live(
            &self.engine,
            &self.stack,
            self.staff.as_ref(),
            inbound,
            on_player,
            &hangup,
            &phone,
        ) {
            Ok(turns) => {
                if let Some(record) = &self.record {
                    record.lock().unwrap_or_else(|e| e.into_inner()).extend(turns.iter().cloned());
                }
                for t in &turns {
                    tracing::info!(
                        kind = %t.kind,
                        latency_ms = t.latency().as_millis() as u64,
                        recognition_ms = t.stt.as_millis() as u64,
                        "a caller's turn"
                    );
                }
            }
            // The error names no caller and nothing they said.
            Err(e) => tracing::warn!(error = %e, "a call failed"),
        }
    }
}

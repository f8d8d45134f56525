//! The plug-ins' routes and background work: public routes under `/p/NAME/` (rate-limited
//! and open to every origin, as the citizen API is), staff routes under `/staff/p/NAME/`
//! behind the console's login, CSRF check and roles; the host's reading of the event log and
//! its retention sweep.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use lotse_plugin::Host;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::AppState;

/// How often the plug-ins look for events another node wrote (this node's wake them at once).
const POLL: Duration = Duration::from_secs(2);

/// How often the retention sweep runs.
const SWEEP: Duration = Duration::from_secs(6 * 3600);

/// Days the event log keeps an event (the plug-ins keep what they need of it longer, as
/// aggregates or under their own retention).
pub const LOG_DAYS: u32 = 30;

pub(crate) fn router(state: Arc<AppState>) -> Router<Arc<AppState>> {
    let mut public = Router::new();
    let mut staff = Router::new();
    let Some(host) = state.plugins() else { return Router::new() };
    for p in host.plugins() {
        let name = p.manifest().name;
        if let Some(r) = p.public_routes() {
            public = public.nest_service(&format!("/p/{name}"), r);
        }
        if let Some(r) = p.staff_routes() {
            staff = staff.nest_service(&format!("/staff/p/{name}"), r);
        }
    }
    let public = public
        .layer(axum::middleware::from_fn_with_state(state.clone(), crate::rate_limit))
        .layer(axum::middleware::from_fn(crate::cors));
    let staff = staff.layer(axum::middleware::from_fn_with_state(state, crate::staff::require_staff));
    public.merge(staff)
}

pub(crate) fn spawn(host: &Arc<Host>, grew: Arc<tokio::sync::Notify>, tracker: &TaskTracker, token: CancellationToken) {
    host.spawn(grew, POLL, tracker, token.clone());
    let host = host.clone();
    tracker.spawn(async move {
        loop {
            match host.purge(lotse_handoff::store::now_ms(), LOG_DAYS).await {
                Ok(n) if n > 0 => tracing::info!(records = n, "plug-in retention sweep"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "the plug-ins' retention sweep failed"),
            }
            tokio::select! {
                _ = token.cancelled() => break,
                _ = tokio::time::sleep(SWEEP) => {}
            }
        }
    });
}

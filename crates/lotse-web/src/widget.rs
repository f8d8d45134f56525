//! The chat widget for the city's pages: `/widget.js` (one script tag embeds it), the demo page
//! at `/` that embeds it the way jena.de would, the info terminal at `/kiosk`, and QR codes of
//! source addresses for the kiosk (`/api/v1/qr?url=…`, only for addresses the knowledge names).

use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use crate::{ApiError, AppState};

/// The widget script, as served (its size is checked by `build.rs`).
pub const WIDGET_JS: &str = include_str!("../assets/widget/widget.js");

pub(crate) fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(|| async { Html(include_str!("../assets/widget/demo.html")) }))
        .route("/kiosk", get(|| async { Html(include_str!("../assets/widget/kiosk.html")) }))
        .route("/widget.js", get(widget_js))
}

async fn widget_js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
        ],
        WIDGET_JS,
    )
        .into_response()
}

#[derive(Deserialize)]
pub(crate) struct QrQuery {
    url: String,
}

/// Whether the knowledge names this address (a service's source, online service or appointment
/// page, an office's website or source).
/// Addresses compare without a trailing slash (browsers add one to a bare host).
fn known_url(state: &AppState, url: &str) -> bool {
    let kb = state.engine().knowledge();
    let url = url.trim_end_matches('/');
    let is = |u: &str| u.trim_end_matches('/') == url;
    kb.services.iter().any(|s| {
        is(&s.source) || s.appointment_url.as_deref().is_some_and(is) || s.online_services.iter().any(|l| is(&l.url))
    }) || kb.offices.iter().any(|o| is(&o.source) || o.website.as_deref().is_some_and(is))
}

/// `GET /api/v1/qr?url=…`: an SVG QR code of a source address, for the kiosk (no general QR
/// service: other addresses get 404).
pub(crate) async fn qr(State(state): State<Arc<AppState>>, Query(q): Query<QrQuery>) -> Result<Response, ApiError> {
    if !known_url(&state, &q.url) {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "unknown_url", "No source has this address."));
    }
    let code = qrcode::QrCode::new(q.url.as_bytes())
        .map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, "too_long", "The address is too long for a QR code."))?;
    let svg = code.render::<qrcode::render::svg::Color<'_>>().min_dimensions(160, 160).quiet_zone(true).build();
    Ok(([(header::CONTENT_TYPE, "image/svg+xml"), (header::CACHE_CONTROL, "public, max-age=86400")], svg)
        .into_response())
}

//! The staff console at `/staff` and its API at `/staff/api`.
//!
//! - Login with name and password (argon2 hashes); the session cookie is `HttpOnly`,
//!   `SameSite=Strict`, `Secure` (configurable for plain-HTTP intranets), scoped to `/staff`,
//!   and expires after inactivity and after a maximum age. The store holds only the token's hash.
//! - Every changing request needs the session's CSRF token in `X-CSRF-Token` (the console reads
//!   it from `/staff/api/me`); a login from another origin is refused.
//! - Failed logins are limited per account name and client, and per client; the login is
//!   rate-limited like the citizen API, and only two passwords are checked at once (see
//!   [`LoginLimiter`]).
//! - Roles: `staff` (queue, conversations, callbacks) and `admin` (also hours, teams, retention
//!   and figures).
//!
//! Routes without a session answer 401 (API) or redirect to the login page (pages).

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Json, Router};
use lotse_dialog::understand;
use lotse_handoff::auth;
use lotse_handoff::store::{StaffAccount, now_ms};
use lotse_handoff::{CallbackId, HandoffId, Outcome, QueueState, Role, Schedule};
use serde::{Deserialize, Serialize};
use tokio_stream::StreamExt;

use lotse_session::StaffEvent;

use crate::{ApiError, AppState, store_error};

const COOKIE: &str = "lotse_staff";

/// Failed logins in the last 15 minutes, and the password checks running.
///
/// Five wrong passwords for a name lock that name out *from that client* (an IPv4 address or
/// IPv6 /64), twenty from one client lock the client out: someone guessing from elsewhere
/// cannot lock a member of staff out of their own desk. Failures for a name from anywhere
/// make each further check for it wait longer (from the fifth: 0.25 s, doubling, at most 8 s),
/// which slows guessing from many addresses without locking anyone out. The table is bounded:
/// names are at most [`MAX_NAME`] characters, checking adds no entry, and old entries go first.
pub struct LoginLimiter {
    failures: Mutex<HashMap<String, Vec<Instant>>>,
    /// argon2 checks at once: each takes 19 MiB and tens of milliseconds of a core, on the
    /// blocking pool that also answers citizens.
    checking: tokio::sync::Semaphore,
}

impl Default for LoginLimiter {
    fn default() -> LoginLimiter {
        LoginLimiter { failures: Mutex::new(HashMap::new()), checking: tokio::sync::Semaphore::new(2) }
    }
}

const LOGIN_WINDOW: Duration = Duration::from_secs(15 * 60);
const MAX_FAILURES_PER_NAME_AND_CLIENT: usize = 5;
const MAX_FAILURES_PER_CLIENT: usize = 20;
/// The longest account name a login is checked for.
pub const MAX_NAME: usize = 100;
/// Entries the limiter keeps at most.
const MAX_ENTRIES: usize = 10_000;

fn client(ip: Option<IpAddr>) -> String {
    ip.map(|ip| crate::conn::client_key(ip).to_string()).unwrap_or_default()
}

impl LoginLimiter {
    fn count(&self, key: &str) -> usize {
        let map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        map.get(key).map_or(0, |list| list.iter().filter(|t| t.elapsed() < LOGIN_WINDOW).count())
    }

    fn blocked(&self, ip: Option<IpAddr>, name: &str) -> bool {
        let name = name.to_lowercase();
        self.count(&format!("name:{}|{name}", client(ip))) >= MAX_FAILURES_PER_NAME_AND_CLIENT
            || ip.is_some() && self.count(&format!("ip:{}", client(ip))) >= MAX_FAILURES_PER_CLIENT
    }

    /// How long a check for `name` waits, after failures for it from anywhere.
    fn delay(&self, name: &str) -> Duration {
        let n = self.count(&format!("any:{}", name.to_lowercase()));
        if n < MAX_FAILURES_PER_NAME_AND_CLIENT {
            return Duration::ZERO;
        }
        let doublings = (n - MAX_FAILURES_PER_NAME_AND_CLIENT).min(5) as u32;
        Duration::from_millis(250 * 2u64.pow(doublings))
    }

    fn fail(&self, ip: Option<IpAddr>, name: &str) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if map.len() >= MAX_ENTRIES {
            map.retain(|_, v| v.iter().any(|t| t.elapsed() < LOGIN_WINDOW));
        }
        // The client's own count always goes in: it is what stops a client that floods the
        // table with new names.
        if ip.is_some() {
            map.entry(format!("ip:{}", client(ip))).or_default().push(now);
        }
        let name = name.to_lowercase();
        for key in [format!("name:{}|{name}", client(ip)), format!("any:{name}")] {
            if map.len() < MAX_ENTRIES || map.contains_key(&key) {
                let list = map.entry(key).or_default();
                list.retain(|t| t.elapsed() < LOGIN_WINDOW);
                list.push(now);
            }
        }
    }

    fn succeed(&self, ip: Option<IpAddr>, name: &str) {
        let name = name.to_lowercase();
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(&format!("name:{}|{name}", client(ip)));
        map.remove(&format!("any:{name}"));
    }

    #[cfg(test)]
    fn entries(&self) -> usize {
        self.failures.lock().unwrap().len()
    }
}

/// The logged-in staff member of a request.
#[derive(Clone)]
pub struct StaffCtx {
    pub account: StaffAccount,
    pub csrf: String,
    token_hash: String,
}

pub fn router(state: Arc<AppState>) -> Router<Arc<AppState>> {
    let api = Router::new()
        .route("/staff/api/me", get(me))
        .route("/staff/api/logout", post(logout))
        .route("/staff/api/queue", get(queue))
        .route("/staff/api/events", get(events))
        .route("/staff/api/handoffs/{id}", get(detail))
        .route("/staff/api/handoffs/{id}/claim", post(claim))
        .route("/staff/api/handoffs/{id}/reply", post(reply))
        .route("/staff/api/handoffs/{id}/typing", post(typing))
        .route("/staff/api/handoffs/{id}/release", post(release))
        .route("/staff/api/handoffs/{id}/handback", post(handback))
        .route("/staff/api/handoffs/{id}/close", post(close))
        .route("/staff/api/handoffs/{id}/suggestions", get(suggestions))
        .route("/staff/api/callbacks", get(callbacks))
        .route("/staff/api/callbacks/{id}/schedule", post(schedule_callback))
        .route("/staff/api/callbacks/{id}/done", post(callback_done))
        .route("/staff/api/admin/settings", get(admin_settings))
        .route("/staff/api/admin/schedule", post(admin_schedule))
        .route("/staff/api/admin/retention", post(admin_retention))
        .route("/staff/api/admin/figures", get(admin_figures))
        .route("/staff/api/password", post(change_password))
        .route("/staff/api/admin/accounts", get(admin_accounts))
        .route("/staff/api/admin/accounts/{name}/disable", post(admin_disable))
        .route("/staff/api/admin/accounts/{name}/enable", post(admin_enable))
        .route("/staff/api/admin/audit", get(admin_audit))
        .route("/staff/api/admin/plugins", get(admin_plugins))
        .route("/staff/api/admin/plugins/{name}", post(admin_plugin_setting))
        .layer(axum::middleware::from_fn_with_state(state.clone(), require_staff));
    Router::new()
        .route("/staff", get(console_page))
        .route("/staff/", get(console_page))
        .route(
            "/staff/login",
            get(login_page).post(login).layer(axum::middleware::from_fn_with_state(state.clone(), crate::rate_limit)),
        )
        .route("/staff/assets/console.js", get(|| asset(include_str!("../assets/staff/console.js"), "text/javascript")))
        .route("/staff/assets/console.css", get(|| asset(include_str!("../assets/staff/console.css"), "text/css")))
        .merge(api)
        .layer(axum::middleware::from_fn(security_headers))
}

async fn asset(body: &'static str, kind: &'static str) -> Response {
    ([(header::CONTENT_TYPE, kind), (header::CACHE_CONTROL, "no-cache")], body).into_response()
}

/// Staff pages: no framing, no inline script, nothing cached, no referrer to other sites.
async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // same-origin, not no-referrer: with no-referrer the browser sends `Origin: null` on the
    // login form, and the origin check below needs the real one.
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    res
}

fn cookie_token(headers: &HeaderMap) -> Option<String> {
    // Cookie parsing is one split; a crate would add nothing here.
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|c| {
        let (k, v) = c.trim().split_once('=')?;
        (k == COOKIE && v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit())).then(|| v.to_string())
    })
}

fn unauthorized() -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "login_required", "Please log in.")
}

/// The session of a request, checked for expiry (and touched).
/// A session unused for longer than the idle limit, or older than the maximum age.
fn expired(desk: &lotse_handoff::Desk, s: &lotse_handoff::store::Session, now: i64) -> bool {
    let idle = (desk.config.session_idle_minutes as i64) * 60_000;
    let max = (desk.config.session_max_hours as i64) * 3_600_000;
    now - s.seen_ms > idle || now - s.created_ms > max
}

async fn session(state: &AppState, headers: &HeaderMap) -> Result<StaffCtx, ApiError> {
    let desk = state.desk().ok_or_else(unauthorized)?;
    let token = cookie_token(headers).ok_or_else(unauthorized)?;
    let th = auth::token_hash(&token);
    let s = desk.store.session(&th).await.map_err(store_error)?.ok_or_else(unauthorized)?;
    let now = now_ms();
    if expired(desk, &s, now) {
        let _ = desk.store.delete_session(&th).await;
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "session_expired",
            "Your session has expired; please log in again.",
        ));
    }
    let account = desk
        .store
        .staff(&s.staff)
        .await
        .map_err(store_error)?
        .filter(|a| a.disabled_ms.is_none())
        .ok_or_else(unauthorized)?;
    if now - s.seen_ms > 10_000 {
        let _ = desk.store.touch_session(&th, now).await;
    }
    Ok(StaffCtx { account, csrf: s.csrf, token_hash: th })
}

pub(crate) async fn require_staff(State(state): State<Arc<AppState>>, mut req: Request, next: Next) -> Response {
    let ctx = match session(&state, req.headers()).await {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        let sent = req.headers().get("x-csrf-token").and_then(|v| v.to_str().ok()).unwrap_or("");
        if !auth::same(sent, &ctx.csrf) {
            return ApiError::new(
                StatusCode::FORBIDDEN,
                "csrf",
                "The request lacks a valid CSRF token; reload the page.",
            )
            .into_response();
        }
    }
    let path = req.uri().path();
    let plugin_part = path.strip_prefix("/staff/p/").and_then(|rest| rest.split('/').nth(1));
    let admin_only = path.starts_with("/staff/api/admin/") || plugin_part == Some("admin");
    if admin_only && ctx.account.role != Role::Admin {
        return ApiError::new(StatusCode::FORBIDDEN, "admin_only", "This needs an administrator.").into_response();
    }
    if plugin_part == Some("editor") && !matches!(ctx.account.role, Role::Editor | Role::Admin) {
        return ApiError::new(StatusCode::FORBIDDEN, "editor_only", "This needs an editor or an administrator.")
            .into_response();
    }
    let audited = audit_line(&req);
    let actor = ctx.account.name.clone();
    req.extensions_mut().insert(ctx);
    let res = next.run(req).await;
    if let Some((action, target)) = audited
        && res.status().is_success()
    {
        // Written on its own task, so that a client that goes away once answered does not take
        // the line with it, and waited for, so that the trail holds the change before the
        // client hears of it (a change and the next one were listed in the wrong order).
        let (state, at) = (state.clone(), now_ms());
        let write = tokio::spawn(async move {
            let Some(desk) = state.desk() else { return };
            if let Err(e) = desk.store.audit(&actor, &action, &target, at).await {
                tracing::warn!(error = %e, action, "could not write the audit trail");
            }
        });
        let _ = write.await;
    }
    res
}

/// What the audit trail says of a successful change: the route's action ("handoffs.claim",
/// "admin.schedule") and its target (a handoff's or callback's id, an account's name), read
/// from the route's pattern; a plug-in's ("plugin.inbox.decide") from its path. Every changing
/// staff route is audited, by this one rule, except typing notices; reads are not. Bodies
/// (message text) never are.
fn audit_line(req: &Request) -> Option<(String, String)> {
    if matches!(*req.method(), Method::GET | Method::HEAD) {
        return None;
    }
    // A plug-in's route: its name and path ("plugin.inbox.decide"); a last part with a digit
    // is the target (an id: "plugin.feedback.admin.suggestions", "3f2a…").
    if let Some(rest) = req.uri().path().strip_prefix("/staff/p/") {
        let mut parts: Vec<&str> = rest.split('/').filter(|p| !p.is_empty()).take(6).collect();
        let target = match parts.last() {
            Some(last) if parts.len() > 1 && last.chars().any(|c| c.is_ascii_digit()) => parts.pop().unwrap_or(""),
            _ => "",
        };
        let action: String = format!("plugin.{}", parts.join(".")).chars().take(100).collect();
        let target = percent_encoding::percent_decode_str(target).decode_utf8_lossy().chars().take(100).collect();
        return Some((action, target));
    }
    let pattern = req.extensions().get::<axum::extract::MatchedPath>()?.as_str();
    let route = pattern.strip_prefix("/staff/api/")?;
    let mut action = Vec::new();
    let mut target = String::new();
    for (part, value) in route.split('/').zip(req.uri().path().trim_start_matches("/staff/api/").split('/')) {
        if part.starts_with('{') {
            target = percent_encoding::percent_decode_str(value).decode_utf8_lossy().chars().take(100).collect();
        } else {
            action.push(part);
        }
    }
    let action = action.join(".");
    (action != "handoffs.typing").then_some((action, target))
}

async fn console_page(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    match session(&state, &headers).await {
        Ok(_) => Html(include_str!("../assets/staff/console.html")).into_response(),
        Err(_) => Redirect::to("/staff/login").into_response(),
    }
}

fn login_html(message: Option<&str>) -> Html<String> {
    let page = include_str!("../assets/staff/login.html");
    let msg = message
        .map(|m| format!(r#"<p class="error" role="alert" id="login-error">{}</p>"#, escape(m)))
        .unwrap_or_default();
    Html(page.replace("<!--MESSAGE-->", &msg))
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

async fn login_page() -> Html<String> {
    login_html(None)
}

#[derive(Deserialize)]
struct LoginForm {
    name: String,
    password: String,
}

/// A login posted from a page of another origin is refused (login CSRF). Behind a trusted
/// proxy the host the browser asked for is the one the proxy forwarded (`X-Forwarded-Host`):
/// a proxy's own request names the upstream, often `127.0.0.1:8080`.
fn same_origin(headers: &HeaderMap, proxied: bool) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else { return true };
    let header_value = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let forwarded = proxied.then(|| header_value("x-forwarded-host")).flatten();
    // Of several forwarded hosts (proxies in a row), the first is what the browser asked for.
    let host = forwarded
        .and_then(|h| h.split(',').next())
        .or_else(|| header_value(header::HOST.as_str()))
        .unwrap_or("")
        .trim();
    origin.split_once("://").is_some_and(|(_, rest)| rest.trim_end_matches('/').eq_ignore_ascii_case(host))
}

async fn login(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let Some(peer) = crate::client_of(request.extensions()) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let headers = request.headers().clone();
    let Ok(Form(form)) = Form::<LoginForm>::from_request(request, &state).await else {
        return (StatusCode::BAD_REQUEST, login_html(Some("Bitte Name und Passwort angeben."))).into_response();
    };
    let Some(desk) = state.desk().cloned() else {
        return (StatusCode::NOT_FOUND, login_html(Some("Die Mitarbeiterkonsole ist nicht eingerichtet.")))
            .into_response();
    };
    if !same_origin(&headers, peer.proxied) {
        return (StatusCode::FORBIDDEN, login_html(Some("Anmeldung von einer fremden Seite abgelehnt.")))
            .into_response();
    }
    let ip = Some(peer.ip);
    let name = form.name.trim().to_string();
    if name.chars().count() > MAX_NAME {
        // No account has such a name: a failure of the client's, and nothing kept of the name.
        state.logins.fail(ip, "");
        return (StatusCode::UNAUTHORIZED, login_html(Some("Name oder Passwort ist falsch."))).into_response();
    }
    if state.logins.blocked(ip, &name) {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            login_html(Some("Zu viele fehlgeschlagene Anmeldungen. Bitte warten Sie 15 Minuten.")),
        )
            .into_response();
    }
    let account = desk.store.staff(&name).await.ok().flatten();
    let password = form.password;
    let hash = account.as_ref().map(|a| a.password_hash.clone()).unwrap_or_else(|| auth::dummy_hash().to_string());
    tokio::time::sleep(state.logins.delay(&name)).await;
    // argon2 is deliberately slow: off the runtime threads, and only a few at once.
    let ok = match state.logins.checking.acquire().await {
        Ok(_checking) => {
            tokio::task::spawn_blocking(move || auth::verify_password(&password, &hash)).await.unwrap_or(false)
        }
        Err(_) => false,
    };
    let Some(account) = account.filter(|_| ok) else {
        state.logins.fail(ip, &name);
        tracing::info!("failed staff login");
        return (StatusCode::UNAUTHORIZED, login_html(Some("Name oder Passwort ist falsch."))).into_response();
    };
    state.logins.succeed(ip, &name);
    if account.disabled_ms.is_some() {
        // Told only to whoever knows the password.
        return (
            StatusCode::FORBIDDEN,
            login_html(Some("Dieses Konto ist gesperrt. Bitte wenden Sie sich an die Administration.")),
        )
            .into_response();
    }
    let token = auth::new_token();
    if let Err(e) =
        desk.store.create_session(&auth::token_hash(&token), &account.name, &auth::new_token(), now_ms()).await
    {
        tracing::error!(error = %e, "could not store a session");
        return (StatusCode::SERVICE_UNAVAILABLE, login_html(Some("Anmeldung gerade nicht möglich."))).into_response();
    }
    let secure = if desk.config.secure_cookies { "; Secure" } else { "" };
    let max_age = desk.config.session_max_hours * 3600;
    let cookie = format!("{COOKIE}={token}; Path=/staff; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}");
    if let Err(e) = desk.store.audit(&account.name, "login", "", now_ms()).await {
        tracing::warn!(error = %e, "could not write the audit trail");
    }
    let mut res = Redirect::to("/staff").into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    res
}

async fn logout(State(state): State<Arc<AppState>>, Extension(ctx): Extension<StaffCtx>) -> Response {
    if let Some(desk) = state.desk() {
        let _ = desk.store.delete_session(&ctx.token_hash).await;
    }
    let mut res = StatusCode::NO_CONTENT.into_response();
    res.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("lotse_staff=; Path=/staff; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    res
}

async fn me(State(state): State<Arc<AppState>>, Extension(ctx): Extension<StaffCtx>) -> Json<serde_json::Value> {
    // The plug-ins switched on: the console shows their panels.
    let plugins: Vec<&str> = state.plugins().map(|h| h.names()).unwrap_or_default();
    Json(serde_json::json!({
        "name": ctx.account.name,
        "display_name": ctx.account.display_name,
        "role": ctx.account.role,
        "csrf": ctx.csrf,
        "plugins": plugins,
    }))
}

fn desk(state: &AppState) -> Result<&lotse_handoff::Desk, ApiError> {
    state.desk().ok_or_else(unauthorized)
}

#[derive(Serialize)]
struct QueueItem {
    id: lotse_handoff::HandoffId,
    team: String,
    team_name: String,
    state: QueueState,
    lang: lotse_core::Lang,
    channel: lotse_core::Channel,
    service: Option<String>,
    reason: String,
    created_ms: i64,
    waiting_s: i64,
    claimed_by: Option<String>,
    mine: bool,
}

async fn queue(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<StaffCtx>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let desk = desk(&state)?;
    let now = now_ms();
    let items: Vec<QueueItem> = desk
        .store
        .queue()
        .await
        .map_err(store_error)?
        .into_iter()
        .map(|h| QueueItem {
            team_name: desk.team_name(&h.team),
            waiting_s: ((h.claimed_ms.unwrap_or(now) - h.created_ms) / 1000).max(0),
            mine: h.claimed_by.as_deref() == Some(ctx.account.name.as_str()),
            id: h.id,
            team: h.team,
            state: h.state,
            lang: h.lang,
            channel: h.channel,
            service: h.service,
            reason: h.reason,
            created_ms: h.created_ms,
            claimed_by: h.claimed_by,
        })
        .collect();
    Ok(Json(serde_json::json!({ "now_ms": now, "items": items })))
}

/// How often an open events stream checks that its session still holds.
const SESSION_CHECK: Duration = Duration::from_secs(2);

/// Whether a staff member's session still holds: not logged out, not expired, the account
/// there with the role it had. (An events stream does not keep a session alive; the
/// console's requests do.)
async fn still_valid(state: &AppState, ctx: &StaffCtx) -> bool {
    let Some(desk) = state.desk() else { return false };
    let Ok(Some(s)) = desk.store.session(&ctx.token_hash).await else { return false };
    if expired(desk, &s, now_ms()) {
        return false;
    }
    matches!(desk.store.staff(&s.staff).await, Ok(Some(a)) if a.role == ctx.account.role && a.disabled_ms.is_none())
}

async fn events(State(state): State<Arc<AppState>>, Extension(ctx): Extension<StaffCtx>) -> Response {
    // Present while the stream is open, and the stream ends with the session: after a logout
    // or expiry the member is no longer counted present, so their conversations are released.
    let present = state.sessions.staff_present(&ctx.account.name).await;
    let mut staff_events = state.sessions.subscribe_staff();
    let (tx, rx) = tokio::sync::mpsc::channel::<StaffEvent>(64);
    tokio::spawn(async move {
        let _present = present;
        let mut check = tokio::time::interval(SESSION_CHECK);
        check.tick().await;
        loop {
            tokio::select! {
                e = staff_events.recv() => {
                    let e = match e {
                        Ok(e) => e,
                        // A console that lagged behind fetches the queue again.
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => StaffEvent::Queue,
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                    };
                    if tx.send(e).await.is_err() {
                        break;
                    }
                }
                _ = check.tick() => {
                    if !still_valid(&state, &ctx).await {
                        break;
                    }
                }
                () = tx.closed() => break,
            }
        }
    });
    let hello = tokio_stream::iter([Ok::<_, Infallible>(SseEvent::default().event("hello").data("{}"))]);
    let stream = hello.chain(
        tokio_stream::wrappers::ReceiverStream::new(rx)
            .map(|e| Ok(SseEvent::default().event("staff").json_data(&e).unwrap_or_default())),
    );
    Sse::new(stream).keep_alive(KeepAlive::default()).into_response()
}

async fn detail(
    State(state): State<Arc<AppState>>,
    Path(id): Path<HandoffId>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let desk = desk(&state)?;
    let h = desk.store.handoff(&id).await.map_err(store_error)?;
    let transcript = desk.store.transcript(&h.conversation_id).await.map_err(store_error)?;
    let callback = desk.store.pending_callback(&h.conversation_id).await.map_err(store_error)?;
    Ok(Json(serde_json::json!({
        "handoff": h,
        "team_name": desk.team_name(&h.team),
        "transcript": transcript,
        "callback": callback,
    })))
}

async fn claim(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<StaffCtx>,
    Path(id): Path<HandoffId>,
) -> Result<Json<serde_json::Value>, ApiError> {
    desk(&state)?;
    let h = state.sessions.claim(&id, &ctx.account).await?;
    Ok(Json(serde_json::json!({ "handoff": h })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TextBody {
    text: String,
}

/// The longest reply of a member of staff, in characters (the console's field says so too).
const MAX_REPLY_CHARS: usize = 4000;

async fn reply(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<StaffCtx>,
    Path(id): Path<HandoffId>,
    body: Result<Json<TextBody>, JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Json(body) = body?;
    // Read one character past the limit, so that a longer reply is refused, not cut short
    // (the citizen's `clean` stops at 2,000).
    let text = understand::squeeze(body.text.chars().take(MAX_REPLY_CHARS + 1), body.text.len());
    if text.is_empty() || text.chars().count() > MAX_REPLY_CHARS {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "bad_text", "A reply has 1 to 4000 characters."));
    }
    desk(&state)?;
    let seq = state.sessions.staff_reply(&id, &ctx.account, &text).await?;
    Ok(Json(serde_json::json!({ "seq": seq })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TypingBody {
    typing: bool,
}

async fn typing(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<StaffCtx>,
    Path(id): Path<HandoffId>,
    body: Result<Json<TypingBody>, JsonRejection>,
) -> Result<StatusCode, ApiError> {
    let Json(body) = body?;
    desk(&state)?;
    state.sessions.staff_typing(&id, &ctx.account, body.typing).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn release(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<StaffCtx>,
    Path(id): Path<HandoffId>,
) -> Result<Json<serde_json::Value>, ApiError> {
    desk(&state)?;
    let h = state.sessions.release(&id, &ctx.account).await?;
    Ok(Json(serde_json::json!({ "handoff": h })))
}

async fn handback(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<StaffCtx>,
    Path(id): Path<HandoffId>,
) -> Result<Json<serde_json::Value>, ApiError> {
    desk(&state)?;
    let h = state.sessions.finish(&id, &ctx.account, Outcome::HandedBack, None).await?;
    Ok(Json(serde_json::json!({ "handoff": h })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CloseBody {
    outcome: String,
    #[serde(default)]
    note: Option<String>,
}

async fn close(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<StaffCtx>,
    Path(id): Path<HandoffId>,
    body: Result<Json<CloseBody>, JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Json(body) = body?;
    // A string, not the enum, in the body: a wrong value gets this answer, not a parse error.
    let Some(outcome) = Outcome::parse(&body.outcome).filter(|o| Outcome::BY_STAFF.contains(o)) else {
        let names: Vec<&str> = Outcome::BY_STAFF.iter().map(|o| o.as_str()).collect();
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_outcome",
            format!("The outcome is one of: {}.", names.join(", ")),
        ));
    };
    let note = body.note.map(|n| n.chars().take(2000).collect::<String>()).filter(|n| !n.trim().is_empty());
    desk(&state)?;
    let h = state.sessions.finish(&id, &ctx.account, outcome, note.as_deref()).await?;
    Ok(Json(serde_json::json!({ "handoff": h })))
}

/// Answers from the knowledge for the citizen's last questions, for staff to adapt and send.
async fn suggestions(
    State(state): State<Arc<AppState>>,
    Path(id): Path<HandoffId>,
) -> Result<Json<serde_json::Value>, ApiError> {
    desk(&state)?;
    let out = state.sessions.suggestions(&id).await?;
    Ok(Json(serde_json::json!({ "suggestions": out })))
}

async fn callbacks(State(state): State<Arc<AppState>>) -> Result<Json<serde_json::Value>, ApiError> {
    let desk = desk(&state)?;
    let now = now_ms();
    let list: Vec<serde_json::Value> = desk
        .store
        .callbacks(false)
        .await
        .map_err(store_error)?
        .into_iter()
        .map(|c| {
            let due = c.slot_start_ms <= now;
            let mut v = serde_json::to_value(&c).unwrap_or_default();
            v["team_name"] = desk.team_name(&c.team).into();
            v["due"] = due.into();
            v
        })
        .collect();
    Ok(Json(serde_json::json!({ "now_ms": now, "items": list })))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ScheduleBody {
    /// When the staff member plans to call (ms since the epoch); now when absent.
    #[serde(default)]
    at_ms: Option<i64>,
}

async fn schedule_callback(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<StaffCtx>,
    Path(id): Path<CallbackId>,
    body: Result<Json<ScheduleBody>, JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Json(body) = body?;
    desk(&state)?;
    let c = state.sessions.schedule_callback(&id, &ctx.account, body.at_ms.unwrap_or_else(now_ms)).await?;
    Ok(Json(serde_json::json!({ "callback": c })))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct DoneBody {
    #[serde(default)]
    note: Option<String>,
}

async fn callback_done(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<StaffCtx>,
    Path(id): Path<CallbackId>,
    body: Result<Json<DoneBody>, JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Json(body) = body?;
    desk(&state)?;
    let note = body.note.map(|n| n.chars().take(2000).collect::<String>());
    let c = state.sessions.complete_callback(&id, &ctx.account, note.as_deref()).await?;
    Ok(Json(serde_json::json!({ "callback": c })))
}

async fn admin_settings(State(state): State<Arc<AppState>>) -> Result<Json<serde_json::Value>, ApiError> {
    let desk = desk(&state)?;
    let schedule = desk.schedule();
    let now = jiff::Timestamp::now();
    let teams: Vec<serde_json::Value> = schedule
        .teams
        .iter()
        .map(|t| {
            serde_json::json!({
                "id": t.id,
                "name": t.name,
                "open": schedule.is_open(&t.id, now, desk.zone()),
                "next_opening": schedule.next_opening(&t.id, now, desk.zone()).map(|w| w.describe(false)),
            })
        })
        .collect();
    Ok(Json(serde_json::json!({
        "schedule_toml": schedule.to_toml(),
        "teams": teams,
        "retention_days": desk.retention_days(),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScheduleText {
    toml: String,
}

async fn admin_schedule(
    State(state): State<Arc<AppState>>,
    body: Result<Json<ScheduleText>, JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Json(body) = body?;
    let schedule = Schedule::from_toml(&body.toml).map_err(|e| {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_schedule", format!("The schedule is not valid: {e}"))
    })?;
    desk(&state)?.set_schedule(schedule).await.map_err(store_error)?;
    tracing::info!("staff schedule changed");
    Ok(Json(serde_json::json!({ "ok": true })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RetentionBody {
    days: u32,
}

async fn admin_retention(
    State(state): State<Arc<AppState>>,
    body: Result<Json<RetentionBody>, JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Json(body) = body?;
    if !(1..=3650).contains(&body.days) {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "bad_retention", "Retention is 1 to 3650 days."));
    }
    let desk = desk(&state)?;
    desk.set_retention_days(body.days).await.map_err(store_error)?;
    Ok(Json(serde_json::json!({ "ok": true, "retention_days": body.days })))
}

#[derive(Deserialize)]
struct FiguresQuery {
    #[serde(default)]
    days: Option<u32>,
}

async fn admin_figures(
    State(state): State<Arc<AppState>>,
    Query(q): Query<FiguresQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let desk = desk(&state)?;
    let days = q.days.unwrap_or(7).clamp(1, 366) as i64;
    let f = desk.store.figures(now_ms() - days * 24 * 3_600_000).await.map_err(store_error)?;
    let mut v = serde_json::to_value(&f).unwrap_or_default();
    v["days"] = days.into();
    Ok(Json(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_login_limiter_locks_a_name_only_for_the_guessing_client_and_stays_bounded() {
        let l = LoginLimiter::default();
        let guesser: Option<IpAddr> = Some("192.0.2.9".parse().unwrap());
        let desk: Option<IpAddr> = Some("10.1.2.3".parse().unwrap());
        for _ in 0..5 {
            l.fail(guesser, "Anna");
        }
        assert!(l.blocked(guesser, "anna"));
        assert!(!l.blocked(desk, "anna"), "Anna's own desk is not locked out");
        assert_eq!(l.delay("anna"), Duration::from_millis(250), "but her check waits a little");
        // A client locked out that goes on with ever new names adds nothing to the table.
        for i in 0..15 {
            l.fail(guesser, &format!("other-{i}"));
        }
        let before = l.entries();
        for i in 0..1000 {
            assert!(l.blocked(guesser, &format!("name-{i}")));
        }
        assert_eq!(l.entries(), before);
        // Anna got in: her name waits no longer.
        l.succeed(desk, "anna");
        assert_eq!(l.delay("anna"), Duration::ZERO);
    }
}

/// The shortest password a staff member may choose, and the longest checked.
pub const MIN_PASSWORD: usize = 12;
const MAX_PASSWORD: usize = 1024;

#[derive(Deserialize)]
struct PasswordChange {
    current: String,
    new: String,
}

/// A staff member sets a new password, with the current one; every other session of theirs
/// ends (a device left logged in elsewhere, or someone who learnt the old password).
async fn change_password(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<StaffCtx>,
    request: Request,
) -> Result<Json<serde_json::Value>, ApiError> {
    let desk = desk(&state)?;
    let client = crate::client_of(request.extensions()).map(|c| c.ip);
    let Ok(Json(body)) = Json::<PasswordChange>::from_request(request, &state).await else {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", "Send current and new."));
    };
    let name = ctx.account.name.clone();
    // A stolen session must not be a way to guess the password: the login's limits apply, per
    // name and client, so that guesses elsewhere do not keep the owner from changing it.
    if state.logins.blocked(client, &name) {
        return Err(ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", "Too many wrong passwords; wait."));
    }
    let new_len = body.new.chars().count();
    if !(MIN_PASSWORD..=MAX_PASSWORD).contains(&new_len) || body.new == body.current {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "weak_password",
            "The new password needs 12 characters or more and must differ from the current one.",
        ));
    }
    tokio::time::sleep(state.logins.delay(&name)).await;
    let (current, hash, new) = (body.current, ctx.account.password_hash.clone(), body.new);
    // Both argon2 runs under one of the few permits the logins share.
    let Ok(_checking) = state.logins.checking.acquire().await else {
        return Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "store_unavailable", "Try again."));
    };
    let checked = tokio::task::spawn_blocking(move || {
        auth::verify_password(&current, &hash).then(|| auth::hash_password(&new).ok()).flatten()
    });
    let Ok(Some(hash)) = checked.await else {
        state.logins.fail(client, &name);
        return Err(ApiError::new(StatusCode::FORBIDDEN, "wrong_password", "The current password is wrong."));
    };
    desk.store.set_password(&name, &hash, Some(&ctx.token_hash)).await.map_err(store_error)?;
    Ok(Json(serde_json::json!({ "ok": true })))
}

async fn admin_accounts(State(state): State<Arc<AppState>>) -> Result<Json<serde_json::Value>, ApiError> {
    let accounts = desk(&state)?.store.staff_accounts().await.map_err(store_error)?;
    Ok(Json(serde_json::json!({ "accounts": accounts })))
}

async fn set_disabled(
    state: &AppState,
    ctx: &StaffCtx,
    name: &str,
    disabled: bool,
) -> Result<Json<serde_json::Value>, ApiError> {
    if disabled && name == ctx.account.name {
        return Err(ApiError::new(StatusCode::CONFLICT, "conflict", "You cannot disable your own account."));
    }
    if !desk(state)?.store.set_staff_disabled(name, disabled, now_ms()).await.map_err(store_error)? {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", "No such account."));
    }
    Ok(Json(serde_json::json!({ "ok": true, "disabled": disabled })))
}

async fn admin_disable(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<StaffCtx>,
    Path(name): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    set_disabled(&state, &ctx, &name, true).await
}

async fn admin_enable(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<StaffCtx>,
    Path(name): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    set_disabled(&state, &ctx, &name, false).await
}

/// The newest 500 lines of the audit trail.
/// The plug-ins switched on: what each is for, what it reads, what free text it keeps and how
/// long, and its settings with their values now.
async fn admin_plugins(State(state): State<Arc<AppState>>) -> Json<serde_json::Value> {
    let plugins: Vec<serde_json::Value> = state
        .plugins()
        .map(|host| {
            host.plugins()
                .iter()
                .map(|p| {
                    let m = p.manifest();
                    serde_json::json!({
                        "name": m.name,
                        "purpose": m.purpose,
                        "reads": m.reads,
                        "free_text": m.free_text.map(|f| serde_json::json!({ "purpose": f.purpose, "retention_days": p.text_days() })),
                        "settings": p.settings(),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    Json(serde_json::json!({ "plugins": plugins }))
}

#[derive(Deserialize)]
struct SettingBody {
    setting: String,
    value: serde_json::Value,
}

/// An administrator changes a plug-in's setting: checked, in effect at once, kept in the store.
async fn admin_plugin_setting(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    body: Result<Json<SettingBody>, JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Json(body) = body?;
    let host = state
        .plugins()
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "unknown_plugin", "No such plug-in is switched on."))?;
    match host.change(&name, &body.setting, &body.value).await {
        Ok(()) => Ok(Json(serde_json::json!({ "ok": true }))),
        Err(lotse_plugin::SettingError::Unknown) => {
            Err(ApiError::new(StatusCode::NOT_FOUND, "unknown_setting", "No such plug-in or setting."))
        }
        Err(lotse_plugin::SettingError::Invalid(m)) => {
            Err(ApiError::new(StatusCode::BAD_REQUEST, "invalid_setting", format!("Expected {m}.")))
        }
        Err(lotse_plugin::SettingError::Store(e)) => {
            tracing::warn!(error = %e, "a plug-in's setting was not stored");
            Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "store_unavailable", "Please try again in a moment."))
        }
    }
}

async fn admin_audit(State(state): State<Arc<AppState>>) -> Result<Json<serde_json::Value>, ApiError> {
    let trail = desk(&state)?.store.audit_trail(500).await.map_err(store_error)?;
    Ok(Json(serde_json::json!({ "audit": trail })))
}

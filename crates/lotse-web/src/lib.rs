//! The HTTP API of Lotse (axum): conversations, their event streams (server-sent events), health
//! and metrics. The only part of Lotse that speaks HTTP and JSON.
//!
//! Routes:
//! - `POST /api/v1/conversations` → 201 `{id, reply}` (the greeting)
//! - `POST /api/v1/conversations/{id}/messages` → 200 `{reply}`
//! - `GET /api/v1/conversations/{id}/events` → server-sent events: `message` (the citizen's),
//!   `facts` (a reply's kind, sources and record facts, at once, when the language model is
//!   about to write), `delta` (each verified sentence of the generated text) and `reply` (the
//!   final reply, which replaces what the deltas showed)
//!   and, once a conversation is handed to staff, `handoff` (queue position and estimate, staff
//!   joined, callback confirmed, closed), `staff` (a staff member's message) and `typing`
//! - `POST /api/v1/conversations/{id}/callback` → 201: a callback request outside staff hours
//!   (contact, explicit consent); `POST …/typing`; `DELETE /api/v1/conversations/{id}` → 204
//!   ends the conversation and deletes its transcript and contact data
//! - `/staff…`: the staff console and its API (see [`staff`])
//! - `GET /widget.js`, `/` (demo page), `/kiosk`, `GET /api/v1/qr?url=…` (the chat widget)
//! - `GET /health`, `GET /metrics` (Prometheus text)
//! - `/bridge/v1/…`: SIP bridges on other nodes, with a token (see [`AppState::allow_bridges`])
//!
//! Conversations, their turns, events and the handoff workflow are the session's
//! ([`lotse_session::Sessions`]); this crate translates requests into calls there and maps its
//! errors to status codes. Memory is bounded: at most `Limits::max_conversations`
//! conversations, idle ones expire, and the rate limiter's table is capped too.

mod bridge;
mod conn;
mod handoff;
mod metrics;
mod plugins;
mod rate;
pub mod staff;
mod widget;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use lotse_core::{Channel, ConversationId, Lang, Reply};
use lotse_dialog::Engine;
use lotse_handoff::Desk;
use lotse_session::{SessionError, Sessions, Turn, TurnOutcome};
use serde::{Deserialize, Serialize};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::BroadcastStream;

pub use bridge::MIN_TOKEN as MIN_BRIDGE_TOKEN;
pub use metrics::Metrics;
use rate::RateLimiter;

/// Bounds that keep the server safe under load and abuse.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_conversations: usize,
    /// A conversation with no message for this long is forgotten.
    pub idle_timeout: Duration,
    /// Requests per client address and minute.
    pub requests_per_minute: u32,
    /// Longest message text in characters.
    pub max_message_chars: usize,
    /// Connections open at once; one more is closed before anything is read. Below the
    /// process's usual limit of 1,024 open files, with room for the database and the models.
    pub max_connections: usize,
    /// Connections one client (an IPv4 address, an IPv6 /64) keeps open at once.
    pub max_connections_per_client: usize,
    /// The time a client has to send a request's head; also how long a kept-alive connection
    /// may wait for its next request.
    pub header_timeout: Duration,
    /// Event streams open at once, in all and per conversation (a citizen's widget keeps one).
    pub max_streams: usize,
    pub max_streams_per_conversation: usize,
    /// Reverse proxies in front of the server: their connections carry many citizens and count
    /// only towards `max_connections`.
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_conversations: 50_000,
            idle_timeout: Duration::from_secs(30 * 60),
            requests_per_minute: 120,
            max_message_chars: 2000,
            max_connections: 768,
            max_connections_per_client: 64,
            header_timeout: Duration::from_secs(10),
            max_streams: 512,
            max_streams_per_conversation: 4,
            trusted_proxies: Vec::new(),
        }
    }
}

/// What a conversation's events stream carries (the session's events, as server-sent events).
pub use lotse_session::ConversationEvent as StreamEvent;

/// Shared server state.
pub struct AppState {
    /// The live conversations and the handoff workflow.
    pub sessions: Arc<Sessions>,
    limits: Limits,
    rate: RateLimiter,
    pub metrics: Metrics,
    embeddings: bool,
    /// Failed logins per client and per account name.
    pub(crate) logins: staff::LoginLimiter,
    /// SIP bridges on other nodes (`/bridge/v1`): the digest of their token and the calls
    /// they started; none: no bridge may connect.
    bridges: std::sync::OnceLock<bridge::Bridges>,
    /// The event streams open.
    streams: Arc<conn::Streams>,
    /// The plug-ins switched on, and the signal that their event log grew.
    plugins: std::sync::OnceLock<(Arc<lotse_plugin::Host>, Arc<tokio::sync::Notify>)>,
    /// The campaign codes the city counts (`[plugins] campaigns`); others are not kept.
    campaigns: std::sync::OnceLock<Vec<String>>,
}

impl AppState {
    pub fn new(engine: Arc<Engine>, limits: Limits, embeddings: bool) -> Arc<AppState> {
        AppState::with_desk(engine, limits, embeddings, None)
    }

    /// With a staff desk: handoffs are queued, relayed and shown in the console at `/staff`.
    pub fn with_desk(engine: Arc<Engine>, limits: Limits, embeddings: bool, desk: Option<Desk>) -> Arc<AppState> {
        let rate = RateLimiter::new(limits.requests_per_minute, 100_000);
        let streams = conn::Streams::new(limits.max_streams, limits.max_streams_per_conversation);
        let session_limits = lotse_session::Limits {
            max_conversations: limits.max_conversations,
            idle_timeout: limits.idle_timeout,
            ..Default::default()
        };
        Arc::new(AppState {
            sessions: Sessions::new(engine, desk, session_limits),
            logins: staff::LoginLimiter::default(),
            limits,
            rate,
            metrics: Metrics::default(),
            embeddings,
            bridges: std::sync::OnceLock::new(),
            streams,
            plugins: std::sync::OnceLock::new(),
            campaigns: std::sync::OnceLock::new(),
        })
    }

    /// The campaign codes to count when a conversation starts with one (a poster's QR code);
    /// a code not on the list is not kept, so that no one can write anything else into the
    /// figures. Once.
    pub fn count_campaigns(&self, codes: Vec<String>) {
        let _ = self.campaigns.set(codes);
    }

    /// Runs the plug-ins of `host`: conversations are logged to `store`'s event log for them,
    /// their routes are mounted (`/p/NAME/…`, `/staff/p/NAME/…`), a citizen's deletion reaches
    /// them. Call before [`router`]; once (a second host is ignored).
    pub fn use_plugins(&self, host: Arc<lotse_plugin::Host>, store: lotse_handoff::Store) {
        if self.plugins.get().is_none() {
            let grew = self.sessions.record_activity(store, host.reads("unanswered"));
            if host.reads("voted") {
                self.sessions.hear_votes();
            }
            let _ = self.plugins.set((host, grew));
        }
    }

    /// The plug-ins switched on.
    pub fn plugins(&self) -> Option<&Arc<lotse_plugin::Host>> {
        self.plugins.get().map(|(h, _)| h)
    }

    /// Lets SIP bridges on other nodes that present `token` run their calls' conversations
    /// here (`/bridge/v1`, see `lotse_session::bridge`). Once; a second token is ignored. A
    /// token shorter than [`MIN_BRIDGE_TOKEN`] characters is refused.
    pub fn allow_bridges(&self, token: &str) -> Result<(), String> {
        if token.chars().count() < MIN_BRIDGE_TOKEN {
            return Err(format!("the bridge token needs at least {MIN_BRIDGE_TOKEN} characters"));
        }
        let _ = self.bridges.set(bridge::Bridges::new(token, self.engine().knowledge()));
        Ok(())
    }

    pub(crate) fn engine(&self) -> &Arc<Engine> {
        self.sessions.engine()
    }

    pub(crate) fn desk(&self) -> Option<&Desk> {
        self.sessions.desk()
    }

    /// Forgets conversations idle for longer than the limit; returns how many.
    pub fn expire_idle(&self) -> usize {
        self.sessions.expire_idle()
    }

    pub fn n_conversations(&self) -> usize {
        self.sessions.len()
    }
}

/// An API error: status, a stable code and a plain message. Never carries internal details.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, code, message: message.into() }
    }
}

/// The handoff store's errors as the API answers them: a missing or conflicting resource, or
/// 503 when the store cannot be reached (logged; never the message text).
pub(crate) fn store_error(e: lotse_handoff::store::StoreError) -> ApiError {
    use lotse_handoff::store::StoreError;
    match e {
        StoreError::NotFound => ApiError::new(StatusCode::NOT_FOUND, "not_found", "No such resource."),
        StoreError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, "conflict", m),
        e => {
            tracing::error!(error = %e, "handoff store failed");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                "Your message could not be saved; please try again in a moment.",
            )
        }
    }
}

/// What the session refused, as the API answers it.
impl From<SessionError> for ApiError {
    fn from(e: SessionError) -> ApiError {
        use lotse_handoff::ContactKind;
        match e {
            SessionError::UnknownConversation => handoff::unknown(),
            SessionError::NoStaff => {
                ApiError::new(StatusCode::NOT_FOUND, "no_staff", "Callbacks are not offered here.")
            }
            SessionError::EmptyMessage => {
                ApiError::new(StatusCode::BAD_REQUEST, "empty_message", "The message is empty.")
            }
            SessionError::ConsentRequired => ApiError::new(
                StatusCode::BAD_REQUEST,
                "consent_required",
                "A callback needs your consent to store your contact details.",
            ),
            SessionError::InvalidContact(kind) => ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_contact",
                match kind {
                    ContactKind::Phone => "This is not a phone number we can call.",
                    ContactKind::Email => "This is not an e-mail address we can write to.",
                },
            ),
            SessionError::NoSchedule => {
                ApiError::new(StatusCode::CONFLICT, "no_schedule", "No staff hours are planned for this team.")
            }
            SessionError::NotYours => {
                ApiError::new(StatusCode::CONFLICT, "not_yours", "Claim this conversation first.")
            }
            SessionError::Store(e) => store_error(e),
            SessionError::Internal => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "Something went wrong on our side.")
            }
            SessionError::ConversationFull => ApiError::new(
                StatusCode::CONFLICT,
                "conversation_full",
                "This conversation is very long; please start a new one.",
            ),
            SessionError::Busy => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                "Many questions are being answered right now; please send yours again in a moment.",
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": { "code": self.code, "message": self.message } });
        (self.status, Json(body)).into_response()
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> ApiError {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", "The request body is too large.")
        } else {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_json",
                format!("The request body is not valid: {}", r.body_text()),
            )
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    #[serde(default)]
    channel: Option<Channel>,
    #[serde(default)]
    lang: Option<Lang>,
    /// The campaign the citizen came by (`?c=plakat-bus` on the page or the QR code); counted
    /// only when it is one of the city's (`[plugins] campaigns`).
    #[serde(default)]
    campaign: Option<String>,
}

#[derive(Serialize)]
struct CreateResponse {
    id: lotse_core::ConversationId,
    reply: Reply,
    /// The plug-ins switched on, whose elements the widget shows (`feedback`: a vote under
    /// each answer).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    plugins: Vec<&'static str>,
}

#[derive(Deserialize)]
struct MessageBody {
    text: String,
    #[serde(default)]
    plain_language: bool,
    /// The language the citizen chose (the widget's switch); detection no longer changes it.
    #[serde(default)]
    lang: Option<Lang>,
}

#[derive(Serialize)]
struct MessageResponse {
    /// The assistant's reply; `null` while a member of staff has the conversation.
    reply: Option<Reply>,
    /// The reply's number in the conversation, from 1 (a vote under it names it).
    #[serde(skip_serializing_if = "Option::is_none")]
    turn: Option<u32>,
    /// The message went to the staff member instead of the assistant.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    relayed: bool,
}

/// The API router.
pub fn router(state: Arc<AppState>) -> Router {
    let api = Router::new()
        .route("/api/v1/conversations", post(create))
        .route("/api/v1/conversations/{id}/messages", post(message))
        .route("/api/v1/conversations/{id}/events", get(events))
        .route("/api/v1/conversations/{id}", get(transcript).delete(handoff::delete_conversation))
        .route("/api/v1/conversations/{id}/callback", post(handoff::callback))
        .route("/api/v1/conversations/{id}/typing", post(handoff::citizen_typing))
        .route("/api/v1/qr", get(widget::qr))
        .layer(axum::middleware::from_fn_with_state(state.clone(), rate_limit))
        .layer(axum::middleware::from_fn(cors));
    Router::new()
        .merge(api)
        .merge(widget::router())
        .merge(staff::router(state.clone()))
        .merge(bridge::router(state.clone()))
        .merge(plugins::router(state.clone()))
        .route("/health", get(health))
        .route("/metrics", get(metrics_text))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not_found", "No such resource.") })
        .layer(DefaultBodyLimit::max(64 * 1024))
        .with_state(state)
}

/// The citizen API is called from the city's pages on other origins (the widget): any origin
/// may call it. It carries no cookies or credentials — a conversation's id is its only key — so
/// allowing every origin exposes nothing a page could not already reach.
pub(crate) async fn cors(req: Request, next: Next) -> Response {
    use axum::http::{HeaderValue, Method, header};
    if req.method() == Method::OPTIONS {
        return (
            StatusCode::NO_CONTENT,
            [
                (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
                (header::ACCESS_CONTROL_ALLOW_METHODS, "GET, POST, DELETE"),
                (header::ACCESS_CONTROL_ALLOW_HEADERS, "content-type"),
                (header::ACCESS_CONTROL_MAX_AGE, "600"),
            ],
        )
            .into_response();
    }
    let mut res = next.run(req).await;
    res.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    res
}

/// The client of a request as the limits see it (see [`conn::Client`]): set by the server's
/// accept loop; a request handed to the router directly (tests) has its peer at most.
pub(crate) fn client_of(extensions: &axum::http::Extensions) -> Option<conn::Client> {
    extensions.get::<conn::Client>().copied().or_else(|| {
        extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| conn::Client { ip: c.0.ip().to_canonical(), proxied: false })
    })
}

pub(crate) async fn rate_limit(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    // One budget per client, an IPv6 client's per /64; behind a trusted proxy per citizen.
    let ip = client_of(req.extensions()).map(|c| conn::client_key(c.ip));
    if let Some(ip) = ip
        && !state.rate.allow(ip)
    {
        state.metrics.rate_limited.inc();
        return ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "Too many requests; please wait a moment.",
        )
        .into_response();
    }
    next.run(req).await
}

async fn create(State(state): State<Arc<AppState>>, body: axum::body::Bytes) -> Result<Response, ApiError> {
    // Both fields are optional, and so is the body itself.
    let body: CreateBody = if body.iter().all(u8::is_ascii_whitespace) {
        CreateBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", format!("The request body is not valid: {e}"))
        })?
    };
    let campaign = body.campaign.filter(|c| state.campaigns.get().is_some_and(|known| known.contains(c)));
    let (id, reply) =
        state.sessions.start_from(body.channel.unwrap_or_default(), body.lang.unwrap_or_default(), campaign);
    state.metrics.conversations.inc();
    state.metrics.reply(reply.kind);
    let plugins = state.plugins().map(|h| h.names()).unwrap_or_default();
    Ok((StatusCode::CREATED, Json(CreateResponse { id, reply, plugins })).into_response())
}

async fn message(
    State(state): State<Arc<AppState>>,
    Path(id): Path<ConversationId>,
    body: Result<Json<MessageBody>, JsonRejection>,
) -> Result<Json<MessageResponse>, ApiError> {
    let Json(body) = body?;
    if body.text.chars().count() > state.limits.max_message_chars {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "message_too_long",
            format!("A message may have at most {} characters.", state.limits.max_message_chars),
        ));
    }
    let started = Instant::now();
    // A client that goes away drops this handler and with it the turn: the model stops.
    let turn = Turn::new(body.text).plain(body.plain_language).lang(body.lang);
    match state.sessions.turn(&id, turn).await? {
        TurnOutcome::Relayed => Ok(Json(MessageResponse { reply: None, turn: None, relayed: true })),
        TurnOutcome::Answered { reply, lexical, turn } => {
            if lexical {
                state.metrics.shed.inc();
            }
            state.metrics.turn(started.elapsed());
            state.metrics.reply(reply.kind);
            Ok(Json(MessageResponse { reply: Some(reply), turn: Some(turn), relayed: false }))
        }
    }
}

/// The conversation as the citizen saw it: a reloaded page shows it again, so the browser keeps
/// only the id (nothing of what was said in the host page's storage). Never cached.
async fn transcript(State(state): State<Arc<AppState>>, Path(id): Path<ConversationId>) -> Result<Response, ApiError> {
    let transcript = state.sessions.transcript(&id).await?;
    Ok(([(axum::http::header::CACHE_CONTROL, "no-store")], Json(transcript)).into_response())
}

#[derive(Deserialize, Default)]
struct EventsQuery {
    /// The last event's number, for a client that cannot set `Last-Event-ID` (a browser's
    /// new `EventSource`, after the old one gave up).
    last_event_id: Option<u64>,
}

async fn events(
    State(state): State<Arc<AppState>>,
    Path(id): Path<ConversationId>,
    Query(query): Query<EventsQuery>,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    // A client that (re)connects learns at once where its handoff stands, and gets what it
    // missed since the last event it saw (the browser sends `Last-Event-ID` by itself).
    let after = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .or(query.last_event_id);
    let sub = state.sessions.subscribe(&id, after).await?;
    let Some(slot) = state.streams.take(&id) else {
        state.metrics.streams_refused.inc();
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_streams",
            "Too many event streams are open; please close one.",
        ));
    };
    // The handoff's state carries no number: a client's last number stays that of the last
    // event it saw.
    // What was missed comes first, then where the handoff stands now.
    let current = sub.current.map(|e| (None, e));
    let numbered = sub.missed.into_iter().map(|(seq, e)| (Some(seq), e));
    // A reader that lagged behind the live events loses its stream: it reconnects with the
    // number of the last event it saw and gets the rest from the kept events.
    let live = BroadcastStream::new(sub.live)
        .take_while(|item| item.is_ok())
        .filter_map(|item| item.ok())
        .map(|(seq, e)| (Some(seq), e));
    let stream = tokio_stream::iter(numbered.chain(current)).chain(live).map(move |(seq, event)| {
        // The slot is the stream's: it is given back when the client goes away.
        let _open = &slot;
        let sse = SseEvent::default().event(event.name());
        let sse = match seq {
            Some(seq) => sse.id(seq.to_string()),
            None => sse,
        };
        sse.json_data(&event).map_err(axum::Error::new)
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()).into_response())
}

async fn health(State(state): State<Arc<AppState>>) -> Json<serde_json::Value> {
    let kb = state.engine().knowledge();
    Json(serde_json::json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "services": kb.services.len(),
        "offices": kb.offices.len(),
        "embeddings": state.embeddings,
        "llm": state.engine().llm().map(|(mode, name)| serde_json::json!({"mode": mode, "model": name})),
        "conversations": state.n_conversations(),
        // With a shared store (PostgreSQL): whether this node hears the other nodes' events yet.
        "relay": match state.sessions.relays() {
            (false, _) => serde_json::Value::Null,
            (true, false) => "connecting".into(),
            (true, true) => "listening".into(),
        },
    }))
}

async fn metrics_text(State(state): State<Arc<AppState>>) -> Response {
    let mut body = state.metrics.render(state.n_conversations());
    if let Some(stats) = state.engine().llm_stats() {
        body.push_str(&metrics::render_llm(stats));
    }
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

/// Serves the API on `addr` until Ctrl-C / SIGTERM, expiring idle conversations once a minute.
pub async fn serve(state: Arc<AppState>, addr: SocketAddr) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(%addr, "listening");
    println!("Lotse is listening on http://{}", listener.local_addr()?);
    serve_on(state, listener, shutdown_signal()).await
}

/// Serves the API on a bound listener until `shutdown` completes (tests and benchmarks bind
/// port 0 and stop the server themselves).
pub async fn serve_on(
    state: Arc<AppState>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // The sweeper and idle expiry stop with the server, and are waited for.
    let tracker = tokio_util::task::TaskTracker::new();
    let token = tokio_util::sync::CancellationToken::new();
    state.sessions.spawn_background(&tracker, token.clone());
    if let Some((host, grew)) = state.plugins.get() {
        plugins::spawn(host, grew.clone(), &tracker, token.clone());
    }
    let limits = state.limits.clone();
    let all = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let clients = conn::Clients::new(limits.max_connections_per_client, limits.trusted_proxies.clone());
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let app = router(state.clone());
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, or a connection reset before it was taken: the
                    // listener is fine; wait a moment rather than spin.
                    tracing::warn!(error = %e, "a connection could not be accepted");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Dropping the stream closes it: nothing is read from a connection beyond the limits.
        let Ok(permit) = all.clone().try_acquire_owned() else {
            state.metrics.connections_refused.inc();
            continue;
        };
        let Some(slot) = clients.take(peer.ip()) else {
            state.metrics.connections_refused.inc();
            continue;
        };
        let trusted = limits.trusted_proxies.clone();
        let service =
            tower::ServiceExt::map_request(app.clone(), move |mut req: axum::http::Request<hyper::body::Incoming>| {
                let client = conn::forwarded_client(peer.ip(), req.headers(), &trusted);
                req.extensions_mut().insert(ConnectInfo(peer));
                req.extensions_mut().insert(client);
                req
            });
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(limits.header_timeout)
            .serve_connection(
                hyper_util::rt::TokioIo::new(stream),
                hyper_util::service::TowerToHyperService::new(service),
            );
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            // A client that goes away mid-request is no error of the server's.
            let _ = connection.await;
            drop((permit, slot));
        });
    }
    drop(listener);
    // Requests in flight finish; event streams would not, so they get a few seconds.
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(Duration::from_secs(5)) => {}
    }
    token.cancel();
    tracker.close();
    tracker.wait().await;
    Ok(())
}

/// Ctrl-C or SIGTERM: how an operator stops a Lotse process.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{Method, Request as HttpRequest, header};
    use tower::ServiceExt;

    /// The engine over the real curated knowledge, BM25 only.
    fn engine() -> Engine {
        engine_with(lotse_dialog::EngineConfig::default())
    }

    fn engine_with(config: lotse_dialog::EngineConfig) -> Engine {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../knowledge");
        let kb = Arc::new(lotse_knowledge::load_dir(&dir).expect("curated knowledge loads"));
        let index = Arc::new(lotse_search::SearchIndex::build(&kb).expect("index builds"));
        Engine::new(kb, index, config)
    }

    fn state(limits: Limits) -> Arc<AppState> {
        AppState::new(Arc::new(engine()), limits, false)
    }

    /// Subscribes to a conversation's events; checks the stream's status and type.
    async fn subscribe(state: &Arc<AppState>, id: &str) -> axum::body::BodyDataStream {
        let mut req =
            HttpRequest::builder().uri(format!("/api/v1/conversations/{id}/events")).body(Body::empty()).unwrap();
        req.extensions_mut().insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 5555))));
        let res = router(state.clone()).oneshot(req).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()[header::CONTENT_TYPE], "text/event-stream");
        res.into_body().into_data_stream()
    }

    /// The stream's text up to and including the first `reply` event.
    async fn until_reply(stream: &mut axum::body::BodyDataStream) -> String {
        let mut seen = String::new();
        while !seen.contains("event: reply") {
            let chunk = tokio::time::timeout(Duration::from_secs(5), stream.next())
                .await
                .expect("an event arrives")
                .unwrap()
                .unwrap();
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
        seen
    }

    fn post(uri: &str, body: &str) -> HttpRequest<Body> {
        let mut req = HttpRequest::builder()
            .method(Method::POST)
            .uri(uri)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        req.extensions_mut().insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 5555))));
        req
    }

    async fn send(state: &Arc<AppState>, req: HttpRequest<Body>) -> (StatusCode, serde_json::Value) {
        let res = router(state.clone()).oneshot(req).await.unwrap();
        let status = res.status();
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 20).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
    }

    async fn create(state: &Arc<AppState>) -> String {
        let (status, body) = send(state, post("/api/v1/conversations", r#"{"channel": "web", "lang": "de"}"#)).await;
        assert_eq!(status, StatusCode::CREATED);
        assert_eq!(body["reply"]["kind"], "greeting");
        body["id"].as_str().unwrap().to_string()
    }

    #[tokio::test]
    async fn conversation_round_trip() {
        let state = state(Limits::default());
        let id = create(&state).await;
        let (status, body) = send(
            &state,
            post(&format!("/api/v1/conversations/{id}/messages"), r#"{"text": "Was kostet ein Personalausweis?"}"#),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let reply = &body["reply"];
        assert_eq!(reply["kind"], "answer");
        assert_eq!(reply["lang"], "de");
        assert_eq!(reply["sources"][0]["id"], "personalausweis");
        assert!(reply["text"].as_str().unwrap().contains("46,00 €"));
        assert!(reply["handoff"].is_null());
        assert!(reply["suggestions"].is_array());
        // A body-less create works too (both fields are optional).
        let (status, _) = send(&state, post("/api/v1/conversations", "")).await;
        assert_eq!(status, StatusCode::CREATED);
    }

    #[tokio::test]
    async fn bad_input_gets_clear_4xx() {
        let state = state(Limits::default());
        let id = create(&state).await;
        let url = format!("/api/v1/conversations/{id}/messages");
        let long = serde_json::json!({ "text": "a".repeat(2001) }).to_string();
        let table: Vec<(String, String, StatusCode, &str)> = vec![
            (url.clone(), r#"{"text": "   "}"#.into(), StatusCode::BAD_REQUEST, "empty_message"),
            (url.clone(), r#"{"text": "\u0000\u0007"}"#.into(), StatusCode::BAD_REQUEST, "empty_message"),
            (url.clone(), long, StatusCode::PAYLOAD_TOO_LARGE, "message_too_long"),
            (url.clone(), "{not json".into(), StatusCode::BAD_REQUEST, "invalid_json"),
            (url.clone(), r#"{"txt": "hallo"}"#.into(), StatusCode::BAD_REQUEST, "invalid_json"),
            (
                "/api/v1/conversations/nope/messages".into(),
                r#"{"text": "hallo"}"#.into(),
                StatusCode::NOT_FOUND,
                "unknown_conversation",
            ),
            ("/api/v1/conversations".into(), r#"{"channel": "fax"}"#.into(), StatusCode::BAD_REQUEST, "invalid_json"),
        ];
        for (uri, body, want, code) in table {
            let (status, json) = send(&state, post(&uri, &body)).await;
            assert_eq!(status, want, "{uri} {body:.40}");
            assert_eq!(json["error"]["code"], code, "{uri} {body:.40}");
        }
    }

    #[tokio::test]
    async fn too_many_requests_from_one_client() {
        let state = state(Limits { requests_per_minute: 3, ..Limits::default() });
        for _ in 0..3 {
            let (status, _) = send(&state, post("/api/v1/conversations", "")).await;
            assert_eq!(status, StatusCode::CREATED);
        }
        let (status, json) = send(&state, post("/api/v1/conversations", "")).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(json["error"]["code"], "rate_limited");
    }

    #[tokio::test]
    async fn conversations_are_bounded_and_expire() {
        let state =
            state(Limits { max_conversations: 3, idle_timeout: Duration::from_millis(50), ..Limits::default() });
        for _ in 0..5 {
            create(&state).await;
        }
        assert_eq!(state.n_conversations(), 3);
        tokio::time::sleep(Duration::from_millis(80)).await;
        assert_eq!(state.expire_idle(), 3);
        assert_eq!(state.n_conversations(), 0);
    }

    #[tokio::test]
    async fn events_stream_carries_the_reply() {
        let state = state(Limits::default());
        let id = create(&state).await;
        let mut stream = subscribe(&state, &id).await;
        let (status, _) =
            send(&state, post(&format!("/api/v1/conversations/{id}/messages"), r#"{"text": "Hund anmelden"}"#)).await;
        assert_eq!(status, StatusCode::OK);
        let seen = until_reply(&mut stream).await;
        assert!(seen.contains("event: message"), "{seen}");
        assert!(seen.contains("hundesteuer"), "{seen}");
    }

    /// A generator with a fixed answer, to see the stream around a model (the real model is
    /// tested in `crates/lotse/tests/cli.rs` and `lotse-llm-candle`).
    struct Fixed;

    impl lotse_llm::Generator for Fixed {
        fn name(&self) -> &str {
            "fixed"
        }

        fn generate(
            &self,
            _: &lotse_llm::Prompt,
            _: &lotse_llm::Params,
            on_text: &mut dyn FnMut(&str) -> bool,
        ) -> Result<lotse_llm::Generation, lotse_llm::LlmError> {
            let text = "Ja, Sie können das Passbild auch beim Termin im Bürgerservice aufnehmen lassen. ";
            on_text(text);
            Ok(lotse_llm::Generation {
                text: text.into(),
                finish: lotse_llm::Finish::Stop,
                prompt_tokens: 1,
                cached_tokens: 0,
                generated_tokens: 1,
                prefill: Duration::ZERO,
                first_token: Duration::ZERO,
                total: Duration::ZERO,
            })
        }
    }

    #[tokio::test]
    async fn events_stream_facts_then_verified_sentences_then_the_reply() {
        // About the stream's order, not when to answer: a lower threshold lets the lexical-only
        // test index answer this specific question.
        let config = lotse_dialog::EngineConfig { answer_threshold: 0.2, ..Default::default() };
        let engine = engine_with(config).with_generator(Arc::new(Fixed), lotse_dialog::LlmMode::Assist);
        let state = AppState::new(Arc::new(engine), Limits::default(), false);
        let id = create(&state).await;
        let mut stream = subscribe(&state, &id).await;
        let q = r#"{"text": "Kann ich das Passbild für den Personalausweis im Bürgerservice machen lassen?"}"#;
        let (status, body) = send(&state, post(&format!("/api/v1/conversations/{id}/messages"), q)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["reply"]["generated_by"], "llm:fixed", "{body}");
        let seen = until_reply(&mut stream).await;
        let at = |e: &str| seen.find(e).unwrap_or_else(|| panic!("no {e} in {seen}"));
        assert!(at("event: message") < at("event: facts"), "{seen}");
        assert!(at("event: facts") < at("event: delta"), "{seen}");
        assert!(at("event: delta") < at("event: reply"), "{seen}");
        // The facts carry the sources at once; the delta is the verified sentence.
        assert!(seen.contains("\"id\":\"personalausweis\""), "{seen}");
        assert!(
            seen.contains("Ja, Sie können das Passbild auch beim Termin im Bürgerservice aufnehmen lassen."),
            "{seen}"
        );
    }

    #[tokio::test]
    async fn answers_from_an_imported_dldb_corpus() {
        // The real Munich export, read from ../shared at test time.
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/munich-dldb");
        let (kb, _) = lotse_knowledge::dldb::import(&path).expect("the Munich export imports");
        let kb = Arc::new(kb);
        let index = Arc::new(lotse_search::SearchIndex::build(&kb).unwrap());
        let config = lotse_dialog::EngineConfig { general_office: None, ..Default::default() };
        let state = AppState::new(Arc::new(Engine::new(kb, index, config)), Limits::default(), false);
        let id = create(&state).await;
        let (status, body) = send(
            &state,
            post(&format!("/api/v1/conversations/{id}/messages"), r#"{"text": "Was kostet die Gewerbe-Anmeldung?"}"#),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["reply"]["kind"], "answer");
        assert_eq!(body["reply"]["sources"][0]["id"], "1063423", "DLDB ids are the source ids");
        assert!(body["reply"]["text"].as_str().unwrap().contains("50,00 €"));
    }

    #[tokio::test]
    async fn health_and_metrics() {
        let state = state(Limits::default());
        create(&state).await;
        let res = router(state.clone())
            .oneshot(HttpRequest::builder().uri("/health").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let body: serde_json::Value =
            serde_json::from_slice(&axum::body::to_bytes(res.into_body(), 1 << 16).await.unwrap()).unwrap();
        assert_eq!(body["status"], "ok");
        assert!(body["services"].as_u64().unwrap() >= 120);
        let res = router(state.clone())
            .oneshot(HttpRequest::builder().uri("/metrics").body(Body::empty()).unwrap())
            .await
            .unwrap();
        let text = String::from_utf8(axum::body::to_bytes(res.into_body(), 1 << 16).await.unwrap().to_vec()).unwrap();
        assert!(text.contains("lotse_replies_total{kind=\"greeting\"} 1"), "{text}");
        assert!(text.contains("lotse_conversations_active 1"), "{text}");
        let res =
            router(state).oneshot(HttpRequest::builder().uri("/nowhere").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
    }

    async fn get_raw(state: &Arc<AppState>, uri: &str) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
        let mut req = HttpRequest::builder().uri(uri).body(Body::empty()).unwrap();
        req.extensions_mut().insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 5555))));
        let res = router(state.clone()).oneshot(req).await.unwrap();
        let (parts, body) = res.into_parts();
        (parts.status, parts.headers, axum::body::to_bytes(body, 1 << 20).await.unwrap().to_vec())
    }

    #[tokio::test]
    async fn widget_demo_and_kiosk_pages_are_served() {
        let state = state(Limits::default());
        let (status, headers, body) = get_raw(&state, "/widget.js").await;
        assert_eq!(status, StatusCode::OK);
        assert!(headers[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/javascript"));
        assert!(String::from_utf8(body).unwrap().contains("attachShadow"));
        let (_, _, demo) = get_raw(&state, "/").await;
        assert!(String::from_utf8(demo).unwrap().contains(r#"<script src="/widget.js""#));
        let (_, _, kiosk) = get_raw(&state, "/kiosk").await;
        assert!(String::from_utf8(kiosk).unwrap().contains(r#"data-mode="kiosk""#));
    }

    #[tokio::test]
    async fn the_citizen_api_answers_other_origins() {
        let state = state(Limits::default());
        let mut req = HttpRequest::builder()
            .method(Method::OPTIONS)
            .uri("/api/v1/conversations/x/messages")
            .header(header::ORIGIN, "https://www.jena.de")
            .header("access-control-request-method", "POST")
            .body(Body::empty())
            .unwrap();
        req.extensions_mut().insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 5555))));
        let res = router(state.clone()).oneshot(req).await.unwrap();
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
        assert_eq!(res.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
        assert!(res.headers()[header::ACCESS_CONTROL_ALLOW_HEADERS].to_str().unwrap().contains("content-type"));
        let res = router(state.clone()).oneshot(post("/api/v1/conversations", "")).await.unwrap();
        assert_eq!(res.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
    }

    #[tokio::test]
    async fn qr_codes_only_for_addresses_the_knowledge_names() {
        let state = state(Limits::default());
        let url = "https://service.jena.de/personalausweis-beantragen";
        let (status, headers, body) =
            get_raw(&state, &format!("/api/v1/qr?url={}", url.replace(':', "%3A").replace('/', "%2F"))).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[header::CONTENT_TYPE], "image/svg+xml");
        assert!(String::from_utf8(body).unwrap().starts_with("<?xml"));
        let (status, _, _) = get_raw(&state, "/api/v1/qr?url=https%3A%2F%2Fevil.example%2F").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn a_chosen_language_is_kept() {
        let state = state(Limits::default());
        let id = create(&state).await;
        let uri = format!("/api/v1/conversations/{id}/messages");
        let (_, body) = send(&state, post(&uri, r#"{"text": "Was kostet ein Personalausweis?", "lang": "en"}"#)).await;
        assert_eq!(body["reply"]["lang"], "en", "{body}");
        let (_, body) = send(&state, post(&uri, r#"{"text": "Wo beantrage ich einen Reisepass?"}"#)).await;
        assert_eq!(body["reply"]["lang"], "en", "the chosen language stays: {body}");
    }
}

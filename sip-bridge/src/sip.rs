//! The signalling: one SIP endpoint (rsipstack, UDP) that answers calls. An INVITE with an
//! offer the bridge can take is answered 200 with one G.711 stream on a fresh RTP port, and
//! the call gets its media task and a thread of its own for the conversation; anything else
//! gets a clear final answer (488 for media the bridge cannot take, 503 when the node is full,
//! 481 for a dialog it does not know, 405 for a method it does not take).

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use lotse_call::Inbound;
use lotse_speech::call::Player;
use rsipstack::EndpointBuilder;
use rsipstack::dialog::DialogId;
use rsipstack::dialog::dialog::{DialogState, DialogStateReceiver, TerminatedReason};
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::platform::CancellationToken;
use rsipstack::sip::prelude::HeadersExt;
use rsipstack::sip::{Header, Method, StatusCode};
use rsipstack::transaction::transaction::Transaction;
use rsipstack::transport::TransportLayer;
use rsipstack::transport::udp::UdpConnection;
use tokio::net::UdpSocket;
use tokio::sync::{oneshot, watch};

use crate::media::{self, Target};
use crate::sdp;

const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS";

/// What the bridge needs to know.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where SIP is received (UDP).
    pub listen: SocketAddr,
    /// Calls at once; the next is answered 503, so a proxy tries another node.
    pub max_calls: usize,
    /// How long a call rings (180) before the bridge answers it; zero answers at once. A
    /// caller who hangs up meanwhile (CANCEL) never reaches a conversation.
    pub ring: std::time::Duration,
    /// Register the bridge as an extension of a PBX that wants one (REGISTER with digest
    /// authentication, refreshed before it expires); none where the PBX routes calls to the
    /// bridge as a trunk.
    pub register: Option<Register>,
    /// The UDP ports calls take their RTP on (an even port each, first and last included), for
    /// the firewall; none: any free port the system gives.
    pub rtp_ports: Option<(u16, u16)>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 5060)),
            max_calls: 4,
            ring: std::time::Duration::ZERO,
            register: None,
            rtp_ports: None,
        }
    }
}

/// A range of RTP ports from its written form, `30000-30999`: at least two ports, above 1023.
pub fn port_range(text: &str) -> Result<(u16, u16)> {
    let (a, b) = text.split_once('-').context("a range of ports is written FIRST-LAST")?;
    let (a, b): (u16, u16) = (a.trim().parse()?, b.trim().parse()?);
    anyhow::ensure!(a > 1023 && a < b, "the RTP ports {a}-{b}: the first above 1023 and below the last");
    Ok((a, b))
}

/// A socket for a call's RTP on `ip`: in `range` an even port, tried from a random one on
/// (RTP's convention keeps the odd one above for RTCP); else any free port.
async fn bind_rtp(ip: IpAddr, range: Option<(u16, u16)>) -> std::io::Result<UdpSocket> {
    let Some((first, last)) = range else {
        return UdpSocket::bind(SocketAddr::new(ip, 0)).await;
    };
    let first = first + first % 2;
    let evens = ((last - first) / 2 + 1) as u64;
    let from = rand_session() % evens;
    for i in 0..evens {
        let port = first + (((from + i) % evens) * 2) as u16;
        if let Ok(socket) = UdpSocket::bind(SocketAddr::new(ip, port)).await {
            return Ok(socket);
        }
    }
    Err(std::io::Error::new(std::io::ErrorKind::AddrInUse, "every RTP port of the range is taken"))
}

/// The bridge as an extension of a PBX: where it registers and with which credentials (the
/// configuration's `[sip.register]`, whose Debug output leaves the password out).
pub use lotse_app::config::SipRegister as Register;

/// Whether the bridge's registration with the PBX holds now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registered {
    /// Not registering, or not yet answered.
    No,
    Yes,
    /// The registrar refused (the status code) or could not be reached (0); retried with a
    /// growing pause.
    Failed(u16),
}

/// What a call's conversation gets from its line.
pub struct Line {
    /// The caller's audio (16 kHz, 20 ms at a time) and keys, until the line closes.
    pub inbound: std::sync::mpsc::Receiver<Inbound>,
    /// Where the call hands its playback to the media clock, before it says anything.
    pub on_player: Box<dyn FnOnce(Arc<Mutex<Player>>) + Send>,
    /// Raised when the caller has gone: the conversation stops at once, with no work on what
    /// is still queued.
    pub hangup: Arc<AtomicBool>,
    /// The number the caller rings from (P-Asserted-Identity, else From); none when the
    /// caller withheld it or the identity is no number.
    pub caller: Option<String>,
    /// Puts the caller through to a SIP URI (a blind transfer with REFER); blocks until the
    /// transfer's outcome is known. `true`: the caller is connected and the bridge hangs up;
    /// `false`: refused, busy or no answer, and the call goes on.
    pub transfer: Box<dyn Fn(&str) -> bool + Send>,
}

/// The caller's number from an INVITE's headers: the identity the PBX asserts, else the From
/// URI's user part (`sip:+4936414900@pbx`, `tel:+49…`). None where the caller asked for privacy
/// (`Privacy: id`, `anonymous`) or the user part is no phone number (an extension name).
pub fn caller_number(headers: &[(&str, &str)]) -> Option<String> {
    let get = |name: &str| headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| *v);
    if let Some(privacy) = get("Privacy")
        && privacy.split(';').any(|p| matches!(p.trim().to_ascii_lowercase().as_str(), "id" | "user" | "header"))
    {
        return None;
    }
    let user = |value: &str| -> Option<String> {
        let uri = value.split_once('<').map_or(value, |(_, rest)| rest.split('>').next().unwrap_or(rest));
        let rest = uri.trim().split_once(':')?.1;
        let user = rest.split(['@', ';', '>']).next()?;
        lotse_call::booking::number(user)
    };
    get("P-Asserted-Identity").and_then(user).or_else(|| get("From").or_else(|| get("f")).and_then(user))
}

/// The longest call, on the wall clock.
const MAX_CALL: std::time::Duration = std::time::Duration::from_secs(35 * 60);

/// How long a transfer may take, from the REFER to the NOTIFY that reports its outcome.
const TRANSFER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// A transfer's progress from a NOTIFY of the `refer` event: the status code of its
/// `message/sipfrag` body (RFC 3515). rsipstack's own parser misses the headers as they
/// come off the wire, hence this.
fn refer_progress(req: &rsipstack::sip::Request) -> Option<u16> {
    let event = req.header_value("Event")?;
    if !event.trim().to_ascii_lowercase().starts_with("refer") {
        return None;
    }
    let body = std::str::from_utf8(&req.body).ok()?;
    let line = body.lines().find(|l| l.starts_with("SIP/2.0"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Runs one call's conversation on the thread it is given, until the line closes, the caller
/// hangs up, or the conversation ends the call itself (its goodbye).
pub trait Calls: Send + Sync + 'static {
    fn run(&self, line: Line);
}

/// A running bridge.
pub struct Bridge {
    local: SocketAddr,
    token: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    active: Arc<AtomicUsize>,
    /// The registration's task and what stops it, where the bridge registers with a PBX.
    registering: Option<(tokio::task::JoinHandle<()>, CancellationToken)>,
    registered: watch::Receiver<Registered>,
}

impl Bridge {
    /// Binds the SIP port and starts answering.
    pub async fn start(config: Config, calls: Arc<dyn Calls>) -> Result<Bridge> {
        // What can be wrong with the configuration is found before anything is bound.
        if let Some((first, last)) = config.rtp_ports {
            anyhow::ensure!(
                first > 1023 && first < last && first + first % 2 <= last,
                "the RTP ports {first}-{last}: the first above 1023 and an even port in the range"
            );
        }
        let registrar: Option<rsipstack::sip::Uri> = match &config.register {
            Some(register) => Some(
                register
                    .registrar
                    .as_str()
                    .try_into()
                    .map_err(|e| anyhow::anyhow!("{e}"))
                    .with_context(|| format!("the registrar {}", register.registrar))?,
            ),
            None => None,
        };
        let token = CancellationToken::new();
        let transport = TransportLayer::new(token.child_token());
        let udp = UdpConnection::create_connection(config.listen, None, Some(token.child_token()))
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))
            .with_context(|| format!("binding SIP on {}", config.listen))?;
        let local = udp.get_addr().get_socketaddr().map_err(|e| anyhow::anyhow!("{e}"))?;
        transport.add_transport(udp.into());
        let endpoint = EndpointBuilder::new()
            .with_user_agent(concat!("Lotse/", env!("CARGO_PKG_VERSION")))
            .with_transport_layer(transport)
            .with_cancel_token(token.child_token())
            .build();
        let incoming = endpoint.incoming_transactions().map_err(|e| anyhow::anyhow!("{e}"))?;
        let dialogs = Arc::new(DialogLayer::new(endpoint.inner.clone()));
        let inner = endpoint.inner.clone();
        tokio::spawn(async move {
            let _ = inner.serve().await;
        });
        let (registered_tx, registered) = watch::channel(Registered::No);
        let registering = match config.register.zip(registrar) {
            Some((register, registrar)) => {
                let stop = token.child_token();
                Some((
                    tokio::spawn(keep_registered(
                        endpoint.inner.clone(),
                        register,
                        registrar,
                        registered_tx,
                        stop.clone(),
                    )),
                    stop,
                ))
            }
            None => None,
        };
        let active = Arc::new(AtomicUsize::new(0));
        let answering = Answering {
            dialogs,
            calls,
            active: active.clone(),
            max: config.max_calls,
            ring: config.ring,
            rtp_ports: config.rtp_ports,
            local,
            token: token.clone(),
        };
        let task = tokio::spawn(answering.run(incoming, endpoint));
        Ok(Bridge { local, token, task, active, registering, registered })
    }

    /// Whether the registration with the PBX holds (always `No` without one).
    pub fn registered(&self) -> Registered {
        *self.registered.borrow()
    }

    /// Where SIP is received.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Calls in progress.
    pub fn calls(&self) -> usize {
        self.active.load(Ordering::SeqCst)
    }

    /// Stops answering; calls in progress end. A registration is taken back first, so the PBX
    /// stops sending calls here.
    pub async fn shutdown(self) {
        if let Some((task, stop)) = self.registering {
            stop.cancel();
            let _ = task.await;
        }
        self.token.cancel();
        let _ = self.task.await;
    }
}

/// Registers the bridge with the PBX and keeps the registration fresh until `stop`, then takes
/// it back (expires 0). What happens is logged without the password.
async fn keep_registered(
    endpoint: rsipstack::transaction::endpoint::EndpointInnerRef,
    register: Register,
    registrar: rsipstack::sip::Uri,
    state: watch::Sender<Registered>,
    stop: CancellationToken,
) {
    use rsipstack::dialog::registration::{RefreshOutcome, Registration};
    let credential = rsipstack::dialog::authenticate::Credential {
        username: register.user.clone(),
        password: register.password.clone(),
        realm: None,
        auth_username: register.auth_user.clone(),
    };
    let mut registration = Registration::new(endpoint, Some(credential));
    // Whether the PBX ever took the registration: then it is taken back at the end, even after
    // a refresh that failed (the binding may still hold).
    let mut ever = false;
    let refreshing = registration.keep_alive(registrar.clone(), register.expires.max(60), stop.clone(), |outcome| {
        let now = match outcome {
            RefreshOutcome::Registered(_) => Registered::Yes,
            RefreshOutcome::Rejected(r) => Registered::Failed(u16::from(r.status_code.clone())),
            RefreshOutcome::Failed(_) => Registered::Failed(0),
        };
        if *state.borrow() != now {
            match now {
                Registered::Yes => tracing::info!(registrar = %register.registrar, "registered with the PBX"),
                Registered::Failed(code) => {
                    tracing::warn!(registrar = %register.registrar, code, "registering with the PBX failed")
                }
                Registered::No => {}
            }
        }
        ever |= now == Registered::Yes;
        state.send_replace(now);
    });
    // keep_alive notices `stop` only between attempts; a REGISTER the registrar does not
    // answer would hold a shutdown for the transaction's 32 s.
    tokio::select! {
        _ = refreshing => {}
        _ = stop.cancelled() => {}
    }
    if ever {
        let gone =
            tokio::time::timeout(std::time::Duration::from_secs(2), registration.register(registrar, Some(0))).await;
        if !matches!(gone, Ok(Ok(ref r)) if r.status_code.kind() == rsipstack::sip::StatusCodeKind::Successful) {
            tracing::info!("taking the registration back got no answer; it lapses on its own");
        }
        state.send_replace(Registered::No);
    }
}

struct Answering {
    dialogs: Arc<DialogLayer>,
    calls: Arc<dyn Calls>,
    active: Arc<AtomicUsize>,
    max: usize,
    ring: std::time::Duration,
    rtp_ports: Option<(u16, u16)>,
    local: SocketAddr,
    token: CancellationToken,
}

impl Answering {
    async fn run(
        self,
        mut incoming: rsipstack::transaction::TransactionReceiver,
        _endpoint: rsipstack::transaction::Endpoint,
    ) {
        loop {
            let mut tx = tokio::select! {
                _ = self.token.cancelled() => return,
                tx = incoming.recv() => match tx { Some(tx) => tx, None => return },
            };
            let in_dialog = tx.original.to_header().ok().and_then(|t| t.tag().ok().flatten()).is_some();
            if in_dialog {
                match self.dialogs.match_dialog(&tx) {
                    Some(mut dialog) => {
                        tokio::spawn(async move {
                            let _ = dialog.handle(&mut tx).await;
                        });
                    }
                    None => {
                        let _ = tx.reply(StatusCode::CallTransactionDoesNotExist).await;
                    }
                }
                continue;
            }
            match tx.original.method {
                Method::Invite => self.invite(tx).await,
                Method::Options => {
                    let _ = tx.reply_with(StatusCode::OK, vec![Header::Allow(ALLOW.into())], None).await;
                }
                Method::Bye | Method::Cancel | Method::Info | Method::Notify | Method::Update => {
                    let _ = tx.reply(StatusCode::CallTransactionDoesNotExist).await;
                }
                _ => {
                    let _ = tx.reply_with(StatusCode::MethodNotAllowed, vec![Header::Allow(ALLOW.into())], None).await;
                }
            }
        }
    }

    async fn invite(&self, mut tx: Transaction) {
        if self.active.load(Ordering::SeqCst) >= self.max {
            tracing::info!("a call refused: all {} lines busy", self.max);
            let _ = tx.reply_with(StatusCode::ServiceUnavailable, vec![Header::RetryAfter("5".into())], None).await;
            return;
        }
        let offer =
            match std::str::from_utf8(&tx.original.body).map_err(|_| sdp::SdpError::NoAudio).and_then(sdp::parse_offer)
            {
                Ok(o) => o,
                Err(e) => {
                    tracing::info!(error = %e, "a call refused: its media offer");
                    let _ = tx.reply(StatusCode::NotAcceptableHere).await;
                    return;
                }
            };
        let rtp = match bind_rtp(self.local.ip(), self.rtp_ports).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "no RTP port for a call");
                let _ = tx.reply(StatusCode::ServiceUnavailable).await;
                return;
            }
        };
        let Ok(media_at) = rtp.local_addr() else { return };
        let (state_tx, states) = self.dialogs.new_dialog_state_channel();
        let contact = format!("sip:lotse@{}", self.local).as_str().try_into().ok();
        let dialog = match self.dialogs.get_or_create_server_invite(&tx, state_tx, None, contact) {
            Ok(d) => d,
            Err(e) => {
                tracing::info!(error = %e, "a call refused: its INVITE");
                let _ = tx.reply(StatusCode::BadRequest).await;
                return;
            }
        };
        let caller = {
            let headers: Vec<(&str, &str)> = tx.original.headers.iter().map(|h| (h.name(), h.value())).collect();
            caller_number(&headers)
        };
        let mut driver = dialog.clone();
        tokio::spawn(async move {
            let _ = driver.handle(&mut tx).await;
        });
        // The line is taken from the first ring: a node rings no more callers than it has lines.
        self.active.fetch_add(1, Ordering::SeqCst);
        let ringing = Ringing {
            dialogs: self.dialogs.clone(),
            dialog,
            active: self.active.clone(),
            ring: self.ring,
            stop: self.token.child_token(),
        };
        let calls = self.calls.clone();
        tokio::spawn(async move {
            let Some(states) = ringing.until_answered(states).await else { return };
            let session = rand_session();
            let body = sdp::answer(&offer, media_at, session, 1);
            let Ringing { dialogs, dialog, active, stop, .. } = ringing;
            if let Err(e) =
                dialog.accept(Some(vec![Header::ContentType("application/sdp".into())]), Some(body.into_bytes()))
            {
                tracing::warn!(error = %e, "answering a call failed");
                let _ = dialog.reject(Some(StatusCode::ServerInternalError), None);
                dialogs.remove_dialog(&dialog.id());
                active.fetch_sub(1, Ordering::SeqCst);
                return;
            }
            // A CANCEL that crosses the 200 is answered 200 by the stack and changes nothing
            // (RFC 3261 9.2): the caller's ACK and BYE follow.
            let call = Call { dialogs, dialog, active, media_at, session, stop };
            call.run(states, rtp, Target::of(&offer), caller, calls).await;
        });
    }
}

/// A call that rings before it is answered.
struct Ringing {
    dialogs: Arc<DialogLayer>,
    dialog: InviteDialog,
    active: Arc<AtomicUsize>,
    ring: std::time::Duration,
    stop: CancellationToken,
}

impl Ringing {
    /// Rings (180) for the configured time; the dialog's states when the call is to be
    /// answered, none when the caller hung up first (CANCEL, answered 487 by the stack) or the
    /// bridge is stopping (503), and then the line is free again.
    async fn until_answered(&self, mut states: DialogStateReceiver) -> Option<DialogStateReceiver> {
        if self.ring.is_zero() {
            return Some(states);
        }
        let _ = self.dialog.ringing(None, None);
        let rung = tokio::time::sleep(self.ring);
        tokio::pin!(rung);
        let answered = loop {
            tokio::select! {
                // A CANCEL already taken wins over the end of the ring.
                biased;
                state = states.recv() => match state {
                    None | Some(DialogState::Terminated(..)) => {
                        tracing::info!("a caller hung up while it rang");
                        break false;
                    }
                    Some(_) => {}
                },
                _ = &mut rung => break true,
                _ = self.stop.cancelled() => {
                    let _ = self.dialog.reject(Some(StatusCode::ServiceUnavailable), None);
                    break false;
                }
            }
        };
        if answered {
            return Some(states);
        }
        self.dialogs.remove_dialog(&self.dialog.id());
        self.active.fetch_sub(1, Ordering::SeqCst);
        None
    }
}

/// One answered call.
struct Call {
    dialogs: Arc<DialogLayer>,
    dialog: InviteDialog,
    active: Arc<AtomicUsize>,
    media_at: SocketAddr,
    session: u64,
    stop: CancellationToken,
}

impl Call {
    async fn run(
        self,
        mut states: DialogStateReceiver,
        rtp: UdpSocket,
        target: Target,
        caller: Option<String>,
        calls: Arc<dyn Calls>,
    ) {
        let id: DialogId = self.dialog.id();
        let (target_tx, target_rx) = watch::channel(target);
        let (to_call, inbound) = std::sync::mpsc::sync_channel(media::BACKLOG);
        let (player_tx, player_rx) = oneshot::channel();
        let (done_tx, done) = oneshot::channel::<()>();
        let hangup = Arc::new(AtomicBool::new(false));
        let (refer_tx, mut refers) = tokio::sync::mpsc::unbounded_channel::<(String, std::sync::mpsc::Sender<bool>)>();
        let line = Line {
            inbound,
            on_player: Box::new(move |p| {
                let _ = player_tx.send(p);
            }),
            hangup: hangup.clone(),
            caller,
            transfer: Box::new(move |target| {
                let (answer, outcome) = std::sync::mpsc::channel();
                if refer_tx.send((target.to_string(), answer)).is_err() {
                    return false;
                }
                outcome.recv_timeout(TRANSFER_TIMEOUT + std::time::Duration::from_secs(5)).unwrap_or(false)
            }),
        };
        // The conversation on a thread of its own: recognition and synthesis block.
        let thread = std::thread::Builder::new().name("lotse-call".into()).spawn(move || {
            calls.run(line);
            let _ = done_tx.send(());
        });
        if let Err(e) = thread {
            // `done` resolves at once (its sender is gone), and the media task ends the call.
            tracing::warn!(error = %e, "no thread for a call");
        }
        let media = tokio::spawn(media::run(rtp, target_rx, to_call, player_rx, self.stop.clone()));
        let mut media = Some(media);
        let mut version = 1u64;
        // A transfer under way: who waits for its outcome, until when; and the REFER's own
        // transaction.
        let mut transfer: Option<(std::sync::mpsc::Sender<bool>, tokio::time::Instant)> = None;
        let mut referring: Option<tokio::task::JoinHandle<bool>> = None;
        // A REFER went out in this call: a late report of success still ends it for the bridge.
        let mut referred = false;
        // The longest a call lasts, on the wall clock (the conversation says goodbye at 30
        // minutes of its own time; a held call's time stands still).
        let longest = tokio::time::sleep(MAX_CALL);
        tokio::pin!(longest);
        loop {
            let deadline = transfer.as_ref().map(|t| t.1);
            tokio::select! {
                _ = &mut longest => {
                    tracing::info!("a call reached its longest length: the bridge hangs up");
                    let _ = self.dialog.bye().await;
                    break;
                }
                Some((target, answer)) = refers.recv(), if transfer.is_none() => {
                    tracing::info!("a caller is put through");
                    referred = true;
                    let dialog = self.dialog.clone();
                    referring = Some(tokio::spawn(async move {
                        match dialog.refer(format!("<{target}>"), None, None).await {
                            Ok(Some(r)) => r.status_code.kind() == rsipstack::sip::StatusCodeKind::Successful,
                            _ => false,
                        }
                    }));
                    transfer = Some((answer, tokio::time::Instant::now() + TRANSFER_TIMEOUT));
                }
                accepted = async { referring.as_mut().expect("running").await }, if referring.is_some() => {
                    referring = None;
                    if !accepted.unwrap_or(false) && let Some((answer, _)) = transfer.take() {
                        tracing::info!("the transfer was refused");
                        let _ = answer.send(false);
                    }
                }
                _ = async { tokio::time::sleep_until(deadline.expect("set")).await }, if deadline.is_some() => {
                    tracing::info!("the transfer had no outcome in time");
                    if let Some((answer, _)) = transfer.take() {
                        let _ = answer.send(false);
                    }
                }
                state = states.recv() => {
                    let Some(state) = state else { break };
                    match state {
                        DialogState::Updated(_, req, handle) if req.method == Method::Invite => {
                            // A re-INVITE: hold, resume, or a new media address.
                            let answer = std::str::from_utf8(&req.body).ok().and_then(|b| sdp::parse_offer(b).ok());
                            match answer {
                                Some(offer) => {
                                    version += 1;
                                    let body = sdp::answer(&offer, self.media_at, self.session, version);
                                    let _ = target_tx.send(Target::of(&offer));
                                    let _ = handle
                                        .respond(StatusCode::OK, Some(vec![Header::ContentType("application/sdp".into())]), Some(body.into_bytes()))
                                        .await;
                                }
                                None => {
                                    let _ = handle.reply(StatusCode::NotAcceptableHere).await;
                                }
                            }
                        }
                        DialogState::Notify(_, req, handle) => {
                            let _ = handle.reply(StatusCode::OK).await;
                            match refer_progress(&req) {
                                // Connected: the bridge leaves the call (RFC 5589).
                                Some(code) if (200..300).contains(&code) && referred => {
                                    tracing::info!("the transfer succeeded: the bridge hangs up");
                                    if let Some((answer, _)) = transfer.take() {
                                        let _ = answer.send(true);
                                    }
                                    // The 200 to the NOTIFY goes out from the transaction's
                                    // own task: the BYE waits a moment, so the caller's side
                                    // gets them in order.
                                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                                    let _ = self.dialog.bye().await;
                                    break;
                                }
                                Some(code) if code >= 300 => {
                                    tracing::info!(code, "the transfer failed");
                                    if let Some((answer, _)) = transfer.take() {
                                        let _ = answer.send(false);
                                    }
                                }
                                _ => {}
                            }
                        }
                        DialogState::Updated(_, _, handle)
                        | DialogState::Info(_, _, handle)
                        | DialogState::Options(_, _, handle)
                        | DialogState::Message(_, _, handle)
                        | DialogState::Publish(_, _, handle) => {
                            let _ = handle.reply(StatusCode::OK).await;
                        }
                        DialogState::Refer(_, _, handle) => {
                            let _ = handle.reply(StatusCode::Forbidden).await;
                        }
                        DialogState::Terminated(_, reason) => {
                            tracing::info!(reason = ?short(&reason), "a call ended");
                            break;
                        }
                        _ => {}
                    }
                }
                ended = async { media.as_mut().expect("running").await }, if media.is_some() => {
                    media = None;
                    // The line is dead, the conversation said goodbye, or the media failed:
                    // the bridge hangs up, and the call is over whatever the BYE's answer.
                    let why = match ended {
                        Ok(why) => format!("{why:?}"),
                        Err(_) => "media failed".to_string(),
                    };
                    tracing::info!(why, "the bridge hangs up");
                    let _ = self.dialog.bye().await;
                    break;
                }
            }
        }
        hangup.store(true, Ordering::SeqCst);
        self.stop.cancel();
        if let Some(m) = media {
            let _ = m.await;
        }
        // A transfer still waited on: its answer is no (the caller is gone), so the
        // conversation's thread is not held.
        drop(transfer.take());
        refers.close();
        while refers.try_recv().is_ok() {}
        // The line is free when the conversation's thread has ended (it finishes the piece of
        // work it is in, at most one recognition), so no more calls run than lines.
        let _ = done.await;
        self.dialogs.remove_dialog(&id);
        self.active.fetch_sub(1, Ordering::SeqCst);
    }
}

fn short(r: &TerminatedReason) -> String {
    format!("{r:?}")
}

fn rand_session() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u8(1);
    h.finish() >> 1
}

/// The address a bridge on `listen` puts into its SDP (its own address on that interface).
pub fn media_ip(listen: SocketAddr) -> IpAddr {
    listen.ip()
}

#[cfg(test)]
mod tests {
    use super::{bind_rtp, caller_number, port_range};

    #[test]
    fn rtp_ports_come_from_the_configured_range_and_run_out_cleanly() {
        assert_eq!(port_range("30000-30999").unwrap(), (30000, 30999));
        for bad in ["30000", "30999-30000", "80-90", "a-b", "30000-70000"] {
            assert!(port_range(bad).is_err(), "{bad}");
        }
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let ip = "127.0.0.1".parse().unwrap();
            // A range of one even port that is free (found near one the system hands out):
            // the first call gets it, the second none while the first holds it.
            let mut tried = 0;
            let (one, range) = loop {
                tried += 1;
                assert!(tried < 50, "no free even port on loopback");
                let probe = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
                let base = probe.local_addr().unwrap().port() & !1;
                drop(probe);
                let range = Some((base, base + 1));
                if let Ok(one) = bind_rtp(ip, range).await {
                    break (one, range);
                }
            };
            assert_eq!(one.local_addr().unwrap().port(), range.unwrap().0);
            assert!(bind_rtp(ip, range).await.is_err(), "the range's one even port is in use");
            drop(one);
            assert!(bind_rtp(ip, range).await.is_ok(), "free again after the call");
        });
    }

    #[test]
    fn the_callers_number_from_the_asserted_identity_or_from() {
        let from = ("From", "\"Erika\" <sip:+4936414900@pbx.example>;tag=1");
        assert_eq!(caller_number(&[from]).as_deref(), Some("+4936414900"));
        let pai = ("P-Asserted-Identity", "<tel:+49 3641 49-0>");
        assert_eq!(caller_number(&[from, pai]).as_deref(), Some("+493641490"));
        assert_eq!(caller_number(&[("From", "sip:036414900@10.0.0.1")]).as_deref(), Some("036414900"));
        // Withheld, anonymous, or a name: no number.
        assert_eq!(caller_number(&[from, ("Privacy", "id")]), None);
        assert_eq!(caller_number(&[("From", "<sip:anonymous@anonymous.invalid>;tag=2")]), None);
        assert_eq!(caller_number(&[("From", "<sip:sipp@127.0.0.1:5061>;tag=3")]), None);
        assert_eq!(caller_number(&[]), None);
    }
}

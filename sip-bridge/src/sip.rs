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
}

impl Default for Config {
    fn default() -> Self {
        Config { listen: SocketAddr::from(([127, 0, 0, 1], 5060)), max_calls: 4 }
    }
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
}

impl Bridge {
    /// Binds the SIP port and starts answering.
    pub async fn start(config: Config, calls: Arc<dyn Calls>) -> Result<Bridge> {
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
        let active = Arc::new(AtomicUsize::new(0));
        let answering =
            Answering { dialogs, calls, active: active.clone(), max: config.max_calls, local, token: token.clone() };
        let task = tokio::spawn(answering.run(incoming, endpoint));
        Ok(Bridge { local, token, task, active })
    }

    /// Where SIP is received.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Calls in progress.
    pub fn calls(&self) -> usize {
        self.active.load(Ordering::SeqCst)
    }

    /// Stops answering; calls in progress end.
    pub async fn shutdown(self) {
        self.token.cancel();
        let _ = self.task.await;
    }
}

struct Answering {
    dialogs: Arc<DialogLayer>,
    calls: Arc<dyn Calls>,
    active: Arc<AtomicUsize>,
    max: usize,
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
        let rtp = match UdpSocket::bind(SocketAddr::new(self.local.ip(), 0)).await {
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
        let session = rand_session();
        let body = sdp::answer(&offer, media_at, session, 1);
        if let Err(e) =
            dialog.accept(Some(vec![Header::ContentType("application/sdp".into())]), Some(body.into_bytes()))
        {
            tracing::warn!(error = %e, "answering a call failed");
            let _ = dialog.reject(Some(StatusCode::ServerInternalError), None);
            self.dialogs.remove_dialog(&dialog.id());
            return;
        }
        self.active.fetch_add(1, Ordering::SeqCst);
        let call = Call {
            dialogs: self.dialogs.clone(),
            dialog,
            active: self.active.clone(),
            media_at,
            session,
            stop: self.token.child_token(),
        };
        let target = Target::of(&offer);
        tokio::spawn(call.run(states, rtp, target, caller, self.calls.clone()));
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
    use super::caller_number;

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

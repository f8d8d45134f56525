//! The edges of the server, before and around requests: how many connections are open (in all
//! and per client), how long a client may take to send a request's head (also between the
//! requests of a kept-alive connection), and how many event streams are open (in all and per
//! conversation). Without these, a few hundred half-open connections or event streams use up
//! the process's file descriptors and nobody else gets in.
//!
//! hyper reads the connections (with its timer, for the head's deadline); the counting is
//! written here, since it is a table of counters under a lock and the limiter crates count
//! requests, not connections.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use lotse_core::ConversationId;

/// The address a client's budget is kept under: IPv4 as it is, IPv6 by its /64 (one
/// household's or one machine's addresses, which it can change at will).
pub(crate) fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut octets = v6.octets();
                octets[8..].fill(0);
                IpAddr::V6(octets.into())
            }
        },
    }
}

/// Who sent a request, as the limits see it: the connection's peer, or, where the peer is a
/// trusted reverse proxy, the client the proxy forwarded (see [`forwarded_client`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Client {
    /// The client's address (not yet bucketed: see [`client_key`]).
    pub(crate) ip: IpAddr,
    /// Whether the request came through a trusted proxy, whose `X-Forwarded-Host` then names
    /// the host the browser asked for.
    pub(crate) proxied: bool,
}

/// The client a request from `peer` stands for. Forwarded headers are read only from a
/// trusted proxy, never from anyone else (a citizen could write any address into them). Of
/// `X-Forwarded-For`, the right-most address that is not itself a trusted proxy is the client:
/// addresses to the left of it were written by the client and may be made up. A trusted peer
/// that forwards nothing readable is its own client.
pub(crate) fn forwarded_client(peer: IpAddr, headers: &axum::http::HeaderMap, trusted: &[IpAddr]) -> Client {
    let peer = peer.to_canonical();
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|t| t.to_canonical() == ip.to_canonical());
    if !is_trusted(&peer) {
        return Client { ip: peer, proxied: false };
    }
    // Split as bytes: a client may write bytes that are no text to the left of the address the
    // proxy appends on the same line, and that address must still be read.
    let mut hops = headers
        .get_all("x-forwarded-for")
        .iter()
        .flat_map(|v| v.as_bytes().split(|b| *b == b','))
        .map(|hop| std::str::from_utf8(hop).map(str::trim))
        .collect::<Vec<_>>();
    hops.reverse();
    let mut client = peer;
    for hop in hops {
        match hop.ok().and_then(|h| h.parse::<IpAddr>().ok()).ok_or(()) {
            Ok(ip) if is_trusted(&ip) => client = ip.to_canonical(),
            Ok(ip) => return Client { ip: ip.to_canonical(), proxied: true },
            // Garbage where an address should be: nothing further left can be believed.
            Err(()) => break,
        }
    }
    Client { ip: client, proxied: true }
}

/// Open connections per client.
pub(crate) struct Clients {
    max_per_client: usize,
    /// Reverse proxies: their connections carry many citizens and are counted only in all.
    trusted: Vec<IpAddr>,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One open connection of a client; counted until dropped.
pub(crate) struct ClientSlot {
    clients: Arc<Clients>,
    key: Option<IpAddr>,
}

impl Clients {
    pub(crate) fn new(max_per_client: usize, trusted: Vec<IpAddr>) -> Arc<Clients> {
        Arc::new(Clients { max_per_client, trusted, open: Mutex::new(HashMap::new()) })
    }

    /// A slot for a new connection from `ip`, unless the client has all it may have.
    pub(crate) fn take(self: &Arc<Self>, ip: IpAddr) -> Option<ClientSlot> {
        // A dual-stack listener sees an IPv4 proxy as ::ffff:a.b.c.d.
        let ip = ip.to_canonical();
        if self.trusted.iter().any(|t| t.to_canonical() == ip) {
            return Some(ClientSlot { clients: self.clone(), key: None });
        }
        let key = client_key(ip);
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(key).or_insert(0);
        if *n >= self.max_per_client {
            return None;
        }
        *n += 1;
        Some(ClientSlot { clients: self.clone(), key: Some(key) })
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let Some(key) = self.key else { return };
        let mut open = self.clients.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                // The table holds only clients with connections open: it stays bounded.
                open.remove(&key);
            }
        }
    }
}

/// Open event streams, in all and per conversation.
pub(crate) struct Streams {
    max: usize,
    max_per_conversation: usize,
    open: Mutex<(usize, HashMap<ConversationId, usize>)>,
}

/// One open event stream; counted until dropped (the client went away, or the server stops).
pub(crate) struct StreamSlot {
    streams: Arc<Streams>,
    conversation: ConversationId,
}

impl Streams {
    pub(crate) fn new(max: usize, max_per_conversation: usize) -> Arc<Streams> {
        Arc::new(Streams { max, max_per_conversation, open: Mutex::new((0, HashMap::new())) })
    }

    pub(crate) fn take(self: &Arc<Self>, conversation: &ConversationId) -> Option<StreamSlot> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let (total, per) = &mut *open;
        let n = per.get(conversation).copied().unwrap_or(0);
        if *total >= self.max || n >= self.max_per_conversation {
            return None;
        }
        *total += 1;
        per.insert(conversation.clone(), n + 1);
        Some(StreamSlot { streams: self.clone(), conversation: conversation.clone() })
    }

    #[cfg(test)]
    fn open(&self) -> usize {
        self.open.lock().unwrap().0
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.streams.open.lock().unwrap_or_else(|p| p.into_inner());
        let (total, per) = &mut *open;
        *total -= 1;
        if let Some(n) = per.get_mut(&self.conversation) {
            *n -= 1;
            if *n == 0 {
                per.remove(&self.conversation);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_addresses_count_only_from_a_trusted_proxy() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let trusted = [proxy, "10.0.0.2".parse().unwrap()];
        let headers = |xff: &[&str]| {
            let mut h = axum::http::HeaderMap::new();
            for v in xff {
                h.append("x-forwarded-for", v.parse().unwrap());
            }
            h
        };
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        // A citizen's own header is ignored.
        let direct = forwarded_client(ip("203.0.113.9"), &headers(&["198.51.100.1"]), &trusted);
        assert_eq!(direct, Client { ip: ip("203.0.113.9"), proxied: false });
        // Through the proxy: the address it appended, not the one the client made up before it.
        let c = forwarded_client(proxy, &headers(&["1.2.3.4, 198.51.100.7"]), &trusted);
        assert_eq!(c, Client { ip: ip("198.51.100.7"), proxied: true });
        // Two proxies in a row, the header split over two lines.
        let c = forwarded_client(proxy, &headers(&["198.51.100.7", "10.0.0.2"]), &trusted);
        assert_eq!(c.ip, ip("198.51.100.7"));
        // A dual-stack listener sees the IPv4 proxy mapped; IPv6 clients come as written.
        let mapped = ip("::ffff:10.0.0.1");
        assert_eq!(forwarded_client(mapped, &headers(&["2001:db8::5"]), &trusted).ip, ip("2001:db8::5"));
        // Nothing forwarded, or garbage: the proxy is its own client.
        assert_eq!(forwarded_client(proxy, &headers(&[]), &trusted).ip, proxy);
        assert_eq!(forwarded_client(proxy, &headers(&["unknown"]), &trusted).ip, proxy);
        // Bytes that are no text, written by the client before the proxy's address.
        let mut h = axum::http::HeaderMap::new();
        h.append("x-forwarded-for", axum::http::HeaderValue::from_bytes(b"\xff\xfe, 198.51.100.7").unwrap());
        assert_eq!(forwarded_client(proxy, &h, &trusted).ip, ip("198.51.100.7"));
    }

    #[test]
    fn an_ipv6_client_is_its_64_and_a_mapped_ipv4_its_address() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_key(a), client_key(b));
        assert_ne!(client_key(a), client_key(c));
        let mapped: IpAddr = "::ffff:10.0.0.7".parse().unwrap();
        assert_eq!(client_key(mapped), "10.0.0.7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn slots_are_counted_until_dropped_and_proxies_only_in_all() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let clients = Clients::new(2, vec![proxy]);
        let me: IpAddr = "192.0.2.7".parse().unwrap();
        let (a, b) = (clients.take(me).unwrap(), clients.take(me).unwrap());
        assert!(clients.take(me).is_none(), "a third connection of one client");
        assert!(clients.take("192.0.2.8".parse().unwrap()).is_some(), "another client");
        drop(a);
        assert!(clients.take(me).is_some(), "a slot is free again");
        drop(b);
        let through_proxy: Vec<_> = (0..10).map(|_| clients.take(proxy).unwrap()).collect();
        assert_eq!(through_proxy.len(), 10);
        assert!(clients.take("::ffff:10.0.0.1".parse().unwrap()).is_some(), "the proxy on a dual-stack listener");

        let streams = Streams::new(3, 2);
        let one = ConversationId::new("one".to_string());
        let two = ConversationId::new("two".to_string());
        let s1 = streams.take(&one).unwrap();
        let _s2 = streams.take(&one).unwrap();
        assert!(streams.take(&one).is_none(), "per conversation");
        let _s3 = streams.take(&two).unwrap();
        assert!(streams.take(&two).is_none(), "in all");
        drop(s1);
        assert_eq!(streams.open(), 2);
        assert!(streams.take(&two).is_some());
    }
}

//! Keys from RFC 4733 telephone events. An event is named by its RTP timestamp (and its
//! code): the first packet of an event not seen before reports the key, whatever its marker
//! bit says (some gateways never set it, and a lost first packet loses the marker with it);
//! the later packets of the same event (the updates and the three end packets), and late ones
//! of an earlier event, report nothing. The last events are remembered, not only the newest
//! timestamp: a sender whose timestamps jump back (a media server that switches its source
//! under the same SSRC, a replayed recording) still has its keys heard.

/// The keys of events 0–15.
const KEYS: [char; 16] = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '*', '#', 'A', 'B', 'C', 'D'];

/// Events remembered: a late packet comes within a second or two, when a few keys at most
/// were pressed since.
const REMEMBERED: usize = 16;

/// The key events of one RTP stream.
#[derive(Debug, Default)]
pub struct Events {
    /// The (timestamp, event) of the last events reported, newest last.
    seen: std::collections::VecDeque<(u32, u8)>,
}

impl Events {
    pub fn new() -> Events {
        Events::default()
    }

    /// A telephone-event payload with its packet's timestamp: the key, if this is a new event.
    pub fn push(&mut self, timestamp: u32, payload: &[u8]) -> Option<char> {
        let [event, ..] = *payload.get(..4)? else { return None };
        let key = *KEYS.get(event as usize)?;
        // The same event again (an update, an end packet), or a late packet of an earlier one.
        if self.seen.contains(&(timestamp, event)) {
            return None;
        }
        if self.seen.len() == REMEMBERED {
            self.seen.pop_front();
        }
        self.seen.push_back((timestamp, event));
        Some(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(event: u8, end: bool, duration: u16) -> [u8; 4] {
        let d = duration.to_be_bytes();
        [event, if end { 0x80 } else { 0 } | 10, d[0], d[1]]
    }

    #[test]
    fn each_event_is_one_key_without_marker_and_with_repeated_ends() {
        let mut e = Events::new();
        // Key 0: no marker bit anywhere, three end packets.
        assert_eq!(e.push(1000, &payload(0, false, 160)), Some('0'));
        assert_eq!(e.push(1000, &payload(0, false, 320)), None);
        for _ in 0..3 {
            assert_eq!(e.push(1000, &payload(0, true, 800)), None);
        }
        // The same key again is a new event (a new timestamp).
        assert_eq!(e.push(3000, &payload(0, true, 800)), Some('0'), "only its end packets arrived");
        assert_eq!(e.push(5000, &payload(11, false, 160)), Some('#'));
        assert_eq!(e.push(7000, &payload(10, false, 160)), Some('*'));
        // A late end packet of the event before is not a new key.
        assert_eq!(e.push(5000, &payload(11, true, 800)), None);
        // Timestamps wrap.
        let mut e = Events::new();
        assert_eq!(e.push(u32::MAX - 100, &payload(1, false, 160)), Some('1'));
        assert_eq!(e.push(500, &payload(2, false, 160)), Some('2'));
    }

    #[test]
    fn keys_after_a_jump_back_in_time_are_heard_and_memory_stays_bounded() {
        let mut e = Events::new();
        assert_eq!(e.push(17_632, &payload(0, false, 160)), Some('0'));
        // The next key's timestamp is older (the sender restarted its clock).
        assert_eq!(e.push(13_280, &payload(1, false, 160)), Some('1'));
        assert_eq!(e.push(13_280, &payload(1, true, 800)), None);
        assert_eq!(e.push(17_632, &payload(0, true, 800)), None, "a late end of the first key");
        for i in 0..1000u32 {
            e.push(20_000 + i * 1000, &payload((i % 10) as u8, false, 160));
        }
        assert!(e.seen.len() <= REMEMBERED);
    }

    #[test]
    fn other_events_and_short_payloads_are_ignored() {
        let mut e = Events::new();
        assert_eq!(e.push(1, &payload(16, false, 160)), None, "flash");
        assert_eq!(e.push(2, &[5, 0, 0]), None);
        assert_eq!(e.push(3, &payload(5, false, 160)), Some('5'));
    }
}

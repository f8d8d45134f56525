//! A per-client token bucket. Written here because it is twenty lines with a bounded table,
//! while the rate-limiting crates bring their own concurrent maps and clocks for the same job.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

pub struct RateLimiter {
    per_minute: f64,
    max_clients: usize,
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
}

impl RateLimiter {
    pub fn new(per_minute: u32, max_clients: usize) -> RateLimiter {
        RateLimiter { per_minute: per_minute.max(1) as f64, max_clients, buckets: Mutex::new(HashMap::new()) }
    }

    /// Takes one token for `ip`; false when its bucket is empty.
    pub fn allow(&self, ip: IpAddr) -> bool {
        let now = Instant::now();
        let mut map = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= self.max_clients && !map.contains_key(&ip) {
            // Keep the table bounded: drop clients whose buckets have refilled completely.
            let full = self.per_minute;
            let rate = self.per_minute / 60.0;
            map.retain(|_, (tokens, at)| *tokens + at.elapsed().as_secs_f64() * rate < full);
            if map.len() >= self.max_clients {
                return false;
            }
        }
        let (tokens, at) = map.entry(ip).or_insert((self.per_minute, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * self.per_minute / 60.0).min(self.per_minute);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_after_the_budget() {
        let r = RateLimiter::new(3, 10);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(r.allow(ip) && r.allow(ip) && r.allow(ip));
        assert!(!r.allow(ip));
        let other: IpAddr = "127.0.0.2".parse().unwrap();
        assert!(r.allow(other), "budgets are per client");
    }
}

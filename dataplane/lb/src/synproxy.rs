//! A worker's SYN proxy: when it answers SYNs with cookies, the cookies'
//! key, and the handshake state of each proxied connection.
//!
//! A service with `syn_proxy = "on"` is always proxied; one left at
//! `"auto"` while the worker holds at least `threshold` half-open
//! connections (SYN_RECV entries whose client has not completed the
//! handshake, answered by their real or not: what a SYN flood leaves). Once engaged, the proxy stays on while the flood goes
//! on: it lets go when, over a whole second, it answered fewer SYNs than
//! the threshold and the half-open entries fell below half of it.
//!
//! A proxied connection's entry is made when the client's ACK carries a
//! valid cookie; it is *pending* until the real answers the appliance's
//! SYN, and then knows the delta between the real's sequence numbers and
//! the cookie's. That state lives here, in a side table indexed by the
//! entry's slot (the connection entry itself stays 56 bytes), and is read
//! only for entries flagged [`sluice_conntrack::ConnFlags::SYN_PROXY`].

use crate::model::SynProxyUse;
use sluice_conntrack::ConnId;
use sluice_core::syn_cookie::{CookieFlow, CookieKey, CookieOptions, SynOptions, COUNTER_STEP_MS};

/// The window scale the appliance offers a client that offered one: the
/// real's own is not known yet, and windows are rescaled between the two
/// (Linux's default for large buffers).
pub const OFFERED_WSCALE: u8 = 7;
/// How long after the last cookie an ACK is still checked for one: the
/// life of a cookie.
pub const COOKIE_LIFE_MS: u64 = 2 * COUNTER_STEP_MS;
/// A pending connection's SYN to its real is sent again when a client
/// packet comes this long after it.
pub const SYN_RESEND_MS: u64 = 1000;
/// How many times a pending connection resets a TIME_WAIT on its real
/// that answered the SYN with a bare ACK, and sends the SYN again at once.
pub const MAX_TIME_WAIT_RESETS: u8 = 3;

/// The handshake state of one proxied connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Link {
    /// The cookie: the sequence number the client was given.
    pub cookie: u32,
    /// The client's initial sequence number.
    pub client_isn: u32,
    /// What is added to the real's sequence numbers (cookie - real ISN).
    pub delta: u32,
    /// When the SYN to the real was last sent (low 32 bits of the ms
    /// clock).
    pub syn_sent_ms: u32,
    /// The window of the client's ACK (in its own scale).
    pub client_window: u16,
    /// The client's MSS as the cookie carried it.
    pub mss: u16,
    /// The client's window scale as the cookie carried it.
    pub client_ws: Option<u8>,
    /// The window scale offered to the client.
    pub offered_ws: Option<u8>,
    /// The real's window scale (from its SYN-ACK).
    pub real_ws: Option<u8>,
    /// The real has not answered the SYN yet.
    pub pending: bool,
    /// How many times the real answered the SYN with a bare ACK (a
    /// TIME_WAIT of the same addresses and ports) and was reset (at most
    /// 127).
    pub resets: u8,
}

fn ws_byte(ws: Option<u8>) -> u32 {
    u32::from(ws.unwrap_or(0xff))
}

fn ws_of(b: u32) -> Option<u8> {
    let b = (b & 0xff) as u8;
    (b != 0xff).then_some(b)
}

impl Link {
    fn pack(&self) -> [u32; 6] {
        [
            self.cookie,
            self.client_isn,
            self.delta,
            self.syn_sent_ms,
            u32::from(self.client_window)
                | ws_byte(self.client_ws) << 16
                | ws_byte(self.offered_ws) << 24,
            ws_byte(self.real_ws)
                | u32::from(self.pending) << 8
                | u32::from(self.resets & 0x7f) << 9
                | u32::from(self.mss) << 16,
        ]
    }

    fn unpack(w: &[u32; 6]) -> Link {
        Link {
            cookie: w[0],
            client_isn: w[1],
            delta: w[2],
            syn_sent_ms: w[3],
            client_window: w[4] as u16,
            client_ws: ws_of(w[4] >> 16),
            offered_ws: ws_of(w[4] >> 24),
            real_ws: ws_of(w[5]),
            pending: w[5] >> 8 & 1 == 1,
            resets: (w[5] >> 9 & 0x7f) as u8,
            mss: (w[5] >> 16) as u16,
        }
    }

    /// The window the real sent, in units of the scale the client was
    /// told.
    pub fn window_to_client(&self, window: u16) -> u16 {
        // A real that refused scaling sends unscaled windows; the client
        // was offered a scale all the same, and reads them scaled.
        let from = self.real_ws.unwrap_or(0);
        sluice_core::handshake::rescale(window, from, self.offered_ws.unwrap_or(0))
    }

    /// The window the client sent, as the real reads it: when the real
    /// refused window scaling, the client's scaled window unscaled.
    pub fn window_to_real(&self, window: u16) -> Option<u16> {
        match (self.real_ws, self.client_ws) {
            (None, Some(ws)) if ws > 0 => Some(sluice_core::handshake::rescale(window, ws, 0)),
            _ => None,
        }
    }
}

/// Settings of a worker's SYN proxy.
#[derive(Debug, Clone, Copy)]
pub struct SynProxyConfig {
    /// Half-open connections at which `auto` services are proxied (0:
    /// never automatically).
    pub threshold: u32,
    /// The cookies' key: random, the same for every worker.
    pub secret: [u8; 16],
}

/// Half-open connections per worker at which `auto` services are proxied
/// by default.
pub const DEFAULT_SYN_RECV_THRESHOLD: u32 = 1000;

impl Default for SynProxyConfig {
    /// The default threshold and a fixed key: for tests (the daemon draws
    /// a random key).
    fn default() -> Self {
        SynProxyConfig {
            threshold: DEFAULT_SYN_RECV_THRESHOLD,
            secret: *b"sluice-test-key!",
        }
    }
}

/// A worker's SYN proxy.
pub struct SynProxy {
    key: CookieKey,
    threshold: u64,
    engaged: bool,
    window_start: u64,
    window_cookies: u64,
    last_cookie_ms: Option<u64>,
    links: Vec<[u32; 6]>,
    completed: u64,
}

impl SynProxy {
    /// A proxy for a table of `capacity` entries, engaging automatically
    /// at `threshold` half-open connections (0: never automatically).
    pub fn new(cfg: &SynProxyConfig, capacity: usize) -> SynProxy {
        SynProxy {
            key: CookieKey::new(cfg.secret),
            threshold: u64::from(cfg.threshold),
            engaged: false,
            window_start: 0,
            window_cookies: 0,
            last_cookie_ms: None,
            // Zeroed: its pages are only touched as entries are proxied.
            links: vec![[0u32; 6]; capacity],
            completed: 0,
        }
    }

    /// Whether a new connection to a service used as `u` is proxied now,
    /// with `half_open` half-open connections on this worker.
    #[inline]
    pub fn applies(&mut self, u: SynProxyUse, half_open: u64, now_ms: u64) -> bool {
        match u {
            SynProxyUse::Never => false,
            SynProxyUse::Always => true,
            SynProxyUse::UnderFlood => {
                if !self.engaged && self.threshold > 0 && half_open >= self.threshold {
                    self.engaged = true;
                    self.window_start = now_ms;
                    self.window_cookies = 0;
                }
                self.engaged
            }
        }
    }

    /// Whether the proxy is engaged for `auto` services.
    pub fn engaged(&self) -> bool {
        self.engaged
    }

    /// Lets go of an engaged proxy once a whole second passed with fewer
    /// cookies than the threshold and the half-open entries are below
    /// half of it.
    pub fn tick(&mut self, half_open: u64, now_ms: u64) {
        if !self.engaged || now_ms.saturating_sub(self.window_start) < 1000 {
            return;
        }
        if self.window_cookies < self.threshold && half_open * 2 < self.threshold {
            self.engaged = false;
        }
        self.window_start = now_ms;
        self.window_cookies = 0;
    }

    /// The cookie to answer a SYN of `flow` with.
    pub fn cookie(&mut self, flow: CookieFlow, isn: u32, opts: SynOptions, now_ms: u64) -> u32 {
        self.last_cookie_ms = Some(now_ms);
        self.window_cookies += 1;
        self.key.make(flow, isn, opts, now_ms)
    }

    /// Whether an ACK without an entry may carry a cookie: one was sent
    /// within a cookie's life.
    #[inline]
    pub fn cookies_live(&self, now_ms: u64) -> bool {
        self.last_cookie_ms
            .is_some_and(|t| now_ms.saturating_sub(t) <= COOKIE_LIFE_MS)
    }

    /// What the cookie an ACK acknowledges says, if it is valid.
    pub fn check(
        &self,
        flow: CookieFlow,
        isn: u32,
        cookie: u32,
        now_ms: u64,
    ) -> Option<CookieOptions> {
        self.key.check(flow, isn, cookie, now_ms)
    }

    /// The handshake state of proxied connection `id`.
    #[inline]
    pub fn link(&self, id: ConnId) -> Link {
        self.links
            .get(id.as_u32() as usize)
            .map(Link::unpack)
            .unwrap_or_default()
    }

    /// Records the handshake state of proxied connection `id`.
    pub fn set_link(&mut self, id: ConnId, l: Link) {
        if let Some(w) = self.links.get_mut(id.as_u32() as usize) {
            *w = l.pack();
        }
    }

    /// Counts a handshake completed with a real.
    pub fn completed(&mut self) {
        self.completed = self.completed.wrapping_add(1);
    }

    /// How many handshakes with reals have completed (the worker retries
    /// its parked packets when this moves).
    pub fn completions(&self) -> u64 {
        self.completed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_packs_and_unpacks() {
        let l = Link {
            cookie: 1,
            client_isn: 2,
            delta: 3,
            syn_sent_ms: 4,
            client_window: 502,
            client_ws: Some(7),
            offered_ws: Some(7),
            real_ws: None,
            pending: true,
            resets: 3,
            mss: 1460,
        };
        assert_eq!(Link::unpack(&l.pack()), l);
        assert_eq!(Link::unpack(&[0; 6]).client_ws, Some(0));
    }

    #[test]
    fn windows_are_rescaled_between_the_two_ends() {
        let mut l = Link {
            client_ws: Some(7),
            offered_ws: Some(7),
            real_ws: Some(9),
            ..Link::default()
        };
        assert_eq!(l.window_to_client(100), 400);
        assert_eq!(l.window_to_real(100), None);
        l.real_ws = None;
        assert_eq!(l.window_to_client(1024), 8);
        assert_eq!(l.window_to_real(100), Some(12_800));
    }

    #[test]
    fn auto_engages_at_the_threshold_and_lets_go_after_a_quiet_second() {
        let cfg = SynProxyConfig {
            threshold: 100,
            secret: [1; 16],
        };
        let mut p = SynProxy::new(&cfg, 16);
        assert!(!p.applies(SynProxyUse::UnderFlood, 99, 0));
        assert!(p.applies(SynProxyUse::Always, 0, 0));
        assert!(!p.applies(SynProxyUse::Never, 1000, 0));
        assert!(p.applies(SynProxyUse::UnderFlood, 100, 10));
        let flow = CookieFlow {
            client: "198.51.100.1:1".parse().unwrap(),
            service: "203.0.113.1:80".parse().unwrap(),
        };
        for i in 0..200 {
            p.cookie(flow, i, SynOptions::default(), 500);
        }
        // A flood: 200 cookies in the second, still engaged after it.
        p.tick(0, 1010);
        assert!(p.engaged());
        // A quiet second, but half-open entries are still many.
        p.tick(60, 2020);
        assert!(p.engaged());
        p.tick(10, 3030);
        assert!(!p.engaged());
        assert!(p.cookies_live(500 + COOKIE_LIFE_MS));
        assert!(!p.cookies_live(501 + COOKIE_LIFE_MS));
    }
}

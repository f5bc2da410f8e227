//! SYN cookies: the initial sequence number the appliance answers a SYN
//! with when it proxies the handshake, so that it keeps no state until the
//! client's ACK proves the client's address.
//!
//! A cookie is 32 bits: the low 8 carry a 3-bit time counter (64-second
//! steps, as Linux) and the 5 bits of the client's options the cookie can
//! hold, a 2-bit MSS class and a 3-bit window-scale class; the high 24 are
//! a keyed SipHash-2-4 of the connection's addresses and ports, the
//! client's initial sequence number, the counter and those option bits.
//! A cookie is valid for the counter it was made in and the one after
//! (64 to 128 seconds); an attacker who does not see the SYN-ACK guesses
//! one in 2^24.
//!
//! The options are rounded down to their class: the real is told an MSS
//! and a window scale no larger than the client's, which is always safe
//! (segments a little smaller, a window read a little smaller). SACK and
//! timestamps do not fit and are not offered (as Linux's cookies without
//! timestamps).

use siphasher::sip::SipHasher24;
use std::hash::Hasher;
use std::net::SocketAddrV4;

/// The MSS classes a cookie can carry, smallest first. 536 is also what a
/// SYN without an MSS option means (RFC 9293 §3.7.1).
pub const MSS_CLASSES: [u16; 4] = [536, 1220, 1440, 1460];
/// The window-scale classes (`None`: the client offered no scaling).
pub const WSCALE_CLASSES: [Option<u8>; 8] = [
    None,
    Some(0),
    Some(1),
    Some(2),
    Some(4),
    Some(6),
    Some(7),
    Some(8),
];
/// Milliseconds per step of the cookie's time counter.
pub const COUNTER_STEP_MS: u64 = 64_000;
/// TCP option kinds.
const OPT_EOL: u8 = 0;
const OPT_NOP: u8 = 1;
const OPT_MSS: u8 = 2;
const OPT_WSCALE: u8 = 3;
/// Largest window scale (RFC 7323 §2.3).
pub const MAX_WSCALE: u8 = 14;

/// The handshake options of a SYN that matter to a proxied connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SynOptions {
    /// The MSS option, if present.
    pub mss: Option<u16>,
    /// The window-scale option (capped at 14), if present.
    pub wscale: Option<u8>,
}

impl SynOptions {
    /// Reads the options of TCP header `tcp` (its length from its data
    /// offset, which the caller has validated). Malformed options end the
    /// walk: what was read before them counts.
    pub fn parse(tcp: &[u8]) -> SynOptions {
        let len = (usize::from(tcp[12] >> 4) * 4).min(tcp.len());
        let mut o = SynOptions::default();
        let mut i = 20;
        while i < len {
            match tcp[i] {
                OPT_EOL => break,
                OPT_NOP => i += 1,
                kind => {
                    let Some(&n) = tcp.get(i + 1) else { break };
                    let n = usize::from(n);
                    if n < 2 || i + n > len {
                        break;
                    }
                    match (kind, n) {
                        (OPT_MSS, 4) => o.mss = Some(u16::from_be_bytes([tcp[i + 2], tcp[i + 3]])),
                        (OPT_WSCALE, 3) => o.wscale = Some(tcp[i + 2].min(MAX_WSCALE)),
                        _ => {}
                    }
                    i += n;
                }
            }
        }
        o
    }

    /// The options rounded down to what a cookie holds.
    pub fn rounded(self) -> SynOptions {
        let (m, w) = self.classes();
        SynOptions {
            mss: self.mss.map(|_| MSS_CLASSES[m]),
            wscale: WSCALE_CLASSES[w],
        }
    }

    /// The MSS class (an absent MSS is the smallest) and the window-scale
    /// class.
    fn classes(self) -> (usize, usize) {
        let mss = self.mss.unwrap_or(MSS_CLASSES[0]);
        let m = MSS_CLASSES.iter().rposition(|c| *c <= mss).unwrap_or(0);
        let w = match self.wscale {
            None => 0,
            Some(ws) => (1..WSCALE_CLASSES.len())
                .rev()
                .find(|i| WSCALE_CLASSES[*i].is_some_and(|c| c <= ws))
                .unwrap_or(1),
        };
        (m, w)
    }
}

/// What a valid cookie says about the client's SYN: its options, rounded
/// down to their classes (an MSS always: 536 when the SYN had none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CookieOptions {
    /// The client's MSS class.
    pub mss: u16,
    /// The client's window-scale class.
    pub wscale: Option<u8>,
}

/// The secret cookies are keyed with (random per process; every worker
/// uses the same, so a cookie is valid on any).
#[derive(Clone, Copy)]
pub struct CookieKey {
    k0: u64,
    k1: u64,
}

impl std::fmt::Debug for CookieKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CookieKey(..)")
    }
}

/// The connection a cookie belongs to: the client's socket and the
/// virtual service's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CookieFlow {
    /// CIP:cport.
    pub client: SocketAddrV4,
    /// VIP:vport.
    pub service: SocketAddrV4,
}

impl CookieKey {
    /// A key from 16 random bytes.
    pub fn new(secret: [u8; 16]) -> CookieKey {
        let (a, b) = secret.split_at(8);
        CookieKey {
            k0: u64::from_le_bytes(a.try_into().expect("8 bytes")),
            k1: u64::from_le_bytes(b.try_into().expect("8 bytes")),
        }
    }

    /// The cookie for a SYN of `flow` with initial sequence number `isn`
    /// and options `opts`, made at `now_ms`.
    pub fn make(&self, flow: CookieFlow, isn: u32, opts: SynOptions, now_ms: u64) -> u32 {
        let (m, w) = opts.classes();
        let low = (counter(now_ms) << 5) | ((w as u32) << 2) | m as u32;
        (self.mac(flow, isn, low) << 8) | low
    }

    /// Checks the cookie an ACK acknowledges (its acknowledgment number
    /// minus one) for the SYN whose initial sequence number was `isn` (the
    /// ACK's sequence number minus one), at `now_ms`.
    pub fn check(
        &self,
        flow: CookieFlow,
        isn: u32,
        cookie: u32,
        now_ms: u64,
    ) -> Option<CookieOptions> {
        let low = cookie & 0xff;
        let age = counter(now_ms).wrapping_sub(low >> 5) & 7;
        if age > 1 || self.mac(flow, isn, low) != cookie >> 8 {
            return None;
        }
        Some(CookieOptions {
            mss: MSS_CLASSES[(low & 3) as usize],
            wscale: WSCALE_CLASSES[((low >> 2) & 7) as usize],
        })
    }

    /// The 24-bit keyed hash of the flow, the ISN and the cookie's low
    /// byte.
    fn mac(&self, flow: CookieFlow, isn: u32, low: u32) -> u32 {
        let mut h = SipHasher24::new_with_keys(self.k0, self.k1);
        h.write(&flow.client.ip().octets());
        h.write(&flow.service.ip().octets());
        h.write(&flow.client.port().to_be_bytes());
        h.write(&flow.service.port().to_be_bytes());
        h.write(&isn.to_be_bytes());
        h.write(&low.to_be_bytes());
        (h.finish() >> 40) as u32
    }
}

/// The 3-bit time counter at `now_ms`.
fn counter(now_ms: u64) -> u32 {
    ((now_ms / COUNTER_STEP_MS) & 7) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn flow() -> CookieFlow {
        CookieFlow {
            client: SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 7), 40000),
            service: SocketAddrV4::new(Ipv4Addr::new(203, 0, 113, 10), 80),
        }
    }

    fn key() -> CookieKey {
        CookieKey::new(*b"0123456789abcdef")
    }

    #[test]
    fn a_cookie_checks_out_with_its_options_rounded_down() {
        let opts = SynOptions {
            mss: Some(1460),
            wscale: Some(7),
        };
        let c = key().make(flow(), 1000, opts, 5_000);
        assert_eq!(
            key().check(flow(), 1000, c, 5_000),
            Some(CookieOptions {
                mss: 1460,
                wscale: Some(7)
            })
        );
        let odd = SynOptions {
            mss: Some(1400),
            wscale: Some(5),
        };
        let c = key().make(flow(), 1, odd, 0);
        let got = key().check(flow(), 1, c, 0).unwrap();
        assert_eq!((got.mss, got.wscale), (1220, Some(4)));
        let none = SynOptions::default();
        let c = key().make(flow(), 1, none, 0);
        let got = key().check(flow(), 1, c, 0).unwrap();
        assert_eq!((got.mss, got.wscale), (536, None));
        let big = SynOptions {
            mss: Some(9000),
            wscale: Some(14),
        };
        let got = key()
            .check(flow(), 1, key().make(flow(), 1, big, 0), 0)
            .unwrap();
        assert_eq!((got.mss, got.wscale), (1460, Some(8)));
        assert_eq!(big.rounded().wscale, Some(8));
    }

    #[test]
    fn a_cookie_lasts_one_counter_step_more_and_no_longer() {
        let c = key().make(flow(), 7, SynOptions::default(), 63_999);
        assert!(key()
            .check(flow(), 7, c, 63_999 + COUNTER_STEP_MS)
            .is_some());
        assert!(key()
            .check(flow(), 7, c, 63_999 + 2 * COUNTER_STEP_MS)
            .is_none());
        // Nor from the future.
        assert!(key().check(flow(), 7, c, 0).is_some());
        let late = key().make(flow(), 7, SynOptions::default(), 64_000);
        assert!(key().check(flow(), 7, late, 0).is_none());
    }

    #[test]
    fn any_other_flow_isn_key_or_bit_fails() {
        let opts = SynOptions {
            mss: Some(1460),
            wscale: Some(7),
        };
        let c = key().make(flow(), 1000, opts, 0);
        let mut other = flow();
        other.client.set_port(40001);
        assert!(key().check(other, 1000, c, 0).is_none());
        assert!(key().check(flow(), 1001, c, 0).is_none());
        assert!(CookieKey::new([9; 16]).check(flow(), 1000, c, 0).is_none());
        for bit in 0..32 {
            assert!(
                key().check(flow(), 1000, c ^ (1 << bit), 0).is_none(),
                "bit {bit}"
            );
        }
    }

    #[test]
    fn options_are_read_and_malformed_ones_end_the_walk() {
        let mut tcp = [0u8; 40];
        tcp[12] = 10 << 4;
        tcp[20..40].copy_from_slice(&[
            2, 4, 5, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7,
        ]);
        assert_eq!(
            SynOptions::parse(&tcp),
            SynOptions {
                mss: Some(1460),
                wscale: Some(7)
            }
        );
        tcp[24] = 3;
        tcp[25] = 0; // length 0: malformed
        assert_eq!(SynOptions::parse(&tcp).wscale, None);
        assert_eq!(SynOptions::parse(&tcp).mss, Some(1460));
        let mut short = [0u8; 24];
        short[12] = 6 << 4;
        short[20..24].copy_from_slice(&[3, 3, 200, 0]);
        assert_eq!(SynOptions::parse(&short).wscale, Some(MAX_WSCALE));
        // An option running past the header is not read.
        short[20..24].copy_from_slice(&[1, 2, 4, 5]);
        assert_eq!(SynOptions::parse(&short).mss, None);
    }
}

//! The `[tunnel]` section: how tunnel-mode reals (`forward = "ipip"` or
//! `"gue"`) are reached. Every field has a default, so the section is
//! needed only to change one.

use super::raw::RawTunnel;
use super::refusal::{refusal, refuse, Refusal};
use sluice_lb::TunnelView;
use std::net::{Ipv4Addr, Ipv6Addr};

/// The smallest tunnel MTU: an IPv6 packet of the minimum MTU (1280
/// bytes) still fits once in IPv6 and UDP, so no client is told to go
/// below what IPv6 guarantees.
pub const MIN_MTU: u16 = 1280 + 40 + 8;
/// The largest: a jumbo frame.
pub const MAX_MTU: u16 = 9216;

/// Checks `[tunnel]`; without it, the defaults.
pub(super) fn validate(raw: &Option<RawTunnel>) -> Result<TunnelView, Refusal> {
    let mut t = TunnelView::default();
    let Some(raw) = raw else {
        return Ok(t);
    };
    if let Some(s) = &raw.source {
        let a: Ipv4Addr = s
            .parse()
            .map_err(|_| refusal("tunnel.source", format!("{s:?} is not an IPv4 address")))?;
        if a.is_unspecified() || a.is_multicast() || a.is_broadcast() || a.is_loopback() {
            return refuse("tunnel.source", format!("{a} cannot be a packet's source"));
        }
        t.source = Some(a);
    }
    if let Some(s) = &raw.source6 {
        let a: Ipv6Addr = s
            .parse()
            .map_err(|_| refusal("tunnel.source6", format!("{s:?} is not an IPv6 address")))?;
        if a.is_unspecified() || a.is_multicast() || a.is_loopback() {
            return refuse("tunnel.source6", format!("{a} cannot be a packet's source"));
        }
        t.source6 = Some(a);
    }
    if let Some(p) = raw.gue_port {
        if p == 0 {
            return refuse("tunnel.gue_port", "port 0");
        }
        t.gue_port = p;
    }
    if let Some(m) = raw.mtu {
        if !(MIN_MTU..=MAX_MTU).contains(&m) {
            return refuse(
                "tunnel.mtu",
                format!("{m} is outside {MIN_MTU}-{MAX_MTU} bytes"),
            );
        }
        t.mtu = m;
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_without_the_section() {
        let t = validate(&None).unwrap();
        assert_eq!(t, TunnelView::default());
        assert_eq!((t.gue_port, t.mtu, t.source), (6080, 1500, None));
    }

    #[test]
    fn takes_every_field_and_refuses_each_bad_one_by_name() {
        let good = RawTunnel {
            source: Some("198.51.100.1".into()),
            source6: Some("2001:db8::1".into()),
            gue_port: Some(5555),
            mtu: Some(9000),
        };
        let t = validate(&Some(good.clone())).unwrap();
        assert_eq!(t.source, Some(Ipv4Addr::new(198, 51, 100, 1)));
        assert_eq!(t.source6, Some("2001:db8::1".parse().unwrap()));
        assert_eq!((t.gue_port, t.mtu), (5555, 9000));
        let bad = [
            (
                RawTunnel {
                    source: Some("2001:db8::1".into()),
                    ..good.clone()
                },
                "tunnel.source",
            ),
            (
                RawTunnel {
                    source: Some("0.0.0.0".into()),
                    ..good.clone()
                },
                "tunnel.source",
            ),
            (
                RawTunnel {
                    source6: Some("198.51.100.1".into()),
                    ..good.clone()
                },
                "tunnel.source6",
            ),
            (
                RawTunnel {
                    gue_port: Some(0),
                    ..good.clone()
                },
                "tunnel.gue_port",
            ),
            (
                RawTunnel {
                    mtu: Some(1300),
                    ..good.clone()
                },
                "tunnel.mtu",
            ),
        ];
        for (raw, field) in bad {
            assert_eq!(validate(&Some(raw)).unwrap_err().location, field);
        }
    }
}

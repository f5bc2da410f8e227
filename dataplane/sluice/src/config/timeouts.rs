//! The `[timeouts]` section: connection-state timeouts in seconds, kept in
//! milliseconds as the connection table uses them.

use super::raw::RawTimeouts;
use super::refusal::{refuse, Refusal};
use sluice_conntrack::Timeouts;

/// The longest timeout accepted: a week.
const MAX_SECS: u32 = 7 * 86400;

/// Checks `[timeouts]`; fields left out keep the table's defaults.
pub(super) fn validate(t: &RawTimeouts) -> Result<Timeouts, Refusal> {
    let mut timeouts = Timeouts::default();
    let fields = [
        (
            "tcp_established",
            t.tcp_established,
            &mut timeouts.tcp_established,
        ),
        ("tcp_syn_recv", t.tcp_syn_recv, &mut timeouts.tcp_syn_recv),
        ("tcp_fin_wait", t.tcp_fin_wait, &mut timeouts.tcp_fin_wait),
        (
            "tcp_close_wait",
            t.tcp_close_wait,
            &mut timeouts.tcp_close_wait,
        ),
        (
            "tcp_time_wait",
            t.tcp_time_wait,
            &mut timeouts.tcp_time_wait,
        ),
        ("tcp_close", t.tcp_close, &mut timeouts.tcp_close),
        ("tcp_last_ack", t.tcp_last_ack, &mut timeouts.tcp_last_ack),
        ("udp", t.udp, &mut timeouts.udp),
    ];
    for (name, secs, slot) in fields {
        let Some(secs) = secs else { continue };
        if secs == 0 || secs > MAX_SECS {
            return refuse(
                format!("timeouts.{name}"),
                format!("{secs} s is not in 1..={MAX_SECS}"),
            );
        }
        *slot = secs * 1000;
    }
    Ok(timeouts)
}

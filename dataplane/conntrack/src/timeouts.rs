//! Per-state timeouts (milliseconds), with LVS's defaults.
//!
//! Every packet that updates a connection sets its expiry to
//! `now + timeout(new state)`, as LVS does, so a connection in ESTABLISHED
//! lives 15 minutes past its last packet and one that saw a RST only 10 s.

use crate::tcp_state::{ConnState, TcpState};

const SEC: u32 = 1000;

/// Timeouts in milliseconds for every TCP state, for UDP, and the hold time
/// of persistence templates that still control connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP NONE: a connection created by a packet but not yet classified
    /// (LVS: 2 s).
    pub tcp_none: u32,
    /// TCP ESTABLISHED (LVS: 900 s).
    pub tcp_established: u32,
    /// TCP SYN_SENT (LVS: 120 s).
    pub tcp_syn_sent: u32,
    /// TCP SYN_RECV (LVS: 60 s).
    pub tcp_syn_recv: u32,
    /// TCP FIN_WAIT (LVS: 120 s).
    pub tcp_fin_wait: u32,
    /// TCP TIME_WAIT (LVS: 120 s).
    pub tcp_time_wait: u32,
    /// TCP CLOSE (LVS: 10 s).
    pub tcp_close: u32,
    /// TCP CLOSE_WAIT (LVS: 60 s).
    pub tcp_close_wait: u32,
    /// TCP LAST_ACK (LVS: 30 s).
    pub tcp_last_ack: u32,
    /// TCP LISTEN (LVS: 120 s).
    pub tcp_listen: u32,
    /// TCP SYNACK (LVS: 120 s).
    pub tcp_synack: u32,
    /// UDP (LVS: 300 s).
    pub udp: u32,
    /// How long a persistence template whose timeout has run out is kept
    /// while connections still refer to it, before it is checked again
    /// (LVS's `expire_later`: 60 s).
    pub template_hold: u32,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            tcp_none: 2 * SEC,
            tcp_established: 900 * SEC,
            tcp_syn_sent: 120 * SEC,
            tcp_syn_recv: 60 * SEC,
            tcp_fin_wait: 120 * SEC,
            tcp_time_wait: 120 * SEC,
            tcp_close: 10 * SEC,
            tcp_close_wait: 60 * SEC,
            tcp_last_ack: 30 * SEC,
            tcp_listen: 120 * SEC,
            tcp_synack: 120 * SEC,
            udp: 300 * SEC,
            template_hold: 60 * SEC,
        }
    }
}

impl Timeouts {
    /// The timeout of a TCP state.
    pub fn tcp(&self, state: TcpState) -> u32 {
        match state {
            TcpState::None => self.tcp_none,
            TcpState::Established => self.tcp_established,
            TcpState::SynSent => self.tcp_syn_sent,
            TcpState::SynRecv => self.tcp_syn_recv,
            TcpState::FinWait => self.tcp_fin_wait,
            TcpState::TimeWait => self.tcp_time_wait,
            TcpState::Close => self.tcp_close,
            TcpState::CloseWait => self.tcp_close_wait,
            TcpState::LastAck => self.tcp_last_ack,
            TcpState::Listen => self.tcp_listen,
            TcpState::SynAck => self.tcp_synack,
        }
    }

    /// Sets the timeout of a TCP state.
    pub fn set_tcp(&mut self, state: TcpState, ms: u32) {
        let slot = match state {
            TcpState::None => &mut self.tcp_none,
            TcpState::Established => &mut self.tcp_established,
            TcpState::SynSent => &mut self.tcp_syn_sent,
            TcpState::SynRecv => &mut self.tcp_syn_recv,
            TcpState::FinWait => &mut self.tcp_fin_wait,
            TcpState::TimeWait => &mut self.tcp_time_wait,
            TcpState::Close => &mut self.tcp_close,
            TcpState::CloseWait => &mut self.tcp_close_wait,
            TcpState::LastAck => &mut self.tcp_last_ack,
            TcpState::Listen => &mut self.tcp_listen,
            TcpState::SynAck => &mut self.tcp_synack,
        };
        *slot = ms;
    }

    /// The timeout of a connection state (TCP state or UDP).
    pub fn for_state(&self, state: ConnState) -> u32 {
        match state {
            ConnState::Tcp(s) => self.tcp(s),
            ConnState::Udp => self.udp,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lvs_defaults() {
        let t = Timeouts::default();
        assert_eq!(t.tcp(TcpState::Established), 900_000);
        assert_eq!(t.tcp(TcpState::SynRecv), 60_000);
        assert_eq!(t.tcp(TcpState::FinWait), 120_000);
        assert_eq!(t.tcp(TcpState::CloseWait), 60_000);
        assert_eq!(t.tcp(TcpState::TimeWait), 120_000);
        assert_eq!(t.tcp(TcpState::Close), 10_000);
        assert_eq!(t.tcp(TcpState::LastAck), 30_000);
        assert_eq!(t.for_state(ConnState::Udp), 300_000);
    }

    #[test]
    fn set_and_get_every_state() {
        let mut t = Timeouts::default();
        for (i, s) in TcpState::ALL.into_iter().enumerate() {
            t.set_tcp(s, 1000 + i as u32);
        }
        for (i, s) in TcpState::ALL.into_iter().enumerate() {
            assert_eq!(t.tcp(s), 1000 + i as u32);
            assert_eq!(t.for_state(ConnState::Tcp(s)), 1000 + i as u32);
        }
    }
}

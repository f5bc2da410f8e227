//! The LVS TCP state machine, seen from the load balancer.
//!
//! The transition tables are those of Linux's `ip_vs_proto_tcp.c`
//! (`tcp_states[]`, the non-"secure_tcp" variant): a packet's flags select
//! one event, in LVS's priority order RST > SYN > FIN > ACK, and the packet's
//! direction selects one of three tables:
//!
//! * [`Table::Input`]: client -> real packets of a connection whose replies
//!   the balancer also sees (NAT);
//! * [`Table::Output`]: real -> client replies (NAT);
//! * [`Table::InputOnly`]: client -> real packets of a connection whose
//!   replies bypass the balancer (DR). As in LVS, once a reply *is* seen on
//!   such a connection it switches to the Input/Output pair.
//!
//! A packet with none of the four flags moves the connection to CLOSE, like
//! LVS (`new_state` defaults to `IP_VS_TCP_S_CLOSE` when `tcp_state_idx` is
//! negative): a TCP segment without ACK outside the handshake is bogus.
//!
//! A connection is **active** exactly when it is ESTABLISHED; every other
//! state, and every UDP connection, is **inactive** (LVS's
//! `IP_VS_CONN_F_INACTIVE`; schedulers weigh active and inactive counts).

/// The state of a TCP connection, LVS's `IP_VS_TCP_S_*` (same order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum TcpState {
    /// No packet classified yet (`NONE`).
    None = 0,
    /// Handshake completed (`ESTABLISHED`); the only active state.
    Established = 1,
    /// The real server sent a SYN first (`SYN_SENT`).
    SynSent = 2,
    /// The client's SYN has been seen (`SYN_RECV`).
    SynRecv = 3,
    /// One side sent FIN (`FIN_WAIT`).
    FinWait = 4,
    /// Both sides sent FIN (`TIME_WAIT`).
    TimeWait = 5,
    /// Reset or bogus segment seen (`CLOSE`).
    Close = 6,
    /// The client sent FIN, the server has not (`CLOSE_WAIT`).
    CloseWait = 7,
    /// Waiting for the last ACK (`LAST_ACK`).
    LastAck = 8,
    /// `LISTEN` (used by LVS for FTP data templates).
    Listen = 9,
    /// `SYNACK` (used by LVS's secure_tcp tables).
    SynAck = 10,
}

impl TcpState {
    /// All states, in LVS order.
    pub const ALL: [TcpState; 11] = [
        TcpState::None,
        TcpState::Established,
        TcpState::SynSent,
        TcpState::SynRecv,
        TcpState::FinWait,
        TcpState::TimeWait,
        TcpState::Close,
        TcpState::CloseWait,
        TcpState::LastAck,
        TcpState::Listen,
        TcpState::SynAck,
    ];

    /// The state with LVS index `i`.
    pub fn from_index(i: u8) -> Option<TcpState> {
        TcpState::ALL.get(usize::from(i)).copied()
    }

    /// LVS's name of the state, as `ipvsadm -lc` prints it.
    pub fn name(self) -> &'static str {
        match self {
            TcpState::None => "NONE",
            TcpState::Established => "ESTABLISHED",
            TcpState::SynSent => "SYN_SENT",
            TcpState::SynRecv => "SYN_RECV",
            TcpState::FinWait => "FIN_WAIT",
            TcpState::TimeWait => "TIME_WAIT",
            TcpState::Close => "CLOSE",
            TcpState::CloseWait => "CLOSE_WAIT",
            TcpState::LastAck => "LAST_ACK",
            TcpState::Listen => "LISTEN",
            TcpState::SynAck => "SYNACK",
        }
    }

    /// Whether the state counts as an active connection (ESTABLISHED only).
    pub fn is_active(self) -> bool {
        self == TcpState::Established
    }
}

/// The state of a connection: a TCP state, or UDP (which has a single,
/// inactive state).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConnState {
    /// A TCP connection in the given state.
    Tcp(TcpState),
    /// A UDP "connection".
    Udp,
}

impl ConnState {
    /// Whether the connection counts as active (TCP ESTABLISHED only).
    pub fn is_active(self) -> bool {
        matches!(self, ConnState::Tcp(TcpState::Established))
    }

    /// Display name (`UDP` for UDP).
    pub fn name(self) -> &'static str {
        match self {
            ConnState::Tcp(s) => s.name(),
            ConnState::Udp => "UDP",
        }
    }

    /// The state's code as appliances exchange it (connection sync): a
    /// TCP state's index, 11 for UDP.
    pub fn code(self) -> u8 {
        self.to_u8()
    }

    /// Decodes [`ConnState::code`] for a connection of protocol `tcp`
    /// (else UDP); None when it is no state of that protocol.
    pub fn from_code(tcp: bool, v: u8) -> Option<ConnState> {
        match (tcp, TcpState::from_index(v)) {
            (true, Some(s)) => Some(ConnState::Tcp(s)),
            (false, None) if v == UDP_STATE => Some(ConnState::Udp),
            _ => None,
        }
    }

    /// Compact encoding stored in a connection entry.
    pub(crate) fn to_u8(self) -> u8 {
        match self {
            ConnState::Tcp(s) => s as u8,
            ConnState::Udp => UDP_STATE,
        }
    }

    /// Decodes [`ConnState::to_u8`].
    pub(crate) fn from_u8(v: u8) -> ConnState {
        match TcpState::from_index(v) {
            Some(s) => ConnState::Tcp(s),
            None => ConnState::Udp,
        }
    }
}

/// Encoding of [`ConnState::Udp`] in an entry.
const UDP_STATE: u8 = 11;

/// Direction of a packet relative to the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dir {
    /// Client -> virtual service (-> real server); found by the inbound key.
    Inbound,
    /// Real server -> client reply (NAT only); found by the outbound key.
    Outbound,
}

/// TCP header flags, with the bit values of the TCP header's flags byte so
/// the raw byte can be passed through [`TcpFlags::from_bits`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TcpFlags(u8);

impl TcpFlags {
    /// No flags.
    pub const NONE: TcpFlags = TcpFlags(0);
    /// FIN (0x01).
    pub const FIN: TcpFlags = TcpFlags(0x01);
    /// SYN (0x02).
    pub const SYN: TcpFlags = TcpFlags(0x02);
    /// RST (0x04).
    pub const RST: TcpFlags = TcpFlags(0x04);
    /// PSH (0x08); ignored by the state machine.
    pub const PSH: TcpFlags = TcpFlags(0x08);
    /// ACK (0x10).
    pub const ACK: TcpFlags = TcpFlags(0x10);
    /// URG (0x20); ignored by the state machine.
    pub const URG: TcpFlags = TcpFlags(0x20);

    /// Flags from the TCP header's flags byte (offset 13).
    pub const fn from_bits(bits: u8) -> TcpFlags {
        TcpFlags(bits)
    }

    /// The raw flag bits.
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// Whether all flags of `other` are set.
    pub const fn contains(self, other: TcpFlags) -> bool {
        self.0 & other.0 == other.0
    }
}

impl std::ops::BitOr for TcpFlags {
    type Output = TcpFlags;
    fn bitor(self, rhs: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 | rhs.0)
    }
}

/// Which LVS transition table applies to a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Table {
    /// Client -> real on a connection whose replies are seen (NAT).
    Input = 0,
    /// Real -> client reply.
    Output = 1,
    /// Client -> real on a connection whose replies are not seen (DR).
    InputOnly = 2,
}

/// The event a packet's flags stand for, LVS's `tcp_state_idx`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Event {
    Syn = 0,
    Fin = 1,
    Ack = 2,
    Rst = 3,
}

fn event(flags: TcpFlags) -> Option<Event> {
    if flags.contains(TcpFlags::RST) {
        Some(Event::Rst)
    } else if flags.contains(TcpFlags::SYN) {
        Some(Event::Syn)
    } else if flags.contains(TcpFlags::FIN) {
        Some(Event::Fin)
    } else if flags.contains(TcpFlags::ACK) {
        Some(Event::Ack)
    } else {
        None
    }
}

// NONE and SYNACK are never the target of a transition in these tables.
use TcpState::{
    Close as CL, CloseWait as CW, Established as ES, FinWait as FW, LastAck as LA, Listen as LI,
    SynRecv as SR, SynSent as SS, TimeWait as TW,
};

/// `STATES[table][event][current state]`, copied from LVS's `tcp_states[]`.
/// Column order: NO, ES, SS, SR, FW, TW, CL, CW, LA, LI, SA.
#[rustfmt::skip]
const STATES: [[[TcpState; 11]; 4]; 3] = [
    // INPUT
    [
        /*syn*/ [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR],
        /*fin*/ [CL, CW, SS, TW, TW, TW, CL, CW, LA, LI, TW],
        /*ack*/ [CL, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
        /*rst*/ [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, SR],
    ],
    // OUTPUT
    [
        /*syn*/ [SS, ES, SS, SR, SS, SS, SS, SS, SS, LI, SR],
        /*fin*/ [TW, FW, SS, TW, FW, TW, CL, TW, LA, LI, TW],
        /*ack*/ [ES, ES, SS, ES, FW, TW, CL, CW, LA, ES, ES],
        /*rst*/ [CL, CL, SS, CL, CL, TW, CL, CL, CL, CL, CL],
    ],
    // INPUT-ONLY
    [
        /*syn*/ [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR],
        /*fin*/ [CL, FW, SS, TW, FW, TW, CL, CW, LA, LI, TW],
        /*ack*/ [CL, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
        /*rst*/ [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, CL],
    ],
];

/// The state after a packet with `flags`, looked up in `table`, arrives at a
/// connection in `state` (LVS's `set_tcp_state` without the bookkeeping).
pub fn next_state(state: TcpState, table: Table, flags: TcpFlags) -> TcpState {
    match event(flags) {
        Some(ev) => STATES[table as usize][ev as usize][state as usize],
        None => TcpState::Close,
    }
}

/// How a state change moved a connection between the active and inactive
/// counts of its real server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Activity {
    /// Still active, or still inactive.
    Unchanged,
    /// Inactive -> active: increment the real's active count, decrement its
    /// inactive count.
    Activated,
    /// Active -> inactive: decrement the real's active count, increment its
    /// inactive count.
    Deactivated,
}

impl Activity {
    /// The activity change between two states.
    pub fn between(old: ConnState, new: ConnState) -> Activity {
        match (old.is_active(), new.is_active()) {
            (false, true) => Activity::Activated,
            (true, false) => Activity::Deactivated,
            _ => Activity::Unchanged,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use TcpState::None as NO;

    const SYN: TcpFlags = TcpFlags::SYN;
    const ACK: TcpFlags = TcpFlags::ACK;
    const FIN: TcpFlags = TcpFlags::FIN;
    const RST: TcpFlags = TcpFlags::RST;

    fn run(start: TcpState, steps: &[(Table, TcpFlags, TcpState)]) {
        let mut s = start;
        for (i, &(t, f, want)) in steps.iter().enumerate() {
            s = next_state(s, t, f);
            assert_eq!(s, want, "step {i}: {t:?} {f:?}");
        }
    }

    #[test]
    fn nat_client_closes_first() {
        use Table::*;
        run(
            NO,
            &[
                (Input, SYN, SR),
                (Output, SYN | ACK, SR),
                (Input, ACK, ES),
                (Input, ACK | TcpFlags::PSH, ES),
                (Output, ACK, ES),
                (Input, FIN | ACK, CW),
                (Output, ACK, CW),
                (Output, FIN | ACK, TW),
                (Input, ACK, TW),
            ],
        );
    }

    #[test]
    fn nat_server_closes_first() {
        use Table::*;
        run(
            ES,
            &[
                (Output, FIN | ACK, FW),
                (Input, ACK, FW),
                (Input, FIN | ACK, TW),
                (Output, ACK, TW),
            ],
        );
    }

    #[test]
    fn dr_input_only_sequence() {
        use Table::*;
        run(
            NO,
            &[
                (InputOnly, SYN, SR),
                (InputOnly, ACK, ES),
                (InputOnly, FIN | ACK, FW),
                (InputOnly, ACK, FW),
                (InputOnly, FIN | ACK, FW),
            ],
        );
    }

    #[test]
    fn rst_closes_from_every_ordinary_state() {
        for s in [NO, ES, FW, TW, CW] {
            assert_eq!(next_state(s, Table::Input, RST), CL, "{s:?}");
        }
        // LVS keeps SYN_RECV on an inbound RST (spoofed-RST protection).
        assert_eq!(next_state(SR, Table::Input, RST), SR);
        assert_eq!(next_state(SR, Table::Output, RST), CL);
        assert_eq!(next_state(ES, Table::Output, RST), CL);
        assert_eq!(next_state(ES, Table::InputOnly, RST), CL);
    }

    #[test]
    fn flag_priority_and_bogus_segments() {
        // RST beats everything, SYN beats FIN, FIN beats ACK.
        assert_eq!(next_state(ES, Table::Input, RST | ACK), CL);
        assert_eq!(next_state(NO, Table::Input, SYN | FIN), SR);
        assert_eq!(next_state(ES, Table::Input, FIN | ACK), CW);
        // No SYN/FIN/ACK/RST: CLOSE, as in LVS.
        assert_eq!(next_state(ES, Table::Input, TcpFlags::PSH), CL);
        assert_eq!(next_state(ES, Table::Input, TcpFlags::NONE), CL);
        // A mid-stream ACK does not create an established connection.
        assert_eq!(next_state(NO, Table::Input, ACK), CL);
    }

    #[test]
    fn activity_is_established_only() {
        for s in TcpState::ALL {
            assert_eq!(s.is_active(), s == ES);
            assert_eq!(ConnState::Tcp(s).is_active(), s == ES);
            assert_eq!(
                ConnState::from_u8(ConnState::Tcp(s).to_u8()),
                ConnState::Tcp(s)
            );
        }
        assert!(!ConnState::Udp.is_active());
        assert_eq!(ConnState::from_u8(ConnState::Udp.to_u8()), ConnState::Udp);
        let (sr, es) = (ConnState::Tcp(SR), ConnState::Tcp(ES));
        assert_eq!(Activity::between(sr, es), Activity::Activated);
        assert_eq!(
            Activity::between(es, ConnState::Tcp(CL)),
            Activity::Deactivated
        );
        assert_eq!(Activity::between(es, es), Activity::Unchanged);
        assert_eq!(
            Activity::between(sr, ConnState::Tcp(FW)),
            Activity::Unchanged
        );
        assert_eq!(ES.name(), "ESTABLISHED");
        assert_eq!(ConnState::Udp.name(), "UDP");
    }
}

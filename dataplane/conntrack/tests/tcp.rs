//! The TCP state machine through the table: NAT (in + out) and DR (in
//! only) sequences, RST, simultaneous close, per-state timeouts, and the
//! active/inactive transitions the caller uses for per-real counters.

mod common;

use common::*;
use sluice_conntrack::TcpState::*;
use sluice_conntrack::*;

const SYN: TcpFlags = TcpFlags::SYN;
const ACK: TcpFlags = TcpFlags::ACK;
const FIN: TcpFlags = TcpFlags::FIN;
const RST: TcpFlags = TcpFlags::RST;
const IN: Dir = Dir::Inbound;
const OUT: Dir = Dir::Outbound;

/// Per-real active/inactive counts kept the way the data plane would.
#[derive(Default, Debug, PartialEq)]
struct Counts {
    active: i64,
    inactive: i64,
}

impl Counts {
    fn apply(&mut self, a: Activity) {
        match a {
            Activity::Activated => {
                self.active += 1;
                self.inactive -= 1;
            }
            Activity::Deactivated => {
                self.active -= 1;
                self.inactive += 1;
            }
            Activity::Unchanged => {}
        }
    }
}

/// Feeds packets `(dir, flags, expected state)` one ms apart, checking the
/// state, the expiry (`now + timeout(state)`) and the counts.
fn run(
    t: &mut ConnTable,
    id: ConnId,
    counts: &mut Counts,
    start: u64,
    steps: &[(Dir, TcpFlags, TcpState)],
) -> u64 {
    let mut now = start;
    for (i, &(dir, flags, want)) in steps.iter().enumerate() {
        now += 1;
        let u = t.update(id, dir, flags, now).unwrap();
        assert_eq!(u.new, ConnState::Tcp(want), "step {i}: {dir:?} {flags:?}");
        let timeout = t.timeouts().tcp(want);
        assert_eq!(u.expires, now + u64::from(timeout), "step {i}");
        assert_eq!(t.get(id).unwrap().expires(), u.expires);
        assert_eq!(u.activity, Activity::between(u.old, u.new));
        counts.apply(u.activity);
        assert_eq!(counts.active, i64::from(want == Established), "step {i}");
        assert_eq!(counts.active + counts.inactive, 1);
    }
    now
}

fn new_conn(t: &mut ConnTable, fwd: Forward) -> (ConnId, Counts) {
    let id = t.insert(&conn(1, Protocol::Tcp, fwd, 0), 0).unwrap();
    // A new connection is inactive.
    assert!(!t.get(id).unwrap().is_active());
    (
        id,
        Counts {
            active: 0,
            inactive: 1,
        },
    )
}

/// Expires everything due at `now` and returns how many went.
fn expire_all(t: &mut ConnTable, now: u64, counts: &mut Counts) -> usize {
    let mut n = 0;
    t.expire(now, usize::MAX, |_, c| {
        n += 1;
        if c.is_active() {
            counts.active -= 1;
        } else {
            counts.inactive -= 1;
        }
    });
    n
}

#[test]
fn nat_handshake_and_client_close() {
    let mut t = table(16);
    let (id, mut counts) = new_conn(&mut t, Forward::Nat);
    let now = run(
        &mut t,
        id,
        &mut counts,
        0,
        &[
            (IN, SYN, SynRecv),
            (OUT, SYN | ACK, SynRecv),
            (IN, ACK, Established),
            (OUT, ACK | TcpFlags::PSH, Established),
            (IN, FIN | ACK, CloseWait),
            (OUT, ACK, CloseWait),
            (OUT, FIN | ACK, TimeWait),
            (IN, ACK, TimeWait),
        ],
    );
    assert!(t.get(id).unwrap().flags().contains(ConnFlags::SEEN_REPLY));
    // TIME_WAIT lasts 120 s from the last packet.
    assert_eq!(expire_all(&mut t, now + 119_999, &mut counts), 0);
    assert_eq!(expire_all(&mut t, now + 120_000, &mut counts), 1);
    assert_eq!(counts, Counts::default());
}

#[test]
fn nat_server_closes_first() {
    let mut t = table(16);
    let (id, mut counts) = new_conn(&mut t, Forward::Nat);
    run(
        &mut t,
        id,
        &mut counts,
        0,
        &[
            (IN, SYN, SynRecv),
            (OUT, SYN | ACK, SynRecv),
            (IN, ACK, Established),
            (OUT, FIN | ACK, FinWait),
            (IN, ACK, FinWait),
            (IN, FIN | ACK, TimeWait),
            (OUT, ACK, TimeWait),
        ],
    );
}

#[test]
fn nat_simultaneous_close() {
    let mut t = table(16);
    let (id, mut counts) = new_conn(&mut t, Forward::Nat);
    run(
        &mut t,
        id,
        &mut counts,
        0,
        &[
            (IN, SYN, SynRecv),
            (OUT, SYN | ACK, SynRecv),
            (IN, ACK, Established),
            // Both FINs cross: whichever the balancer sees first, TIME_WAIT
            // after the second.
            (IN, FIN | ACK, CloseWait),
            (OUT, FIN | ACK, TimeWait),
            (IN, ACK, TimeWait),
            (OUT, ACK, TimeWait),
        ],
    );
    let (id2, mut c2) = {
        let id = t
            .insert(&conn(2, Protocol::Tcp, Forward::Nat, 0), 0)
            .unwrap();
        (
            id,
            Counts {
                active: 0,
                inactive: 1,
            },
        )
    };
    run(
        &mut t,
        id2,
        &mut c2,
        0,
        &[
            (IN, SYN, SynRecv),
            (OUT, SYN | ACK, SynRecv),
            (IN, ACK, Established),
            (OUT, FIN | ACK, FinWait),
            (IN, FIN | ACK, TimeWait),
        ],
    );
}

#[test]
fn dr_input_only() {
    let mut t = table(16);
    let (id, mut counts) = new_conn(&mut t, Forward::Dr);
    let now = run(
        &mut t,
        id,
        &mut counts,
        0,
        &[
            (IN, SYN, SynRecv),
            (IN, ACK, Established),
            (IN, ACK | TcpFlags::PSH, Established),
            (IN, FIN | ACK, FinWait),
            (IN, ACK, FinWait),
        ],
    );
    assert!(!t.get(id).unwrap().flags().contains(ConnFlags::SEEN_REPLY));
    assert_eq!(expire_all(&mut t, now + 119_999, &mut counts), 0);
    assert_eq!(expire_all(&mut t, now + 120_000, &mut counts), 1);
    assert_eq!(counts, Counts::default());
}

#[test]
fn dr_connection_that_shows_a_reply_uses_input_output_tables() {
    let mut t = table(16);
    let (id, mut counts) = new_conn(&mut t, Forward::Dr);
    run(
        &mut t,
        id,
        &mut counts,
        0,
        &[
            (IN, SYN, SynRecv),
            (IN, ACK, Established),
            (OUT, ACK, Established),
            // Input table now: a client FIN means CLOSE_WAIT, not FIN_WAIT.
            (IN, FIN | ACK, CloseWait),
        ],
    );
}

#[test]
fn rst_closes_and_shortens_the_expiry() {
    // Default wheel: 100 ms ticks, 27 min horizon, so the ESTABLISHED
    // expiry really sits 900 s ahead in the wheel.
    let mut t = ConnTable::new(&TableConfig::with_capacity(16)).unwrap();
    let (id, mut counts) = new_conn(&mut t, Forward::Nat);
    let now = run(
        &mut t,
        id,
        &mut counts,
        0,
        &[
            (IN, SYN, SynRecv),
            (OUT, SYN | ACK, SynRecv),
            (IN, ACK, Established),
        ],
    );
    // Let the wheel visit the entry's first (NONE, 2 s) slot, so that it is
    // re-slotted at its ESTABLISHED expiry, 900 s ahead.
    let mut now = now + 5_000;
    t.update(id, IN, ACK, now).unwrap();
    assert_eq!(expire_all(&mut t, now, &mut counts), 0);
    now = run(&mut t, id, &mut counts, now, &[(IN, RST | ACK, Close)]);
    // CLOSE times out after 10 s, although ESTABLISHED had set 900 s: the
    // shortened expiry was re-slotted at once.
    assert_eq!(expire_all(&mut t, now + 9_999, &mut counts), 0);
    assert_eq!(expire_all(&mut t, now + 10_000 + 100, &mut counts), 1);
    assert_eq!(counts, Counts::default());

    // A RST from the server too.
    let (id, mut counts) = new_conn(&mut t, Forward::Nat);
    run(
        &mut t,
        id,
        &mut counts,
        100_000,
        &[(IN, SYN, SynRecv), (OUT, RST, Close)],
    );
}

#[test]
fn timeouts_are_configurable() {
    let mut t = table(16);
    let mut to = *t.timeouts();
    to.tcp_established = 5_000;
    to.tcp_syn_recv = 1_000;
    to.udp = 2_000;
    t.set_timeouts(to);
    let id = t
        .insert(&conn(1, Protocol::Tcp, Forward::Nat, 0), 0)
        .unwrap();
    assert_eq!(t.update(id, IN, SYN, 10).unwrap().expires, 1_010);
    assert_eq!(t.update(id, OUT, SYN | ACK, 20).unwrap().expires, 1_020);
    assert_eq!(t.update(id, IN, ACK, 30).unwrap().expires, 5_030);
    let u = t
        .insert(&conn(2, Protocol::Udp, Forward::Nat, 0), 0)
        .unwrap();
    assert_eq!(t.get(u).unwrap().expires(), 2_000);
}

#[test]
fn udp_refreshes_and_stays_inactive() {
    let mut t = table(16);
    let id = t
        .insert(&conn(1, Protocol::Udp, Forward::Nat, 0), 0)
        .unwrap();
    assert_eq!(t.get(id).unwrap().state(), ConnState::Udp);
    for (now, dir) in [(10, IN), (20, OUT), (30, IN)] {
        let u = t.update(id, dir, TcpFlags::NONE, now).unwrap();
        assert_eq!((u.old, u.new), (ConnState::Udp, ConnState::Udp));
        assert_eq!(u.activity, Activity::Unchanged);
        assert_eq!(u.expires, now + 300_000);
    }
    assert!(t.refresh(id, 40));
    assert_eq!(t.get(id).unwrap().expires(), 300_040);
    assert!(!t.get(id).unwrap().is_active());
}

#[test]
fn bogus_segment_moves_to_close() {
    let mut t = table(16);
    let (id, mut counts) = new_conn(&mut t, Forward::Nat);
    run(
        &mut t,
        id,
        &mut counts,
        0,
        &[
            (IN, SYN, SynRecv),
            (IN, ACK, Established),
            (IN, TcpFlags::PSH, Close),
        ],
    );
}

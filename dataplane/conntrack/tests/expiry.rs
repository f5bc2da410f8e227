//! Expiry with an injected clock: at (never before) the timeout, refresh
//! extends, the budget is respected, and a million entries drain in bounded
//! steps.

mod common;

use common::*;
use sluice_conntrack::*;

fn coarse_table(capacity: u32) -> ConnTable {
    // Default clock granularity: 100 ms ticks.
    ConnTable::new(&TableConfig::with_capacity(capacity)).unwrap()
}

#[test]
fn expires_at_not_before_timeout_with_exact_ticks() {
    let mut t = table(16);
    let id = t
        .insert(&conn(1, Protocol::Udp, Forward::Nat, 0), 1_000)
        .unwrap();
    let mut gone = vec![];
    for now in [0, 1_000, 150_000, 300_999] {
        t.expire(now, usize::MAX, |id, _| gone.push(id));
        assert!(gone.is_empty(), "expired early at {now}");
    }
    assert!(t.get(id).is_some());
    let p = t.expire(301_000, usize::MAX, |id, _| gone.push(id));
    assert_eq!(gone, vec![id]);
    assert_eq!((p.expired, p.done), (1, true));
    assert_eq!(t.get(id), None);
    let s = t.stats();
    assert_eq!((s.expiries, s.occupancy), (1, 0));
}

#[test]
fn coarse_ticks_are_never_early_and_at_most_one_tick_late() {
    let mut t = coarse_table(16);
    let start = 1_234_567; // not tick-aligned
    t.insert(&conn(1, Protocol::Udp, Forward::Nat, 0), start)
        .unwrap();
    let due = start + 300_000;
    let mut expired_at = None;
    for now in (due - 500)..(due + 500) {
        let mut n = 0;
        t.expire(now, usize::MAX, |_, _| n += 1);
        if n == 1 {
            expired_at = Some(now);
            break;
        }
    }
    let at = expired_at.expect("never expired");
    assert!(at >= due && at < due + 100, "expired at {at}, due {due}");
}

#[test]
fn refresh_extends_lazily() {
    let mut t = table(16);
    let id = t
        .insert(&conn(1, Protocol::Udp, Forward::Nat, 0), 0)
        .unwrap();
    // A packet at 200 s moves the expiry from 300 s to 500 s.
    t.update(id, Dir::Inbound, TcpFlags::NONE, 200_000).unwrap();
    let mut gone = 0;
    let p = t.expire(300_000, usize::MAX, |_, _| gone += 1);
    // The entry was visited at 300 s and re-slotted, not expired.
    assert_eq!((p.examined, p.expired, gone), (1, 0, 0));
    t.expire(499_999, usize::MAX, |_, _| gone += 1);
    assert_eq!(gone, 0);
    t.expire(500_000, usize::MAX, |_, _| gone += 1);
    assert_eq!(gone, 1);
}

#[test]
fn budget_is_respected() {
    let mut t = table(2048);
    for i in 0..1000 {
        t.insert(&conn(i, Protocol::Udp, Forward::Nat, 0), 0)
            .unwrap();
    }
    // Refresh half of them so the wheel also has re-slots to do.
    for i in (0..1000).step_by(2) {
        let k = FlowKey::inbound(Protocol::Udp, client(i), vip());
        let id = t.lookup_inbound(&k).unwrap();
        t.update(id, Dir::Inbound, TcpFlags::NONE, 100_000).unwrap();
    }
    assert_eq!(t.expire(300_000, 0, |_, _| {}).examined, 0);
    let mut total = 0;
    let mut calls = 0;
    loop {
        let mut n = 0;
        let p = t.expire(300_000, 10, |_, _| n += 1);
        assert!(p.examined <= 10);
        assert_eq!(p.expired, n);
        total += n;
        calls += 1;
        if p.done {
            break;
        }
    }
    assert_eq!(total, 500);
    assert_eq!(calls, 100 + 1); // 1000 examined, 10 at a time, then done
    assert_eq!(t.len(), 500);
    let mut rest = 0;
    t.expire(400_000, usize::MAX, |_, _| rest += 1);
    assert_eq!(rest, 500);
}

#[test]
fn a_million_entries_expire_in_bounded_steps() {
    const N: u32 = 1_000_000;
    const BUDGET: usize = 25_000;
    let mut t = coarse_table(1 << 20);
    for i in 0..N {
        // Spread over one second of creation times.
        t.insert(
            &conn(i, Protocol::Udp, Forward::Nat, (i % 16) as u16),
            u64::from(i / 1000),
        )
        .unwrap();
    }
    assert_eq!(t.len(), N);
    // Nothing due yet.
    assert_eq!(t.expire(299_999, BUDGET, |_, _| {}).expired, 0);
    let mut total = 0usize;
    let mut calls = 0;
    let now = 400_000;
    loop {
        let p = t.expire(now, BUDGET, |_, c| assert!(c.expires() <= now));
        assert!(p.examined <= BUDGET);
        total += p.expired;
        calls += 1;
        if p.done {
            break;
        }
        assert!(calls <= 1 + N as usize / BUDGET);
    }
    assert_eq!(total, N as usize);
    // 40 full calls; a 41st only if the last one could not tell it was done.
    assert!((N as usize / BUDGET..=N as usize / BUDGET + 1).contains(&calls));
    assert!(t.is_empty());
    assert_eq!(t.stats().expiries, u64::from(N));
}

#[test]
fn clock_jump_expires_everything_in_bounded_calls() {
    let mut t = coarse_table(4096);
    for i in 0..3000 {
        t.insert(&conn(i, Protocol::Tcp, Forward::Dr, 0), u64::from(i))
            .unwrap();
    }
    // Days later.
    let mut total = 0;
    for _ in 0..4 {
        let p = t.expire(10_000_000_000, 1000, |_, _| {});
        total += p.expired;
    }
    assert_eq!(total, 3000);
    assert!(t.expire(10_000_000_000, 1000, |_, _| {}).done);
}

#[test]
fn removed_and_expired_counters_are_separate() {
    let mut t = table(16);
    let a = t
        .insert(&conn(1, Protocol::Udp, Forward::Nat, 0), 0)
        .unwrap();
    t.insert(&conn(2, Protocol::Udp, Forward::Nat, 0), 0)
        .unwrap();
    t.remove(a);
    t.expire(1_000_000, usize::MAX, |_, _| {});
    let s = t.stats();
    assert_eq!(
        (s.inserts, s.removals, s.expiries, s.occupancy),
        (2, 1, 1, 0)
    );
}

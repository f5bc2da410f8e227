//! The fragment table: remembered, found, forgotten on time, shortened by
//! the last fragment, and against a model under random use.

use super::*;
use proptest::prelude::*;
use std::collections::HashMap;
use std::net::Ipv4Addr;

fn key(id: u32) -> FragmentKey<Ipv4Addr> {
    FragmentKey {
        src: Ipv4Addr::new(192, 0, 2, 10),
        dst: Ipv4Addr::new(192, 0, 2, 100),
        proto: 17,
        id,
    }
}

fn to_real(last: u8) -> FragmentWay<Ipv4Addr> {
    FragmentWay::ToReal {
        real: Ipv4Addr::new(198, 51, 100, last),
        fwd: Forward::Nat,
        local: Ipv4Addr::new(203, 0, 113, 7),
    }
}

#[test]
fn a_datagram_is_found_until_it_expires_or_its_last_fragment_passed() {
    let mut t = FragmentTable::new();
    assert_eq!(t.get(&key(1), 0), None);
    assert_eq!(
        t.remember(key(1), to_real(11), 3, 7, 1000),
        Remembered::Stored
    );
    let e = t.get(&key(1), 1000).unwrap();
    assert_eq!((e.way, e.service, e.real), (to_real(11), 3, 7));
    // Another identification, protocol or source is another datagram.
    assert_eq!(t.get(&key(2), 1000), None);
    let mut k = key(1);
    k.proto = 6;
    assert_eq!(t.get(&k, 1000), None);
    k = key(1);
    k.src = Ipv4Addr::new(192, 0, 2, 11);
    assert_eq!(t.get(&k, 1000), None);
    // Lives FRAGMENT_LIFE_MS.
    assert!(t.get(&key(1), 1000 + FRAGMENT_LIFE_MS - 1).is_some());
    assert_eq!(t.get(&key(1), 1000 + FRAGMENT_LIFE_MS), None);
    // The last fragment shortens it.
    t.remember(key(2), to_real(12), 3, 8, 5000);
    t.last_seen(&key(2), 5010);
    assert!(t.get(&key(2), 5010 + LAST_FRAGMENT_GRACE_MS - 1).is_some());
    assert_eq!(t.get(&key(2), 5010 + LAST_FRAGMENT_GRACE_MS), None);
    // Remembered again (a retransmitted first fragment): its own entry.
    assert_eq!(
        t.remember(key(2), to_real(13), 3, 9, 6000),
        Remembered::Stored
    );
    assert_eq!(t.get(&key(2), 6000).unwrap().way, to_real(13));
    assert_eq!(t.live(6000), 1);
}

#[test]
fn a_full_set_gives_up_its_oldest_datagram() {
    let mut t = FragmentTable::new();
    // Keys of one set: identifications until FRAGMENT_WAYS + 1 share one.
    let first = t.set(&key(0));
    let same: Vec<u32> = (0..1_000_000u32)
        .filter(|&i| t.set(&key(i)) == first)
        .take(FRAGMENT_WAYS + 1)
        .collect();
    assert_eq!(same.len(), FRAGMENT_WAYS + 1);
    for (n, &id) in same[..FRAGMENT_WAYS].iter().enumerate() {
        let r = t.remember(key(id), to_real(11), 0, 0, 100 + n as u64);
        assert_eq!(r, Remembered::Stored);
    }
    let r = t.remember(key(same[FRAGMENT_WAYS]), to_real(11), 0, 0, 200);
    assert_eq!(r, Remembered::Replaced);
    assert_eq!(t.get(&key(same[0]), 200), None, "the oldest went");
    for &id in &same[1..] {
        assert!(t.get(&key(id), 200).is_some());
    }
    // An expired entry is free again.
    let later = 200 + FRAGMENT_LIFE_MS;
    assert_eq!(
        t.remember(key(same[0]), to_real(11), 0, 0, later),
        Remembered::Stored
    );
}

#[derive(Debug, Clone)]
enum Op {
    Remember(u32, u8),
    Last(u32),
    Get(u32),
    Wait(u16),
}

fn op() -> impl Strategy<Value = Op> {
    // Few identifications: they collide, replace and expire.
    prop_oneof![
        (0..64u32, 1..250u8).prop_map(|(i, r)| Op::Remember(i, r)),
        (0..64u32).prop_map(Op::Last),
        (0..64u32).prop_map(Op::Get),
        (0..3000u16).prop_map(Op::Wait),
    ]
}

proptest! {
    /// With fewer datagrams than a set holds, the table answers as a map
    /// with expiry would: what it finds is what was last remembered, while
    /// it lives; nothing else.
    #[test]
    fn answers_as_a_map_with_expiry(ops in proptest::collection::vec(op(), 1..200)) {
        let mut t = FragmentTable::new();
        let mut model: HashMap<u32, (u8, u64)> = HashMap::new();
        let mut now = 10_000u64;
        for o in ops {
            match o {
                Op::Remember(i, r) => {
                    t.remember(key(i), to_real(r), 0, 0, now);
                    model.insert(i, (r, now + FRAGMENT_LIFE_MS));
                }
                Op::Last(i) => {
                    t.last_seen(&key(i), now);
                    if let Some(m) = model.get_mut(&i) {
                        m.1 = m.1.min(now + LAST_FRAGMENT_GRACE_MS);
                    }
                }
                Op::Get(i) => {
                    let want = model
                        .get(&i)
                        .filter(|(_, until)| *until > now)
                        .map(|(r, _)| to_real(*r));
                    // Only a full set may have lost one early.
                    let got = t.get(&key(i), now).map(|e| e.way);
                    if got.is_some() || !set_could_be_full(&t, &model, i, now) {
                        prop_assert_eq!(got, want);
                    }
                }
                Op::Wait(ms) => now += u64::from(ms),
            }
        }
    }
}

/// Whether the set of `i` may have had more live datagrams than ways.
fn set_could_be_full(
    t: &FragmentTable<Ipv4Addr>,
    model: &HashMap<u32, (u8, u64)>,
    i: u32,
    _now: u64,
) -> bool {
    let set = t.set(&key(i));
    model.keys().filter(|&&j| t.set(&key(j)) == set).count() > FRAGMENT_WAYS
}

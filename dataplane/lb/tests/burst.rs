//! A burst processed in stages (`Forwarder::process_burst`: look ahead at
//! every packet's connection, prefetch, then process) gets exactly what
//! processing its packets one by one gets: the same actions, the same
//! bytes out, the same table and counters, whatever the traffic (new and
//! established connections, replies, closes, garbage) and however it is
//! cut into bursts.

mod common;

use common::*;
use proptest::prelude::*;
use sluice_lb::{Action, MAX_BURST};
use std::net::SocketAddrV4;

/// One packet of the generated traffic.
#[derive(Debug, Clone)]
enum Pkt {
    /// Client port `p` opens (SYN), talks (ACK), ends (FIN) or resets.
    Client(u16, u8),
    /// NAT real `i` answers client port `p` with `flags`.
    Reply(usize, u16, u8),
    /// Arbitrary bytes on a port.
    Garbage(Vec<u8>, usize),
    /// A frame cut short after `n` bytes.
    Cut(u16, usize),
}

fn frame(p: &Pkt) -> (Vec<u8>, usize) {
    match p {
        Pkt::Client(port, flags) => (Tcp::new(client(40_000 + port), VIP, *flags).frame(), 0),
        Pkt::Reply(i, port, flags) => (
            Tcp::new(nat_real(*i), client(40_000 + port), *flags).frame(),
            1,
        ),
        Pkt::Garbage(b, rx) => (b.clone(), *rx),
        Pkt::Cut(port, n) => {
            let f = Tcp::new(client(40_000 + port), VIP, ACK).frame();
            (f[..(*n).min(f.len())].to_vec(), 0)
        }
    }
}

fn pkt() -> impl Strategy<Value = Pkt> {
    let flags = prop_oneof![
        Just(SYN),
        Just(ACK),
        Just(ACK | PSH),
        Just(FIN | ACK),
        Just(RST)
    ];
    prop_oneof![
        4 => (0..48u16, flags.clone()).prop_map(|(p, f)| Pkt::Client(p, f)),
        3 => (0..3usize, 0..48u16, prop_oneof![Just(SYN | ACK), Just(ACK), Just(FIN | ACK)])
            .prop_map(|(i, p, f)| Pkt::Reply(i, p, f)),
        1 => (proptest::collection::vec(any::<u8>(), 0..80), 0..2usize)
            .prop_map(|(b, rx)| Pkt::Garbage(b, rx)),
        1 => (0..48u16, 0..60usize).prop_map(|(p, n)| Pkt::Cut(p, n)),
    ]
}

/// A lab whose bursts are always looked ahead at, however few its
/// connections.
fn lab(dr: bool) -> Lab {
    let mut lab = if dr {
        let mut lab = Lab::new(&[slotted(dr_spec("rr"))]);
        lab.learn_dr_reals();
        lab.learn(CLIENT_IP);
        lab
    } else {
        Lab::nat("rr")
    };
    lab.fwd.look_ahead_from(0);
    lab
}

/// Runs `traffic` through one lab packet by one and through another in
/// bursts of the given sizes; both must end the same.
fn same_either_way(dr: bool, traffic: &[Pkt], cuts: &[usize]) {
    let (mut one, mut burst) = (lab(dr), lab(dr));
    let mut expected = Vec::new();
    for p in traffic {
        let (f, rx) = frame(p);
        expected.push(one.run(&f, rx));
    }
    let mut got = Vec::new();
    let mut rest = traffic;
    let mut cut = cuts.iter().cycle();
    while !rest.is_empty() {
        // A burst comes from one port: cut where the port changes.
        let rx = frame(&rest[0]).1;
        let want = (*cut.next().unwrap()).clamp(1, rest.len());
        let n = rest[..want]
            .iter()
            .position(|p| frame(p).1 != rx)
            .unwrap_or(want)
            .max(1);
        let mut frames: Vec<Vec<u8>> = rest[..n].iter().map(|p| frame(p).0).collect();
        let mut actions = vec![Action::Drop(sluice_core::DropReason::Truncated); n];
        burst
            .fwd
            .process_burst(&burst.snap, &mut frames, rx, burst.now, &mut actions);
        got.extend(actions.into_iter().zip(frames));
        rest = &rest[n..];
    }
    for (i, (e, g)) in expected.iter().zip(&got).enumerate() {
        assert_eq!(e, g, "packet {i}: {:?}", traffic[i]);
    }
    assert_eq!(one.fwd.table().len(), burst.fwd.table().len());
    let conns = |l: &Lab| -> Vec<(SocketAddrV4, u16)> {
        l.fwd
            .table()
            .iter()
            .map(|(_, c)| (c.client(), c.real()))
            .collect()
    };
    assert_eq!(conns(&one), conns(&burst));
    assert_eq!(one.stats().syns.get(), burst.stats().syns.get());
    assert_eq!(one.stats().half_open.get(), burst.stats().half_open.get());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn a_burst_in_stages_decides_as_packets_one_by_one(
        dr in any::<bool>(),
        traffic in proptest::collection::vec(pkt(), 1..300),
        cuts in proptest::collection::vec(1..(2 * MAX_BURST), 1..8),
    ) {
        same_either_way(dr, &traffic, &cuts);
    }
}

/// A burst longer than the look-ahead array is taken in chunks, every
/// packet decided.
#[test]
fn a_burst_longer_than_the_look_ahead_is_taken_in_chunks() {
    let traffic: Vec<Pkt> = (0..(3 * MAX_BURST as u16 + 5))
        .flat_map(|p| [Pkt::Client(p, SYN)])
        .collect();
    same_either_way(false, &traffic, &[traffic.len()]);
    let mut lab = lab(false);
    let mut frames: Vec<Vec<u8>> = traffic.iter().map(|p| frame(p).0).collect();
    let mut actions = vec![Action::Drop(sluice_core::DropReason::Truncated); frames.len()];
    lab.fwd
        .process_burst(&lab.snap, &mut frames, 0, lab.now, &mut actions);
    assert!(actions.iter().all(|a| *a == Action::Forward { port: 1 }));
    assert_eq!(lab.fwd.table().len() as usize, traffic.len());
}

//! Expiry keeps up with the connection rate: a million new UDP flows per
//! second, each living one second, for sixty simulated seconds, through
//! the real pipeline and the housekeeping schedule a worker uses. The
//! table must settle at its steady state (about a second's worth of flows)
//! and stay there, never filling up and never going table-less.

mod common;

use common::*;
use sluice_lb::pipeline::HousekeepingTimer;
use sluice_lb::Action;
use std::net::Ipv4Addr;

/// New flows per simulated millisecond (1 M/s).
const PER_MS: u32 = 1000;
/// Simulated seconds.
const SECONDS: u64 = 60;
/// Worker polls per simulated millisecond, and expiry steps (of
/// `EXPIRE_STEP` entries) its time budget allows per housekeeping run: a
/// modest share of a core (a loaded worker polls far more often).
const POLLS_PER_MS: u32 = 4;
const STEPS_PER_RUN: u32 = 8;

/// Datagrams to the VIP:53 (no UDP checksum), flow `k` from
/// 203.0.113.(k / 64512 % 256), port 1024 + k % 64512.
struct Flows {
    template: Vec<u8>,
    host: Option<u8>,
}

impl Flows {
    fn frame(&mut self, k: u64, out: &mut Vec<u8>) {
        let host = (k / 64_512 % 256) as u8;
        if self.host != Some(host) {
            let t = &mut self.template;
            t[L3 + 12..L3 + 16].copy_from_slice(&Ipv4Addr::new(203, 0, 113, host).octets());
            t[L3 + 10..L3 + 12].fill(0);
            let c = ipv4_header_checksum(&t[L3..L3 + 20]);
            t[L3 + 10..L3 + 12].copy_from_slice(&c.to_be_bytes());
            self.host = Some(host);
        }
        out.clear();
        out.extend_from_slice(&self.template);
        let port = 1024 + (k % 64_512) as u16;
        out[L4..L4 + 2].copy_from_slice(&port.to_be_bytes());
    }
}

#[test]
fn a_million_new_flows_per_second_settle_at_the_steady_state() {
    let mut spec = udp_nat_spec();
    spec.scheduler = sluice_model::SchedulerKind::Rr;
    let mut table = table_config(1 << 21);
    table.timeouts.udp = 1000;
    let mut lab = Lab::with_table(&[slotted(spec)], table);
    lab.learn_nat_reals();
    let vip = std::net::SocketAddrV4::new(VIP_IP, 53);
    let mut flows = Flows {
        template: ether(
            PORT0_MAC,
            mac_of(CLIENT_IP),
            ETHERTYPE_IPV4,
            &udp_ip(client(1), vip, b"q", 64, false),
        ),
        host: None,
    };
    let mut frame = Vec::with_capacity(64);
    let mut timer = HousekeepingTimer::default();
    let mut k = 0u64;
    let mut live_at = Vec::new();
    for ms in 0..SECONDS * 1000 {
        lab.now = T0 + ms;
        for _poll in 0..POLLS_PER_MS {
            for _ in 0..PER_MS / POLLS_PER_MS {
                flows.frame(k, &mut frame);
                k += 1;
                let a = lab.fwd.process(&lab.snap, &mut frame, 0, lab.now);
                assert_eq!(a, Action::Forward { port: 1 }, "flow {k} at {ms} ms");
            }
            if timer.due(lab.now) {
                let mut steps = 0;
                let h = lab.fwd.housekeeping(&lab.snap, lab.now, || {
                    steps += 1;
                    steps < STEPS_PER_RUN
                });
                timer.ran(lab.now, h);
            }
        }
        if ms % 1000 == 999 {
            live_at.push(lab.fwd.table().len());
        }
    }
    let s = lab.stats();
    assert_eq!(s.stateless_forwards.get(), 0, "the table filled up");
    // A second of flows, plus at most one wheel tick (100 ms) of lateness
    // and the housekeeping that is still catching up with it.
    let steady = u64::from(PER_MS) * 1000;
    for (sec, live) in live_at.iter().enumerate().skip(2) {
        let live = u64::from(*live);
        assert!(
            live >= steady && live <= steady * 5 / 4,
            "{live} live flows after {} s (steady state {steady}): {live_at:?}",
            sec + 1
        );
    }
    let expired: u64 = k - u64::from(lab.fwd.table().len());
    assert_eq!(lab.fwd.table().stats().expiries, expired);
    eprintln!("live flows at the end of each second: {live_at:?}");
}

//! Unit tests of the control side of load balancing: every change is in
//! the snapshot its request returns, edits change only what they say,
//! endings start and stop, and refused changes change nothing.

use super::*;
use sluice_health::{CheckKind, CheckSpec};
use sluice_proto::{Forward, OnRealRemoval, Protocol, RealPatch, SchedulerKind, ServicePatch};

fn control() -> LbControl {
    let ports = vec![PortBase {
        addresses6: Vec::new(),
        mac: sluice_core::MacAddr([2, 0, 0, 0, 0, 1]),
        addresses: vec!["192.0.2.1/24".parse().unwrap()],
        kernel: false,
    }];
    let routes = RouteTable::new(&[(0, "192.0.2.1/24".parse().unwrap())], &[], None).unwrap();
    LbControl::new(ports, routes, SharedStats::new(1), 1).unwrap()
}

fn spec(upper: u32, lower: u32) -> ServiceSpec {
    ServiceSpec {
        protocol: Protocol::Tcp,
        vip: "192.0.2.100".parse().unwrap(),
        port: 80,
        scheduler: SchedulerKind::Rr,
        persistence: None,
        on_real_removal: OnRealRemoval::Keep,
        mh_table_size: None,
        check: None,
        agent: None,
        on_real_down: OnRealRemoval::Keep,
        weight_by_latency: false,
        expire_quiescent_template: false,
        passive_health: None,
        syn_proxy: Default::default(),
        on_miss_setting: None,
        local_addresses: Vec::new(),
        proxy_protocol: Default::default(),
        reals: vec![RealSpec {
            ip: "192.0.2.21".parse().unwrap(),
            port: 80,
            weight: 1,
            forward: Forward::Nat,
            upper_threshold: upper,
            lower_threshold: lower,
            check: None,
            agent: None,
        }],
    }
}

#[test]
fn thresholds_apply_with_hysteresis() {
    let mut c = control();
    c.service_add(spec(10, 5)).unwrap();
    let slot = c.services[0].real_slots[0];
    let g = &c.shared.workers[0].gauge(slot);
    for _ in 0..9 {
        g.opened();
    }
    c.update_overload();
    assert!(!c.shared.is_overloaded(slot));
    g.opened();
    c.update_overload();
    assert!(c.shared.is_overloaded(slot), "10 >= upper 10");
    for _ in 0..4 {
        g.closed(false);
    }
    c.update_overload();
    assert!(
        c.shared.is_overloaded(slot),
        "6 is above lower 5: still overloaded"
    );
    g.closed(false);
    c.update_overload();
    assert!(!c.shared.is_overloaded(slot), "5 <= lower 5: back");
    let l = c.list(false);
    assert_eq!(l.services[0].reals[0].inactive, 5);
}

#[test]
fn refused_changes_leave_the_state_untouched() {
    let mut c = control();
    c.service_add(spec(0, 0)).unwrap();
    let before = c.list(false);
    let key = before.services[0].reals[0].spec.clone();
    assert!(c.service_add(spec(0, 0)).is_err(), "duplicate");
    let mut bad = ServicePatch::new(spec(0, 0).key());
    bad.mh_table_size = Some(65536);
    assert!(c.service_edit(&bad).is_err(), "not a prime");
    let mut dr = key;
    dr.ip = "203.0.113.9".parse().unwrap();
    dr.forward = Forward::Dr;
    assert!(c.real_add(&spec(0, 0).key(), dr).is_err(), "DR off-segment");
    assert_eq!(c.list(false), before);
}

#[test]
fn replace_keeps_slots_of_what_stays() {
    let mut c = control();
    let mut a = spec(0, 0);
    c.service_add(a.clone()).unwrap();
    let slot = c.services[0].real_slots[0];
    let mut r2 = a.reals[0].clone();
    r2.ip = "192.0.2.22".parse().unwrap();
    a.reals.push(r2);
    let mut b = spec(0, 0);
    b.port = 81;
    let (_, summary) = c.replace(&[a.clone(), b]).unwrap();
    assert_eq!(c.services.len(), 2);
    assert_eq!(
        c.services[0].real_slots[0], slot,
        "the unchanged real kept its slot"
    );
    assert!(
        summary.contains("1 added, 0 removed, 1 changed"),
        "{summary}"
    );
    let (_, summary) = c.replace(&[a]).unwrap();
    assert!(summary.contains("0 added, 1 removed"), "{summary}");
    assert_eq!(c.services[0].real_slots[0], slot);
    let mut bad = spec(0, 0);
    bad.mh_table_size = Some(1000);
    let before = c.list(true);
    assert!(c.replace(&[bad]).is_err());
    assert_eq!(c.list(true), before);
}

#[test]
fn slots_are_reused_as_late_as_possible() {
    let mut c = control();
    c.service_add(spec(0, 0)).unwrap();
    let key = spec(0, 0).key();
    let first = c.services[0].real_slots[0];
    c.real_del(&key, ip("192.0.2.21"), 80).unwrap();
    let mut r = spec(0, 0).reals[0].clone();
    r.ip = ip("192.0.2.22");
    c.real_add(&key, r).unwrap();
    assert_eq!(c.services[0].real_slots[0], first.next());
}

#[test]
fn slots_are_not_reused_while_connections_remain() {
    let mut c = control();
    c.service_add(spec(0, 0)).unwrap();
    let key = spec(0, 0).key();
    let slot = c.services[0].real_slots[0];
    c.shared.workers[0].gauge(slot).opened();
    c.real_del(&key, "192.0.2.21".parse().unwrap(), 80).unwrap();
    c.next_real_slot = slot;
    let mut r = spec(0, 0).reals[0].clone();
    r.ip = "192.0.2.22".parse().unwrap();
    c.real_add(&key, r).unwrap();
    assert_ne!(
        c.services[0].real_slots[0], slot,
        "slot with a live connection reused"
    );
}

/// Real `i`'s weight in snapshot `s` (first service).
fn weight_in(s: &Snapshot, i: usize) -> u32 {
    s.services.services[0].reals[i].weight
}

fn two_reals() -> ServiceSpec {
    let mut s = spec(0, 0);
    let mut r2 = s.reals[0].clone();
    r2.ip = "192.0.2.22".parse().unwrap();
    s.reals.push(r2);
    s
}

fn ip(s: &str) -> std::net::IpAddr {
    s.parse().unwrap()
}

#[test]
fn a_weight_set_is_in_the_snapshot_the_edit_returns() {
    let mut c = control();
    c.service_add(two_reals()).unwrap();
    let key = two_reals().key();
    // A health tick has looked at the weights (1 and 1) just before.
    assert!(c.health_tick().is_none());
    let mut p = RealPatch::new(ip("192.0.2.21"), 80);
    p.weight = Some(0);
    let snap = c.real_edit(&key, &p).unwrap();
    assert_eq!(weight_in(&snap, 0), 0, "quiesce not in force at once");
    assert_eq!(weight_in(&snap, 1), 1);
    assert!(c.health_tick().is_none(), "nothing left for the tick to do");
    // Raising it again is in force at once too.
    p.weight = Some(3);
    let snap = c.real_edit(&key, &p).unwrap();
    assert_eq!(weight_in(&snap, 0), 3);
    assert_eq!(
        c.list(false).services[0].reals[0].health.effective_weight,
        3
    );
}

#[test]
fn reload_and_restore_weights_are_in_force_at_once() {
    let mut c = control();
    let mut s = two_reals();
    c.service_add(s.clone()).unwrap();
    assert!(c.health_tick().is_none());
    s.reals[1].weight = 0;
    let (snap, _) = c.replace(std::slice::from_ref(&s)).unwrap();
    assert_eq!((weight_in(&snap, 0), weight_in(&snap, 1)), (1, 0));
    s.reals[1].weight = 4;
    let (snap, _) = c.replace(&[s]).unwrap();
    assert_eq!(weight_in(&snap, 1), 4);
}

#[test]
fn a_real_added_into_a_reused_slot_has_its_own_weight() {
    let mut c = control();
    let mut s = spec(0, 0);
    s.reals[0].weight = 5;
    c.service_add(s.clone()).unwrap();
    let slot = c.services[0].real_slots[0];
    assert!(c.health_tick().is_none());
    c.real_del(&s.key(), ip("192.0.2.21"), 80).unwrap();
    // Slots are handed out round the ring; this one comes round again.
    c.next_real_slot = slot;
    let mut r = s.reals[0].clone();
    r.ip = ip("192.0.2.23");
    r.weight = 1;
    let snap = c.real_add(&s.key(), r).unwrap();
    assert_eq!(c.services[0].real_slots[0], slot, "the slot was reused");
    assert_eq!(weight_in(&snap, 0), 1);
}

#[test]
fn drains_end_at_the_deadline_and_a_new_weight_undrains() {
    let mut c = control();
    c.service_add(two_reals()).unwrap();
    let key = two_reals().key();
    let slot = c.services[0].real_slots[0];
    let snap = c.real_drain(&key, ip("192.0.2.21"), 80, 0).unwrap();
    assert_eq!(
        weight_in(&snap, 0),
        0,
        "draining: no new connections at once"
    );
    assert!(
        snap.services.drains.is_empty(),
        "the deadline has not been seen yet"
    );
    // The tick sees the deadline passed: its connections are ended.
    c.shared.workers[0].gauge(slot).opened();
    let (snap, what) = c.health_tick().expect("deadline passed");
    assert!(what.contains("drain deadline"), "{what}");
    assert_eq!(snap.services.drains.len(), 1);
    assert_eq!(snap.services.drains[0].real, slot);
    // Editing a threshold keeps the drain and the ending.
    let mut p = RealPatch::new(ip("192.0.2.21"), 80);
    p.upper_threshold = Some(100);
    let snap = c.real_edit(&key, &p).unwrap();
    assert_eq!(weight_in(&snap, 0), 0);
    assert_eq!(snap.services.drains.len(), 1);
    // A weight ends the drain: back in service, and its new connections
    // are not ended by later snapshots.
    p.upper_threshold = None;
    p.weight = Some(2);
    let snap = c.real_edit(&key, &p).unwrap();
    assert_eq!(weight_in(&snap, 0), 2);
    assert!(snap.services.drains.is_empty(), "the ended pair stayed");
    assert!(c.health_tick().is_none());
    let snap = c.snapshot().unwrap();
    assert!(snap.services.drains.is_empty());
}

#[test]
fn edits_change_only_what_they_say() {
    let mut c = control();
    let mut s = two_reals();
    s.scheduler = SchedulerKind::Wlc;
    s.persistence = Some(sluice_proto::Persistence {
        timeout_secs: 60,
        netmask: Some(32),
    });
    s.mh_table_size = Some(251);
    s.check = Some(CheckSpec::new(CheckKind::Tcp));
    s.on_real_down = OnRealRemoval::End;
    s.reals[0].forward = Forward::Dr;
    s.reals[0].upper_threshold = 50;
    s.reals[0].lower_threshold = 10;
    s.reals[0].check = Some(CheckSpec::new(CheckKind::Tcp));
    c.service_add(s.clone()).unwrap();
    // real edit -w 0: only the weight.
    let mut p = RealPatch::new(ip("192.0.2.21"), 80);
    p.weight = Some(0);
    c.real_edit(&s.key(), &p).unwrap();
    let mut want = s.clone();
    want.reals[0].weight = 0;
    assert_eq!(c.specs(), vec![want.clone()]);
    // service edit -s rr: only the scheduler.
    let mut sp = ServicePatch::new(s.key());
    sp.scheduler = Some(SchedulerKind::Rr);
    c.service_edit(&sp).unwrap();
    want.scheduler = SchedulerKind::Rr;
    assert_eq!(c.specs(), vec![want.clone()]);
    // The persistence netmask alone keeps the timeout; 0 turns it off.
    let mut sp = ServicePatch::new(s.key());
    sp.persistence_netmask = Some(32);
    sp.persistence_timeout_secs = Some(120);
    c.service_edit(&sp).unwrap();
    want.persistence = Some(sluice_proto::Persistence {
        timeout_secs: 120,
        netmask: Some(32),
    });
    assert_eq!(c.specs(), vec![want.clone()]);
    let mut sp = ServicePatch::new(s.key());
    sp.persistence_timeout_secs = Some(0);
    c.service_edit(&sp).unwrap();
    want.persistence = None;
    assert_eq!(c.specs(), vec![want.clone()]);
    // A netmask without persistence is refused, and changes nothing.
    let mut sp = ServicePatch::new(s.key());
    sp.persistence_netmask = Some(32);
    assert!(c.service_edit(&sp).is_err());
    assert_eq!(c.specs(), vec![want]);
}

#[test]
fn refusals_say_what_is_wrong() {
    let mut c = control();
    let s = spec(0, 0);
    let key = s.key();
    c.service_add(s.clone()).unwrap();
    assert_eq!(
        c.service_add(s.clone()).map(|_| ()),
        Err(ChangeError::ServiceExists(key))
    );
    let ghost = ip("192.0.2.99");
    assert_eq!(
        c.real_del(&key, ghost, 80).map(|_| ()),
        Err(ChangeError::NoReal {
            service: key,
            ip: ghost,
            port: 80
        })
    );
    let mut far = s.reals[0].clone();
    far.ip = ip("203.0.113.7");
    assert_eq!(
        c.real_add(&key, far).map(|_| ()),
        Err(ChangeError::NoRoute(ip("203.0.113.7")))
    );
    assert_eq!(
        c.replace(&[s.clone(), s.clone()]).map(|_| ()),
        Err(ChangeError::DefinedTwice(key))
    );
    let mut bad = s.clone();
    bad.reals[0].forward = Forward::Dr;
    bad.reals[0].ip = ip("203.0.113.7");
    let e = c.replace(&[s.clone(), bad]).map(|_| ()).unwrap_err();
    assert!(
        matches!(&e, ChangeError::InService { index: 1, source, .. }
            if matches!(**source, ChangeError::DirectRoutingOffSegment { .. })),
        "{e:?}"
    );
    assert!(
        e.to_string()
            .starts_with("service 1 (tcp 192.0.2.100:80): real 203.0.113.7:80 uses direct routing"),
        "{e}"
    );
}

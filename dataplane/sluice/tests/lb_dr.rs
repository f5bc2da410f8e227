//! Load balancing by direct routing, end to end: client, Sluice and three
//! real servers on one segment; the reals hold the VIP on `lo` with
//! arp_ignore=1/arp_announce=2 and answer the client directly.

mod common;

use common::topo::*;
use common::*;
use std::collections::BTreeMap;
use std::time::Duration;

#[test]
fn dr_http_rr_one_worker() {
    dr_http_rr(&[1], None);
}

#[test]
fn dr_http_rr_two_workers() {
    dr_http_rr(&[1, 2], Some("0@0,1@1,2@0"));
}

fn dr_http_rr(workers: &[u32], lcores: Option<&str>) {
    if !require_root() {
        return;
    }
    let mut t = LbTopo::dr(3, 1);
    for i in 0..3 {
        t.serve(i, "http", VIP, 80);
    }
    let svc = r#"
[[service]]
protocol = "tcp"
vip = "192.0.2.100"
port = 80
scheduler = "rr"
[[service.real]]
ip = "192.0.2.21"
port = 80
forward = "dr"
[[service.real]]
ip = "192.0.2.22"
port = 80
forward = "dr"
[[service.real]]
ip = "192.0.2.23"
port = 80
forward = "dr"
"#;
    let d = Daemon::start(Some(&t.lb), &t.config(workers, lcores, svc));
    let mut m = BTreeMap::new();
    for _ in 0..9 {
        let body = t
            .get("192.0.2.10", "http://192.0.2.100/id")
            .unwrap_or_else(|| panic!("DR request failed: {:#}", d.ctl_json(&["stats"])));
        *m.entry(String::from_utf8(body).unwrap()).or_insert(0) += 1;
    }
    assert_eq!(m.len(), 3, "{m:?}");
    assert!(m.values().all(|v| *v == 3), "{m:?}");
    let body = t
        .get("192.0.2.10", "http://192.0.2.100/blob")
        .expect("blob");
    assert!(body == blob(), "blob corrupted through DR");
    // Replies went straight to the client: Sluice sent nothing back.
    let l = d.ctl_json(&["list"]);
    assert_eq!(num(&l, "/result/services/0/stats/packets_out"), 0);
    assert!(num(&l, "/result/services/0/stats/packets_in") > 0);
    let o = d.ctl(&["list"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("Route"));
    let exit = d.stop();
    assert_eq!(exit.code, Some(0), "{}", exit.log);
}

#[test]
fn dr_udp_service() {
    if !require_root() {
        return;
    }
    let mut t = LbTopo::dr(3, 1);
    for i in 0..3 {
        t.serve(i, "udp", VIP, 5353);
    }
    let svc = r#"
[[service]]
protocol = "udp"
vip = "192.0.2.100"
port = 5353
scheduler = "rr"
[[service.real]]
ip = "192.0.2.21"
port = 5353
forward = "dr"
[[service.real]]
ip = "192.0.2.22"
port = 5353
forward = "dr"
[[service.real]]
ip = "192.0.2.23"
port = 5353
forward = "dr"
"#;
    let d = Daemon::start(Some(&t.lb), &t.config(&[1, 2], Some("0@0,1@1,2@0"), svc));
    // Each datagram from a new socket: a new flow, answered straight from
    // the real with the VIP as its source.
    let ids = t.client_py(
        &["udp", "192.0.2.100", "5353", "9"],
        Duration::from_secs(60),
    );
    let mut m = BTreeMap::new();
    for id in ids {
        *m.entry(id).or_insert(0) += 1;
    }
    assert_eq!(m.len(), 3, "{m:?}");
    assert!(m.values().all(|v| *v == 3), "{m:?}");
    let l = d.ctl_json(&["list"]);
    assert_eq!(num(&l, "/result/services/0/stats/connections"), 9, "{l:#}");
    assert_eq!(num(&l, "/result/services/0/stats/packets_in"), 9, "{l:#}");
    assert_eq!(num(&l, "/result/services/0/stats/packets_out"), 0, "{l:#}");
    let exit = d.stop();
    assert_eq!(exit.code, Some(0), "{}", exit.log);
}

//! Load balancing by direct routing, end to end: client, Sluice and three
//! real servers on one segment; the reals hold the VIP on `lo` with
//! arp_ignore=1/arp_announce=2 and answer the client directly.

mod common;

use common::topo::*;
use common::*;
use std::collections::BTreeMap;

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

//! Load balancing by NAT, end to end: kernel clients in one namespace,
//! Sluice on net_af_packet, three kernel HTTP/UDP/TCP servers behind a
//! bridge whose default route is Sluice.

mod common;

use common::topo::*;
use common::*;
use std::collections::BTreeMap;

const HTTP_RR: &str = r#"
[[service]]
protocol = "tcp"
vip = "192.0.2.100"
port = 80
scheduler = "rr"
[[service.real]]
ip = "198.51.100.11"
port = 8080
[[service.real]]
ip = "198.51.100.12"
port = 8080
[[service.real]]
ip = "198.51.100.13"
port = 8080
"#;

fn count(ids: &[String]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for i in ids {
        *m.entry(i.clone()).or_insert(0) += 1;
    }
    m
}

fn http_nat(workers: &[u32], lcores: Option<&str>, clients: usize) {
    if !require_root() {
        return;
    }
    let mut t = LbTopo::nat(3, clients);
    for i in 0..3 {
        let ip = t.reals[i].ip.clone();
        t.serve(i, "http", &ip, 8080);
    }
    let d = Daemon::start(Some(&t.lb), &t.config(workers, lcores, HTTP_RR));

    // From each client address, 3*k sequential requests: rr is exactly
    // even for each client (each client's flows meet one worker).
    let k = 4;
    for c in 0..clients {
        let src = format!("192.0.2.{}", 10 + c);
        let mut ids = Vec::new();
        for _ in 0..3 * k {
            let body = t.get(&src, "http://192.0.2.100/id").unwrap_or_else(|| {
                panic!(
                    "request from {src} failed:\n{}\n{:#}",
                    d.log_text(),
                    d.ctl_json(&["stats"])
                )
            });
            ids.push(String::from_utf8(body).unwrap());
        }
        let m = count(&ids);
        assert_eq!(m.len(), 3, "{src}: {m:?}");
        assert!(m.values().all(|v| *v == k), "rr not even for {src}: {m:?}");
    }
    // A 256 KiB body arrives intact through NAT.
    let body = t
        .get("192.0.2.10", "http://192.0.2.100/blob")
        .expect("blob");
    assert_eq!(body.len(), blob().len());
    assert!(body == blob(), "blob corrupted through NAT");

    let l = d.ctl_json(&["list"]);
    let svc = &l["result"]["services"][0];
    let total = (clients * 3 * k + 1) as u64;
    assert_eq!(num(svc, "/stats/connections"), total, "{l:#}");
    assert!(num(svc, "/stats/packets_out") > 0);
    let per_real: u64 = (0..3)
        .map(|i| num(svc, &format!("/reals/{i}/stats/connections")))
        .sum();
    assert_eq!(per_real, total);
    // Human table.
    let o = d.ctl(&["list"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("192.0.2.100:80")
            && out.contains("198.51.100.12:8080")
            && out.contains("Masq"),
        "{out}"
    );

    let s = d.ctl_json(&["stats"]);
    if workers.len() > 1 {
        // Traffic landed on both workers, and replies that arrived on the
        // worker not owning the flow were handed over.
        for w in s["result"]["workers"].as_array().unwrap() {
            assert!(
                num(w, "/traffic/rx_packets") > 0,
                "a worker got nothing: {s:#}"
            );
        }
        let handoffs = workers_sum(&s, "/handoff_out");
        assert!(handoffs > 0, "no hand-off with two workers: {s:#}");
        assert_eq!(handoffs, workers_sum(&s, "/handoff_in"));
    }
    assert!(workers_sum(&s, "/conntrack/inserts") >= total);
    assert_eq!(drops(&s, "handoff_full"), 0);
    let exit = d.stop();
    assert_eq!(exit.code, Some(0), "{}", exit.log);
    assert!(exit.log.contains("every mbuf returned"), "{}", exit.log);
}

#[test]
fn nat_http_rr_one_worker() {
    http_nat(&[1], None, 1);
}

#[test]
fn nat_http_rr_two_workers() {
    http_nat(&[1, 2], Some("0@0,1@1,2@0"), 4);
}

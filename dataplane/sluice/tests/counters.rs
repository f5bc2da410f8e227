//! Counters equal the traffic that really went through: N connections are
//! N in `list --stats`, in `stats --json` and in the Prometheus families;
//! `zero` brings the reported counters to 0 while the metrics, which must
//! stay monotonic, keep counting.

mod common;

use common::topo::*;
use common::*;
use std::time::Duration;

const SERVICES: &str = r#"
[metrics]
enabled = true
listen = "127.0.0.1:9187"

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

[[service]]
protocol = "udp"
vip = "192.0.2.100"
port = 5353
scheduler = "rr"
[[service.real]]
ip = "198.51.100.11"
port = 5300
[[service.real]]
ip = "198.51.100.12"
port = 5300
"#;

/// One scrape of the metrics endpoint (inside the appliance's namespace).
fn scrape(t: &LbTopo) -> String {
    wait_for(Duration::from_secs(20), || {
        let o = t.lb.run(
            &[
                "curl",
                "-s",
                "-f",
                "--max-time",
                "10",
                "http://127.0.0.1:9187/metrics",
            ],
            Duration::from_secs(15),
        );
        o.status
            .success()
            .then(|| String::from_utf8_lossy(&o.stdout).into_owned())
    })
    .expect("no scrape")
}

/// The value of the sample `name{labels}`.
fn metric(text: &str, sample: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no sample {sample} in:\n{text}"))
        .trim()
        .parse::<f64>()
        .unwrap() as u64
}

const TCP: &str = r#"protocol="tcp",vip="192.0.2.100",port="80""#;
const UDP: &str = r#"protocol="udp",vip="192.0.2.100",port="5353""#;

/// (service, real 0, real 1) connection counts of `list --stats`.
fn listed(d: &Daemon, s: usize) -> (u64, u64, u64) {
    let l = d.ctl_json(&["list", "--stats"]);
    let svc = &l["result"]["services"][s];
    (
        num(svc, "/stats/connections"),
        num(svc, "/reals/0/stats/connections"),
        num(svc, "/reals/1/stats/connections"),
    )
}

fn scraped(text: &str, svc: &str, rport: u16) -> (u64, u64, u64) {
    (
        metric(text, &format!("sluice_service_connections_total{{{svc}}}")),
        metric(
            text,
            &format!(r#"sluice_real_connections_total{{{svc},real="198.51.100.11:{rport}"}}"#),
        ),
        metric(
            text,
            &format!(r#"sluice_real_connections_total{{{svc},real="198.51.100.12:{rport}"}}"#),
        ),
    )
}

#[test]
fn counters_equal_real_traffic_everywhere_and_zero_resets_the_reported_ones() {
    if !require_root() {
        return;
    }
    let mut t = LbTopo::nat(2, 1);
    for i in 0..2 {
        let ip = t.reals[i].ip.clone();
        t.serve(i, "http", &ip, 8080);
        t.serve(i, "udp", &ip, 5300);
    }
    let d = Daemon::start(Some(&t.lb), &t.config(&[1], None, SERVICES));
    let (n, m) = (10u64, 6u64);
    for _ in 0..n {
        assert!(t.get("192.0.2.10", "http://192.0.2.100/id").is_some());
    }
    let udp = t.client_py(
        &["udp", "192.0.2.100", "5353", &m.to_string()],
        Duration::from_secs(30),
    );
    assert_eq!(udp.len() as u64, m);

    // rr over two reals: exactly half each, in every view.
    assert_eq!(listed(&d, 0), (n, n / 2, n / 2));
    assert_eq!(listed(&d, 1), (m, m / 2, m / 2));
    // The table's counters are copied out between bursts every 10 ms.
    let s = settled(&d, "/conntrack/inserts", n + m);
    assert_eq!(workers_sum(&s, "/stateless_forwards"), 0, "{s:#}");
    let l = d.ctl_json(&["list", "--stats"]);
    assert_eq!(num(&l, "/result/services/1/stats/packets_in"), m);
    assert_eq!(num(&l, "/result/services/1/stats/packets_out"), m);
    let text = scrape(&t);
    assert_eq!(scraped(&text, TCP, 8080), (n, n / 2, n / 2));
    assert_eq!(scraped(&text, UDP, 5300), (m, m / 2, m / 2));
    assert_eq!(
        metric(&text, r#"sluice_conntrack_inserts_total{worker="0"}"#),
        n + m
    );
    assert_eq!(
        metric(&text, &format!("sluice_service_packets_in_total{{{UDP}}}")),
        m
    );
    // The human table shows the same totals.
    let o = d.ctl(&["list", "--stats"]);
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(
        table.contains("192.0.2.100:80") && table.contains("192.0.2.100:5353"),
        "{table}"
    );

    // zero: the reported counters restart at 0, the metrics do not.
    assert!(ok(&d, &["zero"]).contains("zeroed 2 services"));
    assert_eq!(listed(&d, 0), (0, 0, 0));
    assert_eq!(listed(&d, 1), (0, 0, 0));
    let l = d.ctl_json(&["list", "--stats"]);
    assert_eq!(num(&l, "/result/services/1/stats/packets_in"), 0);
    let text = scrape(&t);
    assert_eq!(scraped(&text, TCP, 8080), (n, n / 2, n / 2));
    // Traffic after zero counts from 0 in the list, on top in the metrics.
    for _ in 0..4 {
        assert!(t.get("192.0.2.10", "http://192.0.2.100/id").is_some());
    }
    assert_eq!(listed(&d, 0), (4, 2, 2));
    assert_eq!(listed(&d, 1), (0, 0, 0));
    let text = scrape(&t);
    assert_eq!(scraped(&text, TCP, 8080), (n + 4, n / 2 + 2, n / 2 + 2));
    // zero of one service leaves the other.
    assert!(ok(&d, &["zero", "-t", "192.0.2.100:80"]).contains("zeroed tcp 192.0.2.100:80"));
    assert_eq!(listed(&d, 0), (0, 0, 0));
    let o = d.ctl(&["zero", "-t", "192.0.2.100:81"]);
    assert_eq!(o.status.code(), Some(4));
}

/// `stats` once the per-worker sum at `field` reads `want` (bounded wait;
/// panics with the last reply if it never does).
fn settled(d: &Daemon, field: &str, want: u64) -> serde_json::Value {
    let mut last = serde_json::Value::Null;
    wait_for(Duration::from_secs(5), || {
        last = d.ctl_json(&["stats"]);
        (workers_sum(&last, field) == want).then_some(())
    })
    .unwrap_or_else(|| panic!("{field} never read {want}: {last:#}"));
    last
}

fn ok(d: &Daemon, args: &[&str]) -> String {
    let o = d.ctl(args);
    assert!(
        o.status.success(),
        "sluicectl {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

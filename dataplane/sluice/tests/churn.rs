//! Configuration churn under load: a thousand changes (weights, reals
//! removed and added back, scheduler edits, reloads) while wrk drives HTTP
//! through the VIP to three nginx reals and two slow downloads run across
//! the whole churn. Not one request may fail and every download must
//! arrive byte for byte.

mod common;

use common::topo::*;
use common::*;
use std::process::Stdio;
use std::time::Duration;

const SERVICE: &str = r#"
[[service]]
protocol = "tcp"
vip = "192.0.2.100"
port = 80
scheduler = "wrr"
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

/// Sends N changes over one control connection, cycling through weight
/// edits (real 1 may go to 0, real 2 never does), removing and adding back
/// real 3, scheduler edits, and a reload every hundredth change; prints
/// how many were made and the errors.
const CHURN_PY: &str = r#"
import json, random, socket, sys
path, n = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_UNIX)
s.connect(path)
f = s.makefile("rwb")
key = {"protocol": "tcp", "vip": "192.0.2.100", "port": 80}
random.seed(7)
have3, errors = True, []
schedulers = ["rr", "wrr", "lc", "wlc", "sed", "nq", "sh", "mh"]
def ask(req):
    f.write((json.dumps({"version": 2, "request": req}) + "\n").encode())
    f.flush()
    r = json.loads(f.readline())
    if not r["ok"]:
        errors.append([req["cmd"], r["error"]["message"]])
for i in range(n):
    k = i % 4
    if i % 100 == 99:
        ask({"cmd": "reload"})
        have3 = True
    elif k == 0:
        ask({"cmd": "real_edit", "service": key,
             "real": {"ip": "198.51.100.11", "port": 8080, "weight": random.randint(0, 5)}})
    elif k == 1:
        if have3:
            ask({"cmd": "real_del", "service": key, "ip": "198.51.100.13", "port": 8080})
        else:
            ask({"cmd": "real_add", "service": key,
                 "real": {"ip": "198.51.100.13", "port": 8080, "weight": random.randint(1, 3)}})
        have3 = not have3
    elif k == 2:
        ask({"cmd": "service_edit", "service": dict(key, scheduler=random.choice(schedulers))})
    else:
        ask({"cmd": "real_edit", "service": key,
             "real": {"ip": "198.51.100.12", "port": 8080, "weight": random.randint(1, 5)}})
print(json.dumps({"changes": n, "errors": errors}))
"#;

#[test]
fn a_thousand_changes_under_load_fail_no_request() {
    if !require_root() {
        return;
    }
    let mut t = LbTopo::nat(3, 1);
    for i in 0..3 {
        let ip = t.reals[i].ip.clone();
        t.serve_nginx(i, &ip, 8080);
    }
    let d = Daemon::start(Some(&t.lb), &t.config(&[1], None, SERVICE));
    assert!(t.get("192.0.2.10", "http://192.0.2.100/id").is_some());

    // Two slow downloads that span the churn (256 KiB at 16 KiB/s).
    let downloads: Vec<(std::path::PathBuf, std::process::Child)> = (0..2)
        .map(|i| {
            let out = t.dir.path().join(format!("download{i}"));
            let c = t
                .client
                .command(&[
                    "curl",
                    "-s",
                    "-f",
                    "--max-time",
                    "90",
                    "--limit-rate",
                    "16k",
                    "-o",
                    out.to_str().unwrap(),
                    "http://192.0.2.100/blob",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            (out, c)
        })
        .collect();
    let mut wrk = t
        .client
        .command(&[
            "timeout",
            "120",
            "wrk",
            "-t2",
            "-c16",
            "-d30s",
            "http://192.0.2.100/id",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("wrk (apt install wrk)");
    std::thread::sleep(Duration::from_secs(2));

    let sock = d.socket.to_str().unwrap().to_string();
    let churn = run(
        &["timeout", "120", "python3", "-c", CHURN_PY, &sock, "1000"],
        Duration::from_secs(130),
    );
    let report = String::from_utf8_lossy(&churn.stdout).to_string();
    assert!(
        churn.status.success(),
        "churn: {report} {}",
        String::from_utf8_lossy(&churn.stderr)
    );
    let r: serde_json::Value = serde_json::from_str(report.trim()).unwrap();
    assert_eq!(r["changes"], 1000);
    assert_eq!(r["errors"].as_array().unwrap().len(), 0, "{report}");
    assert!(
        wrk.try_wait().unwrap().is_none(),
        "wrk ended before the churn did: lengthen its run"
    );

    let w = wait_finished(&mut wrk, Duration::from_secs(90), || "wrk hung".into());
    assert!(w.status.success(), "wrk: {}{}", w.stdout, w.stderr);
    let requests: u64 = w
        .stdout
        .lines()
        .find(|l| l.contains("requests in"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no request count: {}", w.stdout));
    assert!(requests > 1000, "{}", w.stdout);
    assert!(!w.stdout.contains("Socket errors"), "{}", w.stdout);
    assert!(!w.stdout.contains("Non-2xx"), "{}", w.stdout);

    for (out, mut c) in downloads {
        let f = wait_finished(&mut c, Duration::from_secs(120), || "curl hung".into());
        assert!(f.status.success(), "download: {}", f.stderr);
        let got = std::fs::read(&out).unwrap();
        assert!(got == blob(), "a download changed ({} bytes)", got.len());
    }
    println!("wrk: {requests} requests during 1000 changes, no error");
    let exit = d.stop();
    assert_eq!(exit.code, Some(0), "{}", exit.log);
}

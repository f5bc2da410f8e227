//! Hostile traffic end to end: a corpus of malformed and crafted frames
//! (tests/hostile_corpus.py, sent with scapy from the client segment and
//! from a real's segment) at a NAT appliance while a legitimate client
//! talks to the real through it. Each class must be counted under its drop
//! reason, nothing hostile may reach the real (tshark captures there), the
//! legitimate connection and new ones keep working, and at shutdown every
//! mbuf is back in the pool.

mod common;

use common::capture::{tshark_fields, Capture};
use common::topo::*;
use common::*;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

const SERVICES: &str = r#"
[[service]]
protocol = "tcp"
vip = "192.0.2.100"
port = 80
scheduler = "rr"
[[service.real]]
ip = "198.51.100.11"
port = 8080
[[service]]
protocol = "udp"
vip = "192.0.2.100"
port = 53
scheduler = "rr"
[[service.real]]
ip = "198.51.100.11"
port = 5300
"#;

/// The interpreter scapy is installed for (Debian's python3-scapy).
const PYTHON: &str = "/usr/bin/python3";

fn corpus_script() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/tests/hostile_corpus.py").to_string()
}

/// The MAC of port `i` as the daemon reports it.
fn port_mac(d: &Daemon, i: usize) -> String {
    let st = d.ctl_json(&["status"]);
    st["result"]["ports"][i]["mac"]
        .as_str()
        .unwrap()
        .to_string()
}

/// One class of the corpus as sent: its name, the reason it must be
/// counted under ("forwarded" and "absorbed" are not drops), and how many
/// frames were sent.
struct Class {
    name: String,
    reason: String,
    sent: u64,
}

/// Sends the corpus for `side` from `ns` out of `iface` to `mac`, one
/// class at a time, and checks after each that the daemon counted it under
/// its reason (polling, bounded: counters are published between bursts).
/// Returns the classes and the ones that fell short.
fn send_corpus(
    d: &Daemon,
    ns: &Netns,
    side: &str,
    iface: &str,
    mac: &str,
) -> (Vec<Class>, Vec<String>) {
    use std::io::Write;
    let script = corpus_script();
    let mut child = ns
        .command(&["timeout", "180", PYTHON, &script, side, iface, mac, "3"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3-scapy");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut stdin = child.stdin.take().unwrap();
    let (mut classes, mut short) = (Vec::new(), Vec::new());
    let mut before = d.ctl_json(&["stats"]);
    loop {
        let mut line = String::new();
        if out.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        let c = Class {
            name: f[0].to_string(),
            reason: f[1].to_string(),
            sent: f[2].parse().unwrap(),
        };
        if c.reason != "forwarded" && c.reason != "absorbed" {
            let got = wait_for(Duration::from_secs(5), || {
                let after = d.ctl_json(&["stats"]);
                let n = drops(&after, &c.reason) - drops(&before, &c.reason);
                (n >= c.sent).then_some(after)
            });
            match got {
                Some(after) => before = after,
                None => {
                    let after = d.ctl_json(&["stats"]);
                    short.push(format!(
                        "{}: {} counted as {} of {} sent; drops {:#}",
                        c.name,
                        drops(&after, &c.reason) - drops(&before, &c.reason),
                        c.reason,
                        c.sent,
                        after["result"]["workers"][0]["drops"]
                    ));
                    before = after;
                }
            }
        }
        classes.push(c);
        let _ = stdin.write_all(b"next\n");
    }
    drop(stdin);
    let fin = wait_finished(&mut child, Duration::from_secs(60), || "corpus hung".into());
    assert!(
        fin.status.success(),
        "the {side} corpus failed: {}",
        fin.stderr
    );
    (classes, short)
}

#[test]
fn a_corpus_of_hostile_frames_is_dropped_by_reason_and_nothing_reaches_the_real() {
    if !require_root() {
        return;
    }
    let mut t = LbTopo::nat(1, 1);
    t.serve(0, "echo", "198.51.100.11", 8080);
    t.serve(0, "udp", "198.51.100.11", 5300);
    let cfg = t.config(&[1], None, SERVICES);
    let d = Daemon::start(Some(&t.lb), &cfg);
    let (client_mac, server_mac) = (port_mac(&d, 0), port_mac(&d, 1));
    assert_eq!(
        t.client_py(&["once", VIP, "80"], Duration::from_secs(30)),
        ["real-0"]
    );
    let capture = Capture::start(&t.reals[0].ns, "ip", t.dir.path().join("real.pcapng"));

    // A legitimate connection that lives through the whole attack.
    let long = t.client_py_spawn(&["long", VIP, "80", "40", "0.1"]);
    let (mut classes, mut short) = send_corpus(&d, &t.client, "client", &t.client_if, &client_mac);
    // The switch's end of the appliance's server-side veth ("s<id>" on the
    // appliance, "t<id>" on the switch).
    let lb_server_if = t.lb_server_if.clone().unwrap();
    let switch_if = format!("t{}", &lb_server_if[1..]);
    let (server, short_server) = send_corpus(&d, &t.switch, "server", &switch_if, &server_mac);
    classes.extend(server);
    short.extend(short_server);
    assert!(classes.len() >= 40, "{} classes", classes.len());
    assert!(
        short.is_empty(),
        "classes not counted as they should be: {short:#?}"
    );

    let mut long = long;
    let fin = wait_finished(&mut long, Duration::from_secs(60), || "long client".into());
    assert!(
        fin.status.success(),
        "the legitimate connection broke: {}",
        fin.stderr
    );
    assert_eq!(fin.stdout.lines().count(), 40);
    assert_eq!(
        t.client_py(&["once", VIP, "80"], Duration::from_secs(30)),
        ["real-0"]
    );
    assert_eq!(
        t.client_py(&["udp", VIP, "53", "3"], Duration::from_secs(30)),
        ["real-0", "real-0", "real-0"]
    );

    let status = d.ctl_json(&["status"]);
    assert_eq!(status["ok"], true);
    // The TTL 0 and 1 classes were answered with time exceeded, as a
    // router would.
    let stats = d.ctl_json(&["stats"]);
    assert!(workers_sum(&stats, "/time_exceeded_sent") >= 6, "{stats:#}");

    // Nothing hostile at the real but the valid SYN with IPv4 options,
    // rewritten with correct checksums.
    let file = capture.stop();
    let hostile = "(tcp.srcport >= 6000 && tcp.srcport < 6100) || (udp.srcport >= 6000 && udp.srcport < 6100)";
    let leaked = tshark_fields(&file, hostile, &["tcp.srcport", "udp.srcport", "tcp.flags"]);
    let not_valid: Vec<&String> = leaked.iter().filter(|l| !l.starts_with("6050")).collect();
    assert!(
        not_valid.is_empty(),
        "hostile packets reached the real: {not_valid:?}"
    );
    let syns = tshark_fields(
        &file,
        "tcp.srcport == 6050 && tcp.flags.syn == 1 && tcp.flags.ack == 0",
        &[
            "ip.dst",
            "tcp.dstport",
            "ip.checksum.status",
            "tcp.checksum.status",
            "ip.hdr_len",
        ],
    );
    assert!(syns.len() >= 3, "the SYNs with IPv4 options: {syns:?}");
    for s in &syns {
        assert_eq!(
            s, "198.51.100.11\t8080\t1\t1\t28",
            "rewritten SYN with options"
        );
    }
    let legit = tshark_fields(
        &file,
        "ip.src == 192.0.2.10 && tcp.dstport == 8080",
        &["ip.src"],
    );
    assert!(!legit.is_empty(), "the capture saw no legitimate packet");

    let exit = d.stop();
    assert_eq!(exit.code, Some(0), "{}", exit.log);
    assert!(exit.log.contains("every mbuf returned"), "{}", exit.log);
}

//! The configuration lifecycle and the socket's trust boundary: save and
//! restore round-trip, reload by SIGHUP and by request (with refusals that
//! leave the running state untouched), zero, and peer-credential checks.

mod common;

use common::*;
use std::time::Duration;

/// A null port and one service with two reals.
fn base() -> TestConfig {
    TestConfig::null_port().then(SERVICE)
}

const SERVICE: &str = r#"
[[service]]
protocol = "tcp"
vip = "192.0.2.100"
port = 80
scheduler = "wrr"

[[service.real]]
ip = "192.0.2.21"
port = 8080
weight = 3

[[service.real]]
ip = "192.0.2.22"
port = 8080
"#;

fn ok(d: &Daemon, args: &[&str]) -> String {
    let o = d.ctl(args);
    assert!(
        o.status.success(),
        "sluicectl {args:?}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The services of a `list --json` reply without live figures.
fn specs(d: &Daemon) -> serde_json::Value {
    let mut l = d.ctl_json(&["list"]);
    let services = l["result"]["services"].as_array_mut().unwrap();
    for s in services.iter_mut() {
        let o = s.as_object_mut().unwrap();
        o.remove("stats");
        o.remove("rates");
        for r in o["reals"].as_array_mut().unwrap() {
            let r = r.as_object_mut().unwrap();
            for k in ["stats", "rates", "active", "inactive", "overloaded"] {
                r.remove(k);
            }
        }
    }
    l["result"]["services"].clone()
}

#[test]
fn save_and_restore_round_trip() {
    if !require_root() {
        return;
    }
    let d = Daemon::start(None, &base().render());
    add_a_udp_service_and_quiesce_a_real(&d);
    let before = specs(&d);
    assert_eq!(before.as_array().unwrap().len(), 2);
    let saved = ok(&d, &["save"]);
    assert!(
        saved.contains("[[service]]") && saved.contains("[[service.real]]"),
        "{saved}"
    );

    // The saved file starts a daemon in exactly the same state (with this
    // test's own socket and file prefix put back as placeholders).
    let template = saved
        .replace(d.socket.to_str().unwrap(), "@SOCKET@")
        .replace(&d.prefix, "@PREFIX@");
    assert!(
        template.contains("@SOCKET@") && template.contains("@PREFIX@"),
        "{saved}"
    );
    let exit = d.stop();
    assert_eq!(exit.code, Some(0), "{}", exit.log);
    let d2 = Daemon::start(None, &template);
    let saved = template
        .replace("@SOCKET@", d2.socket.to_str().unwrap())
        .replace("@PREFIX@", &d2.prefix);
    assert_eq!(specs(&d2), before, "a daemon started from `save` differs");

    // restore: from an emptied daemon back to the saved state.
    ok(&d2, &["service", "del", "-t", "192.0.2.100:80"]);
    ok(&d2, &["service", "del", "-u", "192.0.2.100:53"]);
    assert_eq!(specs(&d2).as_array().unwrap().len(), 0);
    let file = d2.dir.path().join("saved.toml");
    std::fs::write(&file, &saved).unwrap();
    let out = ok(&d2, &["restore", file.to_str().unwrap()]);
    assert!(out.contains("2 added"), "{out}");
    assert_eq!(specs(&d2), before, "restore did not rebuild the same state");
    // save again: the same text.
    assert_eq!(ok(&d2, &["save"]), saved);
}

/// A UDP service with a mh scheduler, persistence and two reals (one with
/// thresholds, one by direct routing), and the TCP service's second real
/// quiesced: a state with most settings away from their defaults.
fn add_a_udp_service_and_quiesce_a_real(d: &Daemon) {
    ok(
        d,
        &[
            "service",
            "add",
            "-u",
            "192.0.2.100:53",
            "-s",
            "mh",
            "-p",
            "120",
            "--on-real-removal",
            "end",
        ],
    );
    ok(
        d,
        &[
            "real",
            "add",
            "-u",
            "192.0.2.100:53",
            "-r",
            "192.0.2.23:5353",
            "-w",
            "5",
            "-x",
            "100",
            "-y",
            "50",
        ],
    );
    ok(
        d,
        &[
            "real",
            "add",
            "-u",
            "192.0.2.100:53",
            "-r",
            "192.0.2.24:53",
            "-g",
        ],
    );
    ok(
        d,
        &[
            "real",
            "edit",
            "-t",
            "192.0.2.100:80",
            "-r",
            "192.0.2.22:8080",
            "-w",
            "0",
        ],
    );
}

#[test]
fn reload_applies_the_difference_and_refuses_bad_files() {
    if !require_root() {
        return;
    }
    let d = Daemon::start(None, &base().render());
    let cfg = d.dir.path().join("sluice.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();

    // SIGHUP with an extra real and a new weight.
    let changed = text.replace("weight = 3", "weight = 7")
        + "\n[[service.real]]\nip = \"192.0.2.23\"\nport = 8080\n";
    std::fs::write(&cfg, &changed).unwrap();
    let _ = std::process::Command::new("kill")
        .args(["-HUP", &d.pid().to_string()])
        .status();
    let reloaded = wait_for(Duration::from_secs(10), || {
        let s = specs(&d);
        (s[0]["reals"].as_array().unwrap().len() == 3).then_some(s)
    })
    .expect("SIGHUP did not reload");
    assert_eq!(reloaded[0]["reals"][0]["weight"], 7);

    // A file with an error: refused with its location, state untouched.
    std::fs::write(
        &cfg,
        changed.replace("scheduler = \"wrr\"", "scheduler = 7"),
    )
    .unwrap();
    let o = d.ctl(&["reload"]);
    assert_eq!(o.status.code(), Some(4));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("line") && err.contains("column"), "{err}");
    assert_eq!(specs(&d), reloaded);

    // A semantic error names the field.
    std::fs::write(
        &cfg,
        changed.replace("ip = \"192.0.2.23\"", "ip = \"192.0.2.300\""),
    )
    .unwrap();
    let o = d.ctl(&["reload"]);
    assert_eq!(o.status.code(), Some(4));
    assert_eq!(specs(&d), reloaded);

    // Sections other than services need a restart.
    std::fs::write(&cfg, changed.replace("rx_desc = 512", "rx_desc = 256")).unwrap();
    let o = d.ctl(&["reload"]);
    assert_eq!(o.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&o.stderr).contains("[dataplane]"));
    assert_eq!(specs(&d), reloaded);

    // Back to the original file: the added real goes, weights return.
    std::fs::write(&cfg, &text).unwrap();
    let out = ok(&d, &["reload"]);
    assert!(out.contains("reals: 0 added, 1 removed"), "{out}");
    let s = specs(&d);
    assert_eq!(s[0]["reals"].as_array().unwrap().len(), 2);
    assert_eq!(s[0]["reals"][0]["weight"], 3);

    // Every change was logged with who asked.
    let exit = d.stop();
    assert_eq!(exit.code, Some(0), "{}", exit.log);
    assert!(exit.log.contains("configuration changed"), "{}", exit.log);
    assert!(exit.log.contains("uid=0"), "{}", exit.log);
    assert!(
        exit.log.contains("by=internal"),
        "SIGHUP reload not logged: {}",
        exit.log
    );
}

/// Runs sluicectl as uid/gid 65534 (nobody/nogroup).
fn ctl_as_nobody(d: &Daemon, args: &[&str]) -> std::process::Output {
    let ctl = bin("sluicectl");
    let sock = d.socket.to_str().unwrap().to_string();
    let mut a = vec![
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        ctl.to_str().unwrap(),
        "--socket",
        &sock,
    ];
    a.extend_from_slice(args);
    run(&a, Duration::from_secs(20))
}

#[test]
fn only_root_or_the_control_group_may_use_the_socket() {
    if !require_root() {
        return;
    }
    // World-connectable socket, no group: the credential check refuses.
    let d = Daemon::start(None, &base().control("mode = \"0666\"").render());
    // The test's temp dir must be traversable by nobody.
    let _ = std::process::Command::new("chmod")
        .args(["0755", d.dir.path().to_str().unwrap()])
        .status();
    let o = ctl_as_nobody(&d, &["status"]);
    assert_eq!(o.status.code(), Some(4), "{o:?}");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("may not control"),
        "{o:?}"
    );
    let o = ctl_as_nobody(&d, &["service", "del", "-t", "192.0.2.100:80"]);
    assert_eq!(o.status.code(), Some(4));
    assert_eq!(
        specs(&d).as_array().unwrap().len(),
        1,
        "a refused client changed the state"
    );
    // Root still may.
    ok(&d, &["status"]);
    let exit = d.stop();
    assert!(exit.log.contains("refused a client"), "{}", exit.log);

    // With `group = "nogroup"` its members may.
    let d = Daemon::start(None, &base().control("group = \"nogroup\"").render());
    let _ = std::process::Command::new("chmod")
        .args(["0755", d.dir.path().to_str().unwrap()])
        .status();
    let mode = std::fs::metadata(&d.socket).unwrap();
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    assert_eq!(mode.permissions().mode() & 0o777, 0o660);
    assert_eq!(mode.gid(), 65534);
    let o = ctl_as_nobody(&d, &["status", "--json"]);
    assert!(o.status.success(), "{o:?}");
}

#[test]
fn a_broken_or_mismatched_restore_is_refused_and_nothing_changes() {
    if !require_root() {
        return;
    }
    let d = Daemon::start(None, &base().render());
    let saved = ok(&d, &["save"]);
    let before = specs(&d);
    let file = d.dir.path().join("restore.toml");
    let cases = [
        (
            "a syntax error",
            saved.replace("scheduler = \"wrr\"", "scheduler = wrr"),
        ),
        (
            "another [dataplane]",
            saved.replace("rx_desc = 512", "rx_desc = 256"),
        ),
        (
            "a bad scheduler",
            saved.replace("scheduler = \"wrr\"", "scheduler = \"nope\""),
        ),
        (
            "a real listed twice",
            format!("{saved}\n[[service.real]]\nip = \"192.0.2.22\"\nport = 8080\n"),
        ),
        (
            "an unknown field",
            saved.replace("[[service.real]]", "[[service.real]]\ncolour = 1"),
        ),
    ];
    for (what, text) in cases {
        assert_ne!(text, saved, "{what}: the case changed nothing");
        std::fs::write(&file, &text).unwrap();
        let o = d.ctl(&["restore", file.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(4), "{what} was not refused");
        assert!(!o.stderr.is_empty(), "{what}: no reason given");
        assert_eq!(specs(&d), before, "{what}: the state changed");
    }
    assert_eq!(ok(&d, &["save"]), saved);
    let o = d.ctl(&["restore", "/nonexistent/file.toml"]);
    assert!(!o.status.success());
    assert_eq!(specs(&d), before);
}

#[test]
fn long_connections_keep_their_real_across_reload_restore_and_sighup() {
    use common::topo::*;
    if !require_root() {
        return;
    }
    let mut t = LbTopo::nat(3, 1);
    for i in 0..3 {
        let ip = t.reals[i].ip.clone();
        t.serve(i, "echo", &ip, 9000);
    }
    let d = Daemon::start(
        Some(&t.lb),
        &t.config(&[1], None, &wrr_service([1, 1], false)),
    );
    let cfg_path = d.dir.path().join("sluice.toml");
    let text = std::fs::read_to_string(&cfg_path).unwrap();
    let head = &text[..text.find("[[service]]").unwrap()];
    // Three long connections, one echo every 50 ms for 12 s.
    let mut longs: Vec<_> = (0..3)
        .map(|_| t.client_py_spawn(&["long", "192.0.2.100", "9000", "240", "0.05"]))
        .collect();
    assert!(
        wait_for(Duration::from_secs(10), || {
            let l = d.ctl_json(&["list"]);
            let active: u64 = (0..2)
                .map(|i| num(&l, &format!("/result/services/0/reals/{i}/active")))
                .sum();
            (active == 3).then_some(())
        })
        .is_some(),
        "long connections not established"
    );
    reload_sighup_and_restore(&d, &cfg_path, head);
    // Every echo of every long connection came from the real it started on.
    for (n, long) in longs.iter_mut().enumerate() {
        let f = wait_finished(long, Duration::from_secs(60), || {
            format!("long client {n} hung")
        });
        assert!(
            f.status.success(),
            "long connection {n} failed: {}",
            f.stderr
        );
        let out = f.stdout;
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 240, "{out}");
        assert!(
            lines.iter().all(|l| *l == lines[0]),
            "long connection {n} moved between reals: {out}"
        );
    }
    let exit = d.stop();
    assert_eq!(exit.code, Some(0), "{}", exit.log);
}

/// A wrr service on port 9000 with two weighted reals, and a third one.
fn wrr_service(weights: [u32; 2], third: bool) -> String {
    let mut s = format!(
        "[[service]]\nprotocol = \"tcp\"\nvip = \"192.0.2.100\"\nport = 9000\nscheduler = \"wrr\"\n\
         [[service.real]]\nip = \"198.51.100.11\"\nport = 9000\nweight = {}\n\
         [[service.real]]\nip = \"198.51.100.12\"\nport = 9000\nweight = {}\n",
        weights[0], weights[1]
    );
    if third {
        s.push_str("[[service.real]]\nip = \"198.51.100.13\"\nport = 9000\n");
    }
    s
}

/// Changes the services three ways under running connections: `reload`
/// (a third real, new weights), SIGHUP (weights again, the third real
/// gone), `restore` (the saved state with other weights). `head` is the
/// configuration before its services.
fn reload_sighup_and_restore(d: &Daemon, cfg_path: &std::path::Path, head: &str) {
    // reload: a third real, new weights.
    std::fs::write(cfg_path, format!("{head}{}", wrr_service([5, 1], true))).unwrap();
    let out = ok(d, &["reload"]);
    assert!(out.contains("1 added"), "{out}");
    std::thread::sleep(Duration::from_millis(500));
    // SIGHUP: weights again, the third real gone.
    std::fs::write(cfg_path, format!("{head}{}", wrr_service([1, 7], false))).unwrap();
    let _ = std::process::Command::new("kill")
        .args(["-HUP", &d.pid().to_string()])
        .status();
    assert!(
        wait_for(Duration::from_secs(10), || {
            let s = specs(d);
            (s[0]["reals"][1]["weight"] == 7).then_some(())
        })
        .is_some(),
        "SIGHUP did not reload"
    );
    std::thread::sleep(Duration::from_millis(500));
    // restore: the saved state with other weights.
    let saved = ok(d, &["save"]).replace("weight = 7", "weight = 2");
    let file = d.dir.path().join("restore.toml");
    std::fs::write(&file, saved).unwrap();
    ok(d, &["restore", file.to_str().unwrap()]);
}

/// Opens N control connections as `uid` (group nogroup, a member), says
/// how many were taken and refused (and why), then how many the daemon
/// closed and when.
const HOLDER_PY: &str = r#"
import json, socket, sys, time
path, n = sys.argv[1], int(sys.argv[2])
socks = []
for i in range(n):
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    socks.append(s)
time.sleep(1.0)
held, refused, why = [], 0, set()
for s in socks:
    s.setblocking(False)
    try:
        d = s.recv(65536)
        refused += 1
        if d:
            why.add(json.loads(d.decode().splitlines()[0])["error"]["message"])
    except BlockingIOError:
        held.append(s)
print("held %d refused %d %s" % (len(held), refused, json.dumps(sorted(why))), flush=True)
start, closed = time.time(), 0
for s in held:
    s.setblocking(True)
    s.settimeout(max(0.1, 30 - (time.time() - start)))
    try:
        if s.recv(1) == b"":
            closed += 1
    except OSError:
        pass
print("closed %d after %.1f s" % (closed, time.time() - start), flush=True)
"#;

fn holder(d: &Daemon, uid: u32, n: usize) -> std::process::Child {
    use std::process::Stdio;
    let sock = d.socket.to_str().unwrap().to_string();
    std::process::Command::new("setpriv")
        .args([
            &format!("--reuid={uid}"),
            "--regid=65534",
            "--clear-groups",
            "timeout",
            "60",
            "python3",
            "-c",
            HOLDER_PY,
            &sock,
            &n.to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn first_line(c: &mut std::process::Child) -> String {
    use std::io::BufRead;
    let mut line = String::new();
    std::io::BufReader::new(c.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    line.trim().to_string()
}

/// Idle connections from members of the control group, a request line
/// trickled without end, garbage and an oversized line: root is never
/// locked out, each user gets its share, silent clients are dropped
/// within seconds, and every slot comes back.
#[test]
fn abusive_control_clients_never_lock_root_out() {
    if !require_root() {
        return;
    }
    let d = Daemon::start(None, &base().control("group = \"nogroup\"").render());
    let _ = std::process::Command::new("chmod")
        .args(["0755", d.dir.path().to_str().unwrap()])
        .status();
    // A client that trickles a request and never ends its line.
    let mut trickle = std::os::unix::net::UnixStream::connect(&d.socket).unwrap();
    use std::io::{Read, Write};
    trickle.write_all(b"{\"version\":2,").unwrap();
    // Four users open 40 silent connections each: each gets 8, the fourth
    // only what is left of the 28 slots users share.
    let mut holders = Vec::new();
    let mut held = Vec::new();
    for uid in [65534, 65533, 65532, 65531] {
        let mut h = holder(&d, uid, 40);
        let line = first_line(&mut h);
        held.push(line.clone());
        holders.push(h);
    }
    assert!(held[0].starts_with("held 8 refused 32"), "{held:?}");
    assert!(held[0].contains("from this user"), "{held:?}");
    assert!(
        held[1].starts_with("held 8 ") && held[2].starts_with("held 8 "),
        "{held:?}"
    );
    // Users share 28 slots: 28 - 8 * 3.
    assert!(held[3].starts_with("held 4 refused 36"), "{held:?}");
    assert!(held[3].contains("too many control clients"), "{held:?}");
    // Root gets in through its reserved slots, however many are held.
    let t = std::time::Instant::now();
    let st = d.ctl_json(&["status"]);
    assert_eq!(st["ok"], true);
    let root_wait = t.elapsed();
    // The daemon closes every silent connection.
    for (uid, mut h) in [65534, 65533, 65532, 65531].into_iter().zip(holders) {
        let line = first_line(&mut h);
        let n: usize = held[(65534 - uid) as usize]
            .split_whitespace()
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            line.starts_with(&format!("closed {n} ")),
            "uid {uid}: {line}"
        );
        let _ = h.wait();
    }
    // And the trickler, within its line's time.
    trickle
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut rest = Vec::new();
    let _ = trickle.read_to_end(&mut rest);
    assert!(rest.is_empty(), "{rest:?}");
    // Every slot is back: a user may connect again.
    let o = ctl_as_nobody(&d, &["status", "--json"]);
    assert!(o.status.success(), "{o:?}");
    println!("root's status answered in {root_wait:?} with 28 user connections held");
    let exit = d.stop();
    assert_eq!(exit.code, Some(0), "{}", exit.log);
}

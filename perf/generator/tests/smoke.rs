//! Smoke test of the whole generator: `sluice-gen` against
//! `dpdk-testpmd --forward-mode=5tswap` over two memif links, for 2 s at
//! 100 kpps in 1000 flows, checking what the JSON report says: packets came
//! back, none bad, (almost) none lost, no duplicates or reordering, latency
//! percentiles present. Twice: 64-byte IPv4 UDP frames, and 84-byte IPv6
//! TCP frames (5tswap swaps IPv6 addresses and ports too), one after the
//! other (a lock), not to share two cores four ways. No timing or
//! throughput assertion.
//!
//! The generator owns the memif *server* sockets (`role=server`) and
//! testpmd connects as the client. The sockets are files
//! (`socket-abstract=no`; DPDK 22.11 defaults to the abstract namespace),
//! so the test can wait for them to appear and remove them afterwards. Both run with `--no-huge`: memif puts
//! its shared rings and buffers in memfd regions it creates itself, so no
//! hugepages are needed (only zero-copy mode would need them).
//!
//! Needs root (DPDK's runtime directory /var/run/dpdk, memif's sockets):
//! without it the test fails, unless SLUICE_SKIP_NETNS=1 says to skip it.
//! Every process, socket, file and EAL runtime directory it creates is
//! removed by a Drop guard; names are unique per process; every wait is
//! bounded.

use serde_json::Value;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn require_root() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let uid0 = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .map(|l| l.split_whitespace().nth(1) == Some("0"))
        .unwrap_or(false);
    if uid0 {
        return true;
    }
    if std::env::var("SLUICE_SKIP_NETNS").as_deref() == Ok("1") {
        eprintln!("SKIPPED: needs root (SLUICE_SKIP_NETNS=1)");
        return false;
    }
    panic!("this test needs root (DPDK, memif); run scripts/test.sh as root or set SLUICE_SKIP_NETNS=1 to skip it");
}

fn testpmd() -> PathBuf {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("dpdk-testpmd"))
        .chain([PathBuf::from("/usr/bin/dpdk-testpmd")])
        .find(|p| p.is_file());
    found.unwrap_or_else(|| {
        panic!("dpdk-testpmd not found (Debian package dpdk-dev; scripts/lib/deps.sh installs it)")
    })
}

/// Everything the test creates, removed on drop.
struct Guard {
    children: Vec<(&'static str, Child)>,
    paths: Vec<PathBuf>,
    dirs: Vec<PathBuf>,
}

impl Guard {
    fn wait(&mut self, name: &str, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        let (_, child) = self.children.iter_mut().find(|(n, _)| *n == name)?;
        loop {
            if let Ok(Some(st)) = child.try_wait() {
                return Some(st);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        for (_, c) in &mut self.children {
            if let Ok(None) = c.try_wait() {
                let _ = c.kill();
            }
            // SIGKILL cannot be ignored, so this wait is bounded.
            let _ = c.wait();
        }
        for p in &self.paths {
            let _ = std::fs::remove_file(p);
        }
        for d in &self.dirs {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

fn wait_for_file(p: &Path, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if p.exists() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

fn log(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

/// One DPDK pair at a time.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn generator_against_testpmd_5tswap_over_memif() {
    smoke("v4", &["--proto", "udp", "--size", "64"], ("udp", "64"));
}

#[test]
fn ipv6_generator_against_testpmd_5tswap_over_memif() {
    smoke(
        "v6",
        &["--proto", "tcp", "--size", "84", "--vip", "2001:db8::100"],
        ("tcp", "84"),
    );
}

/// Runs the generator with `args` against testpmd and checks its report;
/// `expect` is the (proto, size) the report must name.
fn smoke(tag: &str, args: &[&str], expect: (&str, &str)) {
    if !require_root() {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let testpmd = testpmd();
    let id = format!("{}{tag}", std::process::id());
    let tmp = std::env::temp_dir();
    let sock = |i| tmp.join(format!("sluice-gen-smoke-{id}-{i}.sock"));
    let (s0, s1) = (sock(0), sock(1));
    let json = tmp.join(format!("sluice-gen-smoke-{id}.json"));
    let gen_out = tmp.join(format!("sluice-gen-smoke-{id}.gen.log"));
    let gen_err = tmp.join(format!("sluice-gen-smoke-{id}.gen.err"));
    let dut_log = tmp.join(format!("sluice-gen-smoke-{id}.dut.log"));
    let dut_err = tmp.join(format!("sluice-gen-smoke-{id}.dut.err"));
    let (gen_prefix, dut_prefix) = (format!("sgen{id}"), format!("sdut{id}"));
    let mut g = Guard {
        children: Vec::new(),
        paths: vec![
            s0.clone(),
            s1.clone(),
            json.clone(),
            gen_out.clone(),
            gen_err.clone(),
            dut_log.clone(),
            dut_err.clone(),
        ],
        dirs: vec![
            PathBuf::from("/var/run/dpdk").join(&gen_prefix),
            PathBuf::from("/var/run/dpdk").join(&dut_prefix),
        ],
    };
    for p in &g.paths {
        let _ = std::fs::remove_file(p);
    }
    let vdev = |i: usize, role: &str, s: &Path| {
        format!(
            "net_memif{i},role={role},socket={},socket-abstract=no,id=0",
            s.display()
        )
    };

    let gen = Command::new(env!("CARGO_BIN_EXE_sluice-gen"))
        .args([
            "--tx-port",
            "net_memif0",
            "--rx-port",
            "net_memif1",
            "--mode",
            "swap",
            "--flows",
            "1000",
            "--rate",
            "100000",
            "--duration",
            "2",
            "--warmup",
            "0.5",
            "--drain",
            "0.5",
            "--link-timeout",
            "20",
            "--quiet",
        ])
        .args(args)
        .arg("--json")
        .arg(&json)
        .args(["--", "-l", "0,1", "--no-huge", "--no-pci", "-m", "512"])
        .args(["--file-prefix", &gen_prefix, "--log-level", "*:warning"])
        .args(["--vdev", &vdev(0, "server", &s0)])
        .args(["--vdev", &vdev(1, "server", &s1)])
        .stdin(Stdio::null())
        .stdout(File::create(&gen_out).unwrap())
        .stderr(File::create(&gen_err).unwrap())
        .spawn()
        .expect("cannot start sluice-gen");
    g.children.push(("gen", gen));

    // The memif servers listen once the generator's EAL is up.
    for s in [&s0, &s1] {
        assert!(
            wait_for_file(s, Duration::from_secs(20)),
            "no memif socket {} after 20 s; sluice-gen said:\n{}{}",
            s.display(),
            log(&gen_out),
            log(&gen_err)
        );
    }

    // testpmd forwards on lcore 0 (main lcore 1 only waits for stdin),
    // leaving the generator's worker lcore 1 to itself. Its stdin stays
    // open (piped, kept in the Child) so it keeps running until killed.
    let dut = Command::new(&testpmd)
        .args(["-l", "0,1", "--main-lcore", "1", "--no-huge", "--no-pci"])
        .args(["-m", "512", "--file-prefix", &dut_prefix])
        .args(["--vdev", &vdev(0, "client", &s0)])
        .args(["--vdev", &vdev(1, "client", &s1)])
        .args([
            "--",
            "--forward-mode=5tswap",
            "--auto-start",
            "--no-mlockall",
            "--total-num-mbufs=16384",
        ])
        .stdin(Stdio::piped())
        .stdout(File::create(&dut_log).unwrap())
        .stderr(Stdio::from(File::create(&dut_err).unwrap()))
        .spawn()
        .expect("cannot start dpdk-testpmd");
    g.children.push(("dut", dut));

    let status = g.wait("gen", Duration::from_secs(45));
    let diag = || {
        format!(
            "sluice-gen stdout:\n{}\nsluice-gen stderr:\n{}\ntestpmd:\n{}{}",
            log(&gen_out),
            log(&gen_err),
            log(&dut_log),
            log(&dut_err)
        )
    };
    let status = status.unwrap_or_else(|| panic!("sluice-gen did not finish in 45 s\n{}", diag()));
    assert!(status.success(), "sluice-gen failed: {status}\n{}", diag());

    let text =
        std::fs::read_to_string(&json).unwrap_or_else(|e| panic!("no JSON: {e}\n{}", diag()));
    let rep: Value = serde_json::from_str(&text).expect("the JSON report parses");
    println!("{}", log(&gen_out));
    let sc = &rep["scenario"];
    assert_eq!(sc["mode"], "swap");
    assert_eq!(sc["proto"], expect.0);
    assert_eq!(sc["flows"], 1000);
    assert_eq!(sc["size"], expect.1);
    let v6 = args.contains(&"--vip");
    let clients = if v6 {
        "2001:db8:18::/111"
    } else {
        "198.18.0.0/15"
    };
    assert_eq!(sc["clients"], clients, "{text}");
    let r = &rep["result"];
    let n = |k: &str| {
        r[k].as_u64()
            .unwrap_or_else(|| panic!("result.{k} missing: {text}"))
    };
    let tx = n("tx_packets");
    let ok = n("rx_ok");
    assert!(tx > 0, "nothing sent: {text}");
    assert!(ok > 0, "nothing came back: {text}");
    assert_eq!(n("bad_total"), 0, "bad packets: {text}");
    assert_eq!(n("duplicates"), 0, "duplicates: {text}");
    assert_eq!(n("reordered"), 0, "reordered: {text}");
    let loss = r["loss_pct"].as_f64().expect("loss_pct");
    assert!(loss < 2.0, "loss {loss} %: {text}");
    assert!(r["tx_pps"].as_f64().unwrap() > 0.0);
    let lat = &r["latency_ns"];
    let p = |k: &str| {
        lat[k]
            .as_u64()
            .unwrap_or_else(|| panic!("latency_ns.{k} missing: {text}"))
    };
    assert_eq!(p("samples"), ok);
    assert!(p("min") > 0);
    assert!(p("min") <= p("p50"));
    assert!(p("p50") <= p("p99"));
    assert!(p("p99") <= p("p99_9"));
    assert!(p("p99_9") <= p("max"));
    assert!(rep["search"].is_null());
}

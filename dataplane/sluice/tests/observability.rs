//! DPDK's own tools against a running Sluice: dpdk-telemetry.py reads
//! Sluice's counters, dpdk-dumpcap captures on its ports.

mod common;

use common::*;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

/// A `net_null` port that receives a stream of frames.
fn receiving_null_port() -> String {
    TestConfig::new()
        .small_rings()
        .port("null", "net_null0", &["192.0.2.1/24"])
        .render()
}

fn telemetry(prefix: &str, cmds: &str) -> Vec<serde_json::Value> {
    let mut c = Command::new("timeout")
        .args(["20", "dpdk-telemetry.py", "-f", prefix])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("dpdk-telemetry.py");
    c.stdin.take().unwrap().write_all(cmds.as_bytes()).unwrap();
    let o = c.wait_with_output().unwrap();
    assert!(
        o.status.success(),
        "dpdk-telemetry.py: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn dpdk_telemetry_reads_sluice_counters() {
    if !require_root() {
        return;
    }
    // net_null without no-rx: the worker receives a stream of empty
    // frames and drops them as truncated/unsupported.
    let d = Daemon::start(None, &receiving_null_port());
    let got = wait_for(Duration::from_secs(20), || {
        let r = telemetry(
            &d.prefix,
            "/sluice/stats\n/sluice/drops\n/sluice/worker,0\n/sluice/worker,7\n",
        );
        (r.len() == 4 && r[0]["/sluice/stats"]["rx_packets"].as_u64().unwrap_or(0) > 0).then_some(r)
    })
    .expect("telemetry never showed received packets");
    let stats = &got[0]["/sluice/stats"];
    assert_eq!(stats["workers"], 1);
    // Keys are the catalogue's names, as in `stats --json` and the metrics.
    assert_eq!(stats["capacity"], 65536);
    for f in sluice_proto::figures::WORKER {
        assert!(stats[f.name].is_u64(), "no {} in {stats}", f.name);
    }
    assert!(stats["drops"].as_u64().unwrap() > 0);
    let drops = got[1]["/sluice/drops"].as_object().unwrap();
    assert!(
        drops.contains_key("no_route") && drops.contains_key("truncated"),
        "{drops:?}"
    );
    let w0 = &got[2]["/sluice/worker"];
    let polls = w0["idle_polls"].as_u64().expect("idle_polls")
        + w0["busy_polls"].as_u64().expect("busy_polls");
    assert!(polls > 0, "{w0}");
    // An unknown worker answers an empty dictionary, not an error.
    assert!(
        got[3]["/sluice/worker"]
            .as_object()
            .is_none_or(|m| m.is_empty()),
        "{:?}",
        got[3]
    );
    // The same figures through sluicectl.
    let s = d.ctl_json(&["stats"]);
    assert!(workers_sum(&s, "/traffic/rx_packets") > 0);
    let exit = d.stop();
    assert_eq!(exit.code, Some(0), "{}", exit.log);
}

fn hugepages_free() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("HugePages_Free:")
                .map(|v| v.trim().parse().unwrap_or(0))
        })
        .unwrap_or(0)
}

#[test]
fn dpdk_dumpcap_captures_on_a_port() {
    if !require_root() {
        return;
    }
    // dpdk-dumpcap is a secondary process: it needs the primary's memory
    // in hugepages, kept linked while it runs.
    assert!(
        hugepages_free() >= 64,
        "dpdk-dumpcap needs hugepages: run `dpdk-hugepages.py -p 2M --setup 256M` (scripts/test.sh does)"
    );
    // A port on a veth with a kernel host behind it, so the traffic is a
    // trickle of pings: DPDK 22.11's pdump callbacks do not wait for a
    // detaching dumpcap, and at full rate (net_null) a worker can still be
    // copying into its pool as it goes.
    let lb = Netns::new("lb");
    let host = Netns::new("cl");
    let id = unique_id();
    let (lb_if, host_if) = (format!("l{id}"), format!("c{id}"));
    veth(&lb, &lb_if, &host, &host_if);
    host.exec(&["ip", "addr", "add", "192.0.2.10/24", "dev", &host_if]);
    let cfg = TestConfig::new()
        .small_rings()
        .hugepages_for_secondaries()
        .memory_mb(64)
        .port(
            "null",
            &format!("net_af_packet0,iface={lb_if}"),
            &["192.0.2.1/24"],
        )
        .render();
    let d = Daemon::start(Some(&lb), &cfg);
    let out = d.dir.path().join("cap.pcapng");
    let mut ping = host
        .command(&["ping", "-c", "400", "-i", "0.05", "192.0.2.1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("ping");
    let o = lb.run(
        &[
            "dpdk-dumpcap",
            "--file-prefix",
            &d.prefix,
            "-i",
            "net_af_packet0",
            "-c",
            "20",
            "-q",
            "-w",
            out.to_str().unwrap(),
        ],
        Duration::from_secs(60),
    );
    let _ = ping.kill();
    let _ = ping.wait();
    assert!(
        o.status.success(),
        "dpdk-dumpcap failed: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let epbs = pcapng_packets(&std::fs::read(&out).expect("capture file"));
    assert!(epbs >= 20, "only {epbs} packets captured");
    let prefix = d.prefix.clone();
    let exit = d.stop();
    assert_eq!(exit.code, Some(0), "{}", exit.log);
    // No hugepage file of ours is left.
    for e in std::fs::read_dir("/dev/hugepages").unwrap().flatten() {
        assert!(
            !e.file_name().to_string_lossy().starts_with(&prefix),
            "hugepage file left: {:?}",
            e.path()
        );
    }
}

/// The number of packets in a pcapng file: its section header block magic
/// checked, then its enhanced packet blocks (type 6) counted.
fn pcapng_packets(b: &[u8]) -> usize {
    assert_eq!(&b[0..4], &[0x0a, 0x0d, 0x0d, 0x0a], "not pcapng");
    let mut epbs = 0;
    let mut off = 0;
    while off + 8 <= b.len() {
        let ty = u32::from_le_bytes(b[off..off + 4].try_into().unwrap());
        let len = u32::from_le_bytes(b[off + 4..off + 8].try_into().unwrap()) as usize;
        if len < 12 {
            break;
        }
        if ty == 6 {
            epbs += 1;
        }
        off += len;
    }
    epbs
}

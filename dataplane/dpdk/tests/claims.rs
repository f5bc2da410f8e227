//! The claims the DPDK layer's types make, checked against a real EAL with
//! two `net_null` devices: a device is open once per process, a port is
//! configured once and hands its queues out once, an lcore scope runs
//! closures that borrow from outside it and waits for them, and every mbuf
//! comes back to the pool.
//!
//! One test: the EAL can be initialised once per process.

use sluice_dpdk::{lcore, DeviceConfig, Eal, MbufBatch, Mempool, Port};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .is_some_and(|l| l.split_whitespace().nth(1) == Some("0"))
}

/// Without root this test cannot run the EAL: it fails, unless
/// SLUICE_SKIP_NETNS=1 asks to skip (reported as skipped).
fn may_run() -> bool {
    if is_root() {
        return true;
    }
    if std::env::var("SLUICE_SKIP_NETNS").as_deref() != Ok("1") {
        panic!("this test needs root (DPDK); set SLUICE_SKIP_NETNS=1 to skip it");
    }
    let line = "sluice_dpdk claims::the_types_hold_their_claims: needs root";
    eprintln!("SKIPPED: {line}");
    if let Ok(path) = std::env::var("SLUICE_SKIP_LOG") {
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(f, "{line}");
        }
    }
    false
}

fn config(queues: u16) -> DeviceConfig {
    DeviceConfig {
        queues,
        rx_desc: 64,
        tx_desc: 64,
        promiscuous: false,
        all_multicast: false,
    }
}

#[test]
fn the_types_hold_their_claims() {
    if !may_run() {
        return;
    }
    let prefix = format!("claims{}", std::process::id());
    let args: Vec<String> = [
        "--no-huge",
        "-m",
        "128",
        "--file-prefix",
        &prefix,
        "--no-telemetry",
        "--no-pci",
        "-l",
        "0,1",
        "--vdev",
        "net_null0",
        "--vdev",
        "net_null1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let eal = Eal::init("claims", &args).expect("EAL");
    let _cleanup = RemoveOnDrop(eal.runtime_dir());
    assert!(Eal::init("claims", &args).is_err(), "a second EAL");
    let pool = Arc::new(Mempool::new(&eal, "claims", 1023, 32, 0).expect("pool"));

    // A device is held by one Port at a time.
    let mut port = Port::open(&eal, "net_null0").expect("open");
    let again = Port::open(&eal, "net_null0")
        .err()
        .expect("a second open is refused");
    assert!(again.to_string().contains("already open"), "{again}");
    // Queues exist only once configured; a port is configured once.
    assert!(port.queues().is_err(), "queues before configure");
    assert!(port.start().is_err(), "start before configure");
    port.configure(&config(1), &pool).expect("configure");
    let twice = port
        .configure(&config(1), &pool)
        .expect_err("a second configure");
    assert!(twice.to_string().contains("already configured"), "{twice}");
    port.start().expect("start");

    // Queues are handed out once; a scope's closure borrows them (and a
    // counter that lives on this stack) and is waited for.
    let mut pairs = port.queues().expect("queues");
    assert_eq!(pairs.len(), 1);
    assert!(port.queues().is_err(), "queues handed out twice");
    let mut pair = pairs.pop().unwrap();
    let moved = AtomicU64::new(0);
    let rc = lcore::scope(&eal, |scope| {
        assert!(scope.launch(0, || 0).is_err(), "launch on the main lcore");
        let h = scope
            .launch(1, || {
                let mut batch = MbufBatch::with_capacity(32);
                for _ in 0..100 {
                    let got = pair.rx.rx_burst(&mut batch);
                    let sent = pair.tx.tx_burst(&mut batch);
                    moved.fetch_add(sent as u64, Ordering::Relaxed);
                    assert!(sent <= got);
                    batch.free_all();
                }
                7
            })
            .expect("launch");
        assert!(scope.launch(1, || 0).is_err(), "two closures on one lcore");
        h.join()
    });
    assert_eq!(rc, 7);
    assert!(
        moved.load(Ordering::Relaxed) > 0,
        "net_null received nothing"
    );

    // Stopping needs every queue gone (&mut self). Dropping closes the
    // device and releases the claim on its port id, which a device probed
    // later reuses.
    let id = port.id();
    port.stop().expect("stop");
    drop(port);
    eal.probe_vdev("net_null2").expect("hotplug");
    let later = Port::open(&eal, "net_null2").expect("a device on the freed id");
    assert_eq!(later.id(), id, "DPDK gave the hotplugged device another id");
    let other = Port::open(&eal, "net_null1").expect("another device");
    drop((other, later));
    assert_eq!(pool.in_use(), 0, "mbufs did not come back");
}

/// Removes the EAL's runtime directory, also when the test fails.
struct RemoveOnDrop(std::path::PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

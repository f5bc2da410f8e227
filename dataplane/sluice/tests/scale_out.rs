//! Scale-out, end to end: two appliances side by side behind a router
//! that spreads the VIP's traffic over them by ECMP, each announcing the
//! VIP over BGP through its own BIRD, nginx reals behind them (direct
//! routing), kernel clients behind the router.
//!
//! ```text
//!  clients 203.0.113.10..  --  router (BIRD, ECMP, 198.51.100.1)
//!                                |  bridge 198.51.100.0/24
//!       appliance 1 (.11: Sluice + BIRD)   appliance 2 (.12: Sluice + BIRD)
//!       real 1 (.21, nginx, VIP on lo)     real 2 (.22, nginx, VIP on lo)
//! ```
//!
//! One test walks through the issue's cases in order, each bounded in
//! time: both routes learned and traffic split; one appliance killed
//! (SIGKILL, no withdrawal) under 50 long downloads and short requests,
//! every download completing byte for byte (mh, hashing on miss); a
//! graceful stop that withdraws first under short requests (none fails);
//! `sluicectl vip withdraw` / `announce`; and a VIP whose reals all fail
//! withdrawn, then announced again when one recovers.

mod common;

use common::topo::{start_nginx, Proc};
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

const VIP: &str = "192.0.2.10";
const ROUTER: &str = "198.51.100.1";
/// The downloads' file: 16 × the 256 KiB blob.
const BIG_BLOBS: usize = 16;
/// Each download's rate limit (bytes/s): about 10 s per download.
const RATE: &str = "400k";
const DOWNLOADS: usize = 50;
/// Short requests per second beside the downloads.
const SHORT_RATE: u32 = 200;

/// The key the appliances share for connection sync.
const SYNC_KEY: &str = "scale-out test key 0123456789";

struct Appliance {
    scheduler: &'static str,
    sync: bool,
    bfd: bool,
    ns: Netns,
    ip: String,
    port_if: String,
    dir: TempDir,
    daemon: Option<Daemon>,
    bird: Option<Proc>,
}

impl Appliance {
    fn config(&self) -> String {
        let d = self.dir.path().display();
        let peer = if self.ip.ends_with(".11") {
            "198.51.100.12"
        } else {
            "198.51.100.11"
        };
        let sync = if self.sync {
            format!(
                "[sync]\nlisten = \"{}:8848\"\npeers = [\"{peer}:8848\"]\nkey = \"{SYNC_KEY}\"\n",
                self.ip
            )
        } else {
            String::new()
        };
        TestConfig::new()
            .memory_mb(256)
            .port_with(
                "lan",
                &format!("net_af_packet0,iface={}", self.port_if),
                &[&format!("{}/24", self.ip)],
                "kernel_interface = \"sl-lan\"\n",
            )
            .then(&format!(
                r#"
[routes]
gateway = "{ROUTER}"

[metrics]
enabled = true

[bgp]
router_id = "{ip}"
local_as = 64513
bird_socket = "{d}/bird.ctl"
include_file = "{d}/sluice-bird.conf"
drain_ms = 2000
hold_time = 3
bfd = {bfd}

[[bgp.neighbor]]
address = "{ROUTER}"
remote_as = 64512

[[bgp.vip]]
address = "{VIP}"
med = 100
communities = ["64512:100"]

{sync}
[[service]]
protocol = "tcp"
vip = "{VIP}"
port = 80
scheduler = "{scheduler}"
check = {{ kind = "http", path = "/id", interval_ms = 300, timeout_ms = 250, rise = 2, fall = 2 }}

[[service.real]]
ip = "198.51.100.21"
port = 80
forward = "dr"

[[service.real]]
ip = "198.51.100.22"
port = 80
forward = "dr"
"#,
                ip = self.ip,
                scheduler = self.scheduler,
                bfd = self.bfd
            ))
            .render()
    }

    /// Starts Sluice, then BIRD (which includes the file Sluice wrote).
    fn start(&mut self) {
        self.daemon = Some(Daemon::start(Some(&self.ns), &self.config()));
        let d = self.dir.path().to_path_buf();
        std::fs::write(
            d.join("bird.conf"),
            format!(
                "log \"{d}/bird.log\" all;\ninclude \"{d}/sluice-bird.conf\";\n\
                 protocol device {{ scan time 10; }}\n",
                d = d.display()
            ),
        )
        .unwrap();
        self.bird = Some(start_bird(&self.ns, &d));
    }

    fn daemon(&self) -> &Daemon {
        self.daemon.as_ref().expect("appliance running")
    }

    /// SIGKILL to Sluice and BIRD: the appliance dies, nothing withdrawn.
    fn kill(&mut self) {
        let pid = self.daemon().pid().to_string();
        must(&["kill", "-9", &pid]);
        self.bird = None;
        drop(self.daemon.take());
    }

    fn service_packets(&self) -> u64 {
        let l = self.daemon().ctl_json(&["list"]);
        num(&l, "/result/services/0/stats/packets_in")
    }

    fn hashed_on_miss(&self) -> u64 {
        workers_sum(&self.daemon().ctl_json(&["stats"]), "/hashed_on_miss")
    }

    fn sync_installed(&self) -> u64 {
        workers_sum(&self.daemon().ctl_json(&["stats"]), "/sync_installed")
    }
}

fn start_bird(ns: &Netns, dir: &Path) -> Proc {
    let conf = dir.join("bird.conf");
    let sock = dir.join("bird.ctl");
    let child = ns
        .command(&[
            "bird",
            "-f",
            "-c",
            conf.to_str().unwrap(),
            "-s",
            sock.to_str().unwrap(),
            "-P",
            dir.join("bird.pid").to_str().unwrap(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start bird");
    let ok = wait_for(Duration::from_secs(10), || sock.exists().then_some(()));
    assert!(ok.is_some(), "BIRD did not open {}", sock.display());
    Proc(child)
}

struct Lab {
    router: Netns,
    client: Netns,
    appliances: Vec<Appliance>,
    reals: Vec<(Netns, Vec<Proc>, PathBuf)>,
    dir: TempDir,
    _router_bird: Proc,
}

impl Lab {
    /// The lab with every appliance's service on `scheduler`, with
    /// connection sync when `sync`, with BFD on every BGP session when
    /// `bfd`.
    fn new(scheduler: &'static str, sync: bool, bfd: bool) -> Lab {
        let id = unique_id();
        let router = Netns::new("rt");
        let client = Netns::new("cl");
        let dir = TempDir::new();
        router.exec(&["ip", "link", "add", "br0", "type", "bridge"]);
        router.exec(&["ip", "link", "set", "br0", "up"]);
        router.exec(&["ip", "addr", "add", &format!("{ROUTER}/24"), "dev", "br0"]);
        for (k, v) in [
            ("net.ipv4.ip_forward", "1"),
            ("net.ipv4.fib_multipath_hash_policy", "1"),
            ("net.ipv4.conf.all.rp_filter", "0"),
        ] {
            router.exec(&["sysctl", "-qw", &format!("{k}={v}")]);
        }
        let (cr, rc) = (format!("c{id}"), format!("d{id}"));
        veth(&client, &cr, &router, &rc);
        router.exec(&["ip", "addr", "add", "203.0.113.1/24", "dev", &rc]);
        for i in 0..DOWNLOADS {
            let a = format!("203.0.113.{}/24", 10 + i);
            client.exec(&["ip", "addr", "add", &a, "dev", &cr]);
        }
        client.exec(&["ip", "route", "add", "default", "via", "203.0.113.1"]);
        let on_bridge = |ns: &Netns, inner: &str, outer: &str| {
            veth(ns, inner, &router, outer);
            router.exec(&["ip", "link", "set", outer, "master", "br0"]);
        };
        let mut appliances = Vec::new();
        for i in 0..2 {
            let ns = Netns::new(&format!("a{i}"));
            let (inner, outer) = (format!("p{id}{i}"), format!("q{id}{i}"));
            on_bridge(&ns, &inner, &outer);
            // The port's kernel end must not take the appliance's packets
            // itself (a real NIC bound to DPDK has none): only through the
            // kernel interface. Strict reverse-path filtering on it drops
            // them (the appliance's routes are the kernel interface's).
            ns.exec(&[
                "sysctl",
                "-qw",
                &format!("net.ipv4.conf.{inner}.rp_filter=1"),
            ]);
            appliances.push(Appliance {
                scheduler,
                sync,
                bfd,
                ns,
                ip: format!("198.51.100.{}", 11 + i),
                port_if: inner,
                dir: TempDir::new(),
                daemon: None,
                bird: None,
            });
        }
        let mut reals = Vec::new();
        for i in 0..2 {
            let ns = Netns::new(&format!("r{i}"));
            let (inner, outer) = (format!("r{id}{i}"), format!("s{id}{i}"));
            on_bridge(&ns, &inner, &outer);
            for k in ["all", &inner] {
                ns.exec(&["sysctl", "-qw", &format!("net.ipv4.conf.{k}.arp_ignore=1")]);
                ns.exec(&[
                    "sysctl",
                    "-qw",
                    &format!("net.ipv4.conf.{k}.arp_announce=2"),
                ]);
            }
            ns.exec(&["ip", "addr", "add", &format!("{VIP}/32"), "dev", "lo"]);
            let ip = format!("198.51.100.{}/24", 21 + i);
            ns.exec(&["ip", "addr", "add", &ip, "dev", &inner]);
            ns.exec(&["ip", "route", "add", "default", "via", ROUTER]);
            let www = dir.path().join(format!("www{i}"));
            std::fs::create_dir_all(&www).unwrap();
            std::fs::write(www.join("id"), format!("real-{i}")).unwrap();
            std::fs::write(www.join("big"), big()).unwrap();
            reals.push((ns, Vec::new(), www));
        }
        std::fs::write(
            dir.path().join("bird.conf"),
            format!(
                "router id {ROUTER};\nlog \"{d}/bird.log\" all;\n\
                 protocol device {{ scan time 10; }}\n\
                 protocol kernel {{ ipv4 {{ import none; export all; }}; merge paths on; }}\n\
                 {bfd_protocol}\
                 template bgp appliance {{ local {ROUTER} as 64512; hold time 3; keepalive time 1;\n\
                   connect retry time 1; error wait time 1, 10; {bfd_on}ipv4 {{ import all; export none; }}; }}\n\
                 protocol bgp a1 from appliance {{ neighbor 198.51.100.11 as 64513; }}\n\
                 protocol bgp a2 from appliance {{ neighbor 198.51.100.12 as 64513; }}\n",
                d = dir.path().display(),
                bfd_protocol = if bfd {
                    "protocol bfd { interface \"*\" { min rx interval 100 ms; \
                     min tx interval 100 ms; multiplier 3; }; }\n"
                } else {
                    ""
                },
                bfd_on = if bfd { "bfd on; " } else { "" }
            ),
        )
        .unwrap();
        let router_bird = start_bird(&router, dir.path());
        let mut lab = Lab {
            router,
            client,
            appliances,
            reals,
            dir,
            _router_bird: router_bird,
        };
        for i in 0..2 {
            lab.serve(i);
        }
        lab
    }

    /// Starts nginx on real `i` (all addresses, port 80; no keep-alive,
    /// so every short request is a connection of its own).
    fn serve(&mut self, i: usize) {
        let (ns, procs, www) = &mut self.reals[i];
        let root = www.parent().unwrap().join(format!("nginx{i}"));
        procs.push(start_nginx(
            ns,
            &root,
            www,
            "80",
            80,
            "keepalive_timeout 0;",
        ));
    }

    fn stop_serving(&mut self, i: usize) {
        self.reals[i].1.clear();
    }

    /// The router's next hops for the VIP (empty: no route).
    fn next_hops(&self) -> Vec<String> {
        let o = self
            .router
            .run(&["ip", "route", "show", VIP], Duration::from_secs(5));
        let text = String::from_utf8_lossy(&o.stdout).to_string();
        let mut hops: Vec<String> = text
            .split_whitespace()
            .collect::<Vec<_>>()
            .windows(2)
            .filter(|w| w[0] == "via")
            .map(|w| w[1].to_string())
            .collect();
        hops.sort();
        hops
    }

    /// Waits (bounded) until the router's next hops are `want`.
    fn await_hops(&self, want: &[&str], limit: Duration, what: &str) -> Duration {
        let t0 = Instant::now();
        let got = wait_for(limit, || (self.next_hops() == want).then_some(()));
        assert!(
            got.is_some(),
            "{what}: the router's next hops for {VIP} are {:?}, not {want:?}\nrouter:\n{}",
            self.next_hops(),
            self.birdc(&["show", "protocols", "all"])
        );
        t0.elapsed()
    }

    fn birdc(&self, args: &[&str]) -> String {
        let sock = self.dir.path().join("bird.ctl");
        let mut a = vec!["birdc", "-s", sock.to_str().unwrap()];
        a.extend_from_slice(args);
        let o = self.router.run(&a, Duration::from_secs(5));
        String::from_utf8_lossy(&o.stdout).to_string()
    }

    /// Starts `n` rate-limited downloads of `big`, one per client address.
    fn downloads(&self, n: usize) -> Vec<(Child, PathBuf)> {
        (0..n)
            .map(|i| {
                let out = self.dir.path().join(format!("dl{i}"));
                let child = self
                    .client
                    .command(&[
                        "curl",
                        "-s",
                        "-f",
                        "--limit-rate",
                        RATE,
                        "--max-time",
                        "90",
                        "--interface",
                        &format!("203.0.113.{}", 10 + i),
                        "-o",
                        out.to_str().unwrap(),
                        &format!("http://{VIP}/big"),
                    ])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("start curl");
                (child, out)
            })
            .collect()
    }

    /// Starts short requests at `rate` per second for `secs` seconds; the
    /// child prints "ok N failed M".
    fn short_requests(&self, rate: u32, secs: u32) -> Child {
        self.client
            .command(&[
                "python3",
                "-c",
                SHORT_PY,
                VIP,
                &rate.to_string(),
                &secs.to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start short requests")
    }
}

/// Short HTTP requests at a fixed rate from rotating client addresses,
/// each in its own thread with a 15 s timeout; prints the tally.
const SHORT_PY: &str = r#"
import http.client, sys, threading, time
vip, rate, secs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ok = [0]; failed = []
lock = threading.Lock()
def one(i):
    try:
        c = http.client.HTTPConnection(vip, 80, timeout=15,
                                       source_address=("203.0.113.%d" % (10 + i % 50), 0))
        c.request("GET", "/id")
        r = c.getresponse()
        body = r.read()
        c.close()
        good = r.status == 200 and body.startswith(b"real-")
    except Exception as e:
        good = False
        err = repr(e)
    with lock:
        if good: ok[0] += 1
        else: failed.append(i)
threads = []
start = time.monotonic()
for i in range(rate * secs):
    delay = start + i / rate - time.monotonic()
    if delay > 0:
        time.sleep(delay)
    t = threading.Thread(target=one, args=(i,))
    t.start()
    threads.append(t)
for t in threads:
    t.join()
print("ok %d failed %d" % (ok[0], len(failed)))
"#;

/// The downloads' content: the 256 KiB blob, `BIG_BLOBS` times.
fn big() -> Vec<u8> {
    common::topo::blob().repeat(BIG_BLOBS)
}

/// Waits for the short-request client; returns (ok, failed).
fn tally(mut c: Child, limit: Duration) -> (u64, u64) {
    let f = wait_finished(&mut c, limit, || "short requests hung".into());
    let out = f.stdout;
    let w: Vec<&str> = out.split_whitespace().collect();
    assert!(
        w.len() == 4 && w[0] == "ok",
        "short requests: {out} {}",
        f.stderr
    );
    (w[1].parse().unwrap(), w[3].parse().unwrap())
}

/// Waits for the downloads; returns the broken ones (index, exit code,
/// bytes received).
fn finish_downloads(dls: Vec<(Child, PathBuf)>) -> Vec<(usize, Option<i32>, usize)> {
    let mut broken = Vec::new();
    let want = big();
    for (i, (mut c, out)) in dls.into_iter().enumerate() {
        let f = wait_finished(&mut c, Duration::from_secs(120), || {
            format!("download {i} hung")
        });
        let got = std::fs::read(&out).unwrap_or_default();
        if f.status.code() != Some(0) || got != want {
            broken.push((i, f.status.code(), got.len()));
        }
    }
    broken
}

/// Kills appliance 1 during 50 long downloads and short requests; every
/// download must complete byte for byte. Returns how much `moved` (a
/// counter of appliance 2's) grew meanwhile.
fn kill_appliance_1_under_load(lab: &mut Lab, moved: impl Fn(&Appliance) -> u64) -> u64 {
    let dls = lab.downloads(DOWNLOADS);
    let short = lab.short_requests(SHORT_RATE, 12);
    std::thread::sleep(Duration::from_secs(3));
    let before = moved(&lab.appliances[1]);
    lab.appliances[0].kill();
    let t = lab.await_hops(
        &["198.51.100.12"],
        Duration::from_secs(15),
        "after the kill",
    );
    eprintln!("the router dropped the dead appliance after {t:?}");
    let broken = finish_downloads(dls);
    let (ok, failed) = tally(short, Duration::from_secs(60));
    eprintln!(
        "kill: {} downloads broken of {DOWNLOADS}; short requests ok {ok} failed {failed}",
        broken.len()
    );
    assert!(
        broken.is_empty(),
        "broken downloads (index, exit, bytes): {broken:?}"
    );
    moved(&lab.appliances[1]) - before
}

#[test]
fn two_appliances_behind_ecmp_lose_no_connection() {
    if !require_root() {
        return;
    }
    let mut lab = Lab::new("mh", false, true);
    for a in &mut lab.appliances {
        a.start();
    }
    // 1. Both appliances announce: the router has two next hops.
    let t = lab.await_hops(
        &["198.51.100.11", "198.51.100.12"],
        Duration::from_secs(30),
        "both announced",
    );
    eprintln!("both routes learned in {t:?}");
    let st = lab.appliances[0].daemon().ctl_json(&["status"]);
    assert_eq!(st["result"]["bgp"]["vips"][0]["announced"], true, "{st:#}");
    assert_eq!(st["result"]["bgp"]["in_sync"], true, "{st:#}");
    // Traffic splits between them.
    let (ok, failed) = tally(lab.short_requests(20, 2), Duration::from_secs(60));
    assert_eq!((ok, failed), (40, 0));
    let split: Vec<u64> = lab.appliances.iter().map(|a| a.service_packets()).collect();
    eprintln!("packets per appliance: {split:?}");
    assert!(split.iter().all(|p| *p > 0), "ECMP split: {split:?}");
    // The announcement's attributes reach the router.
    let routes = lab.birdc(&["show", "route", "all", &format!("{VIP}/32")]);
    assert!(routes.contains("BGP.med: 100"), "{routes}");
    assert!(routes.contains("(64512,100)"), "{routes}");
    let bfd = lab.birdc(&["show", "bfd", "sessions"]);
    assert_eq!(bfd.matches(" Up ").count(), 2, "BFD sessions:\n{bfd}");

    // BIRD restarts on appliance 2: the router loses its route, status
    // says BIRD cannot be reached, and the restarted BIRD announces again
    // from the file Sluice wrote, without Sluice doing anything.
    lab.appliances[1].bird = None;
    lab.await_hops(&["198.51.100.11"], Duration::from_secs(10), "BIRD killed");
    let a2 = lab.appliances[1].daemon();
    let unreachable = wait_for(Duration::from_secs(10), || {
        let st = a2.ctl_json(&["status"]);
        let bird = st["result"]["bgp"]["bird"]
            .as_str()
            .unwrap_or("")
            .to_string();
        bird.contains("cannot reach BIRD").then_some(bird)
    });
    assert!(unreachable.is_some(), "status never said BIRD was gone");
    let dir = lab.appliances[1].dir.path().to_path_buf();
    lab.appliances[1].bird = Some(start_bird(&lab.appliances[1].ns, &dir));
    let t = lab.await_hops(
        &["198.51.100.11", "198.51.100.12"],
        Duration::from_secs(30),
        "BIRD restarted",
    );
    eprintln!("a restarted BIRD announced again in {t:?}");

    // 2. Appliance 1 dies under 50 long downloads and short requests:
    //    appliance 2 hashes the moved connections' misses.
    let moved = kill_appliance_1_under_load(&mut lab, |a| a.hashed_on_miss());
    eprintln!("{moved} connections moved to appliance 2 by hashing on miss");
    assert!(moved > 0, "no connection moved to the surviving appliance");

    // 3. Appliance 1 comes back; appliance 2 stops gracefully under short
    //    requests: it withdraws first, and no request fails.
    lab.appliances[0].start();
    lab.await_hops(
        &["198.51.100.11", "198.51.100.12"],
        Duration::from_secs(30),
        "appliance 1 back",
    );
    let short = lab.short_requests(SHORT_RATE, 8);
    std::thread::sleep(Duration::from_secs(2));
    let a2 = lab.appliances[1].daemon();
    let pid = a2.pid();
    let o = a2.ctl(&["shutdown"]);
    assert!(o.status.success());
    let t = lab.await_hops(&["198.51.100.11"], Duration::from_secs(5), "graceful stop");
    eprintln!("graceful stop: withdrawn from the router in {t:?}");
    assert!(
        Path::new(&format!("/proc/{pid}")).exists(),
        "the appliance stopped before the routers moved away"
    );
    let (ok, failed) = tally(short, Duration::from_secs(60));
    eprintln!("graceful stop: short requests ok {ok} failed {failed}");
    assert_eq!(failed, 0, "short requests failed during a graceful stop");
    let exit = lab.appliances[1].daemon.take().unwrap().stop();
    assert!(exit.log.contains("withdrawing"), "{}", exit.log);

    // 4. Maintenance: withdraw and announce by hand.
    let a1 = &lab.appliances[0];
    a1.daemon().ctl_json(&["vip", "withdraw", VIP]);
    lab.await_hops(&[], Duration::from_secs(5), "vip withdraw");
    let st = a1.daemon().ctl_json(&["status"]);
    assert_eq!(
        st["result"]["bgp"]["vips"][0]["reason"], "withdrawn by the operator",
        "{st:#}"
    );
    a1.daemon().ctl_json(&["vip", "announce", VIP]);
    lab.await_hops(&["198.51.100.11"], Duration::from_secs(5), "vip announce");

    // 5. Every real fails: withdrawn; one recovers: announced again.
    lab.stop_serving(0);
    lab.stop_serving(1);
    let t = lab.await_hops(&[], Duration::from_secs(10), "all reals down");
    eprintln!("all reals down: withdrawn in {t:?}");
    let st = lab.appliances[0].daemon().ctl_json(&["status"]);
    assert_eq!(
        st["result"]["bgp"]["vips"][0]["reason"], "no usable real",
        "{st:#}"
    );
    lab.serve(1);
    let t = lab.await_hops(&["198.51.100.11"], Duration::from_secs(10), "a real back");
    eprintln!("a real back: announced again in {t:?}");
    let (ok, failed) = tally(lab.short_requests(10, 1), Duration::from_secs(30));
    assert_eq!((ok, failed), (10, 0));
}

/// With a scheduler whose choice another appliance cannot repeat (wrr),
/// connection sync carries the connections: appliance 2 has every one of
/// appliance 1's before it dies, and every download completes. A forged
/// datagram (wrong key) and a replayed one are refused.
#[test]
fn with_wrr_connection_sync_loses_no_connection() {
    if !require_root() {
        return;
    }
    let mut lab = Lab::new("wrr", true, false);
    for a in &mut lab.appliances {
        a.start();
    }
    lab.await_hops(
        &["198.51.100.11", "198.51.100.12"],
        Duration::from_secs(30),
        "both announced",
    );
    // (Appliance 2 installs appliance 1's connections as they are made,
    // before the kill.)
    kill_appliance_1_under_load(&mut lab, |_| 0);
    let installed = lab.appliances[1].sync_installed();
    let st = lab.appliances[1].daemon().ctl_json(&["status"]);
    let sync = &st["result"]["sync"];
    eprintln!("sync: {installed} connections installed on appliance 2; {sync}");
    assert!(installed > 0, "no connection installed: {sync}");
    for k in [
        "rejected_auth",
        "rejected_replay",
        "rejected_malformed",
        "queue_full",
    ] {
        assert_eq!(sync[k], 0, "{k}: {sync}");
    }
    assert_eq!(lab.appliances[1].hashed_on_miss(), 0, "wrr does not hash");
    // The same figures, scraped (promtool approves of them).
    let m = lab.appliances[1].ns.run(
        &[
            "curl",
            "-s",
            "-f",
            "--max-time",
            "10",
            "http://127.0.0.1:9469/metrics",
        ],
        Duration::from_secs(15),
    );
    let text = String::from_utf8_lossy(&m.stdout).to_string();
    assert!(
        text.lines()
            .any(|l| l.starts_with("sluice_sync_conns_received_total ") && !l.ends_with(" 0")),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "sluice_bgp_vip_announced{{vip=\"{VIP}\",reason=\"\"}} 1"
        )),
        "{text}"
    );
    let mut p = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool");
    use std::io::Write;
    p.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let o = p.wait_with_output().unwrap();
    assert!(
        o.status.success(),
        "promtool: {}",
        String::from_utf8_lossy(&o.stderr)
    );

    // Appliance 1 comes back while appliance 2 carries 50 downloads: it
    // asks for every connection, gets them, and when appliance 2 dies in
    // turn, every download completes through appliance 1.
    let dls = lab.downloads(DOWNLOADS);
    std::thread::sleep(Duration::from_secs(2));
    lab.appliances[0].start();
    lab.await_hops(
        &["198.51.100.11", "198.51.100.12"],
        Duration::from_secs(30),
        "appliance 1 back",
    );
    let told = wait_for(Duration::from_secs(10), || {
        let n = lab.appliances[0].sync_installed();
        (n >= DOWNLOADS as u64).then_some(n)
    });
    assert!(
        told.is_some(),
        "appliance 1 learned {} connections on joining",
        lab.appliances[0].sync_installed()
    );
    let st = lab.appliances[1].daemon().ctl_json(&["status"]);
    assert!(
        st["result"]["sync"]["requests_received"].as_u64().unwrap() >= 1,
        "{st}"
    );
    std::thread::sleep(Duration::from_secs(2));
    lab.appliances[1].kill();
    lab.await_hops(
        &["198.51.100.11"],
        Duration::from_secs(15),
        "appliance 2 killed",
    );
    let broken = finish_downloads(dls);
    eprintln!(
        "join: appliance 1 learned {} connections; {} downloads broken of {DOWNLOADS} when appliance 2 died",
        told.unwrap_or(0),
        broken.len()
    );
    assert!(
        broken.is_empty(),
        "broken downloads (index, exit, bytes): {broken:?}"
    );
    // Appliance 2 back for what follows.
    lab.appliances[1].start();
    lab.await_hops(
        &["198.51.100.11", "198.51.100.12"],
        Duration::from_secs(30),
        "appliance 2 back",
    );

    // Hostile: a datagram under another key, a valid one twice, and a
    // valid one two minutes old (replayed after the receiver forgot it).
    let a2 = lab.appliances[1].daemon();
    // Appliance 2 has just asked appliance 1 for every connection (three
    // times in its first 3 s, answered a slice per poll): the counts below
    // are the hostile datagrams' alone only once that has settled, no
    // connection received for 3 s (a race that once counted 50 more).
    let received = || a2.ctl_json(&["status"])["result"]["sync"]["conns_received"].as_u64();
    let mut last = (received(), Instant::now());
    let settled = wait_for(Duration::from_secs(30), || {
        let now = received();
        if now != last.0 {
            last = (now, Instant::now());
        }
        (last.1.elapsed() >= Duration::from_secs(3)).then_some(())
    });
    assert!(settled.is_some(), "sync from appliance 1 never settled");
    let send = |key: &str, age_secs: u64, times: u32, sender: u32| {
        let o = lab.router.run(
            &[
                "python3",
                "-c",
                FORGE_PY,
                key,
                &age_secs.to_string(),
                &times.to_string(),
                &sender.to_string(),
            ],
            Duration::from_secs(10),
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    let before = a2.ctl_json(&["status"])["result"]["sync"].clone();
    send("not the key at all, no", 0, 1, 1);
    send(SYNC_KEY, 0, 2, 2);
    // (From a sender never heard from: no window refuses it, only its age.)
    send(SYNC_KEY, 120, 1, 3);
    let after = wait_for(Duration::from_secs(5), || {
        let s = a2.ctl_json(&["status"])["result"]["sync"].clone();
        (s["rejected_replay"].as_u64().unwrap() >= before["rejected_replay"].as_u64().unwrap() + 2)
            .then_some(s)
    })
    .expect("the replayed and the stale datagrams were not refused");
    let d = |k: &str| after[k].as_u64().unwrap() - before[k].as_u64().unwrap();
    assert_eq!(d("rejected_auth"), 1, "{after}");
    assert_eq!(d("rejected_replay"), 2, "{after}");
    assert_eq!(d("conns_received"), 1, "{after}");
}

/// Sends a sync datagram built from the format's description (not from
/// Sluice's code): one connection, under KEY, with the sequence number of
/// AGE seconds ago (the sender's clock in microseconds), TIMES times, as
/// sender SENDER, to appliance 2.
const FORGE_PY: &str = r#"
import hmac, hashlib, socket, struct, sys, time
key, age, times = sys.argv[1].encode(), int(sys.argv[2]), int(sys.argv[3])
seq = int((time.time() - age) * 1e6)
sender = int(sys.argv[4])
rec = struct.pack("!BBBBHHH", 4, 6, 1, 1, 40000, 80, 80)
rec += socket.inet_aton("203.0.113.200") + socket.inet_aton("192.0.2.10") + socket.inet_aton("198.51.100.21")
body = b"SLSY" + struct.pack("!BBHIQ", 1, 0, 1, sender, seq) + rec
d = body + hmac.new(key, body, hashlib.sha256).digest()
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(times):
    s.sendto(d, ("198.51.100.12", 8848))
"#;

/// Every shape of `[bgp]` Sluice may be given renders a file BIRD itself
/// parses (`bird -p`): eBGP and iBGP, with and without BFD, IPv4 and IPv6
/// neighbours and VIPs, with MED and communities.
#[test]
fn the_bird_configuration_parses_in_every_shape() {
    use sluice::bgp::bird::render;
    use sluice::bgp::decide::VipState;
    use sluice::config::{BgpConfig, Neighbor, VipRoute};
    let dir = TempDir::new();
    let states: Vec<VipState> = ["192.0.2.10", "192.0.2.11", "2001:db8::10"]
        .iter()
        .map(|v| VipState {
            vip: v.parse().unwrap(),
            withdrawn: None,
        })
        .collect();
    let mut n = 0;
    for ibgp in [false, true] {
        for bfd in [false, true] {
            for v6 in [false, true] {
                let c = BgpConfig {
                    router_id: "198.51.100.11".parse().unwrap(),
                    local_as: 64513,
                    bird_socket: "/run/bird/bird.ctl".into(),
                    include_file: dir.path().join("x.conf"),
                    drain_ms: 1000,
                    hold_time: 3,
                    bfd,
                    neighbors: vec![Neighbor {
                        address: if v6 { "2001:db8::1" } else { "198.51.100.1" }
                            .parse()
                            .unwrap(),
                        remote_as: if ibgp { 64513 } else { 64512 },
                    }],
                    vips: vec![
                        VipRoute {
                            address: "192.0.2.10".parse().unwrap(),
                            med: Some(10),
                            communities: vec![(64512, 1), (64512, 2)],
                        },
                        VipRoute {
                            address: "2001:db8::10".parse().unwrap(),
                            med: None,
                            communities: vec![(65000, 7)],
                        },
                    ],
                };
                for announced in [&states[..], &[]] {
                    n += 1;
                    let f = dir.path().join(format!("c{n}.conf"));
                    std::fs::write(&f, render(&c, announced)).unwrap();
                    let o = run(
                        &["bird", "-p", "-c", f.to_str().unwrap()],
                        Duration::from_secs(10),
                    );
                    assert!(
                        o.status.success(),
                        "ibgp {ibgp} bfd {bfd} v6 {v6}: {}\n{}",
                        String::from_utf8_lossy(&o.stderr),
                        std::fs::read_to_string(&f).unwrap()
                    );
                }
            }
        }
    }
}

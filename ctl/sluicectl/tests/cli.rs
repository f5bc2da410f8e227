//! `sluicectl` end to end against a fake daemon: a Unix socket in a
//! temporary directory, served by a thread that answers canned replies
//! built from the protocol types and records every request, so that each
//! test can check both what was shown and exactly what was sent. No root,
//! no DPDK. The interactive `top` runs in a private tmux server when tmux
//! is installed.

use sluice_proto::{
    Applied, Command, ConnFilter, ConnInfo, ConnList, ConnTableStats, ErrorCode, Forward,
    LbCounters, OnRealRemoval, Persistence, Protocol, Rates, RealInfo, RealSpec, Reply, ReplyBody,
    Request, ServiceInfo, ServiceKey, ServiceList, Stats, SynProxyMode, WorkerStats,
};
use std::io::{BufRead, BufReader, Write};
use std::net::Ipv4Addr;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command as Proc, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------- the fake daemon

type Responder = Arc<dyn Fn(&Command) -> Reply + Send + Sync>;

/// A fake daemon on a socket of its own; stopped (and its socket removed)
/// when dropped.
struct FakeDaemon {
    dir: tempfile::TempDir,
    socket: PathBuf,
    requests: Arc<Mutex<Vec<Command>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FakeDaemon {
    /// Serves the canned replies of [`canned`].
    fn start() -> FakeDaemon {
        FakeDaemon::with(canned)
    }

    /// Serves what `respond` answers.
    fn with(respond: impl Fn(&Command) -> Reply + Send + Sync + 'static) -> FakeDaemon {
        let respond: Responder = Arc::new(respond);
        let dir = tempfile::Builder::new()
            .prefix("sluicectl-test")
            .tempdir()
            .expect("temporary directory");
        let socket = dir.path().join("sluice.sock");
        let listener = UnixListener::bind(&socket).expect("bind the fake socket");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (requests, stop) = (requests.clone(), stop.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(stream) = stream else { continue };
                    let (requests, respond) = (requests.clone(), respond.clone());
                    std::thread::spawn(move || serve(stream, &requests, &*respond));
                }
            })
        };
        FakeDaemon {
            dir,
            socket,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    /// The requests received so far, in order.
    fn requests(&self) -> Vec<Command> {
        self.requests.lock().unwrap().clone()
    }

    /// A path in the daemon's temporary directory.
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Stops accepting and removes the socket: later clients find none.
    fn stop(&mut self) {
        if let Some(t) = self.thread.take() {
            self.stop.store(true, Ordering::SeqCst);
            let _ = UnixStream::connect(&self.socket); // wakes the accept
            let _ = t.join();
            let _ = std::fs::remove_file(&self.socket);
        }
    }
}

impl Drop for FakeDaemon {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One connection: a reply line for every request line.
fn serve(stream: UnixStream, requests: &Mutex<Vec<Command>>, respond: &dyn Fn(&Command) -> Reply) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut out = match stream.try_clone() {
        Ok(s) => s,
        Err(_) => return,
    };
    for line in BufReader::new(stream).lines() {
        let Ok(line) = line else { return };
        let reply = match serde_json::from_str::<Request>(&line) {
            Ok(r) => {
                requests.lock().unwrap().push(r.request.clone());
                respond(&r.request)
            }
            Err(e) => Reply::error(ErrorCode::BadRequest, e.to_string()),
        };
        let mut s = serde_json::to_string(&reply).unwrap();
        s.push('\n');
        if out.write_all(s.as_bytes()).is_err() {
            return;
        }
    }
}

// ---------------------------------------------------------------- canned data

const SAVED_TOML: &str = "# saved by sluice\n[[service]]\nprotocol = \"tcp\"\nvip = \"192.0.2.100\"\nport = 80\n\n[[service.real]]\nip = \"198.51.100.11\"\nport = 8080\n";

fn tcp80() -> ServiceKey {
    ServiceKey {
        protocol: Protocol::Tcp,
        vip: std::net::IpAddr::V4(Ipv4Addr::new(192, 0, 2, 100)),
        port: 80,
    }
}

fn real(ip: [u8; 4], port: u16, weight: u32, forward: Forward) -> RealSpec {
    RealSpec {
        ip: std::net::IpAddr::V4(Ipv4Addr::from(ip)),
        port,
        weight,
        forward,
        upper_threshold: 0,
        lower_threshold: 0,
        check: None,
        agent: None,
    }
}

fn services() -> ServiceList {
    let counters = |k: u64| LbCounters {
        connections: 100 * k,
        packets_in: 2000 * k,
        bytes_in: 150_000 * k,
        packets_out: 1800 * k,
        bytes_out: 2_400_000 * k,
    };
    let rates = |k: f64| Rates {
        connections: 5.4 * k,
        packets_in: 1234.5 * k,
        packets_out: 1100.0 * k,
        bytes_in: 98_765.4 * k,
        bytes_out: 1.5e6 * k,
    };
    ServiceList {
        services: vec![
            ServiceInfo {
                protocol: Protocol::Tcp,
                vip: std::net::IpAddr::V4(Ipv4Addr::new(192, 0, 2, 100)),
                port: 80,
                scheduler: sluice_proto::SchedulerKind::Wlc,
                persistence: Some(Persistence {
                    timeout_secs: 300,
                    netmask: Some(24),
                }),
                on_real_removal: OnRealRemoval::Keep,
                mh_table_size: None,
                check: None,
                agent: None,
                on_real_down: Default::default(),
                weight_by_latency: false,
                expire_quiescent_template: false,
                on_miss: None,
                passive_health: None,
                syn_proxy: Default::default(),
                local_addresses: Vec::new(),
                local_ports_per_real: 0,
                reals: vec![
                    RealInfo {
                        spec: real([198, 51, 100, 11], 8080, 3, Forward::Nat),
                        active: 12,
                        inactive: 3,
                        overloaded: false,
                        health: Default::default(),
                        stats: counters(2),
                        rates: rates(2.0),
                    },
                    RealInfo {
                        spec: real([198, 51, 100, 12], 8080, 1, Forward::Nat),
                        active: 4,
                        inactive: 1,
                        overloaded: true,
                        health: Default::default(),
                        stats: counters(1),
                        rates: rates(1.0),
                    },
                ],
                stats: counters(3),
                rates: rates(3.0),
            },
            ServiceInfo {
                protocol: Protocol::Udp,
                vip: std::net::IpAddr::V4(Ipv4Addr::new(192, 0, 2, 100)),
                port: 53,
                scheduler: sluice_proto::SchedulerKind::Mh,
                persistence: None,
                on_real_removal: OnRealRemoval::End,
                mh_table_size: Some(65537),
                check: None,
                agent: None,
                on_real_down: Default::default(),
                weight_by_latency: false,
                expire_quiescent_template: false,
                on_miss: None,
                passive_health: None,
                syn_proxy: Default::default(),
                local_addresses: Vec::new(),
                local_ports_per_real: 0,
                reals: vec![RealInfo {
                    spec: real([198, 51, 100, 21], 53, 1, Forward::Dr),
                    active: 0,
                    inactive: 2500,
                    overloaded: false,
                    health: Default::default(),
                    stats: LbCounters::default(),
                    rates: Rates::default(),
                }],
                stats: LbCounters::default(),
                rates: Rates::default(),
            },
        ],
    }
}

fn stats() -> Stats {
    Stats {
        ports: vec![],
        workers: (0..2)
            .map(|id| WorkerStats {
                id,
                lcore: 2 + id as u32,
                busy_polls: 10,
                idle_polls: 30,
                conntrack: ConnTableStats {
                    occupancy: 262_144 * (id as u64 + 1),
                    capacity: 1_048_576,
                    ..Default::default()
                },
                conntrack6: ConnTableStats {
                    occupancy: 1000,
                    capacity: 65_536,
                    ..Default::default()
                },
                busy_share: 0.25,
                rx_pps: 1_234_567.0,
                ..Default::default()
            })
            .collect(),
    }
}

fn conns() -> ConnList {
    ConnList {
        connections: vec![
            ConnInfo {
                protocol: Protocol::Tcp,
                client: "203.0.113.7:40000".parse().unwrap(),
                vip: "192.0.2.100:80".parse().unwrap(),
                real: "198.51.100.11:8080".parse().unwrap(),
                forward: Forward::Nat,
                local: None,
                state: "ESTABLISHED".into(),
                expires_in_secs: 899,
                worker: 1,
            },
            ConnInfo {
                protocol: Protocol::Udp,
                client: "203.0.113.8:5353".parse().unwrap(),
                vip: "192.0.2.100:53".parse().unwrap(),
                real: "198.51.100.21:53".parse().unwrap(),
                forward: Forward::Dr,
                local: None,
                state: "UDP".into(),
                expires_in_secs: 61,
                worker: 0,
            },
        ],
        truncated: true,
    }
}

fn applied(message: &str) -> Reply {
    Reply::ok(ReplyBody::Applied(Applied {
        message: message.into(),
        epoch: 7,
    }))
}

/// The canned daemon: sample services, stats, configuration and
/// connections; changes are applied at epoch 7.
fn canned(c: &Command) -> Reply {
    match c {
        Command::ServiceList { .. } => Reply::ok(ReplyBody::Services(services())),
        Command::Stats => Reply::ok(ReplyBody::Stats(stats())),
        Command::Save => Reply::ok(ReplyBody::Config {
            toml: SAVED_TOML.into(),
        }),
        Command::ConnList { .. } => Reply::ok(ReplyBody::Connections(conns())),
        Command::Zero { service: None } => applied("counters zeroed"),
        Command::Zero { service: Some(k) } => applied(&format!("counters of {k} zeroed")),
        Command::Restore { .. } => applied("configuration restored"),
        Command::Reload => applied("configuration reloaded"),
        Command::RealAdd { .. } => applied("real added"),
        other => Reply::error(ErrorCode::Refused, format!("the fake refuses {other:?}")),
    }
}

// ---------------------------------------------------------------- running sluicectl

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_sluicectl")
}

/// A `sluicectl` command with a clean environment, talking to `socket`.
fn cmd(socket: &Path, args: &[&str]) -> Proc {
    let mut c = Proc::new(bin());
    c.arg("--socket")
        .arg(socket)
        .args(args)
        .env_remove("SLUICE_SOCKET")
        .env_remove("COLUMNS")
        .env_remove("LINES")
        .stdin(Stdio::null());
    c
}

fn sluicectl(socket: &Path, args: &[&str]) -> Output {
    cmd(socket, args).output().expect("run sluicectl")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("utf-8 output")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs and expects exit 0, returning standard output.
fn ok(socket: &Path, args: &[&str]) -> String {
    let o = sluicectl(socket, args);
    assert_eq!(
        o.status.code(),
        Some(0),
        "sluicectl {args:?}: stdout {:?} stderr {:?}",
        stdout(&o),
        stderr(&o)
    );
    stdout(&o)
}

// ---------------------------------------------------------------- list

#[test]
fn list_renders_services_and_reals() {
    let d = FakeDaemon::start();
    let out = ok(&d.socket, &["list"]);
    let expected = "\
Prot  LocalAddress:Port            Scheduler Flags
  -> RemoteAddress:Port          Forward Weight ActiveConn  InActConn
TCP   192.0.2.100:80               wlc persistent 300 mask /24
  -> 198.51.100.11:8080          Masq         3         12          3
  -> 198.51.100.12:8080          Masq         1          4          1 overloaded
UDP   192.0.2.100:53               mh end-on-removal
  -> 198.51.100.21:53            Route        1          0       2500
";
    assert_eq!(out, expected);
    assert_eq!(d.requests(), vec![Command::ServiceList { raw: false }]);
    // `service list` is the same request and the same table.
    assert_eq!(ok(&d.socket, &["service", "list"]), expected);
}

#[test]
fn list_stats_renders_totals() {
    let d = FakeDaemon::start();
    let out = ok(&d.socket, &["list", "--stats"]);
    let expected = "\
Prot  LocalAddress:Port               Conns     InPkts    OutPkts      InBytes     OutBytes
  -> RemoteAddress:Port
TCP   192.0.2.100:80                    300       6000       5400       450000      7200000
  -> 198.51.100.11:8080                 200       4000       3600       300000      4800000
  -> 198.51.100.12:8080                 100       2000       1800       150000      2400000
UDP   192.0.2.100:53                      0          0          0            0            0
  -> 198.51.100.21:53                     0          0          0            0            0
";
    assert_eq!(out, expected);
    assert_eq!(d.requests(), vec![Command::ServiceList { raw: false }]);
}

#[test]
fn list_rate_renders_rates() {
    let d = FakeDaemon::start();
    let expected = "\
Prot  LocalAddress:Port                 CPS      InPPS     OutPPS        InBPS       OutBPS
  -> RemoteAddress:Port
TCP   192.0.2.100:80                     16       3704       3300       296296      4500000
  -> 198.51.100.11:8080                  11       2469       2200       197531      3000000
  -> 198.51.100.12:8080                   5       1234       1100        98765      1500000
UDP   192.0.2.100:53                      0          0          0            0            0
  -> 198.51.100.21:53                     0          0          0            0            0
";
    assert_eq!(ok(&d.socket, &["list", "--rate"]), expected);
    assert_eq!(ok(&d.socket, &["service", "list", "--rate"]), expected);
    assert_eq!(
        d.requests(),
        vec![Command::ServiceList { raw: false }; 2],
        "--rate uses the reported rates, no other request"
    );
    // ipvsadm shows one of the two at a time.
    let o = sluicectl(&d.socket, &["list", "--rate", "--stats"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn list_json_prints_the_raw_reply() {
    let d = FakeDaemon::start();
    let out = ok(&d.socket, &["--json", "list", "--rate"]);
    let reply: Reply = serde_json::from_str(&out).expect("the reply as JSON");
    assert_eq!(reply, Reply::ok(ReplyBody::Services(services())));
}

// ---------------------------------------------------------------- changes

#[test]
fn real_add_sends_the_ipvsadm_shaped_request() {
    let d = FakeDaemon::start();
    let out = ok(
        &d.socket,
        &[
            "real",
            "add",
            "-t",
            "192.0.2.100:80",
            "-r",
            "198.51.100.11:8080",
            "-w",
            "3",
            "-g",
        ],
    );
    assert_eq!(out, "real added (epoch 7)\n");
    assert_eq!(
        d.requests(),
        vec![Command::RealAdd {
            service: tcp80(),
            real: real([198, 51, 100, 11], 8080, 3, Forward::Dr),
        }]
    );
}

#[test]
fn syn_proxy_is_sent_on_add_and_edit_and_a_bad_mode_is_refused() {
    let d = FakeDaemon::start();
    sluicectl(
        &d.socket,
        &[
            "service",
            "add",
            "-t",
            "192.0.2.100:80",
            "--syn-proxy",
            "off",
        ],
    );
    sluicectl(
        &d.socket,
        &[
            "service",
            "edit",
            "-t",
            "192.0.2.100:80",
            "--syn-proxy",
            "on",
        ],
    );
    sluicectl(
        &d.socket,
        &["service", "edit", "-t", "192.0.2.100:80", "-s", "rr"],
    );
    let r = d.requests();
    assert_eq!(r.len(), 3, "{r:?}");
    match &r[0] {
        Command::ServiceAdd { service } => assert_eq!(service.syn_proxy, SynProxyMode::Off),
        c => panic!("{c:?}"),
    }
    match &r[1] {
        Command::ServiceEdit { service } => assert_eq!(service.syn_proxy, Some(SynProxyMode::On)),
        c => panic!("{c:?}"),
    }
    match &r[2] {
        Command::ServiceEdit { service } => assert_eq!(service.syn_proxy, None, "left as it was"),
        c => panic!("{c:?}"),
    }
    let o = sluicectl(
        &d.socket,
        &[
            "service",
            "edit",
            "-t",
            "192.0.2.100:80",
            "--syn-proxy",
            "maybe",
        ],
    );
    assert!(!o.status.success());
    assert!(stderr(&o).contains("maybe"), "{}", stderr(&o));
    assert_eq!(d.requests().len(), 3, "nothing sent");
}

#[test]
fn zero_all_or_one_service() {
    let d = FakeDaemon::start();
    assert_eq!(ok(&d.socket, &["zero"]), "counters zeroed (epoch 7)\n");
    assert_eq!(
        ok(&d.socket, &["zero", "-t", "192.0.2.100:80"]),
        "counters of tcp 192.0.2.100:80 zeroed (epoch 7)\n"
    );
    ok(&d.socket, &["zero", "--udp-service", "192.0.2.100:53"]);
    assert_eq!(
        d.requests(),
        vec![
            Command::Zero { service: None },
            Command::Zero {
                service: Some(tcp80())
            },
            Command::Zero {
                service: Some(ServiceKey {
                    protocol: Protocol::Udp,
                    vip: std::net::IpAddr::V4(Ipv4Addr::new(192, 0, 2, 100)),
                    port: 53,
                })
            },
        ]
    );
    // At most one service.
    let o = sluicectl(
        &d.socket,
        &["zero", "-t", "192.0.2.100:80", "-u", "192.0.2.100:53"],
    );
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(d.requests().len(), 3);
}

#[test]
fn save_prints_the_configuration_exactly() {
    let d = FakeDaemon::start();
    assert_eq!(ok(&d.socket, &["save"]), SAVED_TOML);
    assert_eq!(d.requests(), vec![Command::Save]);
}

#[test]
fn restore_sends_the_files_text() {
    let d = FakeDaemon::start();
    let file = d.path("saved.toml");
    let text =
        "[[service]]\nprotocol = \"udp\"\nvip = \"192.0.2.100\"\nport = 53\n# ünïcode kept\n";
    std::fs::write(&file, text).unwrap();
    let out = ok(&d.socket, &["restore", file.to_str().unwrap()]);
    assert_eq!(out, "configuration restored (epoch 7)\n");
    assert_eq!(
        d.requests(),
        vec![Command::Restore {
            config: text.into()
        }]
    );

    // `-` reads standard input.
    let mut child = cmd(&d.socket, &["restore", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(SAVED_TOML.as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        d.requests()[1],
        Command::Restore {
            config: SAVED_TOML.into()
        }
    );

    // A file that cannot be read is a usage error; nothing is sent.
    let o = sluicectl(
        &d.socket,
        &["restore", d.path("missing.toml").to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("cannot read"), "{}", stderr(&o));
    assert_eq!(d.requests().len(), 2);
}

#[test]
fn reload_sends_reload() {
    let d = FakeDaemon::start();
    assert_eq!(
        ok(&d.socket, &["reload"]),
        "configuration reloaded (epoch 7)\n"
    );
    assert_eq!(d.requests(), vec![Command::Reload]);
}

// ---------------------------------------------------------------- scale-out

#[test]
fn vip_withdraw_and_announce_send_their_requests() {
    let d = FakeDaemon::with(|c| match c {
        Command::VipWithdraw { vip } => applied(&format!("{vip} withdrawn")),
        Command::VipAnnounce { vip } => applied(&format!("{vip} announced again")),
        other => canned(other),
    });
    assert_eq!(
        ok(&d.socket, &["vip", "withdraw", "192.0.2.10"]),
        "192.0.2.10 withdrawn (epoch 7)\n"
    );
    assert_eq!(
        ok(&d.socket, &["vip", "announce", "2001:db8::10"]),
        "2001:db8::10 announced again (epoch 7)\n"
    );
    assert_eq!(
        d.requests(),
        vec![
            Command::VipWithdraw {
                vip: "192.0.2.10".parse().unwrap()
            },
            Command::VipAnnounce {
                vip: "2001:db8::10".parse().unwrap()
            },
        ]
    );
    let o = cmd(&d.socket, &["vip", "withdraw", "not-an-ip"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "a bad address is a usage error");
}

#[test]
fn status_shows_bgp_and_sync() {
    let d = FakeDaemon::with(|c| match c {
        Command::Status => Reply::ok(ReplyBody::Status(sluice_proto::Status {
            version: "0.1.0".into(),
            dpdk_version: "DPDK 22.11.4".into(),
            pid: 42,
            uptime_secs: 61,
            control_lcore: 0,
            ports: vec![],
            workers: vec![],
            bgp: Some(Box::new(sluice_proto::BgpStatus {
                bird_socket: "/run/bird/bird.ctl".into(),
                include_file: "/run/sluice/bird.conf".into(),
                bird: "BIRD 2.0.12 ready.".into(),
                in_sync: false,
                applied_secs_ago: Some(5),
                error: Some("cannot reach BIRD at /run/bird/bird.ctl".into()),
                alive: true,
                vips: vec![
                    sluice_proto::VipAnnouncement {
                        vip: "192.0.2.10".parse().unwrap(),
                        announced: true,
                        reason: None,
                    },
                    sluice_proto::VipAnnouncement {
                        vip: "192.0.2.11".parse().unwrap(),
                        announced: false,
                        reason: Some("no usable real".into()),
                    },
                ],
            })),
            sync: Some(Box::new(sluice_proto::SyncStatus {
                listen: "198.51.100.11:8848".into(),
                peers: vec!["198.51.100.12:8848".into()],
                sender: 7,
                datagrams_sent: 10,
                conns_sent: 99,
                rejected_auth: 3,
                ..Default::default()
            })),
        })),
        other => canned(other),
    });
    let out = ok(&d.socket, &["status"]);
    for want in [
        "BGP through BIRD at /run/bird/bird.ctl: BIRD 2.0.12 ready.",
        "announcements (/run/sluice/bird.conf): NOT in sync: cannot reach BIRD at /run/bird/bird.ctl",
        "192.0.2.10                               announced  -",
        "192.0.2.11                               withdrawn  no usable real",
        "connection sync on 198.51.100.11:8848 (sender 7) with 198.51.100.12:8848",
        "sent: 10 datagrams, 99 connections (held back by the rate limit 0 times, 0 send errors)",
        "refused: 3 unauthentic, 0 replayed, 0 malformed",
    ] {
        assert!(out.contains(want), "{want:?} missing:\n{out}");
    }
}

// ---------------------------------------------------------------- conn list

#[test]
fn conn_list_sends_its_filter_and_renders_a_table() {
    let d = FakeDaemon::start();
    let out = ok(&d.socket, &["conn", "list"]);
    let expected = "\
Pro  FromIP:Port           VIP:Port              DestIP:Port           Fwd   State       Expires Worker
TCP  203.0.113.7:40000     192.0.2.100:80        198.51.100.11:8080    Masq  ESTABLISHED   14:59      1
UDP  203.0.113.8:5353      192.0.2.100:53        198.51.100.21:53      Route UDP           01:01      0
(only 2 shown: more connections matched than the default limit of 100; narrow the filter or raise --limit)
";
    assert_eq!(out, expected);
    ok(
        &d.socket,
        &[
            "conn",
            "list",
            "-t",
            "192.0.2.100:80",
            "--client",
            "203.0.113.7",
            "--real",
            "198.51.100.11",
            "--state",
            "established",
            "--limit",
            "2",
        ],
    );
    let out = ok(
        &d.socket,
        &["conn", "list", "-u", "192.0.2.100:53", "--limit", "2"],
    );
    assert!(out.contains("the limit of 2;"), "{out}");
    assert_eq!(
        d.requests(),
        vec![
            Command::ConnList {
                filter: ConnFilter::default()
            },
            Command::ConnList {
                filter: ConnFilter {
                    service: Some(tcp80()),
                    client: Some(std::net::IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7))),
                    real: Some(std::net::IpAddr::V4(Ipv4Addr::new(198, 51, 100, 11))),
                    state: Some("ESTABLISHED".into()),
                    limit: Some(2),
                }
            },
            Command::ConnList {
                filter: ConnFilter {
                    service: Some(ServiceKey {
                        protocol: Protocol::Udp,
                        vip: std::net::IpAddr::V4(Ipv4Addr::new(192, 0, 2, 100)),
                        port: 53,
                    }),
                    limit: Some(2),
                    ..Default::default()
                }
            },
        ]
    );
    // Bad filters are usage errors, and nothing is sent.
    for bad in [
        &["conn", "list", "--limit", "0"][..],
        &["conn", "list", "--client", "nope"],
        &["conn", "list", "-t", "192.0.2.100"],
    ] {
        assert_eq!(sluicectl(&d.socket, bad).status.code(), Some(2), "{bad:?}");
    }
    assert_eq!(d.requests().len(), 3);
}

#[test]
fn conn_list_without_truncation_has_no_note() {
    let d = FakeDaemon::with(|c| match c {
        Command::ConnList { .. } => Reply::ok(ReplyBody::Connections(ConnList {
            connections: vec![],
            truncated: false,
        })),
        other => canned(other),
    });
    let out = ok(&d.socket, &["conn", "list"]);
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.starts_with("Pro  FromIP:Port"));
}

// ---------------------------------------------------------------- completions

#[test]
fn completions_for_every_shell() {
    // No daemon is needed.
    let nowhere = Path::new("/nonexistent/sluice.sock");
    let bash = ok(nowhere, &["completions", "bash"]);
    assert!(bash.contains("sluicectl"), "{bash}");
    assert!(bash.contains("conn") && bash.contains("--rate"));
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let s = ok(nowhere, &["completions", shell]);
        assert!(s.contains("sluicectl"), "{shell}");
    }
    assert_eq!(
        sluicectl(nowhere, &["completions", "tcsh"]).status.code(),
        Some(2)
    );
}

// ---------------------------------------------------------------- top --once

fn assert_fits(out: &str, width: usize, height: usize) {
    let lines: Vec<_> = out.lines().collect();
    assert!(lines.len() <= height, "{} lines:\n{out}", lines.len());
    for l in &lines {
        assert!(l.chars().count() <= width, "wider than {width}: {l:?}");
    }
}

#[test]
fn top_once_fits_80_by_24() {
    let d = FakeDaemon::start();
    let mut c = cmd(&d.socket, &["top", "--once"]);
    c.env("COLUMNS", "80").env("LINES", "24");
    let o = c.output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let by_env = stdout(&o);
    assert_fits(&by_env, 80, 24);
    // The default is 80x24 too, and the options say the same.
    assert_eq!(
        ok(&d.socket, &["top", "--once"])
            .lines()
            .skip(1)
            .collect::<Vec<_>>(),
        by_env.lines().skip(1).collect::<Vec<_>>()
    );
    let by_args = ok(
        &d.socket,
        &["top", "--once", "--width", "80", "--height", "24"],
    );
    assert_eq!(
        by_args.lines().skip(1).collect::<Vec<_>>(),
        by_env.lines().skip(1).collect::<Vec<_>>()
    );

    let lines: Vec<_> = by_env.lines().collect();
    assert!(lines[0].starts_with("sluice top  "), "{}", lines[0]);
    assert!(
        lines[0].contains("2 services  2 workers  every 1s"),
        "{}",
        lines[0]
    );
    for want in [
        "WORKER LCORE   BUSY   RXp/s   CONNS     CAP   USED  CONNS6",
        "0          2  25.0%   1.23M    262k   1.05M  25.0%   1.00k",
        "1          3  25.0%   1.23M    524k   1.05M  50.0%   1.00k",
        "PROT SERVICE / -> REAL      INp/s OUTp/s  INb/s OUTb/s CONN/s ACTIVE  INACT",
        "TCP  192.0.2.100:80         3.70k  3.30k  2.37M  36.0M     16     16      4",
        "  -> 198.51.100.11:8080     2.47k  2.20k  1.58M  24.0M     11     12      3",
        "  -> 198.51.100.12:8080     1.23k  1.10k   790k  12.0M    5.4      4      1 OVER",
        "UDP  192.0.2.100:53             0      0      0      0      0      0  2.50k",
        "  -> 198.51.100.21:53           0      0      0      0      0      0  2.50k",
    ] {
        assert!(lines.contains(&want), "no line {want:?} in\n{by_env}");
    }
    assert_eq!(
        d.requests()[..2],
        [Command::ServiceList { raw: false }, Command::Stats]
    );
}

#[test]
fn top_once_cuts_to_a_small_screen() {
    let d = FakeDaemon::start();
    let out = ok(
        &d.socket,
        &["top", "--once", "--width", "40", "--height", "8"],
    );
    assert_fits(&out, 40, 8);
    let lines: Vec<_> = out.lines().collect();
    assert_eq!(lines.len(), 8);
    assert_eq!(lines[7], "... 5 more");
    // The live view needs a terminal (here standard output is a pipe).
    let o = sluicectl(&d.socket, &["top"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("use top --once"), "{}", stderr(&o));
    // --width only goes with --once.
    assert_eq!(
        sluicectl(&d.socket, &["top", "--width", "40"])
            .status
            .code(),
        Some(2)
    );
}

// ---------------------------------------------------------------- failures

#[test]
fn an_error_reply_exits_4_with_its_message() {
    let d =
        FakeDaemon::with(|_| Reply::error(ErrorCode::Refused, "no such service tcp 192.0.2.1:80"));
    let o = sluicectl(&d.socket, &["service", "del", "-t", "192.0.2.1:80"]);
    assert_eq!(o.status.code(), Some(4));
    assert_eq!(stdout(&o), "");
    assert!(
        stderr(&o).contains("refused the request (Refused): no such service tcp 192.0.2.1:80"),
        "{}",
        stderr(&o)
    );
    // With --json the reply is printed, and the exit code is the same.
    let o = sluicectl(&d.socket, &["--json", "reload"]);
    assert_eq!(o.status.code(), Some(4));
    assert!(stdout(&o).contains("no such service"));
    // top leaves the same way.
    let o = sluicectl(&d.socket, &["top", "--once"]);
    assert_eq!(o.status.code(), Some(4));
    assert!(stderr(&o).contains("no such service"), "{}", stderr(&o));
}

#[test]
fn an_unreachable_daemon_exits_3() {
    // A stale socket: the file is there, nobody listens.
    let dir = tempfile::tempdir().unwrap();
    let stale = dir.path().join("stale.sock");
    drop(UnixListener::bind(&stale).unwrap());
    for args in [&["list"][..], &["top", "--once"], &["save"]] {
        let o = sluicectl(&stale, args);
        assert_eq!(o.status.code(), Some(3), "{args:?}");
        assert!(stderr(&o).contains("connection refused"), "{}", stderr(&o));
    }
    // No socket at all.
    let o = sluicectl(&dir.path().join("none.sock"), &["status"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(stderr(&o).contains("cannot reach sluice"), "{}", stderr(&o));
}

// ---------------------------------------------------------------- interactive top in tmux

/// A tmux server of the test's own, on a socket in a temporary directory
/// (so that nothing is left behind), killed when dropped.
struct Tmux {
    dir: tempfile::TempDir,
}

impl Tmux {
    /// A fresh server, or `None` when tmux is not installed.
    fn new(test: &str) -> Option<Tmux> {
        let installed = Proc::new("tmux")
            .arg("-V")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !installed {
            // Skipping silently would pass without testing anything:
            // only an explicit request may skip.
            if std::env::var("SLUICE_SKIP_TMUX").as_deref() == Ok("1") {
                let line =
                    format!("sluicectl::cli::{test}: tmux is not installed (SLUICE_SKIP_TMUX=1)");
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
                return None;
            }
            panic!("{test} needs tmux (scripts/lib/deps.sh installs it), or SLUICE_SKIP_TMUX=1 to skip");
        }
        let dir = tempfile::Builder::new()
            .prefix("sluicectl-tmux")
            .tempdir()
            .expect("temporary directory");
        Some(Tmux { dir })
    }

    fn cmd(&self, args: &[&str]) -> Proc {
        let mut c = Proc::new("tmux");
        c.arg("-S")
            .arg(self.dir.path().join("tmux.sock"))
            .args(["-f", "/dev/null"])
            .args(args)
            .env_remove("TMUX")
            .env("TERM", "xterm-256color")
            .stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("run tmux")
    }

    /// Starts `shell` in an 80x24 session named `top`.
    fn start(&self, shell: &str) {
        let o = self.run(&[
            "new-session",
            "-d",
            "-s",
            "top",
            "-x",
            "80",
            "-y",
            "24",
            shell,
        ]);
        assert!(o.status.success(), "tmux new-session: {}", stderr(&o));
    }

    fn capture(&self) -> Option<String> {
        let o = self.run(&["capture-pane", "-p", "-t", "top"]);
        o.status.success().then(|| stdout(&o))
    }

    fn session_alive(&self) -> bool {
        self.run(&["has-session", "-t", "top"]).status.success()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self
            .cmd(&["kill-server"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Polls `f` every 100 ms until it gives `Some`, for at most `limit`.
fn wait_for<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + limit;
    loop {
        if let Some(t) = f() {
            return Some(t);
        }
        if Instant::now() >= end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn quoted(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', r"'\''"))
}

/// Starts the interactive `top` in `tmux`, its exit code going to
/// `status` and its standard error to `err`, and waits until the service
/// line shows; returns that screen.
fn start_top(tmux: &Tmux, d: &FakeDaemon, status: &Path, err: &Path) -> String {
    let shell = format!(
        "{} --socket {} top --interval 0.2 2>{}; echo $? >{}",
        quoted(Path::new(bin())),
        quoted(&d.socket),
        quoted(err),
        quoted(status)
    );
    tmux.start(&shell);
    let screen = wait_for(Duration::from_secs(20), || {
        tmux.capture().filter(|s| s.contains("TCP  192.0.2.100:80"))
    });
    let Some(screen) = screen else {
        panic!(
            "top showed no service line; last screen:\n{}\nstderr: {}",
            tmux.capture().unwrap_or_default(),
            std::fs::read_to_string(err).unwrap_or_default()
        );
    };
    screen
}

/// Waits until the session is gone and returns the exit code written.
fn exit_code(tmux: &Tmux, status: &Path) -> String {
    assert!(
        wait_for(Duration::from_secs(10), || (!tmux.session_alive())
            .then_some(()))
        .is_some(),
        "top did not end; screen:\n{}",
        tmux.capture().unwrap_or_default()
    );
    wait_for(Duration::from_secs(5), || {
        std::fs::read_to_string(status)
            .ok()
            .filter(|s| s.ends_with('\n'))
    })
    .expect("the exit code was written")
    .trim()
    .to_string()
}

#[test]
fn interactive_top_in_tmux_fits_and_quits_on_q() {
    let Some(tmux) = Tmux::new("quit") else {
        return;
    };
    let d = FakeDaemon::start();
    let (status, err) = (d.path("status"), d.path("stderr"));
    let screen = start_top(&tmux, &d, &status, &err);
    for l in screen.lines() {
        assert!(l.chars().count() <= 80, "wider than 80: {l:?}\n{screen}");
    }
    assert!(screen.contains("q: quit"), "{screen}");
    assert!(screen.contains("0          2  25.0%"), "{screen}");
    // It keeps asking.
    assert!(
        wait_for(Duration::from_secs(10), || (d.requests().len() >= 4)
            .then_some(()))
        .is_some(),
        "no refresh: {:?}",
        d.requests()
    );
    let o = tmux.run(&["send-keys", "-t", "top", "q"]);
    assert!(o.status.success(), "send-keys: {}", stderr(&o));
    assert_eq!(exit_code(&tmux, &status), "0");
    assert_eq!(std::fs::read_to_string(&err).unwrap(), "");
}

#[test]
fn interactive_top_in_tmux_exits_3_when_the_daemon_goes() {
    let Some(tmux) = Tmux::new("gone") else {
        return;
    };
    let mut d = FakeDaemon::start();
    let (status, err) = (d.path("status"), d.path("stderr"));
    start_top(&tmux, &d, &status, &err);
    d.stop();
    assert_eq!(exit_code(&tmux, &status), "3");
    let err = std::fs::read_to_string(&err).unwrap();
    assert!(err.contains("cannot reach sluice"), "{err}");
}

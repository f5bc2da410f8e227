//! Test harness: real topologies in network namespaces, a real `sluice`
//! daemon on DPDK's virtual devices, and `sluicectl`.
//!
//! Every resource is owned by a guard whose Drop removes it (namespaces,
//! daemon processes, EAL runtime directories, temporary files), so a
//! failing test cleans up too. Names are unique per process and test so
//! tests can run in parallel. Every wait is bounded.
#![allow(dead_code)]

pub mod capture;
pub mod config;
pub mod pcap;
pub mod topo;

pub use config::TestConfig;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A short id, unique within the machine for this process's lifetime.
pub fn unique_id() -> String {
    let n = SEQ.fetch_add(1, Ordering::SeqCst);
    format!("{:x}{:x}", std::process::id() % 0xfffff, n)
}

/// Records that the running test skipped, and why: printed, and appended
/// to `$SLUICE_SKIP_LOG` (scripts/test.sh lists these in its summary and
/// does not count them as passed). Returns `false` for `if !... { return }`.
pub fn skip(reason: &str) -> bool {
    let test = std::thread::current()
        .name()
        .unwrap_or("unnamed test")
        .to_string();
    let line = format!("{}::{test}: {reason}", env!("CARGO_CRATE_NAME"));
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

/// Tests that build namespaces need root. Without it they fail, unless
/// SLUICE_SKIP_NETNS=1 says to skip them on purpose (they are then
/// reported as skipped).
pub fn require_root() -> bool {
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
        return skip("needs root (SLUICE_SKIP_NETNS=1)");
    }
    panic!("this test needs root (network namespaces, DPDK); run scripts/test.sh as root or set SLUICE_SKIP_NETNS=1 to skip it");
}

/// Where failed tests keep their daemon logs: `$SLUICE_TEST_LOGS`, else
/// `target/test-logs`.
pub fn test_logs_dir() -> PathBuf {
    match std::env::var_os("SLUICE_TEST_LOGS") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_TARGET_TMPDIR"))
            .parent()
            .expect("target dir")
            .join("test-logs"),
    }
}

/// Runs a command to completion with a time limit; panics with its output
/// if it cannot start.
pub fn run(cmd: &[&str], limit: Duration) -> Output {
    let mut full = vec![
        "timeout".to_string(),
        "-k".into(),
        "2".into(),
        format!("{}", limit.as_secs().max(1)),
    ];
    full.extend(cmd.iter().map(|s| s.to_string()));
    Command::new(&full[0])
        .args(&full[1..])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// Runs a command and panics unless it succeeds.
pub fn must(cmd: &[&str]) -> String {
    let o = run(cmd, Duration::from_secs(20));
    if !o.status.success() {
        panic!(
            "{cmd:?} failed ({}): {}{}",
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A network namespace, deleted on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(role: &str) -> Netns {
        let name = format!("sl-{}-{role}", unique_id());
        must(&["ip", "netns", "add", &name]);
        let ns = Netns { name };
        ns.exec(&["ip", "link", "set", "lo", "up"]);
        ns.exec(&["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"]);
        ns.exec(&["sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1"]);
        ns
    }

    /// Turns IPv6 on in the namespace and on interface `ifname` (namespaces
    /// start with it off, so that kernel hosts send no stray IPv6).
    pub fn enable_ipv6(&self, ifname: &str) {
        for key in ["all", "default", ifname] {
            self.exec(&[
                "sysctl",
                "-qw",
                &format!("net.ipv6.conf.{key}.disable_ipv6=0"),
            ]);
        }
    }

    /// Runs a command in the namespace; panics unless it succeeds.
    pub fn exec(&self, cmd: &[&str]) -> String {
        let mut full = vec!["ip", "netns", "exec", &self.name];
        full.extend_from_slice(cmd);
        must(&full)
    }

    /// Runs a command in the namespace with a time limit.
    pub fn run(&self, cmd: &[&str], limit: Duration) -> Output {
        let mut full = vec!["ip", "netns", "exec", &self.name];
        full.extend_from_slice(cmd);
        run(&full, limit)
    }

    /// A command to spawn in the namespace.
    pub fn command(&self, cmd: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).args(cmd);
        c
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Kill anything still running inside, then delete it.
        let _ = Command::new("ip")
            .args(["netns", "pids", &self.name])
            .output()
            .map(|o| {
                for pid in String::from_utf8_lossy(&o.stdout).split_whitespace() {
                    let _ = Command::new("kill").args(["-9", pid]).status();
                }
            });
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// Connects `a` and `b` with a veth pair named `<a_if>`/`<b_if>`, both up,
/// with transmit checksum offload off on both ends (a kernel host's partial
/// checksums would look wrong through af_packet).
pub fn veth(a: &Netns, a_if: &str, b: &Netns, b_if: &str) {
    must(&[
        "ip", "link", "add", a_if, "netns", &a.name, "type", "veth", "peer", "name", b_if, "netns",
        &b.name,
    ]);
    for (ns, i) in [(a, a_if), (b, b_if)] {
        ns.exec(&["ip", "link", "set", i, "up"]);
        ns.exec(&["ethtool", "-K", i, "tx", "off"]);
    }
}

/// The path of a workspace binary (built by `cargo build --workspace`).
pub fn bin(name: &str) -> PathBuf {
    let sluice = PathBuf::from(env!("CARGO_BIN_EXE_sluice"));
    let p = sluice.parent().unwrap().join(name);
    assert!(
        p.exists(),
        "{} is missing: build the workspace first (cargo build --workspace)",
        p.display()
    );
    p
}

/// A temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        let p = std::env::temp_dir().join(format!("sluice-test-{}", unique_id()));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running `sluice`, stopped (and its leftovers removed) on drop.
pub struct Daemon {
    child: Option<Child>,
    pub socket: PathBuf,
    pub log: PathBuf,
    pub prefix: String,
    pub dir: TempDir,
}

/// A child that is sent SIGTERM and waited for when dropped: for a
/// command run under `timeout`, which passes SIGTERM on to its child (a
/// SIGKILL would leave that child running as an orphan).
pub struct Terminate(pub Child);

impl Drop for Terminate {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

/// How the daemon ended.
pub struct Exit {
    pub code: Option<i32>,
    pub log: String,
}

impl Daemon {
    /// Writes `config` (with `@SOCKET@` and `@PREFIX@` filled in) and
    /// starts the daemon, in `ns` if given; waits (bounded) until its
    /// control socket answers.
    pub fn start(ns: Option<&Netns>, config: &str) -> Daemon {
        Daemon::start_with_env(ns, config, &[])
    }

    /// [`Daemon::start`] with `env` added to the daemon's environment.
    pub fn start_with_env(ns: Option<&Netns>, config: &str, env: &[(&str, &str)]) -> Daemon {
        let dir = TempDir::new();
        let prefix = format!("sltest{}", unique_id());
        let socket = dir.path().join("sluice.sock");
        let cfg = config
            .replace("@SOCKET@", socket.to_str().unwrap())
            .replace("@PREFIX@", &prefix)
            .replace("@DIR@", dir.path().to_str().unwrap());
        let cfg_path = dir.path().join("sluice.toml");
        std::fs::write(&cfg_path, cfg).unwrap();
        let log = dir.path().join("sluice.log");
        let logf = std::fs::File::create(&log).unwrap();
        let sluice = PathBuf::from(env!("CARGO_BIN_EXE_sluice"));
        let mut cmd = match ns {
            Some(ns) => ns.command(&[sluice.to_str().unwrap()]),
            None => Command::new(&sluice),
        };
        cmd.args(["--config", cfg_path.to_str().unwrap()])
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(logf.try_clone().unwrap())
            .stderr(logf);
        let child = cmd.spawn().expect("spawn sluice");
        let mut d = Daemon {
            child: Some(child),
            socket,
            log,
            prefix,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            // The socket is bound before the EAL starts (to refuse a second
            // daemon early), so a connection alone proves little: wait for
            // an answer to `status`.
            if d.socket.exists() && answers_status(&d.socket) {
                break;
            }
            if let Some(st) = d.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("sluice exited early ({st}):\n{}", d.log_text());
            }
            if Instant::now() > deadline {
                panic!("sluice did not open its socket in 60 s:\n{}", d.log_text());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        d
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Runs sluicectl against this daemon.
    pub fn ctl(&self, args: &[&str]) -> Output {
        let mut full: Vec<String> = vec![
            bin("sluicectl").to_string_lossy().into(),
            "--socket".into(),
            self.socket.to_string_lossy().into(),
        ];
        full.extend(args.iter().map(|s| s.to_string()));
        let refs: Vec<&str> = full.iter().map(String::as_str).collect();
        run(&refs, Duration::from_secs(30))
    }

    /// Runs `sluicectl <args> --json` and returns the parsed reply.
    pub fn ctl_json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.push("--json");
        let o = self.ctl(&a);
        assert!(
            o.status.success(),
            "sluicectl {args:?} failed: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
            panic!(
                "sluicectl {args:?} --json is not JSON ({e}): {}",
                String::from_utf8_lossy(&o.stdout)
            )
        })
    }

    /// Sends SIGTERM and waits (bounded) for the exit.
    pub fn stop(mut self) -> Exit {
        self.terminate()
    }

    fn terminate(&mut self) -> Exit {
        let mut child = match self.child.take() {
            Some(c) => c,
            None => {
                return Exit {
                    code: None,
                    log: self.log_text(),
                }
            }
        };
        // The child is `ip netns exec`, which execs sluice: same pid.
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        let code = loop {
            match child.try_wait() {
                Ok(Some(st)) => break st.code(),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break None;
                }
            }
        };
        Exit {
            code,
            log: self.log_text(),
        }
    }

    /// The EAL runtime directory of this daemon.
    pub fn runtime_dir(&self) -> PathBuf {
        PathBuf::from("/var/run/dpdk").join(&self.prefix)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.child.is_some() {
            let _ = self.terminate();
        }
        if std::thread::panicking() {
            self.keep_log();
        }
        let _ = std::fs::remove_dir_all(self.runtime_dir());
        // A daemon that crashed leaves its hugepage files (the tests that
        // check the daemon's own cleanup do so before this runs).
        if let Ok(rd) = std::fs::read_dir("/dev/hugepages") {
            let mine = format!("{}map_", self.prefix);
            for e in rd.flatten() {
                if e.file_name().to_string_lossy().starts_with(&mine) {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
    }
}

impl Daemon {
    /// The test failed: keep the daemon's log under the test-logs folder
    /// and print its tail with the failure.
    fn keep_log(&self) {
        let text = self.log_text();
        let test = std::thread::current()
            .name()
            .unwrap_or("test")
            .replace("::", "-");
        let dir = test_logs_dir();
        let kept = dir.join(format!("{test}-{}.log", self.prefix));
        let saved = std::fs::create_dir_all(&dir)
            .and_then(|_| std::fs::write(&kept, &text))
            .is_ok();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(40)..].join("\n");
        eprintln!(
            "--- sluice log ({} lines{}), last 40 ---\n{tail}\n--- end of sluice log ---",
            lines.len(),
            if saved {
                format!(", kept in {}", kept.display())
            } else {
                String::new()
            }
        );
    }
}

/// Whether the daemon at `socket` answers a status request.
fn answers_status(socket: &Path) -> bool {
    use std::io::{BufRead, BufReader, Write};
    let Ok(mut s) = std::os::unix::net::UnixStream::connect(socket) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    if s.write_all(b"{\"version\":2,\"request\":{\"cmd\":\"status\"}}\n")
        .is_err()
    {
        return false;
    }
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).is_ok() && line.contains("\"ok\":true")
}

/// Reads a number at a JSON pointer, panicking with context if absent.
pub fn num(v: &Value, ptr: &str) -> u64 {
    v.pointer(ptr)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("no number at {ptr} in {v:#}"))
}

/// Sum of a per-worker field over every worker of a stats reply.
pub fn workers_sum(stats: &Value, field: &str) -> u64 {
    stats["result"]["workers"]
        .as_array()
        .expect("workers")
        .iter()
        .map(|w| {
            w.pointer(field)
                .and_then(Value::as_u64)
                .unwrap_or_else(|| panic!("no {field} in {w}"))
        })
        .sum()
}

/// Sum of one drop reason over every worker.
pub fn drops(stats: &Value, reason: &str) -> u64 {
    workers_sum(stats, &format!("/drops/{reason}"))
}

/// What a finished client process said.
pub struct Finished {
    /// How it exited.
    pub status: std::process::ExitStatus,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
}

/// Waits at most `limit` for `child` to exit (panicking with `hung()` if
/// it does not) and collects its piped output.
pub fn wait_finished(child: &mut Child, limit: Duration, hung: impl Fn() -> String) -> Finished {
    use std::io::Read;
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < deadline, "{}", hung());
        std::thread::sleep(Duration::from_millis(100));
    };
    let (mut stdout, mut stderr) = (String::new(), String::new());
    if let Some(mut o) = child.stdout.take() {
        o.read_to_string(&mut stdout).unwrap();
    }
    if let Some(mut e) = child.stderr.take() {
        e.read_to_string(&mut stderr).unwrap();
    }
    Finished {
        status,
        stdout,
        stderr,
    }
}

/// Polls `f` every 50 ms until it returns Some, for at most `limit`.
pub fn wait_for<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

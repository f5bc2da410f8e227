//! Health-check and agent configuration: what the daemon's TOML
//! `check = { ... }` and `agent = { ... }` tables (on a service or on a real)
//! deserialize into, their defaults, and their validation.
//!
//! [`CheckSpec`] is one flat table whose `kind` selects the check; fields of
//! another kind are rejected by [`CheckSpec::validate`] rather than silently
//! ignored. [`CheckSpec::probe`] validates and resolves the defaults into a
//! [`Probe`], the form the health checker (`sluice-health`) runs.
//!
//! ```toml
//! check = { kind = "http", path = "/healthz", expect_status = "200-399", interval_ms = 1000 }
//! check = { kind = "udp", port = 53, send = "ping\n", expect = "pong" }
//! check = { kind = "exec", command = ["/usr/lib/sluice/check-db", "--quick"], timeout_ms = 500 }
//! agent = { port = 9999, interval_ms = 5000, send = "status\n" }
//! ```

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Default interval between two checks (or agent polls), in milliseconds.
pub const DEFAULT_INTERVAL_MS: u64 = 2000;
/// Default timeout of one check attempt (or agent poll), in milliseconds.
pub const DEFAULT_TIMEOUT_MS: u64 = 1000;
/// Default number of consecutive successes that bring a down target up.
pub const DEFAULT_RISE: u32 = 2;
/// Default number of consecutive failures that take an up target down.
pub const DEFAULT_FALL: u32 = 3;
/// Smallest accepted `interval_ms`.
pub const MIN_INTERVAL_MS: u64 = 10;
/// Largest accepted `interval_ms` (one hour).
pub const MAX_INTERVAL_MS: u64 = 3_600_000;
/// Largest accepted `rise` and `fall`.
pub const MAX_RISE_FALL: u32 = 1000;
/// Largest UDP payload a `udp` check may send (the IPv4 UDP maximum).
pub const MAX_UDP_SEND: usize = 65_507;
/// Largest `expect_body` / `expect` / agent `send` string, in bytes.
pub const MAX_MATCH_LEN: usize = 4096;

/// A configuration error, with a message meant for the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError(pub String);

impl SpecError {
    fn new(msg: impl Into<String>) -> Self {
        SpecError(msg.into())
    }
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SpecError {}

/// Which check a [`CheckSpec`] runs (`kind = "..."` in TOML).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckKind {
    /// TCP connect to the check port.
    Tcp,
    /// HTTP/1.0 `GET` with status (and optionally body) match.
    Http,
    /// UDP request/reply.
    Udp,
    /// An external command; exit status 0 is up.
    Exec,
    /// No check: the target is always up (an agent may still run).
    None,
}

impl CheckKind {
    /// The TOML spelling (`"tcp"`, `"http"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            CheckKind::Tcp => "tcp",
            CheckKind::Http => "http",
            CheckKind::Udp => "udp",
            CheckKind::Exec => "exec",
            CheckKind::None => "none",
        }
    }
}

impl fmt::Display for CheckKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn default_interval() -> u64 {
    DEFAULT_INTERVAL_MS
}
fn default_timeout() -> u64 {
    DEFAULT_TIMEOUT_MS
}
fn default_rise() -> u32 {
    DEFAULT_RISE
}
fn default_fall() -> u32 {
    DEFAULT_FALL
}

/// An active health check, as configured: the TOML `check = { ... }` table
/// of a service (inherited by its reals) or of a real.
///
/// | field           | kinds          | default            | meaning |
/// |-----------------|----------------|--------------------|---------|
/// | `kind`          | all            | (required)         | `tcp`, `http`, `udp`, `exec` or `none` |
/// | `interval_ms`   | all            | 2000               | time between the starts of two checks (≥ 10, ≤ 3 600 000) |
/// | `timeout_ms`    | all            | 1000               | bound on one attempt, all of it (connect, send, receive, process); must be < `interval_ms` |
/// | `rise`          | all            | 2                  | consecutive successes that bring a down target up (1..=1000) |
/// | `fall`          | all            | 3                  | consecutive failures that take an up target down (1..=1000) |
/// | `port`          | tcp http udp exec | the real's port | port to check (exec: `SLUICE_CHECK_PORT`) |
/// | `path`          | http           | `"/"`              | request path; must start with `/`, visible ASCII only |
/// | `host`          | http           | the checked `ip:port` (`ip` alone for port 80) | `Host` header |
/// | `expect_status` | http           | `200`              | see [`StatusMatch`]: `200`, `"200-399"`, `"2xx"` or a list of those |
/// | `expect_body`   | http           | none               | substring the first 64 KiB of the body must contain |
/// | `send`          | udp            | (required)         | datagram payload (may contain `\n`; may be empty) |
/// | `expect`        | udp            | none (any reply)   | substring the reply must contain |
/// | `command`       | exec           | (required)         | argv, e.g. `["/bin/check", "-q"]`; not run through a shell |
///
/// A field that does not apply to the `kind` is an error. Unknown fields are
/// rejected at deserialization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckSpec {
    /// Which check to run.
    pub kind: CheckKind,
    /// Milliseconds between the starts of two checks.
    #[serde(default = "default_interval")]
    pub interval_ms: u64,
    /// Milliseconds one attempt may take in all before it counts as failed.
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
    /// Consecutive successes that bring a down target up.
    #[serde(default = "default_rise")]
    pub rise: u32,
    /// Consecutive failures that take an up (or unknown) target down.
    #[serde(default = "default_fall")]
    pub fall: u32,
    /// Port to check instead of the real's port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// http: request path (default `/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// http: `Host` header (default: the checked `ip:port`, `ip` alone for port 80).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// http: accepted status codes (default 200).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_status: Option<StatusMatch>,
    /// http: substring the body must contain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_body: Option<String>,
    /// udp: the request datagram.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send: Option<String>,
    /// udp: substring the reply must contain (default: any reply is up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<String>,
    /// exec: the command's argv.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
}

impl Default for CheckSpec {
    /// `kind = "none"` with the default timings: no check.
    fn default() -> Self {
        CheckSpec::new(CheckKind::None)
    }
}

impl CheckSpec {
    /// A spec of `kind` with every other field at its default. `http` gets
    /// `path` `/` and status 200 from the defaults; `udp` and `exec` still
    /// need `send` / `command` before they validate.
    pub fn new(kind: CheckKind) -> Self {
        CheckSpec {
            kind,
            interval_ms: DEFAULT_INTERVAL_MS,
            timeout_ms: DEFAULT_TIMEOUT_MS,
            rise: DEFAULT_RISE,
            fall: DEFAULT_FALL,
            port: None,
            path: None,
            host: None,
            expect_status: None,
            expect_body: None,
            send: None,
            expect: None,
            command: None,
        }
    }

    /// The interval between the starts of two checks.
    pub fn interval(&self) -> Duration {
        Duration::from_millis(self.interval_ms)
    }

    /// The bound on one attempt.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// The address to check for a real at `real`: its IP with `port` if set,
    /// else the real's port.
    pub fn check_addr(&self, real: SocketAddr) -> SocketAddr {
        SocketAddr::new(real.ip(), self.port.unwrap_or(real.port()))
    }

    /// Checks the spec; see [`CheckSpec`] for the rules.
    pub fn validate(&self) -> Result<(), SpecError> {
        self.probe().map(|_| ())
    }

    /// Validates the spec and resolves its defaults into a [`Probe`].
    pub fn probe(&self) -> Result<Probe, SpecError> {
        validate_timing(self.interval_ms, self.timeout_ms)?;
        for (name, v) in [("rise", self.rise), ("fall", self.fall)] {
            if v == 0 || v > MAX_RISE_FALL {
                return Err(SpecError::new(format!(
                    "{name} must be between 1 and {MAX_RISE_FALL}, got {v}"
                )));
            }
        }
        if self.port == Some(0) {
            return Err(SpecError::new("port must not be 0"));
        }
        self.reject_foreign_fields()?;
        match self.kind {
            CheckKind::None => Ok(Probe::None),
            CheckKind::Tcp => Ok(Probe::Tcp),
            CheckKind::Http => {
                let path = self.path.clone().unwrap_or_else(|| "/".to_string());
                if !path.starts_with('/') {
                    return Err(SpecError::new(format!(
                        "http path must start with '/', got {path:?}"
                    )));
                }
                visible_ascii("http path", &path)?;
                if let Some(host) = &self.host {
                    if host.is_empty() {
                        return Err(SpecError::new("http host must not be empty"));
                    }
                    visible_ascii("http host", host)?;
                }
                if let Some(body) = &self.expect_body {
                    match_string("expect_body", body)?;
                }
                Ok(Probe::Http {
                    path,
                    host: self.host.clone(),
                    expect_status: self.expect_status.clone().unwrap_or_default(),
                    expect_body: self.expect_body.clone(),
                })
            }
            CheckKind::Udp => {
                let Some(send) = &self.send else {
                    return Err(SpecError::new(
                        "udp check needs `send` (the request datagram)",
                    ));
                };
                if send.len() > MAX_UDP_SEND {
                    return Err(SpecError::new(format!(
                        "udp send is {} bytes, more than {MAX_UDP_SEND}",
                        send.len()
                    )));
                }
                if let Some(expect) = &self.expect {
                    match_string("expect", expect)?;
                }
                Ok(Probe::Udp {
                    send: send.as_bytes().to_vec(),
                    expect: self.expect.as_ref().map(|e| e.as_bytes().to_vec()),
                })
            }
            CheckKind::Exec => {
                let argv = match &self.command {
                    None => {
                        return Err(SpecError::new(
                            "exec check needs `command` (argv, e.g. [\"/bin/check\", \"-q\"])",
                        ))
                    }
                    Some(argv) if argv.is_empty() => {
                        return Err(SpecError::new("exec command must not be empty"))
                    }
                    Some(argv) => argv,
                };
                if argv[0].is_empty() {
                    return Err(SpecError::new("exec command's program must not be empty"));
                }
                if argv.iter().any(|a| a.contains('\0')) {
                    return Err(SpecError::new("exec command must not contain NUL bytes"));
                }
                Ok(Probe::Exec { argv: argv.clone() })
            }
        }
    }

    /// Fields set that the kind does not use are configuration mistakes.
    fn reject_foreign_fields(&self) -> Result<(), SpecError> {
        use CheckKind::*;
        let fields: [(&str, bool, &[CheckKind]); 8] = [
            ("port", self.port.is_some(), &[Tcp, Http, Udp, Exec]),
            ("path", self.path.is_some(), &[Http]),
            ("host", self.host.is_some(), &[Http]),
            ("expect_status", self.expect_status.is_some(), &[Http]),
            ("expect_body", self.expect_body.is_some(), &[Http]),
            ("send", self.send.is_some(), &[Udp]),
            ("expect", self.expect.is_some(), &[Udp]),
            ("command", self.command.is_some(), &[Exec]),
        ];
        for (name, set, kinds) in fields {
            if set && !kinds.contains(&self.kind) {
                let kinds: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
                return Err(SpecError::new(format!(
                    "`{name}` does not apply to a {} check (only to: {})",
                    self.kind,
                    kinds.join(", ")
                )));
            }
        }
        Ok(())
    }
}

fn validate_timing(interval_ms: u64, timeout_ms: u64) -> Result<(), SpecError> {
    if !(MIN_INTERVAL_MS..=MAX_INTERVAL_MS).contains(&interval_ms) {
        return Err(SpecError::new(format!(
            "interval_ms must be between {MIN_INTERVAL_MS} and {MAX_INTERVAL_MS}, got {interval_ms}"
        )));
    }
    if timeout_ms == 0 {
        return Err(SpecError::new("timeout_ms must not be 0"));
    }
    if timeout_ms >= interval_ms {
        return Err(SpecError::new(format!(
            "timeout_ms ({timeout_ms}) must be less than interval_ms ({interval_ms})"
        )));
    }
    Ok(())
}

fn visible_ascii(what: &str, s: &str) -> Result<(), SpecError> {
    if let Some(c) = s.chars().find(|c| !c.is_ascii_graphic()) {
        return Err(SpecError::new(format!(
            "{what} must be visible ASCII without spaces, found {c:?} in {s:?}"
        )));
    }
    Ok(())
}

fn match_string(what: &str, s: &str) -> Result<(), SpecError> {
    if s.is_empty() {
        return Err(SpecError::new(format!("{what} must not be empty")));
    }
    if s.len() > MAX_MATCH_LEN {
        return Err(SpecError::new(format!(
            "{what} is {} bytes, more than {MAX_MATCH_LEN}",
            s.len()
        )));
    }
    Ok(())
}

/// A validated check with its defaults resolved: what a worker runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// No check.
    None,
    /// TCP connect.
    Tcp,
    /// HTTP/1.0 GET.
    Http {
        /// Request path.
        path: String,
        /// `Host` header; `None`: the checked address, `ip` or `ip:port`.
        host: Option<String>,
        /// Accepted status codes.
        expect_status: StatusMatch,
        /// Substring the body must contain.
        expect_body: Option<String>,
    },
    /// UDP request/reply.
    Udp {
        /// Request payload.
        send: Vec<u8>,
        /// Substring the reply must contain; `None`: any reply.
        expect: Option<Vec<u8>>,
    },
    /// External command.
    Exec {
        /// argv; `argv[0]` is looked up in `PATH` if it has no `/`.
        argv: Vec<String>,
    },
}

/// The HTTP status codes a `http` check accepts: a union of inclusive
/// ranges.
///
/// In TOML, `expect_status` is one of:
/// * an integer: `200`;
/// * a string: `"200"`, a range `"200-399"`, or a class `"2xx"` (200-299);
/// * a list of those: `[200, "301-302"]`.
///
/// Codes must lie in 100..=599. The default is exactly 200.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "StatusRepr", into = "StatusRepr")]
pub struct StatusMatch {
    ranges: Vec<(u16, u16)>,
}

impl Default for StatusMatch {
    fn default() -> Self {
        StatusMatch {
            ranges: vec![(200, 200)],
        }
    }
}

impl StatusMatch {
    /// Exactly `code`.
    pub fn code(code: u16) -> Result<Self, SpecError> {
        Self::range(code, code)
    }

    /// `lo..=hi`.
    pub fn range(lo: u16, hi: u16) -> Result<Self, SpecError> {
        check_range(lo, hi)?;
        Ok(StatusMatch {
            ranges: vec![(lo, hi)],
        })
    }

    /// Parses `"200"`, `"200-399"` or `"2xx"`, or a comma-separated list of
    /// those.
    pub fn parse(s: &str) -> Result<Self, SpecError> {
        let mut ranges = Vec::new();
        for part in s.split(',') {
            ranges.push(parse_status_item(part.trim())?);
        }
        Ok(StatusMatch { ranges })
    }

    /// Whether `status` is accepted.
    pub fn matches(&self, status: u16) -> bool {
        self.ranges
            .iter()
            .any(|&(lo, hi)| (lo..=hi).contains(&status))
    }

    /// The accepted ranges, inclusive.
    pub fn ranges(&self) -> &[(u16, u16)] {
        &self.ranges
    }
}

impl fmt::Display for StatusMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, &(lo, hi)) in self.ranges.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if lo == hi {
                write!(f, "{lo}")?;
            } else {
                write!(f, "{lo}-{hi}")?;
            }
        }
        Ok(())
    }
}

fn check_range(lo: u16, hi: u16) -> Result<(), SpecError> {
    if !(100..=599).contains(&lo) || !(100..=599).contains(&hi) {
        return Err(SpecError::new(format!(
            "HTTP status must be between 100 and 599, got {lo}-{hi}"
        )));
    }
    if lo > hi {
        return Err(SpecError::new(format!(
            "HTTP status range {lo}-{hi} is empty"
        )));
    }
    Ok(())
}

fn parse_status_code(s: &str) -> Result<u16, SpecError> {
    s.parse::<u16>()
        .map_err(|_| SpecError::new(format!("bad HTTP status {s:?}")))
}

fn parse_status_item(s: &str) -> Result<(u16, u16), SpecError> {
    let lower = s.to_ascii_lowercase();
    let (lo, hi) = if let Some(class) = lower.strip_suffix("xx") {
        let c: u16 = match class.as_bytes() {
            [d @ b'1'..=b'5'] => u16::from(d - b'0'),
            _ => return Err(SpecError::new(format!("bad HTTP status class {s:?}"))),
        };
        (c * 100, c * 100 + 99)
    } else if let Some((lo, hi)) = s.split_once('-') {
        (parse_status_code(lo.trim())?, parse_status_code(hi.trim())?)
    } else {
        let c = parse_status_code(s)?;
        (c, c)
    };
    check_range(lo, hi)?;
    Ok((lo, hi))
}

/// One element of `expect_status` in TOML.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
enum StatusItem {
    Code(i64),
    Text(String),
}

/// `expect_status` in TOML: one element or a list.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
enum StatusRepr {
    One(StatusItem),
    Many(Vec<StatusItem>),
}

impl StatusItem {
    fn to_range(&self) -> Result<(u16, u16), SpecError> {
        match self {
            StatusItem::Code(c) => {
                let c = u16::try_from(*c)
                    .map_err(|_| SpecError::new(format!("bad HTTP status {c}")))?;
                check_range(c, c)?;
                Ok((c, c))
            }
            StatusItem::Text(s) => parse_status_item(s.trim()),
        }
    }
}

impl TryFrom<StatusRepr> for StatusMatch {
    type Error = SpecError;

    fn try_from(repr: StatusRepr) -> Result<Self, SpecError> {
        let ranges = match repr {
            StatusRepr::One(item) => vec![item.to_range()?],
            StatusRepr::Many(items) => {
                if items.is_empty() {
                    return Err(SpecError::new("expect_status must not be an empty list"));
                }
                items
                    .iter()
                    .map(StatusItem::to_range)
                    .collect::<Result<_, _>>()?
            }
        };
        Ok(StatusMatch { ranges })
    }
}

impl From<StatusMatch> for StatusRepr {
    fn from(m: StatusMatch) -> Self {
        let item = |&(lo, hi): &(u16, u16)| {
            if lo == hi {
                StatusItem::Code(i64::from(lo))
            } else {
                StatusItem::Text(format!("{lo}-{hi}"))
            }
        };
        match m.ranges.as_slice() {
            [one] => StatusRepr::One(item(one)),
            many => StatusRepr::Many(many.iter().map(item).collect()),
        }
    }
}

/// A server agent to poll for load feedback, HAProxy's `agent-check`: the
/// TOML `agent = { ... }` table of a service or a real.
///
/// Every `interval_ms` the monitor connects over TCP to the real's IP at
/// `port`, writes `send` if set (HAProxy's `agent-send`), reads one line
/// (up to 1 KiB, until newline or close, within `timeout_ms`) and applies it
/// with `sluice_health::parse_agent_reply`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentSpec {
    /// TCP port of the agent on the real's IP.
    pub port: u16,
    /// Milliseconds between the starts of two polls (default 2000).
    #[serde(default = "default_interval")]
    pub interval_ms: u64,
    /// Milliseconds one poll may take (default 1000); < `interval_ms`.
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
    /// String written to the agent after connecting (may contain `\n`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send: Option<String>,
}

impl AgentSpec {
    /// An agent on `port` with the default timings and nothing to send.
    pub fn new(port: u16) -> Self {
        AgentSpec {
            port,
            interval_ms: DEFAULT_INTERVAL_MS,
            timeout_ms: DEFAULT_TIMEOUT_MS,
            send: None,
        }
    }

    /// The interval between the starts of two polls.
    pub fn interval(&self) -> Duration {
        Duration::from_millis(self.interval_ms)
    }

    /// The bound on one poll.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// The agent's address for a real at `real`.
    pub fn agent_addr(&self, real: SocketAddr) -> SocketAddr {
        SocketAddr::new(real.ip(), self.port)
    }

    /// Checks the spec: `port` not 0, timings as for [`CheckSpec`], `send`
    /// at most 4096 bytes.
    pub fn validate(&self) -> Result<(), SpecError> {
        if self.port == 0 {
            return Err(SpecError::new("agent port must not be 0"));
        }
        validate_timing(self.interval_ms, self.timeout_ms)
            .map_err(|e| SpecError::new(format!("agent: {e}")))?;
        if let Some(send) = &self.send {
            if send.len() > MAX_MATCH_LEN {
                return Err(SpecError::new(format!(
                    "agent send is {} bytes, more than {MAX_MATCH_LEN}",
                    send.len()
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Real {
        check: CheckSpec,
    }

    fn parse(s: &str) -> Result<CheckSpec, String> {
        toml::from_str::<Real>(&format!("check = {s}"))
            .map(|r| r.check)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn defaults() {
        let c = parse(r#"{ kind = "tcp" }"#).unwrap();
        assert_eq!(c, CheckSpec::new(CheckKind::Tcp));
        assert_eq!(
            (c.interval_ms, c.timeout_ms, c.rise, c.fall),
            (2000, 1000, 2, 3)
        );
        assert_eq!(c.probe().unwrap(), Probe::Tcp);
        let real = "10.0.0.1:8080".parse().unwrap();
        assert_eq!(c.check_addr(real), real);
        let c = parse(r#"{ kind = "tcp", port = 9 }"#).unwrap();
        assert_eq!(c.check_addr(real), "10.0.0.1:9".parse().unwrap());
        assert_eq!(CheckSpec::default().kind, CheckKind::None);
    }

    #[test]
    fn http_defaults_and_fields() {
        let c = parse(r#"{ kind = "http" }"#).unwrap();
        assert_eq!(
            c.probe().unwrap(),
            Probe::Http {
                path: "/".into(),
                host: None,
                expect_status: StatusMatch::code(200).unwrap(),
                expect_body: None
            }
        );
        let c = parse(
            r#"{ kind = "http", path = "/healthz?x=1", host = "www.example.com", expect_status = "200-399", expect_body = "OK" }"#,
        )
        .unwrap();
        let Probe::Http {
            path,
            host,
            expect_status,
            expect_body,
        } = c.probe().unwrap()
        else {
            panic!()
        };
        assert_eq!(path, "/healthz?x=1");
        assert_eq!(host.as_deref(), Some("www.example.com"));
        assert!(expect_status.matches(302) && !expect_status.matches(404));
        assert_eq!(expect_body.as_deref(), Some("OK"));
    }

    #[test]
    fn expect_status_forms() {
        let m = |s: &str| parse(&format!(r#"{{ kind = "http", expect_status = {s} }}"#));
        let sm = |s: &str| m(s).unwrap().expect_status.unwrap();
        assert_eq!(sm("204").ranges(), &[(204, 204)]);
        assert_eq!(sm(r#""204""#).ranges(), &[(204, 204)]);
        assert_eq!(sm(r#""200-399""#).ranges(), &[(200, 399)]);
        assert_eq!(sm(r#""2xx""#).ranges(), &[(200, 299)]);
        assert_eq!(
            sm(r#"[200, "301-302", "4XX"]"#).ranges(),
            &[(200, 200), (301, 302), (400, 499)]
        );
        for bad in [
            "99",
            "600",
            r#""399-200""#,
            r#""abc""#,
            r#""6xx""#,
            "[]",
            "-1",
            "70000",
        ] {
            assert!(m(bad).is_err(), "{bad} accepted");
        }
        assert_eq!(
            StatusMatch::parse("200, 3xx").unwrap().to_string(),
            "200,300-399"
        );
        // Round trip through serialization.
        let spec = m(r#"[200, "301-302"]"#).unwrap();
        let text = toml::to_string(&spec).unwrap();
        assert_eq!(toml::from_str::<CheckSpec>(&text).unwrap(), spec);
    }

    #[test]
    fn udp_and_exec() {
        let c = parse(r#"{ kind = "udp", send = "ping\n", expect = "pong" }"#).unwrap();
        assert_eq!(
            c.probe().unwrap(),
            Probe::Udp {
                send: b"ping\n".to_vec(),
                expect: Some(b"pong".to_vec())
            }
        );
        let c = parse(r#"{ kind = "exec", command = ["/bin/check", "-q"] }"#).unwrap();
        assert_eq!(
            c.probe().unwrap(),
            Probe::Exec {
                argv: vec!["/bin/check".into(), "-q".into()]
            }
        );
    }

    fn err(s: &str) -> String {
        match parse(s) {
            Err(e) => e,
            Ok(c) => c.validate().expect_err(s).to_string(),
        }
    }

    #[test]
    fn validation_errors() {
        assert!(err(r#"{ kind = "tcp", fall = 0 }"#).contains("fall must be between 1"));
        assert!(err(r#"{ kind = "tcp", rise = 0 }"#).contains("rise must be between 1"));
        assert!(err(r#"{ kind = "tcp", timeout_ms = 2000 }"#).contains("less than interval_ms"));
        assert!(err(r#"{ kind = "tcp", timeout_ms = 0 }"#).contains("timeout_ms must not be 0"));
        assert!(err(r#"{ kind = "tcp", interval_ms = 5, timeout_ms = 1 }"#).contains("interval_ms"));
        assert!(err(r#"{ kind = "tcp", port = 0 }"#).contains("port must not be 0"));
        assert!(err(r#"{ kind = "exec" }"#).contains("needs `command`"));
        assert!(err(r#"{ kind = "exec", command = [] }"#).contains("must not be empty"));
        assert!(err(r#"{ kind = "exec", command = [""] }"#).contains("program must not be empty"));
        assert!(err(r#"{ kind = "udp" }"#).contains("needs `send`"));
        assert!(err(r#"{ kind = "udp", send = "x", expect = "" }"#)
            .contains("expect must not be empty"));
        assert!(err(r#"{ kind = "http", path = "healthz" }"#).contains("start with '/'"));
        assert!(err(r#"{ kind = "http", path = "/a b" }"#).contains("visible ASCII"));
        assert!(err(r#"{ kind = "http", host = "a\r\nX: y" }"#).contains("visible ASCII"));
        assert!(
            err(r#"{ kind = "tcp", path = "/" }"#).contains("`path` does not apply to a tcp check")
        );
        assert!(err(r#"{ kind = "http", command = ["x"] }"#).contains("`command` does not apply"));
        assert!(err(r#"{ kind = "none", port = 80 }"#).contains("`port` does not apply"));
        // Deserialization errors.
        assert!(err(r#"{ kind = "icmp" }"#).contains("unknown variant"));
        assert!(err(r#"{ kind = "tcp", intervall_ms = 5 }"#).contains("unknown field"));
        assert!(err(r#"{ interval_ms = 5 }"#).contains("missing field `kind`"));
    }

    #[test]
    fn agent_spec() {
        #[derive(Deserialize)]
        struct Real {
            agent: AgentSpec,
        }
        let a = toml::from_str::<Real>(r#"agent = { port = 9999 }"#)
            .unwrap()
            .agent;
        assert_eq!(a, AgentSpec::new(9999));
        a.validate().unwrap();
        let a = toml::from_str::<Real>(
            r#"agent = { port = 9999, interval_ms = 500, timeout_ms = 100, send = "hello\n" }"#,
        )
        .unwrap()
        .agent;
        assert_eq!(a.send.as_deref(), Some("hello\n"));
        a.validate().unwrap();
        assert!(AgentSpec::new(0).validate().is_err());
        let mut a = AgentSpec::new(1);
        a.timeout_ms = a.interval_ms;
        assert!(a.validate().unwrap_err().0.starts_with("agent: timeout_ms"));
        assert!(toml::from_str::<Real>(r#"agent = { port = 1, weight = 3 }"#).is_err());
        assert!(toml::from_str::<Real>(r#"agent = { interval_ms = 3 }"#).is_err());
    }
}

//! The Prometheus/OpenMetrics endpoint.
//!
//! A small HTTP/1.1 server on a `std` TCP listener: `GET /metrics` asks the
//! control thread (as an internal client, over the same channel as the
//! control socket) for `status`, `stats` and the raw (never zeroed)
//! `service list`, and renders them in the Prometheus text format 0.0.4, or
//! in OpenMetrics 1.0.0 when the `Accept` header prefers
//! `application/openmetrics-text`. `GET /` answers a short page pointing at
//! `/metrics`; other paths get 404, other methods 405, malformed requests
//! 400. Every connection is closed after its one response.
//!
//! The accept loop polls a stop flag; each connection is served on its own
//! short-lived thread (at most [`MAX_CONNECTIONS`] at once), which also
//! watches the flag while it reads the request or waits for the control
//! thread, so dropping the [`MetricsServer`] ends promptly.

use crate::control::server::Peer;
use crate::control::Pending;
use crossbeam_channel::{bounded, RecvTimeoutError, SendTimeoutError, Sender};
use sluice_proto::{
    Command, LbCounters, RealInfo, Reply, ReplyBody, ServiceInfo, ServiceList, Stats, Status,
    WorkerStats,
};
use std::fmt::Write as _;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tracing::{debug, info, warn};

/// Largest request head (request line and headers) accepted, in bytes.
pub const MAX_HEAD_BYTES: usize = 8 * 1024;
/// How long a client may take to send its request head.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a response may take to write.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long to wait for each of the control thread's replies.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(5);
/// Most connections served at once; more get 503 at once.
pub const MAX_CONNECTIONS: usize = 16;
/// The accept loop's sleep when no connection is waiting, and the slice
/// in which blocking steps look at the stop flag.
const POLL: Duration = Duration::from_millis(20);

/// Content type of the Prometheus text format.
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// Content type of OpenMetrics.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The metrics HTTP server; stops when dropped.
pub struct MetricsServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl MetricsServer {
    /// Starts serving `GET /metrics` on `addr`, answering from the control
    /// thread through `requests`.
    pub fn start(addr: SocketAddr, requests: Sender<Pending>) -> std::io::Result<MetricsServer> {
        let listener = TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let accept = std::thread::Builder::new()
            .name("sluice-metrics".into())
            .spawn(move || accept_loop(listener, requests, stop2))?;
        info!(listen = %addr, "metrics endpoint listening (GET /metrics)");
        Ok(MetricsServer {
            addr,
            stop,
            accept: Some(accept),
        })
    }

    /// The address it listens on (with the port the system chose, if
    /// asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
        debug!(listen = %self.addr, "metrics endpoint closed");
    }
}

/// Accepts until told to stop, then waits for the connections in flight
/// (which watch the same flag) and closes the listener.
fn accept_loop(listener: TcpListener, requests: Sender<Pending>, stop: Arc<AtomicBool>) {
    let mut conns: Vec<JoinHandle<()>> = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        conns.retain(|h| !h.is_finished());
        match listener.accept() {
            Ok((stream, peer)) => {
                let _ = stream.set_nonblocking(false);
                if conns.len() >= MAX_CONNECTIONS {
                    warn!(%peer, "metrics: refusing a connection, {MAX_CONNECTIONS} already open");
                    let mut s = stream;
                    let _ = s.set_write_timeout(Some(Duration::from_millis(200)));
                    let r = Response::text(503, "too many connections\n")
                        .header("Retry-After", "1".into());
                    let _ = s.write_all(&r.to_bytes(false));
                    let _ = s.shutdown(Shutdown::Both);
                    continue;
                }
                let requests = requests.clone();
                let stop = stop.clone();
                match std::thread::Builder::new()
                    .name("sluice-metrics-conn".into())
                    .spawn(move || serve(stream, peer, &requests, &stop))
                {
                    Ok(h) => conns.push(h),
                    Err(e) => warn!("metrics: cannot spawn a connection thread: {e}"),
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::sleep(POLL),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => {
                warn!("metrics: accept failed: {e}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
    for h in conns {
        let _ = h.join();
    }
    drop(listener);
}

// ---------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------

/// An HTTP response, always closing the connection.
#[derive(Debug)]
struct Response {
    status: u16,
    content_type: &'static str,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

impl Response {
    fn new(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            content_type,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    fn text(status: u16, body: impl Into<Vec<u8>>) -> Response {
        Response::new(status, "text/plain; charset=utf-8", body)
    }

    fn header(mut self, name: &'static str, value: String) -> Response {
        self.headers.push((name, value));
        self
    }

    /// The bytes on the wire (without the body for HEAD).
    fn to_bytes(&self, head_only: bool) -> Vec<u8> {
        let mut h = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n\
             Cache-Control: no-store\r\nConnection: close\r\n",
            self.status,
            reason(self.status),
            self.content_type,
            self.body.len()
        );
        for (k, v) in &self.headers {
            let _ = write!(h, "{k}: {v}\r\n");
        }
        h.push_str("\r\n");
        let mut out = h.into_bytes();
        if !head_only {
            out.extend_from_slice(&self.body);
        }
        out
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

/// Why no request head could be read.
#[derive(Debug, PartialEq, Eq)]
enum HeadError {
    /// Closed (or failed) before sending anything: nothing to answer.
    Gone,
    /// Ended in the middle of a head.
    Truncated,
    /// Longer than [`MAX_HEAD_BYTES`].
    TooLarge,
    /// Not complete within [`READ_TIMEOUT`].
    Timeout,
    /// The server is stopping.
    Stopping,
}

/// Reads up to the end of the request head (an empty line), bounded in
/// size and time. Whatever follows (a body) is left unread.
fn read_head(stream: &mut TcpStream, stop: &AtomicBool) -> Result<Vec<u8>, HeadError> {
    let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
    let deadline = Instant::now() + READ_TIMEOUT;
    let mut buf: Vec<u8> = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(end) = head_end(&buf) {
            buf.truncate(end);
            return Ok(buf);
        }
        if buf.len() > MAX_HEAD_BYTES {
            return Err(HeadError::TooLarge);
        }
        if stop.load(Ordering::Relaxed) {
            return Err(HeadError::Stopping);
        }
        if Instant::now() >= deadline {
            return Err(HeadError::Timeout);
        }
        // Never read much past the bound.
        let want = chunk.len().min(MAX_HEAD_BYTES + 1 - buf.len());
        match stream.read(&mut chunk[..want]) {
            Ok(0) if buf.is_empty() => return Err(HeadError::Gone),
            Ok(0) => return Err(HeadError::Truncated),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return Err(HeadError::Gone),
        }
    }
}

/// Where the head ends (the index after its empty line), if it does.
fn head_end(buf: &[u8]) -> Option<usize> {
    // Lines end in CRLF, or a bare LF from lenient clients.
    let mut i = 0;
    while let Some(p) = buf[i..].iter().position(|&b| b == b'\n') {
        let nl = i + p;
        let rest = &buf[nl + 1..];
        if rest.starts_with(b"\r\n") {
            return Some(nl + 3);
        }
        if rest.starts_with(b"\n") {
            return Some(nl + 2);
        }
        i = nl + 1;
    }
    None
}

/// A parsed request head.
#[derive(Debug, PartialEq, Eq)]
struct HttpRequest {
    method: String,
    /// The path, without query.
    path: String,
    /// The `Accept` header (several joined with commas).
    accept: Option<String>,
}

/// Parses a request head; Err is the status to answer (400 or 505).
fn parse_head(head: &[u8]) -> Result<HttpRequest, u16> {
    let text = std::str::from_utf8(head).map_err(|_| 400u16)?;
    let mut lines = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        // A client may send empty lines before the request line.
        .skip_while(|l| l.is_empty());
    let request_line = lines.next().ok_or(400u16)?;
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(400);
    };
    if method.is_empty() || !method.bytes().all(is_tchar) {
        return Err(400);
    }
    match version.strip_prefix("HTTP/") {
        Some("1.0") | Some("1.1") => {}
        Some(v) if v.len() == 3 && v.as_bytes()[1] == b'.' => return Err(505),
        Some(v) if v.len() == 1 && v.as_bytes()[0].is_ascii_digit() => return Err(505),
        _ => return Err(400),
    }
    let path = if target.starts_with('/') {
        target
    } else if let Some(rest) = target
        .strip_prefix("http://")
        .or_else(|| target.strip_prefix("https://"))
    {
        // Absolute form: the path after the authority.
        rest.find('/').map(|i| &rest[i..]).unwrap_or("/")
    } else {
        return Err(400);
    };
    if path.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(400);
    }
    let path = path.split(['?', '#']).next().unwrap_or("/").to_string();
    let mut accept: Option<String> = None;
    for line in lines {
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').ok_or(400u16)?;
        if name.is_empty() || !name.bytes().all(is_tchar) {
            return Err(400);
        }
        if name.eq_ignore_ascii_case("accept") {
            let v = value.trim();
            accept = Some(match accept {
                Some(a) => format!("{a},{v}"),
                None => v.to_string(),
            });
        }
    }
    Ok(HttpRequest {
        method: method.to_string(),
        path,
        accept,
    })
}

/// RFC 9110 token characters.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

const INDEX: &str = "<!DOCTYPE html>\n<html><head><title>Sluice</title></head>\n\
<body><h1>Sluice</h1><p>Metrics: <a href=\"/metrics\">/metrics</a></p></body></html>\n";

/// Serves one connection: one request, one response, then close.
fn serve(mut stream: TcpStream, peer: SocketAddr, requests: &Sender<Pending>, stop: &AtomicBool) {
    let _ = stream.set_nodelay(true);
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    let (response, head_only) = match read_head(&mut stream, stop) {
        Ok(head) => match parse_head(&head) {
            Ok(req) => {
                debug!(%peer, method = %req.method, path = %req.path, "metrics request");
                let head_only = req.method == "HEAD";
                (respond(&req, requests, stop), head_only)
            }
            Err(status) => {
                debug!(%peer, status, "metrics: malformed request");
                (Response::text(status, "malformed request\n"), false)
            }
        },
        Err(HeadError::Gone) | Err(HeadError::Stopping) => return,
        Err(HeadError::Truncated) => (Response::text(400, "incomplete request\n"), false),
        Err(HeadError::TooLarge) => (
            Response::text(
                431,
                format!("request head larger than {MAX_HEAD_BYTES} bytes\n"),
            ),
            false,
        ),
        Err(HeadError::Timeout) => (Response::text(408, "request timeout\n"), false),
    };
    if response.status >= 500 {
        warn!(%peer, status = response.status, "metrics: {}", String::from_utf8_lossy(&response.body).trim());
    }
    if stream.write_all(&response.to_bytes(head_only)).is_err() {
        return;
    }
    let _ = stream.flush();
    // Close gracefully: say we are done, and read a little of what the
    // client may still send (a body), so that closing with unread data
    // does not reset the connection before the client reads the response.
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(50)));
    let until = Instant::now() + Duration::from_millis(200);
    let mut sink = [0u8; 4096];
    let mut drained = 0usize;
    while Instant::now() < until && drained < 64 * 1024 {
        match stream.read(&mut sink) {
            Ok(0) => break,
            Ok(n) => drained += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
}

/// The response to a well-formed request.
fn respond(req: &HttpRequest, requests: &Sender<Pending>, stop: &AtomicBool) -> Response {
    let get = req.method == "GET" || req.method == "HEAD";
    match req.path.as_str() {
        "/metrics" if get => {
            let format = Format::from_accept(req.accept.as_deref());
            match scrape(requests, stop) {
                Ok((status, stats, services)) => Response::new(
                    200,
                    format.content_type(),
                    render(&status, &stats, &services, format),
                ),
                Err(Failure::Unavailable(m)) => Response::text(503, format!("{m}\n")),
                Err(Failure::Failed(m)) => Response::text(500, format!("{m}\n")),
            }
        }
        "/" if get => Response::new(200, "text/html; charset=utf-8", INDEX),
        "/metrics" | "/" => {
            Response::text(405, "method not allowed\n").header("Allow", "GET, HEAD".into())
        }
        _ => Response::text(404, "not found; the metrics are at /metrics\n"),
    }
}

/// Why the control thread's figures could not be had.
#[derive(Debug)]
enum Failure {
    /// No answer (the daemon is stopping or stuck): 503.
    Unavailable(String),
    /// An error reply, or an unexpected one: 500.
    Failed(String),
}

/// Asks the control thread one command, waiting at most [`REPLY_TIMEOUT`]
/// (less if the server stops meanwhile).
fn ask(
    requests: &Sender<Pending>,
    stop: &AtomicBool,
    command: Command,
) -> Result<ReplyBody, Failure> {
    let what = format!("{command:?}");
    let deadline = Instant::now() + REPLY_TIMEOUT;
    let (tx, rx) = bounded::<Reply>(1);
    let mut pending = Pending {
        command,
        peer: Peer::INTERNAL,
        reply: tx,
    };
    let gone = || Failure::Unavailable("the daemon is shutting down".into());
    let slow = || Failure::Unavailable(format!("no reply from the control thread to {what}"));
    loop {
        if stop.load(Ordering::Relaxed) {
            return Err(gone());
        }
        match requests.send_timeout(pending, POLL) {
            Ok(()) => break,
            Err(SendTimeoutError::Disconnected(_)) => return Err(gone()),
            Err(SendTimeoutError::Timeout(p)) => {
                if Instant::now() >= deadline {
                    return Err(slow());
                }
                pending = p;
            }
        }
    }
    let reply = loop {
        if stop.load(Ordering::Relaxed) {
            return Err(gone());
        }
        match rx.recv_timeout(POLL * 5) {
            Ok(r) => break r,
            Err(RecvTimeoutError::Disconnected) => return Err(gone()),
            Err(RecvTimeoutError::Timeout) => {
                if Instant::now() >= deadline {
                    return Err(slow());
                }
            }
        }
    };
    match reply {
        Reply {
            ok: true,
            result: Some(body),
            ..
        } => Ok(body),
        Reply { error: Some(e), .. } => Err(Failure::Failed(format!(
            "{what} failed: {:?}: {}",
            e.code, e.message
        ))),
        _ => Err(Failure::Failed(format!("{what}: empty reply"))),
    }
}

/// Status, counters and the raw service list, from the control thread.
fn scrape(
    requests: &Sender<Pending>,
    stop: &AtomicBool,
) -> Result<(Status, Stats, ServiceList), Failure> {
    let unexpected = |b: ReplyBody| Failure::Failed(format!("unexpected reply {b:?}"));
    let status = match ask(requests, stop, Command::Status)? {
        ReplyBody::Status(s) => s,
        b => return Err(unexpected(b)),
    };
    let stats = match ask(requests, stop, Command::Stats)? {
        ReplyBody::Stats(s) => s,
        b => return Err(unexpected(b)),
    };
    let services = match ask(requests, stop, Command::ServiceList { raw: true })? {
        ReplyBody::Services(s) => s,
        b => return Err(unexpected(b)),
    };
    Ok((status, stats, services))
}

// ---------------------------------------------------------------------
// Exposition formats
// ---------------------------------------------------------------------

/// Which text format to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text format 0.0.4.
    Prometheus,
    /// OpenMetrics 1.0.0.
    OpenMetrics,
}

impl Format {
    /// The format an `Accept` header asks for: OpenMetrics when it accepts
    /// `application/openmetrics-text` at least as much as plain text.
    pub fn from_accept(accept: Option<&str>) -> Format {
        let Some(accept) = accept else {
            return Format::Prometheus;
        };
        let mut om = 0.0f64;
        let mut text = 0.0f64;
        for range in accept.split(',') {
            let mut params = range.split(';');
            let media = params.next().unwrap_or("").trim().to_ascii_lowercase();
            let mut q = 1.0f64;
            for p in params {
                if let Some((k, v)) = p.split_once('=') {
                    if k.trim().eq_ignore_ascii_case("q") {
                        q = v.trim().parse::<f64>().unwrap_or(0.0).clamp(0.0, 1.0);
                    }
                }
            }
            match media.as_str() {
                "application/openmetrics-text" => om = om.max(q),
                "text/plain" | "text/*" | "*/*" => text = text.max(q),
                _ => {}
            }
        }
        if om > 0.0 && om >= text {
            Format::OpenMetrics
        } else {
            Format::Prometheus
        }
    }

    /// The Content-Type of a response in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Prometheus => PROMETHEUS_CONTENT_TYPE,
            Format::OpenMetrics => OPENMETRICS_CONTENT_TYPE,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Monotonic; samples are named `<family>_total`.
    Counter,
    Gauge,
    /// Constant 1 with labels; the sample is `<family>_info` (a gauge in
    /// the Prometheus format).
    Info,
}

#[derive(Debug, Clone, Copy)]
enum Value {
    Int(u64),
    Float(f64),
}

impl From<u64> for Value {
    fn from(v: u64) -> Value {
        Value::Int(v)
    }
}

impl From<u32> for Value {
    fn from(v: u32) -> Value {
        Value::Int(v as u64)
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Value {
        Value::Int(v as u64)
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Value {
        Value::Float(v)
    }
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Value::Int(v) => write!(f, "{v}"),
            Value::Float(v) if v.is_nan() => f.write_str("NaN"),
            Value::Float(v) if v == f64::INFINITY => f.write_str("+Inf"),
            Value::Float(v) if v == f64::NEG_INFINITY => f.write_str("-Inf"),
            Value::Float(v) => write!(f, "{v}"),
        }
    }
}

type Labels = Vec<(&'static str, String)>;

/// One metric family: its base name (without `_total` or `_info`), help,
/// type and samples.
struct Family {
    name: &'static str,
    help: &'static str,
    kind: Kind,
    samples: Vec<(Labels, Value)>,
}

/// Families in the order they are written.
#[derive(Default)]
struct Exposition {
    families: Vec<Family>,
}

impl Exposition {
    fn family(&mut self, name: &'static str, kind: Kind, help: &'static str) -> &mut Family {
        self.families.push(Family {
            name,
            help,
            kind,
            samples: Vec::new(),
        });
        self.families.last_mut().expect("just pushed")
    }

    fn counter(&mut self, name: &'static str, help: &'static str) -> &mut Family {
        self.family(name, Kind::Counter, help)
    }

    fn gauge(&mut self, name: &'static str, help: &'static str) -> &mut Family {
        self.family(name, Kind::Gauge, help)
    }

    fn write(&self, format: Format) -> String {
        let om = format == Format::OpenMetrics;
        let mut out = String::with_capacity(16 * 1024);
        for f in self.families.iter().filter(|f| !f.samples.is_empty()) {
            let (family, sample, type_name) = match (f.kind, om) {
                (Kind::Counter, false) => (format!("{}_total", f.name), "_total", "counter"),
                (Kind::Counter, true) => (f.name.to_string(), "_total", "counter"),
                (Kind::Gauge, _) => (f.name.to_string(), "", "gauge"),
                (Kind::Info, false) => (format!("{}_info", f.name), "_info", "gauge"),
                (Kind::Info, true) => (f.name.to_string(), "_info", "info"),
            };
            let _ = writeln!(out, "# HELP {family} {}", escape_help(f.help, om));
            let _ = writeln!(out, "# TYPE {family} {type_name}");
            if om {
                if let Some(unit) = unit_of(f.name) {
                    let _ = writeln!(out, "# UNIT {family} {unit}");
                }
            }
            for (labels, value) in &f.samples {
                out.push_str(f.name);
                out.push_str(sample);
                if !labels.is_empty() {
                    out.push('{');
                    for (i, (k, v)) in labels.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        let _ = write!(out, "{k}=\"{}\"", escape_label(v));
                    }
                    out.push('}');
                }
                let _ = writeln!(out, " {value}");
            }
        }
        if om {
            out.push_str("# EOF\n");
        }
        out
    }
}

impl Family {
    fn sample(&mut self, labels: Labels, value: impl Into<Value>) -> &mut Family {
        self.samples.push((labels, value.into()));
        self
    }
}

/// The OpenMetrics unit a family's name ends in, if any.
fn unit_of(name: &str) -> Option<&'static str> {
    ["seconds", "bytes"].into_iter().find(|u| {
        name.len() > u.len() + 1 && name.ends_with(u) && name[..name.len() - u.len()].ends_with('_')
    })
}

/// Escapes a label value: backslash, double quote and newline.
fn escape_label(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

/// Escapes help text: backslash and newline (and double quote in
/// OpenMetrics, whose 0.0.4 parser would refuse it).
fn escape_help(v: &str, om: bool) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '"' if om => s.push_str("\\\""),
            c => s.push(c),
        }
    }
    s
}

type WorkerField = (&'static str, &'static str, fn(&WorkerStats) -> u64);

/// Per-worker counters labelled `worker` and `lcore`.
const WORKER_COUNTERS: &[WorkerField] = &[
    (
        "sluice_worker_rx_packets",
        "Packets received by the worker, over every port.",
        |w| w.traffic.rx_packets,
    ),
    (
        "sluice_worker_rx_bytes",
        "Bytes received by the worker, over every port.",
        |w| w.traffic.rx_bytes,
    ),
    (
        "sluice_worker_tx_packets",
        "Packets transmitted by the worker, over every port.",
        |w| w.traffic.tx_packets,
    ),
    (
        "sluice_worker_tx_bytes",
        "Bytes transmitted by the worker, over every port.",
        |w| w.traffic.tx_bytes,
    ),
    (
        "sluice_worker_busy_polls",
        "Polls that received at least one packet.",
        |w| w.busy_polls,
    ),
    (
        "sluice_worker_idle_polls",
        "Polls that received nothing.",
        |w| w.idle_polls,
    ),
    (
        "sluice_worker_busy_cycles",
        "TSC cycles spent in polls that received packets.",
        |w| w.busy_cycles,
    ),
    (
        "sluice_worker_arp_requests_answered",
        "ARP requests for the appliance's addresses, answered.",
        |w| w.arp_requests_answered,
    ),
    (
        "sluice_worker_arp_replies_learned",
        "ARP replies to the appliance, learned.",
        |w| w.arp_replies_learned,
    ),
    (
        "sluice_worker_icmp_echo_answered",
        "ICMP echo requests to the appliance's addresses, answered.",
        |w| w.icmp_echo_answered,
    ),
    (
        "sluice_worker_handoff_out",
        "Packets this worker handed to the worker that owns their flow.",
        |w| w.handoff_out,
    ),
    (
        "sluice_worker_handoff_in",
        "Packets other workers handed to this worker.",
        |w| w.handoff_in,
    ),
    (
        "sluice_worker_stateless_forwards",
        "New connections forwarded by consistent hash without a table entry (table full).",
        |w| w.stateless_forwards,
    ),
    (
        "sluice_worker_held_for_arp",
        "Packets held while a next hop's MAC address was being resolved.",
        |w| w.held_for_arp,
    ),
    (
        "sluice_worker_arp_requests_sent",
        "ARP requests sent for next hops.",
        |w| w.arp_requests_sent,
    ),
];

type ConntrackField = (&'static str, &'static str, Kind, fn(&WorkerStats) -> u64);

/// Per-worker connection-table figures labelled `worker`.
const CONNTRACK: &[ConntrackField] = &[
    (
        "sluice_conntrack_connections",
        "Connections in the worker's table now.",
        Kind::Gauge,
        |w| w.conntrack.occupancy,
    ),
    (
        "sluice_conntrack_capacity",
        "Capacity of the worker's connection table.",
        Kind::Gauge,
        |w| w.conntrack.capacity,
    ),
    (
        "sluice_conntrack_templates",
        "Persistence templates in the worker's table now.",
        Kind::Gauge,
        |w| w.conntrack.templates,
    ),
    (
        "sluice_conntrack_inserts",
        "Connections inserted into the worker's table.",
        Kind::Counter,
        |w| w.conntrack.inserts,
    ),
    (
        "sluice_conntrack_insert_failures",
        "Insertions refused because the worker's table was full.",
        Kind::Counter,
        |w| w.conntrack.insert_failures,
    ),
    (
        "sluice_conntrack_expiries",
        "Connections expired by timeout.",
        Kind::Counter,
        |w| w.conntrack.expiries,
    ),
    (
        "sluice_conntrack_removals",
        "Connections removed (closed, or ended by a real's removal).",
        Kind::Counter,
        |w| w.conntrack.removals,
    ),
];

type PortField = (
    &'static str,
    &'static str,
    fn(&sluice_proto::PortStats) -> u64,
);

/// Per-port counters labelled `port`.
const PORT_COUNTERS: &[PortField] = &[
    (
        "sluice_port_rx_packets",
        "Packets the workers received on the port.",
        |p| p.traffic.rx_packets,
    ),
    (
        "sluice_port_rx_bytes",
        "Bytes the workers received on the port.",
        |p| p.traffic.rx_bytes,
    ),
    (
        "sluice_port_tx_packets",
        "Packets the workers transmitted on the port.",
        |p| p.traffic.tx_packets,
    ),
    (
        "sluice_port_tx_bytes",
        "Bytes the workers transmitted on the port.",
        |p| p.traffic.tx_bytes,
    ),
    (
        "sluice_port_device_ipackets",
        "Packets received, as the device counts them.",
        |p| p.device.ipackets,
    ),
    (
        "sluice_port_device_opackets",
        "Packets sent, as the device counts them.",
        |p| p.device.opackets,
    ),
    (
        "sluice_port_device_ibytes",
        "Bytes received, as the device counts them.",
        |p| p.device.ibytes,
    ),
    (
        "sluice_port_device_obytes",
        "Bytes sent, as the device counts them.",
        |p| p.device.obytes,
    ),
    (
        "sluice_port_device_imissed",
        "Packets dropped by the device because its RX queues were full.",
        |p| p.device.imissed,
    ),
    (
        "sluice_port_device_ierrors",
        "Receive errors counted by the device.",
        |p| p.device.ierrors,
    ),
    (
        "sluice_port_device_oerrors",
        "Transmit errors counted by the device.",
        |p| p.device.oerrors,
    ),
    (
        "sluice_port_device_rx_nombuf",
        "RX buffer allocation failures counted by the device.",
        |p| p.device.rx_nombuf,
    ),
];

type LbField = (&'static str, &'static str, fn(&LbCounters) -> u64);

/// A service's or a real's counters (names without their prefix).
const LB_COUNTERS: &[LbField] = &[
    ("connections", "Connections scheduled", |c| c.connections),
    ("packets_in", "Packets from clients", |c| c.packets_in),
    ("packets_out", "Packets to clients (NAT replies)", |c| {
        c.packets_out
    }),
    ("bytes_in", "Bytes from clients", |c| c.bytes_in),
    ("bytes_out", "Bytes to clients (NAT replies)", |c| {
        c.bytes_out
    }),
];

const SERVICE_COUNTER_NAMES: [(&str, &str); 5] = [
    (
        "sluice_service_connections",
        "Connections scheduled to the virtual service's reals (since start).",
    ),
    (
        "sluice_service_packets_in",
        "Packets from clients to the virtual service (since start).",
    ),
    (
        "sluice_service_packets_out",
        "Packets from the virtual service to clients, NAT replies (since start).",
    ),
    (
        "sluice_service_bytes_in",
        "Bytes from clients to the virtual service (since start).",
    ),
    (
        "sluice_service_bytes_out",
        "Bytes from the virtual service to clients, NAT replies (since start).",
    ),
];

const REAL_COUNTER_NAMES: [(&str, &str); 5] = [
    (
        "sluice_real_connections",
        "Connections scheduled to the real server (since start).",
    ),
    (
        "sluice_real_packets_in",
        "Packets from clients forwarded to the real server (since start).",
    ),
    (
        "sluice_real_packets_out",
        "Packets from the real server to clients, NAT replies (since start).",
    ),
    (
        "sluice_real_bytes_in",
        "Bytes from clients forwarded to the real server (since start).",
    ),
    (
        "sluice_real_bytes_out",
        "Bytes from the real server to clients, NAT replies (since start).",
    ),
];

fn service_labels(s: &ServiceInfo) -> Labels {
    vec![
        ("protocol", s.protocol.to_string()),
        ("vip", s.vip.to_string()),
        ("port", s.port.to_string()),
    ]
}

fn real_labels(s: &ServiceInfo, r: &RealInfo) -> Labels {
    let mut l = service_labels(s);
    l.push(("real", format!("{}:{}", r.spec.ip, r.spec.port)));
    l
}

/// Renders the daemon's figures as an exposition in `format`. `services`
/// should be the raw list (counters since start), as counters must not go
/// back.
pub fn render(status: &Status, stats: &Stats, services: &ServiceList, format: Format) -> String {
    let mut e = Exposition::default();

    // The daemon.
    e.gauge(
        "sluice_up",
        "Whether the Sluice daemon answers (always 1 when scraped).",
    )
    .sample(vec![], 1u64);
    e.family(
        "sluice",
        Kind::Info,
        "Sluice and DPDK versions of the running daemon.",
    )
    .sample(
        vec![
            ("version", status.version.clone()),
            ("dpdk_version", status.dpdk_version.clone()),
        ],
        1u64,
    );
    e.gauge("sluice_uptime_seconds", "Seconds since the daemon started.")
        .sample(vec![], status.uptime_secs);

    // Workers.
    let wl = |w: &WorkerStats| -> Labels {
        vec![("worker", w.id.to_string()), ("lcore", w.lcore.to_string())]
    };
    for (name, help, get) in WORKER_COUNTERS {
        let f = e.counter(name, help);
        for w in &stats.workers {
            f.sample(wl(w), get(w));
        }
    }
    let f = e.counter(
        "sluice_worker_drops",
        "Packets dropped by the worker, by reason.",
    );
    for w in &stats.workers {
        for (reason, n) in &w.drops {
            f.sample(
                vec![("worker", w.id.to_string()), ("reason", reason.clone())],
                *n,
            );
        }
    }
    let f = e.gauge(
        "sluice_worker_busy_ratio",
        "Share of the worker's polls that received packets over the last seconds (0 idle, 1 saturated).",
    );
    for w in &stats.workers {
        f.sample(wl(w), w.busy_share);
    }
    for (name, help, kind, get) in CONNTRACK {
        let f = e.family(name, *kind, help);
        for w in &stats.workers {
            f.sample(vec![("worker", w.id.to_string())], get(w));
        }
    }

    // Ports.
    for (name, help, get) in PORT_COUNTERS {
        let f = e.counter(name, help);
        for p in &stats.ports {
            f.sample(vec![("port", p.name.clone())], get(p));
        }
    }
    let f = e.gauge("sluice_port_link_up", "Whether the port's link is up.");
    for p in &status.ports {
        f.sample(vec![("port", p.name.clone())], p.link_up);
    }

    // Virtual services and their reals.
    for ((name, help), (_, _, get)) in SERVICE_COUNTER_NAMES.iter().zip(LB_COUNTERS) {
        let f = e.counter(name, help);
        for s in &services.services {
            f.sample(service_labels(s), get(&s.stats));
        }
    }
    for ((name, help), (_, _, get)) in REAL_COUNTER_NAMES.iter().zip(LB_COUNTERS) {
        let f = e.counter(name, help);
        for s in &services.services {
            for r in &s.reals {
                f.sample(real_labels(s, r), get(&r.stats));
            }
        }
    }
    type RealGauge = (&'static str, &'static str, fn(&RealInfo) -> Value);
    let real_gauges: [RealGauge; 7] = [
        (
            "sluice_real_up",
            "Whether the real server takes new connections (health checks, agent, passive detection).",
            |r| (!r.health.state.checked() || r.health.available).into(),
        ),
        (
            "sluice_real_effective_weight",
            "The weight schedulers use now (agent, latency and drain applied).",
            |r| r.health.effective_weight.into(),
        ),
        (
            "sluice_real_check_latency_seconds",
            "EWMA of the real server's successful health-check latency (0 when not checked).",
            |r| Value::Float(r.health.latency_ewma_ms.unwrap_or(0.0) / 1000.0),
        ),
        (
            "sluice_real_active_connections",
            "Established connections to the real server.",
            |r| r.active.into(),
        ),
        (
            "sluice_real_inactive_connections",
            "Other connections to the real server (handshake, closing, UDP).",
            |r| r.inactive.into(),
        ),
        (
            "sluice_real_weight",
            "The real server's weight (0: quiesced).",
            |r| r.spec.weight.into(),
        ),
        (
            "sluice_real_overloaded",
            "Whether the real server is over its upper connection threshold (no new connections).",
            |r| r.overloaded.into(),
        ),
    ];
    for (name, help, get) in real_gauges {
        let f = e.gauge(name, help);
        for s in &services.services {
            for r in &s.reals {
                f.sample(real_labels(s, r), get(r));
            }
        }
    }
    type RealCounter = (&'static str, &'static str, fn(&RealInfo) -> u64);
    let real_health_counters: [RealCounter; 3] = [
        (
            "sluice_real_health_transitions",
            "Availability changes seen by the real server's health checks and agent.",
            |r| r.health.transitions,
        ),
        (
            "sluice_real_syn_timeouts",
            "NAT connections to the real server that expired unanswered (passive detection).",
            |r| r.health.syn_timeouts,
        ),
        (
            "sluice_real_resets",
            "Resets the real server sent (passive detection).",
            |r| r.health.resets,
        ),
    ];
    for (name, help, get) in real_health_counters {
        let f = e.counter(name, help);
        for s in &services.services {
            for r in &s.reals {
                f.sample(real_labels(s, r), get(r));
            }
        }
    }

    e.write(format)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_proto::{
        ConnTableStats, DeviceStats, Forward, OnRealRemoval, PortStats, PortStatus, Protocol,
        RealSpec, Traffic, WorkerStatus,
    };
    use std::collections::{BTreeMap, HashMap};

    fn status(port_name: &str) -> Status {
        Status {
            version: "0.1.0".into(),
            dpdk_version: "DPDK 22.11.4".into(),
            pid: 42,
            uptime_secs: 77,
            control_lcore: 0,
            ports: vec![PortStatus {
                name: port_name.into(),
                port_id: 0,
                device: "net_null0".into(),
                driver: "net_null".into(),
                mac: "02:00:00:00:00:01".into(),
                link_up: true,
                speed_mbps: 10000,
                addresses: vec!["192.0.2.1/24".into()],
                rx_queues: 1,
                tx_queues: 1,
                rss: false,
            }],
            workers: vec![WorkerStatus {
                id: 0,
                lcore: 3,
                socket: 0,
            }],
        }
    }

    fn stats(port_name: &str) -> Stats {
        let mut drops = BTreeMap::new();
        drops.insert("not_for_us".to_string(), 5);
        drops.insert("tx_full".to_string(), 0);
        Stats {
            ports: vec![PortStats {
                name: port_name.into(),
                traffic: Traffic {
                    rx_packets: 10,
                    rx_bytes: 1000,
                    tx_packets: 9,
                    tx_bytes: 900,
                },
                device: DeviceStats {
                    ipackets: 11,
                    opackets: 9,
                    ibytes: 1100,
                    obytes: 900,
                    imissed: 1,
                    ierrors: 2,
                    oerrors: 3,
                    rx_nombuf: 4,
                },
                xstats: BTreeMap::new(),
            }],
            workers: vec![WorkerStats {
                id: 0,
                lcore: 3,
                traffic: Traffic {
                    rx_packets: 10,
                    rx_bytes: 1000,
                    tx_packets: 9,
                    tx_bytes: 900,
                },
                arp_requests_answered: 1,
                arp_replies_learned: 2,
                icmp_echo_answered: 3,
                busy_polls: 123,
                idle_polls: 456,
                busy_cycles: 0,
                tsc_hz: 0,
                drops,
                conntrack: ConnTableStats {
                    occupancy: 7,
                    capacity: 65536,
                    inserts: 20,
                    insert_failures: 1,
                    expiries: 12,
                    removals: 1,
                    templates: 2,
                },
                busy_share: 0.25,
                rx_pps: 3.5,
                handoff_out: 4,
                handoff_in: 5,
                stateless_forwards: 6,
                held_for_arp: 8,
                arp_requests_sent: 9,
            }],
        }
    }

    fn services() -> ServiceList {
        let real = |ip: [u8; 4], weight, active, overloaded, conns| RealInfo {
            spec: RealSpec {
                ip: ip.into(),
                port: 8080,
                weight,
                forward: Forward::Nat,
                upper_threshold: 0,
                lower_threshold: 0,
                check: None,
                agent: None,
            },
            active,
            inactive: 1,
            overloaded,
            health: Default::default(),
            stats: LbCounters {
                connections: conns,
                packets_in: 100,
                bytes_in: 6000,
                packets_out: 90,
                bytes_out: 50000,
            },
            rates: Default::default(),
        };
        ServiceList {
            services: vec![ServiceInfo {
                protocol: Protocol::Tcp,
                vip: [192, 0, 2, 100].into(),
                port: 80,
                scheduler: sluice_proto::SchedulerKind::Wlc,
                persistence: None,
                on_real_removal: OnRealRemoval::Keep,
                mh_table_size: None,
                check: None,
                agent: None,
                on_real_down: Default::default(),
                weight_by_latency: false,
                expire_quiescent_template: false,
                reals: vec![
                    real([198, 51, 100, 11], 3, 4, false, 30),
                    real([198, 51, 100, 12], 0, 0, true, 12),
                ],
                stats: LbCounters {
                    connections: 42,
                    packets_in: 200,
                    bytes_in: 12000,
                    packets_out: 180,
                    bytes_out: 100000,
                },
                rates: Default::default(),
            }],
        }
    }

    fn sample() -> (Status, Stats, ServiceList) {
        (status("lan0"), stats("lan0"), services())
    }

    fn lines(s: &str) -> Vec<&str> {
        s.lines().collect()
    }

    /// Checks the structure: every sample belongs to the family declared by
    /// the HELP and TYPE lines just before it; no family appears twice.
    fn check_structure(text: &str, format: Format) {
        let om = format == Format::OpenMetrics;
        let mut helped: Option<String> = None;
        let mut current: Option<(String, String)> = None;
        let mut seen = std::collections::HashSet::new();
        let mut samples = 0;
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let name = rest.split(' ').next().unwrap().to_string();
                assert!(seen.insert(name.clone()), "family {name} twice");
                helped = Some(name);
                current = None;
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                let mut it = rest.split(' ');
                let name = it.next().unwrap().to_string();
                let ty = it.next().unwrap().to_string();
                assert_eq!(
                    helped.as_deref(),
                    Some(name.as_str()),
                    "TYPE without HELP: {line}"
                );
                current = Some((name, ty));
            } else if line.starts_with("# UNIT ") {
                assert!(om, "UNIT in 0.0.4: {line}");
                let (fam, _) = current.as_ref().expect("UNIT after TYPE");
                let unit = line.rsplit(' ').next().unwrap();
                assert!(fam.ends_with(&format!("_{unit}")), "{line}");
            } else if line == "# EOF" {
                assert!(om);
            } else {
                assert!(!line.starts_with('#'), "unknown comment {line}");
                let name = line.split(['{', ' ']).next().unwrap();
                let (fam, ty) = current
                    .as_ref()
                    .unwrap_or_else(|| panic!("sample without HELP/TYPE: {line}"));
                let ok = match (om, ty.as_str()) {
                    (false, "counter") => name == fam && name.ends_with("_total"),
                    (true, "counter") => name == format!("{fam}_total"),
                    (true, "info") => name == format!("{fam}_info"),
                    (_, "gauge") => name == fam && !name.ends_with("_total"),
                    _ => false,
                };
                assert!(ok, "sample {name} does not belong to {fam} ({ty})");
                // The value parses as a number.
                let v = line.rsplit(' ').next().unwrap();
                assert!(v.parse::<f64>().is_ok(), "bad value in {line}");
                samples += 1;
            }
        }
        assert!(samples > 50, "only {samples} samples");
        if om {
            assert!(text.ends_with("# EOF\n"), "no final # EOF");
            assert_eq!(text.matches("# EOF").count(), 1);
        } else {
            assert!(!text.contains("# EOF"));
        }
    }

    #[test]
    fn prometheus_text_has_the_expected_lines() {
        let (st, s, sv) = sample();
        let t = render(&st, &s, &sv, Format::Prometheus);
        check_structure(&t, Format::Prometheus);
        let l = lines(&t);
        for want in [
            "# HELP sluice_up Whether the Sluice daemon answers (always 1 when scraped).",
            "# TYPE sluice_up gauge",
            "sluice_up 1",
            "# TYPE sluice_info gauge",
            r#"sluice_info{version="0.1.0",dpdk_version="DPDK 22.11.4"} 1"#,
            "sluice_uptime_seconds 77",
            "# TYPE sluice_worker_rx_packets_total counter",
            r#"sluice_worker_rx_packets_total{worker="0",lcore="3"} 10"#,
            r#"sluice_worker_rx_bytes_total{worker="0",lcore="3"} 1000"#,
            r#"sluice_worker_tx_packets_total{worker="0",lcore="3"} 9"#,
            r#"sluice_worker_tx_bytes_total{worker="0",lcore="3"} 900"#,
            r#"sluice_worker_busy_polls_total{worker="0",lcore="3"} 123"#,
            r#"sluice_worker_idle_polls_total{worker="0",lcore="3"} 456"#,
            r#"sluice_worker_arp_requests_answered_total{worker="0",lcore="3"} 1"#,
            r#"sluice_worker_arp_replies_learned_total{worker="0",lcore="3"} 2"#,
            r#"sluice_worker_icmp_echo_answered_total{worker="0",lcore="3"} 3"#,
            r#"sluice_worker_handoff_out_total{worker="0",lcore="3"} 4"#,
            r#"sluice_worker_handoff_in_total{worker="0",lcore="3"} 5"#,
            r#"sluice_worker_stateless_forwards_total{worker="0",lcore="3"} 6"#,
            r#"sluice_worker_held_for_arp_total{worker="0",lcore="3"} 8"#,
            r#"sluice_worker_arp_requests_sent_total{worker="0",lcore="3"} 9"#,
            "# TYPE sluice_worker_drops_total counter",
            r#"sluice_worker_drops_total{worker="0",reason="not_for_us"} 5"#,
            r#"sluice_worker_drops_total{worker="0",reason="tx_full"} 0"#,
            "# TYPE sluice_worker_busy_ratio gauge",
            r#"sluice_worker_busy_ratio{worker="0",lcore="3"} 0.25"#,
            "# TYPE sluice_conntrack_connections gauge",
            r#"sluice_conntrack_connections{worker="0"} 7"#,
            r#"sluice_conntrack_capacity{worker="0"} 65536"#,
            r#"sluice_conntrack_templates{worker="0"} 2"#,
            "# TYPE sluice_conntrack_inserts_total counter",
            r#"sluice_conntrack_inserts_total{worker="0"} 20"#,
            r#"sluice_conntrack_insert_failures_total{worker="0"} 1"#,
            r#"sluice_conntrack_expiries_total{worker="0"} 12"#,
            r#"sluice_conntrack_removals_total{worker="0"} 1"#,
            r#"sluice_port_rx_packets_total{port="lan0"} 10"#,
            r#"sluice_port_tx_bytes_total{port="lan0"} 900"#,
            r#"sluice_port_device_ipackets_total{port="lan0"} 11"#,
            r#"sluice_port_device_opackets_total{port="lan0"} 9"#,
            r#"sluice_port_device_ibytes_total{port="lan0"} 1100"#,
            r#"sluice_port_device_obytes_total{port="lan0"} 900"#,
            r#"sluice_port_device_imissed_total{port="lan0"} 1"#,
            r#"sluice_port_device_ierrors_total{port="lan0"} 2"#,
            r#"sluice_port_device_oerrors_total{port="lan0"} 3"#,
            r#"sluice_port_device_rx_nombuf_total{port="lan0"} 4"#,
            "# TYPE sluice_port_link_up gauge",
            r#"sluice_port_link_up{port="lan0"} 1"#,
            "# TYPE sluice_service_connections_total counter",
            r#"sluice_service_connections_total{protocol="tcp",vip="192.0.2.100",port="80"} 42"#,
            r#"sluice_service_packets_in_total{protocol="tcp",vip="192.0.2.100",port="80"} 200"#,
            r#"sluice_service_packets_out_total{protocol="tcp",vip="192.0.2.100",port="80"} 180"#,
            r#"sluice_service_bytes_in_total{protocol="tcp",vip="192.0.2.100",port="80"} 12000"#,
            r#"sluice_service_bytes_out_total{protocol="tcp",vip="192.0.2.100",port="80"} 100000"#,
            r#"sluice_real_connections_total{protocol="tcp",vip="192.0.2.100",port="80",real="198.51.100.11:8080"} 30"#,
            r#"sluice_real_connections_total{protocol="tcp",vip="192.0.2.100",port="80",real="198.51.100.12:8080"} 12"#,
            r#"sluice_real_packets_in_total{protocol="tcp",vip="192.0.2.100",port="80",real="198.51.100.11:8080"} 100"#,
            r#"sluice_real_packets_out_total{protocol="tcp",vip="192.0.2.100",port="80",real="198.51.100.11:8080"} 90"#,
            r#"sluice_real_bytes_in_total{protocol="tcp",vip="192.0.2.100",port="80",real="198.51.100.11:8080"} 6000"#,
            r#"sluice_real_bytes_out_total{protocol="tcp",vip="192.0.2.100",port="80",real="198.51.100.11:8080"} 50000"#,
            "# TYPE sluice_real_active_connections gauge",
            r#"sluice_real_active_connections{protocol="tcp",vip="192.0.2.100",port="80",real="198.51.100.11:8080"} 4"#,
            r#"sluice_real_inactive_connections{protocol="tcp",vip="192.0.2.100",port="80",real="198.51.100.11:8080"} 1"#,
            r#"sluice_real_weight{protocol="tcp",vip="192.0.2.100",port="80",real="198.51.100.11:8080"} 3"#,
            r#"sluice_real_weight{protocol="tcp",vip="192.0.2.100",port="80",real="198.51.100.12:8080"} 0"#,
            r#"sluice_real_overloaded{protocol="tcp",vip="192.0.2.100",port="80",real="198.51.100.11:8080"} 0"#,
            r#"sluice_real_overloaded{protocol="tcp",vip="192.0.2.100",port="80",real="198.51.100.12:8080"} 1"#,
        ] {
            assert!(l.contains(&want), "missing line {want:?} in:\n{t}");
        }
        // No UNIT lines, no OpenMetrics-only types.
        assert!(!t.contains("# UNIT") && !t.contains(" info\n"));
        // Rates are left to Prometheus.
        assert!(!t.contains("pps"));
        // Health: a real without checks counts as up at its weight.
        assert!(t.contains("# TYPE sluice_real_up gauge"), "{t}");
        assert!(
            t.contains("# TYPE sluice_real_health_transitions_total counter"),
            "{t}"
        );
    }

    #[test]
    fn openmetrics_names_families_without_total_and_ends_with_eof() {
        let (st, s, sv) = sample();
        let t = render(&st, &s, &sv, Format::OpenMetrics);
        check_structure(&t, Format::OpenMetrics);
        let l = lines(&t);
        for want in [
            "# TYPE sluice_up gauge",
            "sluice_up 1",
            "# TYPE sluice info",
            r#"sluice_info{version="0.1.0",dpdk_version="DPDK 22.11.4"} 1"#,
            "# TYPE sluice_uptime_seconds gauge",
            "# UNIT sluice_uptime_seconds seconds",
            "# HELP sluice_worker_rx_packets Packets received by the worker, over every port.",
            "# TYPE sluice_worker_rx_packets counter",
            r#"sluice_worker_rx_packets_total{worker="0",lcore="3"} 10"#,
            "# TYPE sluice_worker_rx_bytes counter",
            "# UNIT sluice_worker_rx_bytes bytes",
            "# TYPE sluice_worker_drops counter",
            r#"sluice_worker_drops_total{worker="0",reason="not_for_us"} 5"#,
            "# TYPE sluice_service_connections counter",
            r#"sluice_service_connections_total{protocol="tcp",vip="192.0.2.100",port="80"} 42"#,
        ] {
            assert!(l.contains(&want), "missing line {want:?} in:\n{t}");
        }
        assert!(!l
            .iter()
            .any(|x| x.starts_with("# TYPE") && x.contains("_total ")));
        assert_eq!(l.last(), Some(&"# EOF"));
    }

    #[test]
    fn every_family_has_help_and_type_and_samples_are_contiguous() {
        let (st, s, sv) = sample();
        for format in [Format::Prometheus, Format::OpenMetrics] {
            let t = render(&st, &s, &sv, format);
            let mut helps = HashMap::new();
            let mut types = HashMap::new();
            for line in t.lines() {
                if let Some(r) = line.strip_prefix("# HELP ") {
                    let (n, h) = r.split_once(' ').unwrap();
                    assert!(!h.is_empty());
                    helps.insert(n.to_string(), ());
                }
                if let Some(r) = line.strip_prefix("# TYPE ") {
                    types.insert(r.split(' ').next().unwrap().to_string(), ());
                }
            }
            assert_eq!(helps.len(), types.len());
            for line in t.lines().filter(|l| !l.starts_with('#')) {
                let name = line.split(['{', ' ']).next().unwrap();
                let fam = match format {
                    Format::Prometheus => name,
                    Format::OpenMetrics => name
                        .strip_suffix("_total")
                        .or_else(|| name.strip_suffix("_info"))
                        .unwrap_or(name),
                };
                assert!(helps.contains_key(fam), "{format:?}: no HELP for {name}");
                assert!(types.contains_key(fam), "{format:?}: no TYPE for {name}");
            }
        }
    }

    #[test]
    fn label_values_are_escaped() {
        let weird = "a\"b\\c\nd";
        let (st, s, sv) = (status(weird), stats(weird), services());
        for format in [Format::Prometheus, Format::OpenMetrics] {
            let t = render(&st, &s, &sv, format);
            assert!(
                t.lines()
                    .any(|l| l == r#"sluice_port_device_ipackets_total{port="a\"b\\c\nd"} 11"#),
                "{t}"
            );
            assert!(
                t.lines()
                    .any(|l| l == r#"sluice_port_link_up{port="a\"b\\c\nd"} 1"#),
                "{t}"
            );
            // The raw newline never reaches the output.
            assert!(!t.contains("c\nd"));
            check_structure(&t, format);
        }
        assert_eq!(escape_label(r#"x"y"#), r#"x\"y"#);
        assert_eq!(escape_label("\\"), "\\\\");
        assert_eq!(escape_label("l1\nl2"), "l1\\nl2");
        assert_eq!(escape_label("plain 1.2.3:4"), "plain 1.2.3:4");
        assert_eq!(escape_help("a\\b\n\"c\"", false), "a\\\\b\\n\"c\"");
        assert_eq!(escape_help("a\\b\n\"c\"", true), "a\\\\b\\n\\\"c\\\"");
    }

    #[test]
    fn empty_families_are_left_out() {
        let (st, s, _) = sample();
        let t = render(
            &st,
            &s,
            &ServiceList { services: vec![] },
            Format::Prometheus,
        );
        assert!(!t.contains("sluice_service_") && !t.contains("sluice_real_"));
        assert!(t.contains("sluice_up 1"));
    }

    #[test]
    fn values_are_formatted_as_prometheus_numbers() {
        assert_eq!(Value::from(0.0).to_string(), "0");
        assert_eq!(Value::from(0.5).to_string(), "0.5");
        assert_eq!(Value::from(f64::NAN).to_string(), "NaN");
        assert_eq!(Value::from(f64::INFINITY).to_string(), "+Inf");
        assert_eq!(Value::from(f64::NEG_INFINITY).to_string(), "-Inf");
        assert_eq!(Value::from(u64::MAX).to_string(), "18446744073709551615");
        assert_eq!(Value::from(true).to_string(), "1");
    }

    #[test]
    fn units_come_from_name_suffixes() {
        assert_eq!(unit_of("sluice_uptime_seconds"), Some("seconds"));
        assert_eq!(unit_of("sluice_port_rx_bytes"), Some("bytes"));
        assert_eq!(unit_of("sluice_port_device_ibytes"), None);
        assert_eq!(unit_of("sluice_service_bytes_in"), None);
        assert_eq!(unit_of("bytes"), None);
    }

    #[test]
    fn accept_header_negotiation() {
        use Format::*;
        assert_eq!(Format::from_accept(None), Prometheus);
        assert_eq!(Format::from_accept(Some("*/*")), Prometheus);
        assert_eq!(Format::from_accept(Some("text/plain")), Prometheus);
        assert_eq!(
            Format::from_accept(Some("application/openmetrics-text")),
            OpenMetrics
        );
        // What Prometheus sends.
        assert_eq!(
            Format::from_accept(Some(
                "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
            )),
            OpenMetrics
        );
        assert_eq!(
            Format::from_accept(Some(
                "Application/OpenMetrics-Text; version=1.0.0; charset=utf-8"
            )),
            OpenMetrics
        );
        assert_eq!(
            Format::from_accept(Some(
                "text/plain;version=0.0.4,application/openmetrics-text;q=0.5"
            )),
            Prometheus
        );
        assert_eq!(
            Format::from_accept(Some("application/openmetrics-text;q=0")),
            Prometheus
        );
        assert_eq!(Format::OpenMetrics.content_type(), OPENMETRICS_CONTENT_TYPE);
        assert_eq!(Format::Prometheus.content_type(), PROMETHEUS_CONTENT_TYPE);
    }

    #[test]
    fn request_heads_are_parsed_strictly() {
        let r = parse_head(b"GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\nAccept: text/plain\r\naccept: application/openmetrics-text\r\n\r\n").unwrap();
        assert_eq!(r.method, "GET");
        assert_eq!(r.path, "/metrics");
        assert_eq!(
            r.accept.as_deref(),
            Some("text/plain,application/openmetrics-text")
        );
        let r = parse_head(b"HEAD http://h:9469/metrics HTTP/1.0\n\n").unwrap();
        assert_eq!((r.method.as_str(), r.path.as_str()), ("HEAD", "/metrics"));
        assert_eq!(parse_head(b"\r\nGET / HTTP/1.1\r\n\r\n").unwrap().path, "/");
        assert_eq!(parse_head(b"garbage\r\n\r\n"), Err(400));
        assert_eq!(parse_head(b"GET /metrics\r\n\r\n"), Err(400));
        assert_eq!(parse_head(b"GET  /metrics HTTP/1.1\r\n\r\n"), Err(400));
        assert_eq!(parse_head(b"GET metrics HTTP/1.1\r\n\r\n"), Err(400));
        assert_eq!(parse_head(b"GET /metrics HTTP/2.0\r\n\r\n"), Err(505));
        assert_eq!(parse_head(b"GET /metrics FTP/1.1\r\n\r\n"), Err(400));
        assert_eq!(parse_head(b"G(T /metrics HTTP/1.1\r\n\r\n"), Err(400));
        assert_eq!(
            parse_head(b"GET /metrics HTTP/1.1\r\nno colon here\r\n\r\n"),
            Err(400)
        );
        assert_eq!(
            parse_head(b"GET /metrics HTTP/1.1\r\n: v\r\n\r\n"),
            Err(400)
        );
        assert_eq!(parse_head(b"GET /\xff HTTP/1.1\r\n\r\n"), Err(400));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nA: b\r\n\r\nbody"), Some(24));
        assert_eq!(head_end(b"GET / HTTP/1.1\nA: b\n\nbody"), Some(21));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nA: b\r\n"), None);
    }

    #[test]
    fn responses_route_by_path_and_method() {
        // The control thread is never reached for these.
        let (tx, _rx) = crossbeam_channel::bounded(1);
        let stop = AtomicBool::new(false);
        let req = |m: &str, p: &str| HttpRequest {
            method: m.into(),
            path: p.into(),
            accept: None,
        };
        let r = respond(&req("GET", "/"), &tx, &stop);
        assert_eq!(r.status, 200);
        assert!(String::from_utf8_lossy(&r.body).contains("/metrics"));
        assert_eq!(respond(&req("GET", "/nope"), &tx, &stop).status, 404);
        let r = respond(&req("POST", "/metrics"), &tx, &stop);
        assert_eq!(r.status, 405);
        assert!(r
            .headers
            .iter()
            .any(|(k, v)| *k == "Allow" && v == "GET, HEAD"));
        let b = String::from_utf8(r.to_bytes(false)).unwrap();
        assert!(b.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"), "{b}");
        assert!(b.contains("\r\nConnection: close\r\n"));
        let b = String::from_utf8(Response::text(200, "abc").to_bytes(true)).unwrap();
        assert!(b.contains("Content-Length: 3\r\n") && b.ends_with("\r\n\r\n"));
    }

    #[test]
    fn a_silent_control_thread_gives_503() {
        // The receiver lives but never answers: stopping cuts the wait.
        let (tx, rx) = crossbeam_channel::bounded::<Pending>(4);
        let stop = Arc::new(AtomicBool::new(false));
        let s2 = stop.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            s2.store(true, Ordering::SeqCst);
        });
        let started = Instant::now();
        let r = respond(
            &HttpRequest {
                method: "GET".into(),
                path: "/metrics".into(),
                accept: None,
            },
            &tx,
            &stop,
        );
        t.join().unwrap();
        assert_eq!(r.status, 503);
        assert!(started.elapsed() < Duration::from_secs(2));
        drop(rx);
        // A closed channel: 503 at once.
        let stop = AtomicBool::new(false);
        let r = respond(
            &HttpRequest {
                method: "GET".into(),
                path: "/metrics".into(),
                accept: None,
            },
            &tx,
            &stop,
        );
        assert_eq!(r.status, 503);
    }

    #[test]
    fn serves_over_tcp_from_a_fake_control_thread() {
        let (tx, rx) = crossbeam_channel::bounded::<Pending>(4);
        let control = std::thread::spawn(move || {
            let (st, s, sv) = sample();
            while let Ok(p) = rx.recv() {
                let body = match p.command {
                    Command::Status => ReplyBody::Status(st.clone()),
                    Command::Stats => ReplyBody::Stats(s.clone()),
                    Command::ServiceList { raw: true } => ReplyBody::Services(sv.clone()),
                    _ => ReplyBody::ShuttingDown,
                };
                assert_eq!(p.peer, Peer::INTERNAL);
                let _ = p.reply.send(Reply::ok(body));
            }
        });
        let server = MetricsServer::start("127.0.0.1:0".parse().unwrap(), tx).unwrap();
        let addr = server.local_addr();
        let get = |req: &[u8]| -> String {
            let mut s = TcpStream::connect(addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            s.write_all(req).unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).unwrap();
            out
        };
        let r = get(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
        assert!(r.contains(&format!("Content-Type: {PROMETHEUS_CONTENT_TYPE}\r\n")));
        assert!(r.contains("\nsluice_up 1\n"));
        let r = get(
            b"GET /metrics HTTP/1.1\r\nAccept: application/openmetrics-text; version=1.0.0\r\n\r\n",
        );
        assert!(r.contains(&format!("Content-Type: {OPENMETRICS_CONTENT_TYPE}\r\n")));
        assert!(r.ends_with("# EOF\n"));
        let r = get(b"HEAD /metrics HTTP/1.1\r\n\r\n");
        assert!(
            r.starts_with("HTTP/1.1 200 OK\r\n") && r.ends_with("\r\n\r\n"),
            "{r}"
        );
        assert!(get(b"GET /nope HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404 "));
        assert!(get(b"DELETE /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 405 "));
        assert!(get(b"nonsense\r\n\r\n").starts_with("HTTP/1.1 400 "));
        // Half a head, then the end of the stream.
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(b"GET /metrics HT").unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        assert!(out.starts_with("HTTP/1.1 400 "), "{out}");
        // An endless head.
        let mut big = b"GET /metrics HTTP/1.1\r\n".to_vec();
        while big.len() <= MAX_HEAD_BYTES + 100 {
            big.extend_from_slice(
                b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n",
            );
        }
        let r = get(&big);
        assert!(r.starts_with("HTTP/1.1 431 "), "{r}");
        // An idle client does not hold up the stop.
        let idle = TcpStream::connect(addr).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let t = Instant::now();
        drop(server);
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        drop(idle);
        assert!(TcpStream::connect(addr).is_err(), "still listening");
        control.join().unwrap();
    }
}

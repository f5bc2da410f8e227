//! The metrics HTTP server: accepts (at most [`MAX_CONNECTIONS`] at once),
//! reads one request per connection, asks the control thread for its
//! figures, and answers with the exposition.

use super::exposition::Format;
use super::families::render;
use super::http::{parse_head, read_head, HeadError, HttpRequest, Response, MAX_HEAD_BYTES};
use crate::accept::{accept_loop, Client, Limit};
use crate::control::server::Peer;
use crate::control::Pending;
use crossbeam_channel::{bounded, RecvTimeoutError, SendTimeoutError, Sender};
use sluice_proto::{Command, Reply, ReplyBody, ServiceList, Stats, Status};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tracing::{debug, info, warn};

/// How long a response may take to write.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long to wait for each of the control thread's replies.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(5);
/// Most connections served at once; more get 503 at once.
pub const MAX_CONNECTIONS: usize = 16;
/// The slice in which waiting steps look at the stop flag.
const POLL: Duration = Duration::from_millis(20);

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
            .spawn(move || accept(listener, requests, stop2))?;
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

/// Accepts until told to stop; connections over the limit get 503.
fn accept(listener: TcpListener, requests: Sender<Pending>, stop: Arc<AtomicBool>) {
    let refuse = |mut s: TcpStream| {
        let _ = s.set_write_timeout(Some(Duration::from_millis(200)));
        let r = Response::text(503, "too many connections\n").header("Retry-After", "1".into());
        let _ = s.write_all(&r.to_bytes(false));
        let _ = s.shutdown(Shutdown::Both);
    };
    let stop2 = stop.clone();
    let serve_one = move |s: TcpStream| {
        let peer = s
            .peer_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        serve(s, peer, &requests, &stop2);
    };
    let limit = Limit {
        name: "metrics",
        max: MAX_CONNECTIONS,
        per_client: MAX_CONNECTIONS,
        reserved: 0,
    };
    let everyone = |_: &TcpStream| Client {
        id: 0,
        privileged: false,
    };
    accept_loop(listener, limit, stop, everyone, |s, _| refuse(s), serve_one);
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
                Err(ScrapeError::Unavailable(m)) => Response::text(503, format!("{m}\n")),
                Err(ScrapeError::Failed(m)) => Response::text(500, format!("{m}\n")),
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
enum ScrapeError {
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
) -> Result<ReplyBody, ScrapeError> {
    let what = format!("{command:?}");
    let deadline = Instant::now() + REPLY_TIMEOUT;
    let (tx, rx) = bounded::<Reply>(1);
    let mut pending = Pending {
        command,
        peer: Peer::INTERNAL,
        reply: tx,
    };
    let gone = || ScrapeError::Unavailable("the daemon is shutting down".into());
    let slow = || ScrapeError::Unavailable(format!("no reply from the control thread to {what}"));
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
        Reply { error: Some(e), .. } => Err(ScrapeError::Failed(format!(
            "{what} failed: {:?}: {}",
            e.code, e.message
        ))),
        _ => Err(ScrapeError::Failed(format!("{what}: empty reply"))),
    }
}

/// Status, counters and the raw service list, from the control thread.
fn scrape(
    requests: &Sender<Pending>,
    stop: &AtomicBool,
) -> Result<(Status, Stats, ServiceList), ScrapeError> {
    let unexpected = |b: ReplyBody| ScrapeError::Failed(format!("unexpected reply {b:?}"));
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

#[cfg(test)]
mod tests {
    use super::super::exposition::{OPENMETRICS_CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE};
    use super::super::fixtures::sample;
    use super::*;

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

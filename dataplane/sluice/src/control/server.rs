//! Accepting control connections, framing requests (size-bounded lines),
//! turning bad input into error replies, and handing good requests to the
//! control thread.

use crate::accept::{accept_loop, Client, Full, Limit};
use crossbeam_channel::{bounded, Receiver, Sender};
use sluice_proto::{Command, ErrorCode, Reply, Request, MAX_REQUEST_BYTES, PROTOCOL_VERSION};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tracing::{debug, info, warn};

/// Most clients served at once; more are refused with an error reply.
pub const MAX_CLIENTS: usize = 32;
/// Of those, the slots only root may take: however many connections other
/// users hold open, root can always get in.
pub const ROOT_RESERVED: usize = 4;
/// Most connections of one user (other than root) at once.
pub const MAX_PER_USER: usize = 8;
/// A new client that has sent nothing for this long is disconnected.
pub const FIRST_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// A client that sends nothing for this long between requests is
/// disconnected.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// A request line, once begun, must be complete within this long (a client
/// trickling a line byte by byte does not hold its slot for ever).
pub const LINE_TIMEOUT: Duration = Duration::from_secs(10);

/// Who sent a request: the peer's credentials from the socket
/// (SO_PEERCRED), or an internal client such as the metrics endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    /// User id (`u32::MAX` for internal clients).
    pub uid: u32,
    /// Group id.
    pub gid: u32,
    /// Process id (0 when unknown).
    pub pid: i32,
}

impl Peer {
    /// An in-process client (metrics, signals).
    pub const INTERNAL: Peer = Peer {
        uid: u32::MAX,
        gid: u32::MAX,
        pid: 0,
    };
}

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if *self == Peer::INTERNAL {
            f.write_str("internal")
        } else {
            write!(f, "uid {} (pid {})", self.uid, self.pid)
        }
    }
}

/// A request waiting for the control thread, with where to send its reply.
pub struct Pending {
    /// The command.
    pub command: Command,
    /// Who asked.
    pub peer: Peer,
    /// Reply channel back to the client's thread.
    pub reply: Sender<Reply>,
}

/// Who may use the socket besides root and the daemon's own user.
#[derive(Debug, Clone, Copy, Default)]
pub struct Access {
    /// Members of this group (primary or supplementary) are allowed.
    pub group: Option<u32>,
}

impl Access {
    /// Whether `peer` may send requests.
    pub fn allows(&self, peer: &Peer) -> bool {
        if peer.uid == 0 || peer.uid == nix::unistd::geteuid().as_raw() {
            return true;
        }
        let Some(g) = self.group else {
            return false;
        };
        if peer.gid == g {
            return true;
        }
        // Supplementary groups of the peer's user.
        let uid = nix::unistd::Uid::from_raw(peer.uid);
        match nix::unistd::User::from_uid(uid) {
            Ok(Some(u)) => {
                let name = std::ffi::CString::new(u.name).unwrap_or_default();
                nix::unistd::getgrouplist(&name, u.gid)
                    .map(|gs| gs.iter().any(|x| x.as_raw() == g))
                    .unwrap_or(false)
            }
            _ => false,
        }
    }
}

/// The channel requests travel on to the control thread.
pub fn channel() -> (Sender<Pending>, Receiver<Pending>) {
    bounded::<Pending>(64)
}

/// The listening socket and its accept thread.
pub struct ControlServer {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

/// Binds the control socket at `path` with `mode` (and group `group`, if
/// given). Refuses if another daemon answers there; removes a stale socket
/// file otherwise.
pub fn bind(path: &Path, mode: u32, group: Option<u32>) -> std::io::Result<UnixListener> {
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir)?;
        }
    }
    if path.exists() {
        if UnixStream::connect(path).is_ok() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                format!("another daemon is listening on {}", path.display()),
            ));
        }
        std::fs::remove_file(path)?;
    }
    let l = UnixListener::bind(path)?;
    if let Some(g) = group {
        nix::unistd::chown(path, None, Some(nix::unistd::Gid::from_raw(g)))
            .map_err(std::io::Error::from)?;
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    Ok(l)
}

impl ControlServer {
    /// Starts accepting on `listener`; requests arrive on the returned
    /// receiver.
    pub fn start(
        listener: UnixListener,
        path: PathBuf,
        tx: Sender<Pending>,
        access: Access,
    ) -> std::io::Result<ControlServer> {
        listener.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let limit = Limit {
            name: "control",
            max: MAX_CLIENTS,
            per_client: MAX_PER_USER,
            reserved: ROOT_RESERVED,
        };
        let classify = |s: &UnixStream| match peer_of(s) {
            Some(p) => Client {
                id: p.uid,
                privileged: p.uid == 0,
            },
            None => Client {
                id: u32::MAX,
                privileged: false,
            },
        };
        let refuse = |mut s: UnixStream, full: Full| {
            let message = match full {
                Full::Server => "too many control clients".to_string(),
                Full::Client => {
                    format!("too many control connections from this user (at most {MAX_PER_USER})")
                }
            };
            let _ = write_reply(&mut s, &Reply::error(ErrorCode::Refused, message));
        };
        let serve = move |s| admit(s, tx.clone(), stop2.clone(), access);
        let stop3 = stop.clone();
        let accept = std::thread::Builder::new()
            .name("sluice-ctl-accept".into())
            .spawn(move || accept_loop(listener, limit, stop3, classify, refuse, serve))?;
        Ok(ControlServer {
            path,
            stop,
            accept: Some(accept),
        })
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Serves one accepted client: checks its credentials, then answers its
/// requests until it hangs up, goes idle, or the daemon stops.
fn admit(stream: UnixStream, tx: Sender<Pending>, stop: Arc<AtomicBool>, access: Access) {
    let Some(peer) = peer_of(&stream) else {
        warn!("control: cannot read the peer's credentials");
        return;
    };
    if !access.allows(&peer) {
        warn!(
            uid = peer.uid,
            gid = peer.gid,
            pid = peer.pid,
            "control: refused a client that is neither root nor in the control group"
        );
        let mut s = stream;
        let _ = write_reply(
            &mut s,
            &Reply::error(
                ErrorCode::PermissionDenied,
                format!(
                    "uid {} may not control sluice (root or the control group only)",
                    peer.uid
                ),
            ),
        );
        return;
    }
    serve_client(stream, tx, stop, peer);
}

/// The peer's credentials (SO_PEERCRED).
fn peer_of(s: &UnixStream) -> Option<Peer> {
    let c = nix::sys::socket::getsockopt(s, nix::sys::socket::sockopt::PeerCredentials).ok()?;
    Some(Peer {
        uid: c.uid(),
        gid: c.gid(),
        pid: c.pid(),
    })
}

fn write_reply(s: &mut UnixStream, r: &Reply) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(r).map_err(std::io::Error::other)?;
    line.push(b'\n');
    s.write_all(&line)
}

/// Why no request line could be read.
#[derive(Debug, PartialEq, Eq)]
enum LineError {
    /// Longer than the limit (the rest of it is unread).
    TooLong,
    /// Nothing began in time, or the line did not end in time.
    Timeout,
    /// The connection failed.
    Broken,
}

/// Reads one line of at most `max` bytes: its first byte must come within
/// `wait`, and the whole line within [`LINE_TIMEOUT`] of its first byte.
/// Ok(None) at a clean end of stream.
fn read_line(
    r: &mut BufReader<UnixStream>,
    max: usize,
    wait: Duration,
) -> Result<Option<Vec<u8>>, LineError> {
    let mut buf = Vec::new();
    let mut deadline = Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(LineError::Timeout);
        }
        let _ = r.get_ref().set_read_timeout(Some(left));
        let chunk = match r.fill_buf() {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(LineError::Timeout)
            }
            Err(_) => return Err(LineError::Broken),
        };
        if chunk.is_empty() {
            // End of stream: a half-closed last request, or nothing.
            return Ok((!buf.is_empty()).then_some(buf));
        }
        if buf.is_empty() {
            deadline = Instant::now() + LINE_TIMEOUT;
        }
        let (take, done) = match chunk.iter().position(|b| *b == b'\n') {
            Some(i) => (i + 1, true),
            None => (chunk.len(), false),
        };
        buf.extend_from_slice(&chunk[..take]);
        r.consume(take);
        if done {
            buf.pop();
        }
        if buf.len() > max {
            return Err(LineError::TooLong);
        }
        if done {
            return Ok(Some(buf));
        }
    }
}

fn serve_client(stream: UnixStream, tx: Sender<Pending>, stop: Arc<AtomicBool>, peer: Peer) {
    let _ = stream.set_write_timeout(Some(Duration::from_secs(10)));
    let Ok(mut out) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    let mut wait = FIRST_REQUEST_TIMEOUT;
    loop {
        let line = match read_line(&mut reader, MAX_REQUEST_BYTES, wait) {
            Ok(Some(l)) => l,
            Ok(None) => return,
            Err(LineError::TooLong) => {
                warn!("control: request over {MAX_REQUEST_BYTES} bytes refused");
                let _ = write_reply(
                    &mut out,
                    &Reply::error(
                        ErrorCode::TooLarge,
                        format!("request larger than {MAX_REQUEST_BYTES} bytes"),
                    ),
                );
                return;
            }
            Err(LineError::Timeout) => {
                debug!(%peer, "control: client timed out");
                return;
            }
            Err(LineError::Broken) => return,
        };
        wait = IDLE_TIMEOUT;
        if line.iter().all(|b| b.is_ascii_whitespace()) {
            continue;
        }
        let reply = match parse_request(&line) {
            Err((code, message)) => Reply::error(code, message),
            Ok(command) => {
                debug!(?command, "control request");
                let (rtx, rrx) = bounded(1);
                if tx
                    .send(Pending {
                        command,
                        peer,
                        reply: rtx,
                    })
                    .is_err()
                {
                    Reply::error(ErrorCode::Internal, "the daemon is shutting down")
                } else {
                    match rrx.recv_timeout(Duration::from_secs(30)) {
                        Ok(r) => r,
                        Err(_) => {
                            Reply::error(ErrorCode::Internal, "no reply from the control thread")
                        }
                    }
                }
            }
        };
        if write_reply(&mut out, &reply).is_err() || stop.load(Ordering::Relaxed) {
            return;
        }
    }
}

/// Parses one request line into a command, or the error it deserves.
pub fn parse_request(line: &[u8]) -> Result<Command, (ErrorCode, String)> {
    let v: serde_json::Value = serde_json::from_slice(line)
        .map_err(|e| (ErrorCode::BadRequest, format!("not valid JSON: {e}")))?;
    match v.get("version").and_then(|x| x.as_u64()) {
        Some(x) if x == PROTOCOL_VERSION as u64 => {}
        Some(x) => {
            return Err((
                ErrorCode::UnsupportedVersion,
                format!(
                    "protocol version {x} is not supported; this daemon speaks {PROTOCOL_VERSION}"
                ),
            ))
        }
        None => {
            return Err((
                ErrorCode::BadRequest,
                "missing \"version\" (a number)".to_string(),
            ))
        }
    }
    let r: Request = serde_json::from_value(v)
        .map_err(|e| (ErrorCode::BadRequest, format!("bad request: {e}")))?;
    Ok(r.request)
}

/// Logs where the socket is.
pub fn announce(path: &Path, mode: u32) {
    info!(socket = %path.display(), mode = format!("{mode:o}"), "control socket listening");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_request_errors() {
        let e = parse_request(b"{not json").unwrap_err();
        assert_eq!(e.0, ErrorCode::BadRequest);
        let e = parse_request(br#"{"version":99,"request":{"cmd":"status"}}"#).unwrap_err();
        assert_eq!(e.0, ErrorCode::UnsupportedVersion);
        let e = parse_request(br#"{"request":{"cmd":"status"}}"#).unwrap_err();
        assert_eq!(e.0, ErrorCode::BadRequest);
        let e = parse_request(br#"{"version":2,"request":{"cmd":"fly"}}"#).unwrap_err();
        assert_eq!(e.0, ErrorCode::BadRequest);
        assert_eq!(
            parse_request(br#"{"version":2,"request":{"cmd":"stats"}}"#).unwrap(),
            Command::Stats
        );
    }
}

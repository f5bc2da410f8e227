//! Accepting control connections, framing requests (size-bounded lines),
//! turning bad input into error replies, and handing good requests to the
//! control thread.

use crossbeam_channel::{bounded, Receiver, Sender};
use sluice_proto::{Command, ErrorCode, Reply, Request, MAX_REQUEST_BYTES, PROTOCOL_VERSION};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use tracing::{debug, info, warn};

/// Most clients served at once; more are refused with an error reply.
pub const MAX_CLIENTS: usize = 32;
/// A client that sends nothing for this long is disconnected.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// A request waiting for the control thread, with where to send its reply.
pub struct Pending {
    /// The command.
    pub command: Command,
    /// Reply channel back to the client's thread.
    pub reply: Sender<Reply>,
}

/// The listening socket and its accept thread.
pub struct ControlServer {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

/// Binds the control socket at `path` with `mode`. Refuses if another
/// daemon answers there; removes a stale socket file otherwise.
pub fn bind(path: &Path, mode: u32) -> std::io::Result<UnixListener> {
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
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    Ok(l)
}

impl ControlServer {
    /// Starts accepting on `listener`; requests arrive on the returned
    /// receiver.
    pub fn start(
        listener: UnixListener,
        path: PathBuf,
    ) -> std::io::Result<(ControlServer, Receiver<Pending>)> {
        listener.set_nonblocking(true)?;
        let (tx, rx) = bounded::<Pending>(64);
        let stop = Arc::new(AtomicBool::new(false));
        let clients = Arc::new(AtomicUsize::new(0));
        let stop2 = stop.clone();
        let accept = std::thread::Builder::new()
            .name("sluice-ctl-accept".into())
            .spawn(move || accept_loop(listener, tx, stop2, clients))?;
        Ok((
            ControlServer {
                path,
                stop,
                accept: Some(accept),
            },
            rx,
        ))
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

fn accept_loop(
    listener: UnixListener,
    tx: Sender<Pending>,
    stop: Arc<AtomicBool>,
    clients: Arc<AtomicUsize>,
) {
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, _)) => {
                let _ = stream.set_nonblocking(false);
                if clients.fetch_add(1, Ordering::SeqCst) >= MAX_CLIENTS {
                    clients.fetch_sub(1, Ordering::SeqCst);
                    warn!("control: refusing a client, {MAX_CLIENTS} already connected");
                    let mut s = stream;
                    let _ = write_reply(
                        &mut s,
                        &Reply::error(ErrorCode::Refused, "too many control clients"),
                    );
                    continue;
                }
                let tx = tx.clone();
                let clients = clients.clone();
                let stop = stop.clone();
                let spawned = std::thread::Builder::new()
                    .name("sluice-ctl-client".into())
                    .spawn(move || {
                        serve_client(stream, tx, stop);
                        clients.fetch_sub(1, Ordering::SeqCst);
                    });
                if spawned.is_err() {
                    warn!("control: cannot spawn a client thread");
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => {
                warn!("control: accept failed: {e}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

fn write_reply(s: &mut UnixStream, r: &Reply) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(r).map_err(std::io::Error::other)?;
    line.push(b'\n');
    s.write_all(&line)
}

/// Reads one line of at most `max` bytes. Ok(None) at a clean end of
/// stream; Err(true) when the line is too long (the rest of it is unread).
fn read_line(r: &mut BufReader<UnixStream>, max: usize) -> Result<Option<Vec<u8>>, bool> {
    let mut buf = Vec::new();
    let mut limited = r.by_ref().take(max as u64 + 1);
    match limited.read_until(b'\n', &mut buf) {
        Ok(0) => Ok(None),
        Ok(_) => {
            if buf.last() == Some(&b'\n') {
                buf.pop();
                Ok(Some(buf))
            } else if buf.len() > max {
                Err(true)
            } else {
                // End of stream without a newline (half-closed): take it as
                // the last request.
                Ok(Some(buf))
            }
        }
        Err(_) => Err(false),
    }
}

fn serve_client(stream: UnixStream, tx: Sender<Pending>, stop: Arc<AtomicBool>) {
    let _ = stream.set_read_timeout(Some(IDLE_TIMEOUT));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(10)));
    let Ok(mut out) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    loop {
        let line = match read_line(&mut reader, MAX_REQUEST_BYTES) {
            Ok(Some(l)) => l,
            Ok(None) => return,
            Err(true) => {
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
            Err(false) => return,
        };
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
        let e = parse_request(br#"{"version":1,"request":{"cmd":"fly"}}"#).unwrap_err();
        assert_eq!(e.0, ErrorCode::BadRequest);
        assert_eq!(
            parse_request(br#"{"version":1,"request":{"cmd":"stats"}}"#).unwrap(),
            Command::Stats
        );
    }
}

//! One request over the control socket, with clear errors for every way
//! it can fail.

use sluice_proto::{Command, Reply, ReplyBody, Request};
use std::fmt;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// Why a request got no usable reply.
#[derive(Debug)]
pub enum ClientError {
    /// The socket could not be reached.
    Unreachable(String),
    /// The connection failed mid-way, or the reply was not understood.
    Protocol(String),
}

impl ClientError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            ClientError::Unreachable(_) => 3,
            ClientError::Protocol(_) => 5,
        }
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Unreachable(s) | ClientError::Protocol(s) => f.write_str(s),
        }
    }
}

/// Sends `command` to the daemon at `socket` and returns its reply.
pub fn request(socket: &Path, command: &Command) -> Result<Reply, ClientError> {
    let mut s = UnixStream::connect(socket).map_err(|e| {
        let why = match e.kind() {
            std::io::ErrorKind::NotFound => "no such socket: is sluice running?".to_string(),
            std::io::ErrorKind::ConnectionRefused => {
                "connection refused: sluice is not running (stale socket)".to_string()
            }
            std::io::ErrorKind::PermissionDenied => {
                "permission denied: run as root or as a member of the socket's group".to_string()
            }
            _ => e.to_string(),
        };
        ClientError::Unreachable(format!(
            "cannot reach sluice at {}: {why}",
            socket.display()
        ))
    })?;
    let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
    let mut line = serde_json::to_vec(&Request::new(command.clone()))
        .map_err(|e| ClientError::Protocol(e.to_string()))?;
    line.push(b'\n');
    s.write_all(&line)
        .map_err(|e| ClientError::Protocol(format!("sending the request failed: {e}")))?;
    let mut r = BufReader::new(s);
    let mut buf = String::new();
    r.read_line(&mut buf)
        .map_err(|e| ClientError::Protocol(format!("reading the reply failed: {e}")))?;
    if buf.is_empty() {
        return Err(ClientError::Protocol(
            "the daemon closed the connection without a reply".into(),
        ));
    }
    serde_json::from_str(&buf)
        .map_err(|e| ClientError::Protocol(format!("unreadable reply ({e}): {}", buf.trim())))
}

/// A request that did not end in a usable result: what to tell the
/// operator and the exit code to leave with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The process exit code (3, 4 or 5).
    pub code: u8,
    /// The message, without the `sluicectl: ` prefix.
    pub message: String,
}

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Failure {
        Failure {
            code: e.exit_code(),
            message: e.to_string(),
        }
    }
}

/// The message for an error reply (the caller exits 4).
pub fn refusal_message(reply: &Reply) -> String {
    let (code, msg) = reply
        .error
        .as_ref()
        .map(|e| (format!("{:?}", e.code), e.message.clone()))
        .unwrap_or_else(|| ("unknown".into(), "no error given".into()));
    format!("the daemon refused the request ({code}): {msg}")
}

/// Sends `command` and returns the body of a successful reply; an error
/// reply (exit 4) or a reply without a body (exit 5) is a [`Failure`].
pub fn call(socket: &Path, command: &Command) -> Result<ReplyBody, Failure> {
    let reply = request(socket, command)?;
    if !reply.ok {
        return Err(Failure {
            code: 4,
            message: refusal_message(&reply),
        });
    }
    reply.result.ok_or_else(|| Failure {
        code: 5,
        message: "the daemon sent an empty reply".into(),
    })
}

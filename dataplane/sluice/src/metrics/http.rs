//! Just enough HTTP/1.1 for a scrape: read a request head (bounded in size
//! and time, watching the stop flag), parse it strictly, and write one
//! response that closes the connection.

use std::fmt::Write as _;
use std::io::{ErrorKind, Read};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Largest request head (request line and headers) accepted, in bytes.
pub const MAX_HEAD_BYTES: usize = 8 * 1024;
/// How long a client may take to send its request head.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// The slice in which a blocking read looks at the stop flag.
const POLL: Duration = Duration::from_millis(100);

/// An HTTP response, always closing the connection.
#[derive(Debug)]
pub(super) struct Response {
    pub(super) status: u16,
    content_type: &'static str,
    pub(super) headers: Vec<(&'static str, String)>,
    pub(super) body: Vec<u8>,
}

impl Response {
    pub(super) fn new(
        status: u16,
        content_type: &'static str,
        body: impl Into<Vec<u8>>,
    ) -> Response {
        Response {
            status,
            content_type,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    pub(super) fn text(status: u16, body: impl Into<Vec<u8>>) -> Response {
        Response::new(status, "text/plain; charset=utf-8", body)
    }

    pub(super) fn header(mut self, name: &'static str, value: String) -> Response {
        self.headers.push((name, value));
        self
    }

    /// The bytes on the wire (without the body for HEAD).
    pub(super) fn to_bytes(&self, head_only: bool) -> Vec<u8> {
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
pub(super) enum HeadError {
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
pub(super) fn read_head(stream: &mut TcpStream, stop: &AtomicBool) -> Result<Vec<u8>, HeadError> {
    let _ = stream.set_read_timeout(Some(POLL));
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
pub(super) struct HttpRequest {
    pub(super) method: String,
    /// The path, without query.
    pub(super) path: String,
    /// The `Accept` header (several joined with commas).
    pub(super) accept: Option<String>,
}

/// Parses a request head; Err is the status to answer (400 or 505).
pub(super) fn parse_head(head: &[u8]) -> Result<HttpRequest, u16> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}

//! `http` check: an HTTP/1.0 `GET` over a fresh TCP connection.
//!
//! The request is
//!
//! ```text
//! GET <path> HTTP/1.0\r\n
//! Host: <host>\r\n
//! User-Agent: sluice-health\r\n
//! Accept: */*\r\n
//! Connection: close\r\n
//! \r\n
//! ```
//!
//! HTTP/1.0 keeps the response simple: no chunked encoding, and the server
//! closes the connection after the response. The check passes when the
//! status code is accepted by `expect_status` and, if `expect_body` is set,
//! the first 64 KiB of the body contain it. Reading stops as soon as the
//! outcome is known (status mismatch, or body substring found), at the end
//! of the body (`Content-Length` or close), or at the deadline.

use std::net::SocketAddr;

use super::{contains, tcp, Deadline};
use sluice_model::check::StatusMatch;

/// Largest response head (status line and headers) accepted.
pub const MAX_HEAD: usize = 16 * 1024;
/// How much of the body is searched for `expect_body`.
pub const MAX_BODY: usize = 64 * 1024;

/// The variable parts of the request.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// Request path, e.g. `/healthz`.
    pub path: &'a str,
    /// `Host` header value.
    pub host: &'a str,
}

impl Request<'_> {
    /// The request bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        format!(
            "GET {} HTTP/1.0\r\nHost: {}\r\nUser-Agent: sluice-health\r\nAccept: */*\r\nConnection: close\r\n\r\n",
            self.path, self.host
        )
        .into_bytes()
    }
}

/// Runs one HTTP check against `addr`.
pub fn check(
    addr: SocketAddr,
    req: &Request<'_>,
    expect_status: &StatusMatch,
    expect_body: Option<&str>,
    deadline: &Deadline,
) -> Result<String, String> {
    let mut stream = tcp::connect(addr, deadline)?;
    tcp::send(&mut stream, &req.to_bytes(), deadline)?;

    // Read the head.
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let head_end = loop {
        if let Some(end) = find_head_end(&buf) {
            break end;
        }
        if buf.len() > MAX_HEAD {
            return Err(format!("response head larger than {MAX_HEAD} bytes"));
        }
        if tcp::read_some(&mut stream, &mut buf, deadline, "read response")? == 0 {
            return Err(if buf.is_empty() {
                "connection closed without a response".to_string()
            } else {
                "connection closed in the response head".to_string()
            });
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let status = parse_status_line(&head)?;
    if !expect_status.matches(status) {
        return Err(format!("HTTP {status}, expected {expect_status}"));
    }
    let Some(expect_body) = expect_body else {
        return Ok(format!("HTTP {status}"));
    };

    // Read the body until the substring shows up or the body ends.
    let content_length = content_length(&head);
    let mut body = buf.split_off(head_end);
    loop {
        if contains(&body, expect_body.as_bytes()) {
            return Ok(format!("HTTP {status}, body matched"));
        }
        let complete = content_length.is_some_and(|len| body.len() >= len);
        if complete || body.len() >= MAX_BODY {
            break;
        }
        if tcp::read_some(&mut stream, &mut body, deadline, "read body")? == 0 {
            break;
        }
    }
    Err(format!(
        "HTTP {status}, body does not contain {expect_body:?}"
    ))
}

/// The offset just past the blank line ending the head (`\r\n\r\n`, or a
/// bare `\n\n` from lax servers).
fn find_head_end(buf: &[u8]) -> Option<usize> {
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4);
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|p| p + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The status code of `HTTP/1.x NNN reason`.
fn parse_status_line(head: &str) -> Result<u16, String> {
    let line = head.lines().next().unwrap_or("");
    let mut words = line.split_ascii_whitespace();
    let version = words.next().unwrap_or("");
    let code = words.next().unwrap_or("");
    if !version.starts_with("HTTP/") || code.len() != 3 {
        return Err(format!("malformed status line {:?}", truncate(line, 80)));
    }
    code.parse::<u16>()
        .ok()
        .filter(|c| (100..=599).contains(c))
        .ok_or_else(|| format!("malformed status line {:?}", truncate(line, 80)))
}

/// The `Content-Length` header's value, if present and valid.
fn content_length(head: &str) -> Option<usize> {
    head.lines().skip(1).find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse().ok())
            .flatten()
    })
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_bytes() {
        let r = Request {
            path: "/healthz",
            host: "10.0.0.1:8080",
        };
        let s = String::from_utf8(r.to_bytes()).unwrap();
        assert!(s.starts_with("GET /healthz HTTP/1.0\r\nHost: 10.0.0.1:8080\r\n"));
        assert!(s.ends_with("Connection: close\r\n\r\n"));
    }

    #[test]
    fn head_parsing() {
        assert_eq!(find_head_end(b"HTTP/1.0 200 OK\r\n\r\nbody"), Some(19));
        assert_eq!(find_head_end(b"HTTP/1.0 200 OK\n\nbody"), Some(17));
        assert_eq!(find_head_end(b"HTTP/1.0 200 OK\r\n"), None);
        assert_eq!(parse_status_line("HTTP/1.1 204 No Content\r\n"), Ok(204));
        assert_eq!(parse_status_line("HTTP/1.0 200\r\n"), Ok(200));
        assert!(parse_status_line("SSH-2.0-OpenSSH\r\n").is_err());
        assert!(parse_status_line("HTTP/1.1 2000 OK\r\n").is_err());
        assert!(parse_status_line("HTTP/1.1 999 OK\r\n").is_err());
        assert_eq!(
            content_length("HTTP/1.1 200 OK\r\ncontent-LENGTH:  12\r\n\r\n"),
            Some(12)
        );
        assert_eq!(content_length("HTTP/1.1 200 OK\r\n\r\n"), None);
    }
}

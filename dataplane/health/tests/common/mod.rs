//! Test servers on 127.0.0.1 and bounded waiting helpers.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Polls `cond` every 5 ms until it holds or `limit` passes.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        thread::sleep(Duration::from_millis(5));
    }
}

pub fn local(port: u16) -> SocketAddr {
    SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port)
}

pub fn addr_of(l: &TcpListener) -> SocketAddr {
    l.local_addr().unwrap()
}

/// A port nothing listens on (bound, then released).
pub fn closed_port() -> SocketAddr {
    let l = TcpListener::bind(local(0)).unwrap();
    addr_of(&l)
}

/// Reads a request head (until a blank line, EOF or 1 s).
fn read_head(s: &mut TcpStream) -> String {
    s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// An HTTP server answering every request with `response` (raw bytes);
/// with `close` false it keeps the connection open for 5 s afterwards.
/// Returns its address and the request heads it received.
pub fn http_server(response: &str, close: bool) -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    http_server_on(local(0), response, close)
}

/// [`http_server`] listening on `at`.
pub fn http_server_on(
    at: impl std::net::ToSocketAddrs,
    response: &str,
    close: bool,
) -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let l = TcpListener::bind(at).unwrap();
    let addr = addr_of(&l);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = Arc::clone(&seen);
    let response = response.to_string();
    thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let seen = Arc::clone(&seen2);
            let response = response.clone();
            thread::spawn(move || {
                let head = read_head(&mut s);
                seen.lock().unwrap().push(head);
                let _ = s.write_all(response.as_bytes());
                if !close {
                    thread::sleep(Duration::from_secs(5));
                }
            });
        }
    });
    (addr, seen)
}

/// A TCP server that accepts and never answers; connections are held
/// (never closed) for the life of the test process.
pub fn hanging_server() -> SocketAddr {
    let l = TcpListener::bind(local(0)).unwrap();
    let addr = addr_of(&l);
    thread::spawn(move || {
        let mut held = Vec::new();
        for s in l.incoming().flatten() {
            held.push(s);
        }
    });
    addr
}

/// A UDP server answering each datagram with `reply(datagram)`.
pub fn udp_server(reply: fn(&[u8]) -> Vec<u8>) -> SocketAddr {
    let sock = UdpSocket::bind(local(0)).unwrap();
    let addr = match sock.local_addr().unwrap() {
        std::net::SocketAddr::V4(a) => a,
        _ => unreachable!(),
    };
    thread::spawn(move || {
        let mut buf = [0u8; 65536];
        while let Ok((n, from)) = sock.recv_from(&mut buf) {
            let _ = sock.send_to(&reply(&buf[..n]), from);
        }
    });
    std::net::SocketAddr::V4(addr)
}

/// An agent: per connection, writes the current reply and closes. Returns
/// its address and the reply to change.
pub fn agent_server(initial: &str) -> (SocketAddr, Arc<Mutex<String>>) {
    let l = TcpListener::bind(local(0)).unwrap();
    let addr = addr_of(&l);
    let reply = Arc::new(Mutex::new(initial.to_string()));
    let reply2 = Arc::clone(&reply);
    thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            let r = reply2.lock().unwrap().clone();
            let _ = s.write_all(r.as_bytes());
        }
    });
    (addr, reply)
}

/// A unique scratch file path.
pub fn scratch(name: &str) -> std::path::PathBuf {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    std::env::temp_dir().join(format!("sluice-health-{}-{n}-{name}", std::process::id()))
}

/// Waits for a pid written to `path` by a test command.
pub fn read_pid(path: &std::path::Path) -> u32 {
    let mut pid = None;
    assert!(
        wait_until(Duration::from_secs(5), || {
            pid = std::fs::read_to_string(path)
                .ok()
                .and_then(|s| s.trim().parse().ok());
            pid.is_some()
        }),
        "no pid in {path:?}"
    );
    pid.unwrap()
}

/// Whether `pid` no longer runs (absent, or a zombie not yet reaped by
/// whoever inherited it).
pub fn process_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

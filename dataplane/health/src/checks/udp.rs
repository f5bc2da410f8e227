//! `udp` check: send one datagram from a fresh ephemeral socket connected
//! to the check port and wait for one reply within the timeout. The first
//! reply decides: up if `expect` is unset or the reply contains it. An ICMP
//! port unreachable answer (reported as "connection refused" on the
//! connected socket) fails the check at once.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};

use super::{contains, io_detail, Deadline};

/// Largest reply read (the IPv4 UDP maximum payload).
const MAX_REPLY: usize = 65_507;

/// Sends `send` to `addr` and checks the reply against `expect`.
pub fn check(
    addr: SocketAddr,
    send: &[u8],
    expect: Option<&[u8]>,
    deadline: &Deadline,
) -> Result<String, String> {
    let any: std::net::IpAddr = if addr.is_ipv4() {
        Ipv4Addr::UNSPECIFIED.into()
    } else {
        Ipv6Addr::UNSPECIFIED.into()
    };
    let sock = UdpSocket::bind(SocketAddr::new(any, 0)).map_err(|e| format!("bind: {e}"))?;
    sock.connect(addr).map_err(|e| format!("connect: {e}"))?;
    let left = deadline
        .remaining()
        .map_err(|e| io_detail("send", &e, deadline))?;
    sock.set_write_timeout(Some(left))
        .map_err(|e| io_detail("send", &e, deadline))?;
    sock.send(send)
        .map_err(|e| io_detail("send", &e, deadline))?;
    let mut buf = vec![0u8; MAX_REPLY];
    let left = deadline
        .remaining()
        .map_err(|e| io_detail("receive", &e, deadline))?;
    sock.set_read_timeout(Some(left))
        .map_err(|e| io_detail("receive", &e, deadline))?;
    let n = sock
        .recv(&mut buf)
        .map_err(|e| io_detail("receive", &e, deadline))?;
    let reply = &buf[..n];
    match expect {
        Some(expect) if !contains(reply, expect) => Err(format!(
            "reply of {n} bytes does not contain {:?}",
            String::from_utf8_lossy(expect)
        )),
        _ => Ok(format!("reply of {n} bytes")),
    }
}

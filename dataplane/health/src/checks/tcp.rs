//! `tcp` check: the target is up when a TCP connection to the check port is
//! established within the timeout. The connection is closed at once.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use super::{io_detail, Deadline};

/// Connects to `addr` within the deadline. `Ok` detail: `"connected"`.
pub fn check(addr: SocketAddr, deadline: &Deadline) -> Result<String, String> {
    connect(addr, deadline)?;
    Ok("connected".to_string())
}

/// Opens a TCP connection to `addr` with the time left as the connect
/// timeout; the error is formatted for a check's detail.
pub(crate) fn connect(addr: SocketAddr, deadline: &Deadline) -> Result<TcpStream, String> {
    let left = deadline
        .remaining()
        .map_err(|e| io_detail("connect", &e, deadline))?;
    let stream =
        TcpStream::connect_timeout(&addr, left).map_err(|e| io_detail("connect", &e, deadline))?;
    // Small requests; don't wait for Nagle.
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// Writes all of `bytes` to `stream` within the deadline.
pub(crate) fn send(
    stream: &mut TcpStream,
    bytes: &[u8],
    deadline: &Deadline,
) -> Result<(), String> {
    let failed = |e: std::io::Error| io_detail("send", &e, deadline);
    stream
        .set_write_timeout(Some(deadline.remaining().map_err(failed)?))
        .map_err(failed)?;
    stream.write_all(bytes).map_err(failed)
}

/// Reads what is available into `buf` (at most 8 KiB) within the deadline;
/// returns the count, 0 at end of stream.
pub(crate) fn read_some(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    deadline: &Deadline,
    what: &str,
) -> Result<usize, String> {
    let left = deadline
        .remaining()
        .map_err(|e| io_detail(what, &e, deadline))?;
    stream
        .set_read_timeout(Some(left))
        .map_err(|e| io_detail(what, &e, deadline))?;
    let mut chunk = [0u8; 8192];
    loop {
        match stream.read(&mut chunk) {
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                return Ok(n);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_detail(what, &e, deadline)),
        }
    }
}

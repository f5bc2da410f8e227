//! `tcp` check: the target is up when a TCP connection to the check port is
//! established within the timeout. The connection is closed at once.

use std::net::{SocketAddr, SocketAddrV4, TcpStream};

use super::{io_detail, Deadline};

/// Connects to `addr` within the deadline. `Ok` detail: `"connected"`.
pub fn check(addr: SocketAddrV4, deadline: &Deadline) -> Result<String, String> {
    connect(addr, deadline)?;
    Ok("connected".to_string())
}

/// Opens a TCP connection to `addr` with the time left as the connect
/// timeout; the error is formatted for a check's detail.
pub(crate) fn connect(addr: SocketAddrV4, deadline: &Deadline) -> Result<TcpStream, String> {
    let left = deadline
        .remaining()
        .map_err(|e| io_detail("connect", &e, deadline))?;
    let stream = TcpStream::connect_timeout(&SocketAddr::V4(addr), left)
        .map_err(|e| io_detail("connect", &e, deadline))?;
    // Small requests; don't wait for Nagle.
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

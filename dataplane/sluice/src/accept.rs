//! Accepting connections for the daemon's two servers, the control socket
//! and the metrics endpoint: a thread per connection, at most a given
//! number at once (the others get a refusal), until the stop flag is set.

use std::io::ErrorKind;
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tracing::warn;

/// How often a listener with nothing to accept looks at the stop flag.
const POLL: Duration = Duration::from_millis(20);

/// A non-blocking listener whose connections are served in blocking mode.
pub trait Listener: Send + 'static {
    /// A connection.
    type Stream: Send + 'static;

    /// The next connection, switched to blocking mode.
    fn next(&self) -> std::io::Result<Self::Stream>;
}

impl Listener for TcpListener {
    type Stream = TcpStream;

    fn next(&self) -> std::io::Result<TcpStream> {
        let (s, _) = self.accept()?;
        s.set_nonblocking(false)?;
        Ok(s)
    }
}

impl Listener for UnixListener {
    type Stream = UnixStream;

    fn next(&self) -> std::io::Result<UnixStream> {
        let (s, _) = self.accept()?;
        s.set_nonblocking(false)?;
        Ok(s)
    }
}

/// A server's name (for thread names and logs) and how many connections
/// it serves at once.
#[derive(Clone, Copy, Debug)]
pub struct Limit {
    /// Thread and log name, e.g. `"control"`.
    pub name: &'static str,
    /// Most connections served at once.
    pub max: usize,
}

/// Accepts on `listener` (non-blocking) until `stop` is set: each
/// connection is served by `serve` on a thread of its own, or, when `max`
/// are being served already, handed to `refuse` on this thread. Connection
/// threads are not waited for: they watch `stop` or time out themselves.
pub fn accept_loop<L: Listener>(
    listener: L,
    limit: Limit,
    stop: Arc<AtomicBool>,
    refuse: impl Fn(L::Stream),
    serve: impl Fn(L::Stream) + Clone + Send + 'static,
) {
    let active = Arc::new(AtomicUsize::new(0));
    while !stop.load(Ordering::Relaxed) {
        match listener.next() {
            Ok(stream) => {
                if active.load(Ordering::SeqCst) >= limit.max {
                    warn!(
                        "{}: refusing a connection, {} already open",
                        limit.name, limit.max
                    );
                    refuse(stream);
                    continue;
                }
                active.fetch_add(1, Ordering::SeqCst);
                let (count, serve) = (active.clone(), serve.clone());
                let spawned = std::thread::Builder::new()
                    .name(format!("sluice-{}-conn", limit.name))
                    .spawn(move || {
                        serve(stream);
                        count.fetch_sub(1, Ordering::SeqCst);
                    });
                if let Err(e) = spawned {
                    active.fetch_sub(1, Ordering::SeqCst);
                    warn!("{}: cannot spawn a connection thread: {e}", limit.name);
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::sleep(POLL),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => {
                warn!("{}: accept failed: {e}", limit.name);
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn connections_over_the_limit_are_refused_and_the_loop_stops() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let addr = l.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let release = Arc::new(AtomicBool::new(false));
        let (s2, r2) = (stop.clone(), release.clone());
        let t = std::thread::spawn(move || {
            accept_loop(
                l,
                Limit {
                    name: "test",
                    max: 2,
                },
                s2,
                |mut s: TcpStream| {
                    let _ = s.write_all(b"busy");
                },
                move |mut s: TcpStream| {
                    let _ = s.write_all(b"served");
                    while !r2.load(Ordering::Relaxed) {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                },
            )
        });
        let read = |s: &mut TcpStream, n: usize| {
            let mut b = vec![0; n];
            s.read_exact(&mut b).unwrap();
            String::from_utf8(b).unwrap()
        };
        let mut a = TcpStream::connect(addr).unwrap();
        let mut b = TcpStream::connect(addr).unwrap();
        assert_eq!(read(&mut a, 6), "served");
        assert_eq!(read(&mut b, 6), "served");
        let mut c = TcpStream::connect(addr).unwrap();
        assert_eq!(read(&mut c, 4), "busy");
        release.store(true, Ordering::Relaxed);
        stop.store(true, Ordering::Relaxed);
        t.join().unwrap();
    }
}

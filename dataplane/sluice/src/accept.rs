//! Accepting connections for the daemon's two servers, the control socket
//! and the metrics endpoint: a thread per connection, at most a given
//! number at once, at most a share of them per client, and some kept back
//! for privileged clients (the others get a refusal), until the stop flag
//! is set.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
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

/// Who a connection is from, as far as sharing the server goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Client {
    /// Whose connections count together (the peer's uid on the control
    /// socket; 0 for every client of the metrics endpoint).
    pub id: u32,
    /// May use the slots kept back for it (root on the control socket).
    pub privileged: bool,
}

/// A server's name (for thread names and logs) and how it shares its
/// connection slots.
#[derive(Clone, Copy, Debug)]
pub struct Limit {
    /// Thread and log name, e.g. `"control"`.
    pub name: &'static str,
    /// Most connections served at once.
    pub max: usize,
    /// Most connections of one client id at once (privileged clients are
    /// not held to it).
    pub per_client: usize,
    /// Slots only privileged clients may take: the others share `max -
    /// reserved` among them (privileged clients may take any slot).
    pub reserved: usize,
}

/// The slots a server hands out, counted per client id. A [`Ticket`]
/// holds one and gives it back when dropped, whatever ends the
/// connection (its thread returning, panicking, or never starting).
pub struct Slots {
    limit: Limit,
    taken: Mutex<Taken>,
}

#[derive(Default)]
struct Taken {
    /// Every slot taken.
    total: usize,
    /// Those taken by clients that are not privileged.
    shared: usize,
    /// By client id.
    per_client: HashMap<u32, usize>,
}

/// One slot of [`Slots`], given back on drop.
pub struct Ticket {
    slots: Arc<Slots>,
    client: Client,
}

/// Why a connection was not given a slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Full {
    /// Every slot (or every unreserved one) is taken.
    Server,
    /// This client id has its share.
    Client,
}

impl Slots {
    /// Slots shared as `limit` says.
    pub fn new(limit: Limit) -> Arc<Slots> {
        Arc::new(Slots {
            limit,
            taken: Mutex::new(Taken::default()),
        })
    }

    /// A slot for `client`, if the limits allow one.
    pub fn take(self: &Arc<Slots>, client: Client) -> Result<Ticket, Full> {
        let l = self.limit;
        let mut t = self.taken.lock().unwrap_or_else(|e| e.into_inner());
        if t.total >= l.max {
            return Err(Full::Server);
        }
        if !client.privileged {
            if t.shared >= l.max.saturating_sub(l.reserved) {
                return Err(Full::Server);
            }
            if t.per_client.get(&client.id).copied().unwrap_or(0) >= l.per_client {
                return Err(Full::Client);
            }
            t.shared += 1;
        }
        *t.per_client.entry(client.id).or_insert(0) += 1;
        t.total += 1;
        Ok(Ticket {
            slots: self.clone(),
            client,
        })
    }

    /// Connections served now.
    pub fn in_use(&self) -> usize {
        self.taken.lock().unwrap_or_else(|e| e.into_inner()).total
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut t = self.slots.taken.lock().unwrap_or_else(|e| e.into_inner());
        t.total -= 1;
        if !self.client.privileged {
            t.shared -= 1;
        }
        if let Some(n) = t.per_client.get_mut(&self.client.id) {
            *n -= 1;
            if *n == 0 {
                t.per_client.remove(&self.client.id);
            }
        }
    }
}

/// Accepts on `listener` (non-blocking) until `stop` is set: each
/// connection that `classify` and the slots admit is served by `serve` on
/// a thread of its own; the others are handed to `refuse` on this thread.
/// Connection threads are not waited for: they watch `stop` or time out
/// themselves.
pub fn accept_loop<L: Listener>(
    listener: L,
    limit: Limit,
    stop: Arc<AtomicBool>,
    classify: impl Fn(&L::Stream) -> Client,
    refuse: impl Fn(L::Stream, Full),
    serve: impl Fn(L::Stream) + Clone + Send + 'static,
) {
    let slots = Slots::new(limit);
    while !stop.load(Ordering::Relaxed) {
        match listener.next() {
            Ok(stream) => {
                let client = classify(&stream);
                let ticket = match slots.take(client) {
                    Ok(t) => t,
                    Err(full) => {
                        warn!(
                            client = client.id,
                            open = slots.in_use(),
                            "{}: refusing a connection ({full:?} full)",
                            limit.name
                        );
                        refuse(stream, full);
                        continue;
                    }
                };
                let serve = serve.clone();
                let spawned = std::thread::Builder::new()
                    .name(format!("sluice-{}-conn", limit.name))
                    .spawn(move || {
                        let _ticket = ticket;
                        serve(stream);
                    });
                if let Err(e) = spawned {
                    // The closure, ticket included, was dropped: the slot
                    // is free again.
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

    const LIMIT: Limit = Limit {
        name: "test",
        max: 6,
        per_client: 2,
        reserved: 2,
    };

    fn user(id: u32) -> Client {
        Client {
            id,
            privileged: false,
        }
    }

    const ROOT: Client = Client {
        id: 0,
        privileged: true,
    };

    #[test]
    fn each_client_gets_its_share_and_root_its_reserve() {
        let slots = Slots::new(LIMIT);
        let a: Vec<Ticket> = (0..2).map(|_| slots.take(user(1000)).unwrap()).collect();
        assert_eq!(slots.take(user(1000)).err(), Some(Full::Client));
        let b: Vec<Ticket> = (0..2).map(|_| slots.take(user(1001)).unwrap()).collect();
        // Users hold their four: the two left are root's.
        assert_eq!(slots.take(user(1002)).err(), Some(Full::Server));
        let r: Vec<Ticket> = (0..2).map(|_| slots.take(ROOT).unwrap()).collect();
        assert_eq!(slots.take(ROOT).err(), Some(Full::Server));
        assert_eq!(slots.in_use(), 6);
        drop(a);
        assert_eq!(slots.in_use(), 4);
        let again = slots.take(user(1000)).unwrap();
        // Root's connections never eat into the users' share.
        drop(r);
        let more: Vec<Ticket> = (0..2).map(|_| slots.take(ROOT).unwrap()).collect();
        assert!(slots.take(user(1002)).is_ok());
        drop((b, again, more));
        assert_eq!(slots.in_use(), 0);
    }

    #[test]
    fn a_slot_comes_back_when_its_thread_panics() {
        let slots = Slots::new(LIMIT);
        let t = slots.take(user(7)).unwrap();
        let h = std::thread::spawn(move || {
            let _t = t;
            panic!("a connection thread fails");
        });
        assert!(h.join().is_err());
        assert_eq!(slots.in_use(), 0);
    }

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
                    per_client: 2,
                    reserved: 0,
                },
                s2,
                |_| Client {
                    id: 0,
                    privileged: false,
                },
                |mut s: TcpStream, _| {
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

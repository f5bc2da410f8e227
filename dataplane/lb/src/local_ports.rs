//! Local ports for full NAT, and the worker each one names.
//!
//! A full-NAT connection leaves the appliance from a local address and
//! port (LIP:lport), and the real answers to them. The reply carries no
//! trace of the client, so steering by the client's address (as NAT
//! replies are steered) cannot find the worker that owns the connection.
//! The port does instead: worker `w` of `n` only ever allocates ports `p`
//! with `p mod n == w`, so any worker that receives a reply to a local
//! address hands it to worker `lport mod n` ([`owner`]), which holds the
//! connection. No NIC flow rule is needed, and no worker ever allocates a
//! port another may allocate, so allocation takes no lock.
//!
//! A port is taken per (LIP, RIP, rport): the connection table's reply
//! index says whether `(RIP:rport, LIP:lport)` is in use, so the same
//! local port serves every other real at once, and a port comes free only
//! when its connection's entry expires: after TIME_WAIT for TCP, as a
//! kernel's does.

use std::ops::RangeInclusive;

/// The local ports full NAT uses by default: every port but the
/// well-known ones.
pub const DEFAULT_LOCAL_PORTS: RangeInclusive<u16> = 1024..=65535;

/// Ports tried per allocation (the next ones the worker hands out, in
/// turn), each on every local address of the service. When all of those
/// are held towards the destination (RIP:rport), the allocation fails even
/// if ports further on are free: a bounded cost per new connection.
pub const PROBES: usize = 8;

/// The worker, of `workers`, that owns local port `port`.
#[inline(always)]
pub fn owner(port: u16, workers: usize) -> usize {
    if workers <= 1 {
        0
    } else {
        usize::from(port) % workers
    }
}

/// One worker's local ports: the ports of the range it owns, handed out
/// in turn.
#[derive(Debug, Clone)]
pub struct LocalPorts {
    first: u16,
    last: u16,
    step: u16,
    next: u16,
}

impl LocalPorts {
    /// The ports of `range` that worker `worker` of `workers` owns. None
    /// when it owns none (a range narrower than the worker count).
    pub fn new(range: RangeInclusive<u16>, worker: usize, workers: usize) -> Option<LocalPorts> {
        let workers = workers.max(1);
        let step = u16::try_from(workers).ok()?;
        let (lo, hi) = (*range.start(), *range.end());
        let first = (lo..=hi).find(|&p| owner(p, workers) == worker)?;
        let last = hi - (hi - first) % step;
        Some(LocalPorts {
            first,
            last,
            step,
            next: first,
        })
    }

    /// How many ports it owns: how many connections this worker can hold
    /// to one real's port through one local address.
    pub fn owned(&self) -> usize {
        usize::from((self.last - self.first) / self.step) + 1
    }

    /// Allocates a local address of `locals` and a port for one
    /// connection: [`PROBES`] ports in turn, each tried on every address
    /// from position `start` on, until `taken(address, port)` says one is
    /// free. None: exhausted.
    pub fn allocate<A: Copy>(
        &mut self,
        locals: &[A],
        start: usize,
        mut taken: impl FnMut(A, u16) -> bool,
    ) -> Option<(A, u16)> {
        if locals.is_empty() {
            return None;
        }
        for _ in 0..PROBES.min(self.owned()) {
            let port = self.advance();
            for k in 0..locals.len() {
                let a = locals[(start + k) % locals.len()];
                if !taken(a, port) {
                    return Some((a, port));
                }
            }
        }
        None
    }

    fn advance(&mut self) -> u16 {
        let p = self.next;
        self.next = if p >= self.last {
            self.first
        } else {
            p + self.step
        };
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    #[test]
    fn every_port_has_one_owner() {
        for workers in 1..=5 {
            let mut seen = HashSet::new();
            for w in 0..workers {
                let mut lp = LocalPorts::new(1024..=1100, w, workers).unwrap();
                for _ in 0..lp.owned() {
                    let p = lp.advance();
                    assert_eq!(owner(p, workers), w);
                    assert!((1024..=1100).contains(&p));
                    assert!(seen.insert(p), "port {p} twice");
                }
                // Then it wraps to its first port.
                assert_eq!(lp.advance(), lp.first);
            }
            assert_eq!(seen.len(), 77, "{workers} workers");
        }
        assert!(LocalPorts::new(1024..=1025, 0, 3).is_none());
        assert_eq!(owner(1027, 1), 0);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Open { real: u8 },
        Close { nth: usize },
    }

    fn ops() -> impl Strategy<Value = Vec<Op>> {
        prop::collection::vec(
            prop_oneof![
                3 => (0u8..3).prop_map(|real| Op::Open { real }),
                1 => (0usize..64).prop_map(|nth| Op::Close { nth }),
            ],
            1..300,
        )
    }

    proptest! {
        /// Against a set of the (LIP, lport, real) in use: an allocation
        /// never returns a port in use to the same real, always returns
        /// one of the worker's own ports, and fails only when (nearly)
        /// every one of them is in use to that real; a closed one is
        /// used again.
        #[test]
        fn allocation_matches_a_model(
            ops in ops(),
            workers in 1usize..4,
            width in 0u16..24,
            n_locals in 1usize..3,
        ) {
            let worker = workers - 1;
            let range = 2000..=2000 + width + workers as u16;
            let mut lp = LocalPorts::new(range.clone(), worker, workers).unwrap();
            let locals: Vec<u8> = (0..n_locals as u8).collect();
            let mut live: Vec<(u8, u16, u8)> = Vec::new();
            for op in ops {
                match op {
                    Op::Open { real } => {
                        let used = |a: u8, p: u16| live.contains(&(a, p, real));
                        let in_use = live.iter().filter(|x| x.2 == real).count();
                        match lp.allocate(&locals, usize::from(real), used) {
                            Some((a, p)) => {
                                prop_assert!(range.contains(&p));
                                prop_assert_eq!(owner(p, workers), worker);
                                prop_assert!(!live.contains(&(a, p, real)));
                                live.push((a, p, real));
                            }
                            None => {
                                // Exhausted: every address of at least
                                // PROBES ports (or of all) is in use.
                                let tried = PROBES.min(lp.owned());
                                prop_assert!(in_use >= tried * n_locals);
                            }
                        }
                    }
                    Op::Close { nth } => {
                        if !live.is_empty() {
                            live.remove(nth % live.len());
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn exhausts_and_frees() {
        let mut lp = LocalPorts::new(3000..=3003, 1, 2).unwrap();
        assert_eq!(lp.owned(), 2);
        let mut live = HashSet::new();
        for _ in 0..4 {
            let x = lp.allocate(&[1u8, 2], 0, |a, p| live.contains(&(a, p)));
            assert!(live.insert(x.unwrap()));
        }
        assert_eq!(
            lp.allocate(&[1u8, 2], 0, |a, p| live.contains(&(a, p))),
            None
        );
        live.remove(&(2, 3003));
        assert_eq!(
            lp.allocate(&[1u8, 2], 0, |a, p| live.contains(&(a, p))),
            Some((2, 3003))
        );
    }
}

//! The (service, real) pairs whose connections workers are ending, why,
//! and the id each ending has in the snapshots' drain lists.
//!
//! A pair is ended when its real is removed under `on_real_removal =
//! "end"` (or its service is removed), when it is found down under
//! `on_real_down = "end"`, or when its drain deadline passes. An ending
//! for a live real is cancelled when the reason goes away (the real comes
//! back up, or the operator gives the drained real a weight again), so its
//! new connections are not ended by later scans. Each ending gets a new,
//! larger id: a worker keeps its scan progress per id across snapshots,
//! and a pair ended a second time is scanned a second time.

use sluice_lb::{Drain, RealSlot, ServiceSlot, SharedStats};

/// Why a pair's connections are being ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndCause {
    /// The real (or its service) was removed with the "end" policy.
    Removed,
    /// The real was found down under `on_real_down = "end"`.
    Down,
    /// The real's drain deadline passed.
    Drained,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Ending {
    service: ServiceSlot,
    real: RealSlot,
    id: u64,
    cause: EndCause,
}

/// The endings in force.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Endings {
    list: Vec<Ending>,
    next_id: u64,
}

impl Endings {
    /// Ends the connections of real slot `real` of service slot `service`
    /// for `cause`. Returns `false` when that ending is already in force.
    pub fn end(&mut self, service: ServiceSlot, real: RealSlot, cause: EndCause) -> bool {
        if self
            .list
            .iter()
            .any(|e| e.service == service && e.real == real && e.cause == cause)
        {
            return false;
        }
        self.next_id += 1;
        self.list.push(Ending {
            service,
            real,
            id: self.next_id,
            cause,
        });
        true
    }

    /// Cancels the endings of real slot `real` for `cause`. Returns
    /// whether there was one.
    pub fn cancel(&mut self, real: RealSlot, cause: EndCause) -> bool {
        let before = self.list.len();
        self.list.retain(|e| !(e.real == real && e.cause == cause));
        self.list.len() != before
    }

    /// Forgets endings whose real has no connection left in any table.
    pub fn retain_live(&mut self, shared: &SharedStats) {
        self.list.retain(|e| shared.entries(e.real) > 0);
    }

    /// Whether service slot `s` is still being ended (not free for reuse).
    pub fn holds_service(&self, s: ServiceSlot) -> bool {
        self.list.iter().any(|e| e.service == s)
    }

    /// Whether real slot `r` is still being ended (not free for reuse).
    pub fn holds_real(&self, r: RealSlot) -> bool {
        self.list.iter().any(|e| e.real == r)
    }

    /// The drain list of a snapshot.
    pub fn drains(&self) -> Vec<Drain> {
        self.list
            .iter()
            .map(|e| Drain {
                service: e.service,
                real: e.real,
                id: e.id,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_grow_and_a_pair_ended_again_gets_a_new_one() {
        let mut e = Endings::default();
        assert!(e.end(ServiceSlot(1), RealSlot(10), EndCause::Down));
        assert!(
            !e.end(ServiceSlot(1), RealSlot(10), EndCause::Down),
            "already in force"
        );
        assert!(e.end(ServiceSlot(1), RealSlot(11), EndCause::Removed));
        let first = e.drains();
        assert_eq!(first.len(), 2);
        assert!(first[0].id < first[1].id);
        assert!(e.cancel(RealSlot(10), EndCause::Down));
        assert!(!e.cancel(RealSlot(10), EndCause::Down));
        assert!(
            !e.cancel(RealSlot(11), EndCause::Down),
            "another cause stays"
        );
        assert!(e.end(ServiceSlot(1), RealSlot(10), EndCause::Down));
        let again = e.drains();
        assert_eq!(again.len(), 2);
        assert!(again[1].id > first[1].id, "a new scan for a new ending");
    }

    #[test]
    fn endings_without_connections_are_forgotten() {
        let shared = SharedStats::new(2);
        let mut e = Endings::default();
        e.end(ServiceSlot(1), RealSlot(10), EndCause::Removed);
        e.end(ServiceSlot(1), RealSlot(11), EndCause::Removed);
        shared.workers[1].gauge(RealSlot(11)).opened();
        e.retain_live(&shared);
        assert!(
            !e.holds_real(RealSlot(10))
                && e.holds_real(RealSlot(11))
                && e.holds_service(ServiceSlot(1))
        );
    }
}

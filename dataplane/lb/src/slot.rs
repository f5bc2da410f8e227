//! Counter slots: the stable index of a service's or a real's counters in
//! every worker's [`WorkerLbStats`](crate::WorkerLbStats). The control
//! thread gives each service and real a slot that survives configuration
//! changes; connections record slots, not positions in a service, so a
//! connection keeps counting for its real whatever else changes.

use std::fmt;

/// Most virtual services (service slots).
pub const MAX_SERVICES: usize = 1024;
/// Most real servers over all services (real slots).
pub const MAX_REALS: usize = 8192;

/// The counter slot of a virtual service (below [`MAX_SERVICES`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceSlot(pub u16);

/// The counter slot of a real server (below [`MAX_REALS`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RealSlot(pub u16);

impl ServiceSlot {
    /// Every service slot, in order.
    pub fn all() -> impl Iterator<Item = ServiceSlot> {
        (0..MAX_SERVICES as u16).map(ServiceSlot)
    }

    /// The index into per-service arrays.
    #[inline(always)]
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

impl RealSlot {
    /// Every real slot, in order.
    pub fn all() -> impl Iterator<Item = RealSlot> {
        (0..MAX_REALS as u16).map(RealSlot)
    }

    /// The index into per-real arrays.
    #[inline(always)]
    pub const fn index(self) -> usize {
        self.0 as usize
    }

    /// The slot after this one, round the ring of [`MAX_REALS`].
    pub const fn next(self) -> RealSlot {
        RealSlot(((self.0 as usize + 1) % MAX_REALS) as u16)
    }
}

impl fmt::Display for ServiceSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "service slot {}", self.0)
    }
}

impl fmt::Display for RealSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "real slot {}", self.0)
    }
}

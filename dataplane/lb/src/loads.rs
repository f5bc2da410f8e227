//! Scheduler input: a service's reals with their live connection counts
//! summed over every worker, and their eligibility (weight, overload flag).

use crate::model::RealServer;
use crate::stats::SharedStats;
use sluice_model::IpAddress;
use sluice_sched::Loads;
use std::net::Ipv4Addr;

/// The reals of one service as a scheduler sees them.
pub struct ServiceLoads<'a, A: IpAddress = Ipv4Addr> {
    /// The service's reals, in scheduler order.
    pub reals: &'a [RealServer<A>],
    /// Every worker's gauges and the overload flags.
    pub shared: &'a SharedStats,
}

impl<A: IpAddress> Loads for ServiceLoads<'_, A> {
    #[inline]
    fn len(&self) -> usize {
        self.reals.len()
    }

    #[inline]
    fn weight(&self, i: usize) -> u32 {
        self.reals[i].weight
    }

    #[inline]
    fn active(&self, i: usize) -> u32 {
        self.shared.active(self.reals[i].slot).min(u32::MAX as u64) as u32
    }

    #[inline]
    fn inactive(&self, i: usize) -> u32 {
        self.shared
            .inactive(self.reals[i].slot)
            .min(u32::MAX as u64) as u32
    }

    #[inline]
    fn eligible(&self, i: usize) -> bool {
        let slot = self.reals[i].slot;
        !self.shared.is_overloaded(slot) && !self.shared.is_down(slot)
    }
}

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

/// The reals as a connection moved here from another appliance sees them
/// (`on_miss = "hash"`): only a real found down is out. Overload is judged
/// from this appliance's own counts, which the appliance that scheduled
/// the connection did not see, so it must not send the connection
/// elsewhere.
pub struct MissLoads<'a, A: IpAddress = Ipv4Addr>(pub ServiceLoads<'a, A>);

impl<A: IpAddress> Loads for MissLoads<'_, A> {
    #[inline]
    fn len(&self) -> usize {
        self.0.len()
    }

    #[inline]
    fn weight(&self, i: usize) -> u32 {
        self.0.weight(i)
    }

    #[inline]
    fn active(&self, i: usize) -> u32 {
        self.0.active(i)
    }

    #[inline]
    fn inactive(&self, i: usize) -> u32 {
        self.0.inactive(i)
    }

    #[inline]
    fn eligible(&self, i: usize) -> bool {
        !self.0.shared.is_down(self.0.reals[i].slot)
    }
}

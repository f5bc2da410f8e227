//! The control thread's side of load balancing: the virtual services as
//! configured, with the counter slots assigned to services and reals, and
//! the operations `sluicectl service|real add|edit|del|drain`, reload and
//! restore perform.
//!
//! Every change is applied to a copy and built into a complete
//! [`Snapshot`] (which validates it) with every real's *effective weight*
//! computed at that moment from its configured weight and its health,
//! agent, drain and latency factors; only then is it committed and
//! published. A refused change leaves the running state untouched, workers
//! switch whole snapshots, and a change is in the very snapshot its
//! request publishes (never one health tick later).

mod changes;
mod endings;
mod error;
mod figures;
mod listing;
mod replace;
mod slots;

pub use error::ChangeError;
pub use figures::RATE_WINDOW;

use crate::health::HealthManager;
use endings::{EndCause, Endings};
use figures::Figures;
use sluice_lb::model::SlottedService;
use sluice_lb::{PortBase, RealSlot, RouteTable, SharedStats, Snapshot, TunnelView};
use sluice_proto::{RealSpec, ServiceKey, ServiceSpec};
use std::collections::HashMap;
use std::net::Ipv6Addr;
use std::sync::Arc;
use std::time::Instant;

/// Services as configured, with their slots.
pub struct LbControl {
    services: Vec<SlottedService>,
    endings: Endings,
    /// Effective weight of every real slot in the last snapshot built.
    weights: HashMap<RealSlot, u32>,
    /// Where the search for a free real slot starts: after the last one
    /// given out, so a slot is reused as late as possible (long after any
    /// worker or persistence template could still refer to it).
    next_real_slot: RealSlot,
    shared: Arc<SharedStats>,
    workers: usize,
    ports: Vec<PortBase>,
    routes: Arc<RouteTable>,
    routes6: Arc<RouteTable<Ipv6Addr>>,
    /// How tunnel-mode reals are reached.
    tunnel: TunnelView,
    /// The local ports full NAT allocates from.
    local_ports: std::ops::RangeInclusive<u16>,
    figures: Figures,
    health: HealthManager,
}

/// Whether a real with `n` connections is overloaded, given whether it was:
/// at or over its upper threshold it is, and it stays so until it is down
/// to its lower threshold (or under the upper one when none is set).
fn overloaded(was: bool, n: u64, r: &RealSpec) -> bool {
    let upper = r.upper_threshold as u64;
    if upper == 0 {
        return false;
    }
    if !was {
        return n >= upper;
    }
    let low = match r.lower_threshold {
        0 => upper - 1,
        l => l as u64,
    };
    n > low
}

/// `services` with each real's weight replaced by its effective weight.
fn with_weights(
    services: &[SlottedService],
    weights: &HashMap<RealSlot, u32>,
) -> Vec<SlottedService> {
    services
        .iter()
        .map(|s| {
            let mut s = s.clone();
            for (r, slot) in s.spec.reals.iter_mut().zip(&s.real_slots) {
                r.weight = weights.get(slot).copied().unwrap_or(r.weight);
            }
            s
        })
        .collect()
}

impl LbControl {
    /// Control state for `ports` and `routes`, starting with no service.
    /// Starts the health-check threads.
    pub fn new(
        ports: Vec<PortBase>,
        routes: RouteTable,
        shared: Arc<SharedStats>,
        workers: usize,
    ) -> std::io::Result<LbControl> {
        Ok(LbControl {
            health: HealthManager::new()?,
            services: Vec::new(),
            endings: Endings::default(),
            weights: HashMap::new(),
            next_real_slot: RealSlot(0),
            shared,
            workers,
            ports,
            routes: Arc::new(routes),
            routes6: Arc::new(RouteTable::default()),
            tunnel: TunnelView::default(),
            local_ports: sluice_lb::local_ports::DEFAULT_LOCAL_PORTS,
            figures: Figures::default(),
        })
    }

    /// The same control state with IPv6 routes.
    pub fn with_routes6(mut self, routes6: RouteTable<Ipv6Addr>) -> LbControl {
        self.routes6 = Arc::new(routes6);
        self
    }

    /// The same control state with full NAT's local ports from `range`.
    pub fn with_local_ports(mut self, range: std::ops::RangeInclusive<u16>) -> LbControl {
        self.local_ports = range;
        self
    }

    /// The same control state with these tunnel settings.
    pub fn with_tunnel(mut self, tunnel: TunnelView) -> LbControl {
        self.tunnel = tunnel;
        self
    }

    /// Makes the health checks follow the services (after every change).
    pub fn sync_health(&mut self) {
        self.health.sync(&self.services);
    }

    /// Builds the snapshot of `services` and `endings`, every real with its
    /// effective weight as of now, and makes them the running state. A
    /// refused build changes nothing.
    fn commit(
        &mut self,
        services: Vec<SlottedService>,
        endings: Endings,
    ) -> Result<Snapshot, ChangeError> {
        let weights = self.health.weights(&services);
        let snap = Snapshot::build(
            &with_weights(&services, &weights),
            &endings.drains(),
            &self.ports,
            &self.routes,
        )?
        .with_routes6(&self.routes6)
        .with_tunnel(self.tunnel);
        self.services = services;
        self.endings = endings;
        self.weights = weights;
        Ok(snap)
    }

    /// The endings in force, without those whose connections are gone.
    fn live_endings(&self) -> Endings {
        let mut e = self.endings.clone();
        e.retain_live(&self.shared);
        e
    }

    /// Reads health results and the dataplane's passive counters; ends
    /// connections of reals found down (where the service says so) and of
    /// drains whose deadline passed, and stops ending those of reals that
    /// came back; returns a snapshot to publish when any of that, or an
    /// effective weight (agent, latency), changed.
    pub fn health_tick(&mut self) -> Option<(Snapshot, String)> {
        let now = Instant::now();
        let ch = self.health.tick(&self.services, &self.shared, now);
        let mut endings = self.endings.clone();
        let mut what = Vec::new();
        for (service, real) in ch.end {
            if endings.end(service, real, EndCause::Down) {
                what.push(format!("ending connections of real slot {real} (down)"));
            }
        }
        for real in ch.recovered {
            if endings.cancel(real, EndCause::Down) {
                what.push(format!("real slot {real} is back: its connections stay"));
            }
        }
        let expired = self.health.expired_drains(now);
        for slot in &expired {
            if let Some(s) = self.services.iter().find(|s| s.real_slots.contains(slot)) {
                endings.end(s.slot, *slot, EndCause::Drained);
                what.push(format!(
                    "drain deadline of real slot {slot}: ending its connections"
                ));
            }
        }
        if self.health.weights(&self.services) != self.weights {
            what.push("effective weights changed".into());
        }
        if what.is_empty() {
            return None;
        }
        match self.commit(self.services.clone(), endings) {
            Ok(s) => Some((s, what.join("; "))),
            Err(e) => {
                tracing::warn!("health change not applied: {e}");
                // The deadlines are seen again at the next tick.
                for slot in expired {
                    self.health.restore_drain(slot, Some(now));
                }
                None
            }
        }
    }

    /// Every VIP, with whether a service on it has a usable real (up and
    /// of a positive effective weight): what the appliance may announce.
    pub fn vips_usable(&self) -> Vec<(std::net::IpAddr, bool)> {
        let mut out: Vec<(std::net::IpAddr, bool)> = Vec::new();
        for s in &self.services {
            let usable = s.spec.reals.iter().zip(&s.real_slots).any(|(r, slot)| {
                let w = self.weights.get(slot).copied().unwrap_or(r.weight);
                w > 0 && !self.shared.is_down(*slot)
            });
            match out.iter_mut().find(|(vip, _)| *vip == s.spec.vip) {
                Some(e) => e.1 |= usable,
                None => out.push((s.spec.vip, usable)),
            }
        }
        out
    }

    /// The services' specs, in order (for `save`).
    pub fn specs(&self) -> Vec<ServiceSpec> {
        self.services.iter().map(|s| s.spec.clone()).collect()
    }

    /// Takes a sample of every counter for the rate window (call about once
    /// a second).
    pub fn sample(&mut self) {
        self.figures.sample(&self.shared, &self.services);
    }

    /// Resets the reported counters of every service (or of `only`) and
    /// its reals: later reports count from now. The workers' own counters
    /// stay monotonic (metrics read those).
    pub fn zero(&mut self, only: Option<&ServiceKey>) -> Result<String, ChangeError> {
        self.figures.zero(&self.shared, &self.services, only)
    }

    /// The shared counters.
    pub fn shared(&self) -> &Arc<SharedStats> {
        &self.shared
    }

    /// The snapshot of the current state, effective weights as of now.
    pub fn snapshot(&mut self) -> Result<Snapshot, ChangeError> {
        self.commit(self.services.clone(), self.endings.clone())
    }

    /// Applies upper/lower connection thresholds with hysteresis: a real
    /// at or over its upper threshold takes no new connections until it is
    /// down to its lower one (or under the upper one when none is set).
    pub fn update_overload(&self) {
        for s in &self.services {
            for (r, slot) in s.spec.reals.iter().zip(&s.real_slots) {
                let over = self.shared.is_overloaded(*slot);
                let now = overloaded(over, self.conns_of(*slot), r);
                if now != over {
                    self.shared.set_overloaded(*slot, now);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;

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

mod endings;
mod figures;

pub use figures::RATE_WINDOW;

use crate::health::HealthManager;
use endings::{EndCause, Endings};
use figures::Figures;
use sluice_lb::model::{validate, SlottedService};
use sluice_lb::{
    PortBase, RealSlot, RouteTable, ServiceSlot, SharedStats, Snapshot, MAX_REALS, MAX_SERVICES,
};
use sluice_proto::{
    Forward, RealInfo, RealPatch, RealSpec, ServiceInfo, ServiceKey, ServiceList, ServicePatch,
    ServiceSpec,
};
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

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
            figures: Figures::default(),
        })
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
    ) -> Result<Snapshot, String> {
        let weights = self.health.weights(&services);
        let snap = Snapshot::build(
            &with_weights(&services, &weights),
            &endings.drains(),
            &self.ports,
            &self.routes,
        )?;
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

    /// The position of service `key` and of its real `ip:port`.
    fn find_real(
        &self,
        key: &ServiceKey,
        ip: Ipv4Addr,
        port: u16,
    ) -> Result<(usize, usize), String> {
        let s = self
            .services
            .iter()
            .position(|s| s.spec.key() == *key)
            .ok_or_else(|| format!("no service {key}"))?;
        let r = self.services[s]
            .spec
            .reals
            .iter()
            .position(|r| r.ip == ip && r.port == port)
            .ok_or_else(|| format!("no real {ip}:{port} in {key}"))?;
        Ok((s, r))
    }

    /// Drains a real: effective weight 0 in the snapshot this returns, its
    /// remaining connections ended after `deadline_secs`.
    pub fn real_drain(
        &mut self,
        key: &ServiceKey,
        ip: Ipv4Addr,
        port: u16,
        deadline_secs: u32,
    ) -> Result<Snapshot, String> {
        let (s, r) = self.find_real(key, ip, port)?;
        let slot = self.services[s].real_slots[r];
        let was = self.health.drain_deadline(slot);
        self.health.drain(
            slot,
            Instant::now() + Duration::from_secs(deadline_secs as u64),
        );
        let r = self.commit(self.services.clone(), self.endings.clone());
        if r.is_err() {
            self.health.restore_drain(slot, was);
        }
        r
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
    pub fn zero(&mut self, only: Option<&ServiceKey>) -> Result<String, String> {
        self.figures.zero(&self.shared, &self.services, only)
    }

    /// The shared counters.
    pub fn shared(&self) -> &Arc<SharedStats> {
        &self.shared
    }

    /// The snapshot of the current state, effective weights as of now.
    pub fn snapshot(&mut self) -> Result<Snapshot, String> {
        self.commit(self.services.clone(), self.endings.clone())
    }

    /// Connections that refer to real slot `slot`, on every worker.
    fn conns_of(&self, slot: RealSlot) -> u64 {
        self.shared.entries(slot)
    }

    /// A service slot no service uses and no ending still refers to.
    fn free_service_slot(
        &self,
        taken: &[ServiceSlot],
        endings: &Endings,
    ) -> Result<ServiceSlot, String> {
        ServiceSlot::all()
            .find(|s| {
                !taken.contains(s)
                    && !self.services.iter().any(|x| x.slot == *s)
                    && !endings.holds_service(*s)
            })
            .ok_or_else(|| format!("at most {MAX_SERVICES} services"))
    }

    /// A real slot no real uses, no ending refers to and no connection
    /// refers to (a connection records its real's slot), searched from
    /// `next_real_slot` on.
    fn free_real_slot(&self, taken: &[RealSlot], endings: &Endings) -> Result<RealSlot, String> {
        (0..MAX_REALS)
            .map(|i| RealSlot(((self.next_real_slot.index() + i) % MAX_REALS) as u16))
            .find(|r| {
                !taken.contains(r)
                    && !self.services.iter().any(|s| s.real_slots.contains(r))
                    && !endings.holds_real(*r)
                    && self.conns_of(*r) == 0
            })
            .ok_or_else(|| format!("at most {MAX_REALS} real servers"))
    }

    /// Clears the counters of a slot given to a new real, and moves the
    /// slot search past it.
    fn reset_real(&mut self, slot: RealSlot) {
        self.next_real_slot = slot.next();
        self.figures.forget_real(slot);
        for w in &self.shared.workers {
            w.real(slot).reset();
        }
        self.shared.set_overloaded(slot, false);
    }

    /// Clears the counters of a slot given to a new service.
    fn reset_service(&mut self, slot: ServiceSlot) {
        self.figures.forget_service(slot);
        for w in &self.shared.workers {
            w.service(slot).reset();
        }
    }

    fn check_spec(&self, spec: &ServiceSpec) -> Result<(), String> {
        validate(spec)?;
        if let Some(p) = spec.persistence {
            if p.netmask < 32 && self.workers > 1 {
                return Err(format!(
                    "persistence netmask /{} groups clients, which needs a single worker \
                     (flows are steered per client address)",
                    p.netmask
                ));
            }
        }
        for r in &spec.reals {
            self.check_real(r)?;
        }
        Ok(())
    }

    fn check_real(&self, r: &RealSpec) -> Result<(), String> {
        if r.forward == Forward::Dr && self.routes.is_connected(r.ip).is_none() {
            return Err(format!(
                "real {}:{} uses direct routing but is not on a port's prefix",
                r.ip, r.port
            ));
        }
        if self.routes.lookup(r.ip).is_none() {
            return Err(format!("real {}: no route to it", r.ip));
        }
        Ok(())
    }

    /// Adds a service with its reals.
    pub fn service_add(&mut self, spec: ServiceSpec) -> Result<Snapshot, String> {
        self.check_spec(&spec)?;
        if self.services.iter().any(|s| s.spec.key() == spec.key()) {
            return Err(format!("{} exists", spec.key()));
        }
        let endings = self.live_endings();
        let slot = self.free_service_slot(&[], &endings)?;
        let mut real_slots = Vec::new();
        for _ in &spec.reals {
            real_slots.push(self.free_real_slot(&real_slots, &endings)?);
        }
        let mut services = self.services.clone();
        services.push(SlottedService {
            spec,
            slot,
            real_slots: real_slots.clone(),
        });
        let snap = self.commit(services, endings)?;
        self.reset_service(slot);
        for r in real_slots {
            self.reset_real(r);
        }
        Ok(snap)
    }

    /// Replaces every service by `specs` (reload, restore), applying only
    /// the difference: a service or real that stays keeps its slot, so its
    /// connections and counters carry on; removed reals and services are
    /// handled as by `real del` / `service del`. Returns the snapshot and
    /// a summary of the changes.
    pub fn replace(&mut self, specs: &[ServiceSpec]) -> Result<(Snapshot, String), String> {
        for (i, s) in specs.iter().enumerate() {
            self.check_spec(s)
                .map_err(|e| format!("service {} ({}): {e}", i, s.key()))?;
            if specs[..i].iter().any(|o| o.key() == s.key()) {
                return Err(format!("{} is defined twice", s.key()));
            }
        }
        let mut endings = self.live_endings();
        let mut next: Vec<SlottedService> = Vec::new();
        let (mut s_add, mut s_del, mut s_chg, mut r_add, mut r_del) = (0, 0, 0, 0, 0);
        let mut new_service_slots: Vec<ServiceSlot> = Vec::new();
        let mut new_real_slots: Vec<RealSlot> = Vec::new();
        for spec in specs {
            let old = self.services.iter().find(|o| o.spec.key() == spec.key());
            let slot = match old {
                Some(o) => o.slot,
                None => {
                    s_add += 1;
                    let s = self.free_service_slot(&new_service_slots, &endings)?;
                    new_service_slots.push(s);
                    s
                }
            };
            let mut real_slots = Vec::new();
            for r in &spec.reals {
                let kept = old.and_then(|o| {
                    o.spec
                        .reals
                        .iter()
                        .position(|x| x.ip == r.ip && x.port == r.port)
                        .map(|i| o.real_slots[i])
                });
                let rs = match kept {
                    Some(x) => x,
                    None => {
                        r_add += 1;
                        let x = self.free_real_slot(&new_real_slots, &endings)?;
                        new_real_slots.push(x);
                        x
                    }
                };
                real_slots.push(rs);
            }
            if let Some(o) = old {
                for (r, rs) in o.spec.reals.iter().zip(&o.real_slots) {
                    if !spec.reals.iter().any(|x| x.ip == r.ip && x.port == r.port) {
                        r_del += 1;
                        if o.spec.on_real_removal == sluice_proto::OnRealRemoval::End {
                            endings.end(o.slot, *rs, EndCause::Removed);
                        }
                    }
                }
                let mut a = o.spec.clone();
                let mut b = spec.clone();
                a.reals.clear();
                b.reals.clear();
                if a != b || o.spec.reals != spec.reals {
                    s_chg += 1;
                }
            }
            next.push(SlottedService {
                spec: spec.clone(),
                slot,
                real_slots,
            });
        }
        for o in &self.services {
            if !specs.iter().any(|s| s.key() == o.spec.key()) {
                s_del += 1;
                for r in &o.real_slots {
                    endings.end(o.slot, *r, EndCause::Removed);
                }
            }
        }
        let snap = self.commit(next, endings)?;
        for s in new_service_slots {
            self.reset_service(s);
        }
        for r in new_real_slots {
            self.reset_real(r);
        }
        let summary = format!(
            "{} services: {s_add} added, {s_del} removed, {s_chg} changed; reals: {r_add} added, {r_del} removed",
            specs.len()
        );
        Ok((snap, summary))
    }

    /// Changes the settings a patch gives of a service; every other
    /// setting and its reals stay.
    pub fn service_edit(&mut self, patch: &ServicePatch) -> Result<Snapshot, String> {
        let key = patch.key();
        let pos = self
            .services
            .iter()
            .position(|s| s.spec.key() == key)
            .ok_or_else(|| format!("no service {key}"))?;
        let new = patch.apply(&self.services[pos].spec)?;
        self.check_spec(&new)?;
        let mut services = self.services.clone();
        services[pos].spec = new;
        self.commit(services, self.endings.clone())
    }

    /// Removes a service; its connections end.
    pub fn service_del(&mut self, key: &ServiceKey) -> Result<Snapshot, String> {
        let pos = self
            .services
            .iter()
            .position(|s| s.spec.key() == *key)
            .ok_or_else(|| format!("no service {key}"))?;
        let mut services = self.services.clone();
        let gone = services.remove(pos);
        let mut endings = self.live_endings();
        for r in &gone.real_slots {
            endings.end(gone.slot, *r, EndCause::Removed);
        }
        self.commit(services, endings)
    }

    /// Adds a real to a service.
    pub fn real_add(&mut self, key: &ServiceKey, real: RealSpec) -> Result<Snapshot, String> {
        let i = self
            .services
            .iter()
            .position(|s| s.spec.key() == *key)
            .ok_or_else(|| format!("no service {key}"))?;
        if self.find_real(key, real.ip, real.port).is_ok() {
            return Err(format!("real {}:{} exists in {key}", real.ip, real.port));
        }
        self.check_real(&real)?;
        let endings = self.live_endings();
        let slot = self.free_real_slot(&[], &endings)?;
        let mut services = self.services.clone();
        let s = &mut services[i];
        s.spec.reals.push(real);
        s.real_slots.push(slot);
        validate(&s.spec)?;
        let snap = self.commit(services, endings)?;
        self.reset_real(slot);
        Ok(snap)
    }

    /// Changes the settings a patch gives of a real (weight, method,
    /// thresholds); the others, its checks and agent included, stay. A new
    /// weight also ends a drain of the real: the operator said what weight
    /// it has now.
    pub fn real_edit(&mut self, key: &ServiceKey, patch: &RealPatch) -> Result<Snapshot, String> {
        let (s, r) = self.find_real(key, patch.ip, patch.port)?;
        let real = patch.apply(&self.services[s].spec.reals[r]);
        self.check_real(&real)?;
        let mut services = self.services.clone();
        services[s].spec.reals[r] = real;
        validate(&services[s].spec)?;
        let slot = services[s].real_slots[r];
        let mut endings = self.endings.clone();
        let undrain = patch.weight.is_some();
        let was = self.health.drain_deadline(slot);
        if undrain {
            self.health.undrain(slot);
            endings.cancel(slot, EndCause::Drained);
        }
        let result = self.commit(services, endings);
        if result.is_err() && undrain {
            self.health.restore_drain(slot, was);
        }
        result
    }

    /// Removes a real; its connections end at once or continue, as the
    /// service's `on_real_removal` says.
    pub fn real_del(
        &mut self,
        key: &ServiceKey,
        ip: Ipv4Addr,
        port: u16,
    ) -> Result<Snapshot, String> {
        let (s, r) = self.find_real(key, ip, port)?;
        let mut services = self.services.clone();
        let mut endings = self.live_endings();
        let svc = &mut services[s];
        svc.spec.reals.remove(r);
        let slot = svc.real_slots.remove(r);
        if svc.spec.on_real_removal == sluice_proto::OnRealRemoval::End {
            endings.end(svc.slot, slot, EndCause::Removed);
        }
        self.commit(services, endings)
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

    /// Every service with its reals and live figures; `raw` ignores the
    /// baselines of `zero`.
    pub fn list(&self, raw: bool) -> ServiceList {
        let now = Instant::now();
        let f = &self.figures;
        let shared = &self.shared;
        ServiceList {
            services: self
                .services
                .iter()
                .map(|s| ServiceInfo {
                    protocol: s.spec.protocol,
                    vip: s.spec.vip,
                    port: s.spec.port,
                    scheduler: s.spec.scheduler,
                    persistence: s.spec.persistence,
                    on_real_removal: s.spec.on_real_removal,
                    mh_table_size: s.spec.mh_table_size,
                    check: s.spec.check.clone(),
                    agent: s.spec.agent.clone(),
                    on_real_down: s.spec.on_real_down,
                    weight_by_latency: s.spec.weight_by_latency,
                    expire_quiescent_template: s.spec.expire_quiescent_template,
                    stats: f.service_counters(shared, s.slot, raw),
                    rates: f.service_rates(s.slot),
                    reals: s
                        .spec
                        .reals
                        .iter()
                        .zip(&s.real_slots)
                        .map(|(r, slot)| RealInfo {
                            spec: r.clone(),
                            active: shared.active(*slot),
                            inactive: shared.inactive(*slot),
                            overloaded: shared.is_overloaded(*slot),
                            stats: f.real_counters(shared, *slot, raw),
                            rates: f.real_rates(*slot),
                            health: self.health.info(
                                *slot,
                                self.weights.get(slot).copied().unwrap_or(r.weight),
                                shared,
                                now,
                            ),
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests;

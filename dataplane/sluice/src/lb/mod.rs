//! The control thread's side of load balancing: the virtual services as
//! configured, with the counter slots assigned to services and reals, and
//! the operations `sluicectl service|real add|edit|del` perform. Every
//! change is applied to a copy, built into a complete [`Snapshot`] (which
//! validates it), and only then committed and published: a refused change
//! leaves the running state untouched, and workers switch whole snapshots.

use crate::health::HealthManager;
use sluice_core::local::LocalPort;
use sluice_core::{Ipv4Prefix, MacAddr};
use sluice_lb::model::{validate, SlottedService};
use sluice_lb::{
    PortView, RouteTable, ServiceTable, SharedStats, Snapshot, MAX_REALS, MAX_SERVICES,
};
use sluice_proto::{
    Forward, LbCounters, Rates, RealInfo, RealSpec, ServiceInfo, ServiceKey, ServiceList,
    ServiceSpec,
};
use std::collections::{HashMap, VecDeque};
use std::net::Ipv4Addr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

/// A port's fixed identity.
#[derive(Debug, Clone)]
pub struct PortBase {
    /// MAC address.
    pub mac: MacAddr,
    /// The appliance's addresses on it.
    pub addresses: Vec<Ipv4Prefix>,
    /// Whether the kernel has an interface on it (exception path).
    pub kernel: bool,
}

/// Counter values of one service or real: connections, packets in, bytes
/// in, packets out, bytes out.
type Values = [u64; 5];

/// One sample of every counter, for rates.
struct Sample {
    at: Instant,
    services: HashMap<u16, Values>,
    reals: HashMap<u16, Values>,
}

/// Samples kept for the sliding window (one per second).
pub const RATE_WINDOW: usize = 5;

/// Services as configured, with their slots.
pub struct LbControl {
    services: Vec<SlottedService>,
    ended: Vec<(u16, u16)>,
    shared: Arc<SharedStats>,
    workers: usize,
    ports: Vec<PortBase>,
    routes: Arc<RouteTable>,
    samples: VecDeque<Sample>,
    zero_services: HashMap<u16, Values>,
    zero_reals: HashMap<u16, Values>,
    health: HealthManager,
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
            ended: Vec::new(),
            shared,
            workers,
            ports,
            routes: Arc::new(routes),
            samples: VecDeque::new(),
            zero_services: HashMap::new(),
            zero_reals: HashMap::new(),
        })
    }

    /// Makes the health checks follow the services (after every change).
    pub fn sync_health(&mut self) {
        self.health.sync(&self.services);
    }

    /// Reads health results and the dataplane's passive counters; ends
    /// connections of reals found down (where the service says so) and of
    /// drains whose deadline passed; returns a snapshot to publish when
    /// effective weights or pending ends changed.
    pub fn health_tick(&mut self) -> Option<(Snapshot, String)> {
        let now = Instant::now();
        let ch = self.health.tick(&self.services, &self.shared, now);
        let mut changed = ch.weights_changed;
        let mut what = Vec::new();
        for pair in ch.end {
            if !self.ended.contains(&pair) {
                self.ended.push(pair);
                changed = true;
                what.push(format!("ending connections of real slot {} (down)", pair.1));
            }
        }
        for r in ch.recovered {
            let before = self.ended.len();
            let live = self.services.iter().any(|s| s.real_slots.contains(&r));
            if live {
                self.ended.retain(|(_, er)| *er != r);
            }
            changed |= self.ended.len() != before;
        }
        for slot in self.health.expired_drains(now) {
            if let Some(s) = self.services.iter().find(|s| s.real_slots.contains(&slot)) {
                self.ended.push((s.slot, slot));
                changed = true;
                what.push(format!(
                    "drain deadline of real slot {slot}: ending its connections"
                ));
            }
        }
        if ch.weights_changed {
            what.push("effective weights changed".into());
        }
        if !changed {
            return None;
        }
        match self.snapshot() {
            Ok(s) => Some((s, what.join("; "))),
            Err(e) => {
                tracing::warn!("health change not applied: {e}");
                None
            }
        }
    }

    /// Drains a real: effective weight 0 now, remaining connections ended
    /// after `deadline_secs`.
    pub fn real_drain(
        &mut self,
        key: &ServiceKey,
        ip: Ipv4Addr,
        port: u16,
        deadline_secs: u32,
    ) -> Result<Snapshot, String> {
        let s = self
            .services
            .iter()
            .find(|s| s.spec.key() == *key)
            .ok_or_else(|| format!("no service {key}"))?;
        let i = s
            .spec
            .reals
            .iter()
            .position(|r| r.ip == ip && r.port == port)
            .ok_or_else(|| format!("no real {ip}:{port} in {key}"))?;
        let slot = s.real_slots[i];
        self.health.drain(
            slot,
            Instant::now() + std::time::Duration::from_secs(deadline_secs as u64),
        );
        // The weight changes now; the snapshot is built with it.
        let _ = self
            .health
            .tick(&self.services, &self.shared, Instant::now());
        self.snapshot()
    }

    /// The services' specs, in order (for `save`).
    pub fn specs(&self) -> Vec<ServiceSpec> {
        self.services.iter().map(|s| s.spec.clone()).collect()
    }

    fn values(
        &self,
        f: impl Fn(&sluice_lb::WorkerLbStats) -> &sluice_lb::stats::TrafficCounters,
    ) -> Values {
        let mut v = [0u64; 5];
        for w in &self.shared.workers {
            let t = f(w);
            v[0] += t.connections.get();
            v[1] += t.packets_in.get();
            v[2] += t.bytes_in.get();
            v[3] += t.packets_out.get();
            v[4] += t.bytes_out.get();
        }
        v
    }

    /// Takes a sample of every counter for the rate window (call about once
    /// a second).
    pub fn sample(&mut self) {
        let mut services = HashMap::new();
        let mut reals = HashMap::new();
        for s in &self.services {
            services.insert(s.slot, self.values(|w| &w.services[s.slot as usize]));
            for r in &s.real_slots {
                reals.insert(*r, self.values(|w| &w.reals[*r as usize]));
            }
        }
        self.samples.push_back(Sample {
            at: Instant::now(),
            services,
            reals,
        });
        while self.samples.len() > RATE_WINDOW + 1 {
            self.samples.pop_front();
        }
    }

    fn rate(&self, get: impl Fn(&Sample) -> Option<Values>) -> Rates {
        let (Some(a), Some(b)) = (self.samples.front(), self.samples.back()) else {
            return Rates::default();
        };
        let dt = b.at.duration_since(a.at).as_secs_f64();
        let (Some(va), Some(vb)) = (get(a), get(b)) else {
            return Rates::default();
        };
        if dt <= 0.0 {
            return Rates::default();
        }
        let r = |i: usize| vb[i].saturating_sub(va[i]) as f64 / dt;
        Rates {
            connections: r(0),
            packets_in: r(1),
            bytes_in: r(2),
            packets_out: r(3),
            bytes_out: r(4),
        }
    }

    /// Resets the reported counters of every service (or of `only`) and
    /// its reals: later reports count from now. The workers' own counters
    /// stay monotonic (metrics read those).
    pub fn zero(&mut self, only: Option<&ServiceKey>) -> Result<String, String> {
        let mut n = 0;
        let mut zs = Vec::new();
        let mut zr = Vec::new();
        for s in &self.services {
            if only.is_some_and(|k| *k != s.spec.key()) {
                continue;
            }
            n += 1;
            zs.push((s.slot, self.values(|w| &w.services[s.slot as usize])));
            for r in &s.real_slots {
                zr.push((*r, self.values(|w| &w.reals[*r as usize])));
            }
        }
        self.zero_services.extend(zs);
        self.zero_reals.extend(zr);
        match only {
            Some(k) if n == 0 => Err(format!("no service {k}")),
            Some(k) => Ok(format!("zeroed {k}")),
            None => Ok(format!("zeroed {n} services")),
        }
    }

    /// The shared counters.
    pub fn shared(&self) -> &Arc<SharedStats> {
        &self.shared
    }

    /// Builds the snapshot of the current state.
    pub fn snapshot(&self) -> Result<Snapshot, String> {
        build(
            &self.effective(&self.services),
            &self.ended,
            &self.ports,
            &self.routes,
        )
    }

    /// `services` with each real's weight replaced by its effective weight
    /// (agent, latency, drain).
    fn effective(&self, services: &[SlottedService]) -> Vec<SlottedService> {
        services
            .iter()
            .map(|s| {
                let mut s = s.clone();
                for (r, slot) in s.spec.reals.iter_mut().zip(&s.real_slots) {
                    r.weight = self.health.effective_weight(*slot, r.weight);
                }
                s
            })
            .collect()
    }

    fn conns_of(&self, real_slot: u16) -> u64 {
        self.shared.active(real_slot) + self.shared.inactive(real_slot)
    }

    fn free_service_slot(&self, services: &[SlottedService]) -> Result<u16, String> {
        (0..MAX_SERVICES as u16)
            .find(|s| {
                !services.iter().any(|x| x.slot == *s) && !self.ended.iter().any(|(es, _)| es == s)
            })
            .ok_or_else(|| format!("at most {MAX_SERVICES} services"))
    }

    fn free_real_slot(
        &self,
        services: &[SlottedService],
        ended: &[(u16, u16)],
        taken: &[u16],
    ) -> Result<u16, String> {
        (0..MAX_REALS as u16)
            .find(|r| {
                !taken.contains(r)
                    && !services.iter().any(|s| s.real_slots.contains(r))
                    && !ended.iter().any(|(_, er)| er == r)
                    && self.conns_of(*r) == 0
            })
            .ok_or_else(|| format!("at most {MAX_REALS} real servers"))
    }

    fn reset_real(&mut self, slot: u16) {
        self.zero_reals.remove(&slot);
        for w in &self.shared.workers {
            w.reals[slot as usize].reset();
        }
        self.shared.overloaded[slot as usize].store(false, Ordering::Relaxed);
    }

    fn reset_service(&mut self, slot: u16) {
        self.zero_services.remove(&slot);
        for w in &self.shared.workers {
            w.services[slot as usize].reset();
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
        let mut services = self.services.clone();
        let slot = self.free_service_slot(&services)?;
        let mut real_slots = Vec::new();
        for _ in &spec.reals {
            let r = self.free_real_slot(&services, &self.ended, &real_slots)?;
            real_slots.push(r);
        }
        services.push(SlottedService {
            spec,
            slot,
            real_slots: real_slots.clone(),
        });
        let snap = build(
            &self.effective(&services),
            &self.ended,
            &self.ports,
            &self.routes,
        )?;
        self.reset_service(slot);
        for r in real_slots {
            self.reset_real(r);
        }
        self.services = services;
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
        let mut ended = self.live_ended();
        let mut next: Vec<SlottedService> = Vec::new();
        let (mut s_add, mut s_del, mut s_chg, mut r_add, mut r_del) = (0, 0, 0, 0, 0);
        let mut new_service_slots = Vec::new();
        let mut new_real_slots: Vec<u16> = Vec::new();
        for spec in specs {
            let old = self.services.iter().find(|o| o.spec.key() == spec.key());
            let slot = match old {
                Some(o) => o.slot,
                None => {
                    s_add += 1;
                    let taken: Vec<SlottedService> =
                        self.services.iter().chain(next.iter()).cloned().collect();
                    let s = (0..MAX_SERVICES as u16)
                        .find(|x| {
                            !taken.iter().any(|t| t.slot == *x)
                                && !ended.iter().any(|(es, _)| es == x)
                        })
                        .ok_or_else(|| format!("at most {MAX_SERVICES} services"))?;
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
                        let mut all: Vec<SlottedService> = self.services.clone();
                        all.extend(next.iter().cloned());
                        let mut taken = new_real_slots.clone();
                        taken.extend(real_slots.iter().copied());
                        let x = self.free_real_slot(&all, &ended, &taken)?;
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
                            ended.push((o.slot, *rs));
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
                    ended.push((o.slot, *r));
                }
            }
        }
        let snap = build(&self.effective(&next), &ended, &self.ports, &self.routes)?;
        for s in new_service_slots {
            self.reset_service(s);
        }
        for r in new_real_slots {
            self.reset_real(r);
        }
        self.services = next;
        self.ended = ended;
        let summary = format!(
            "{} services: {s_add} added, {s_del} removed, {s_chg} changed; reals: {r_add} added, {r_del} removed",
            specs.len()
        );
        Ok((snap, summary))
    }

    /// Changes a service's scheduler, persistence, policy or table size.
    pub fn service_edit(&mut self, spec: ServiceSpec) -> Result<Snapshot, String> {
        let key = spec.key();
        let mut services = self.services.clone();
        let s = services
            .iter_mut()
            .find(|s| s.spec.key() == key)
            .ok_or_else(|| format!("no service {key}"))?;
        let mut new = spec;
        new.reals = s.spec.reals.clone();
        self.check_spec(&new)?;
        s.spec = new;
        let snap = build(
            &self.effective(&services),
            &self.ended,
            &self.ports,
            &self.routes,
        )?;
        self.services = services;
        Ok(snap)
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
        let mut ended = self.live_ended();
        for r in &gone.real_slots {
            ended.push((gone.slot, *r));
        }
        let snap = build(
            &self.effective(&services),
            &ended,
            &self.ports,
            &self.routes,
        )?;
        self.services = services;
        self.ended = ended;
        Ok(snap)
    }

    /// Adds a real to a service.
    pub fn real_add(&mut self, key: &ServiceKey, real: RealSpec) -> Result<Snapshot, String> {
        let mut services = self.services.clone();
        let ended = self.live_ended();
        let i = services
            .iter()
            .position(|s| s.spec.key() == *key)
            .ok_or_else(|| format!("no service {key}"))?;
        if services[i]
            .spec
            .reals
            .iter()
            .any(|r| r.ip == real.ip && r.port == real.port)
        {
            return Err(format!("real {}:{} exists in {key}", real.ip, real.port));
        }
        self.check_real(&real)?;
        let slot = self.free_real_slot(&services, &ended, &[])?;
        let s = &mut services[i];
        s.spec.reals.push(real);
        s.real_slots.push(slot);
        validate(&s.spec)?;
        let snap = build(
            &self.effective(&services),
            &ended,
            &self.ports,
            &self.routes,
        )?;
        self.reset_real(slot);
        self.services = services;
        self.ended = ended;
        Ok(snap)
    }

    /// Changes a real's weight, method or thresholds.
    pub fn real_edit(&mut self, key: &ServiceKey, real: RealSpec) -> Result<Snapshot, String> {
        let mut services = self.services.clone();
        let s = services
            .iter_mut()
            .find(|s| s.spec.key() == *key)
            .ok_or_else(|| format!("no service {key}"))?;
        let r = s
            .spec
            .reals
            .iter_mut()
            .find(|r| r.ip == real.ip && r.port == real.port)
            .ok_or_else(|| format!("no real {}:{} in {key}", real.ip, real.port))?;
        self.check_real(&real)?;
        let (ip, port) = (real.ip, real.port);
        *r = real;
        let slot = s.real_slots[s
            .spec
            .reals
            .iter()
            .position(|x| x.ip == ip && x.port == port)
            .unwrap_or(0)];
        self.health.undrain(slot);
        validate(&s.spec)?;
        let snap = build(
            &self.effective(&services),
            &self.ended,
            &self.ports,
            &self.routes,
        )?;
        self.services = services;
        Ok(snap)
    }

    /// Removes a real; its connections end at once or continue, as the
    /// service's `on_real_removal` says.
    pub fn real_del(
        &mut self,
        key: &ServiceKey,
        ip: Ipv4Addr,
        port: u16,
    ) -> Result<Snapshot, String> {
        let mut services = self.services.clone();
        let mut ended = self.live_ended();
        let s = services
            .iter_mut()
            .find(|s| s.spec.key() == *key)
            .ok_or_else(|| format!("no service {key}"))?;
        let i = s
            .spec
            .reals
            .iter()
            .position(|r| r.ip == ip && r.port == port)
            .ok_or_else(|| format!("no real {ip}:{port} in {key}"))?;
        s.spec.reals.remove(i);
        let slot = s.real_slots.remove(i);
        if s.spec.on_real_removal == sluice_proto::OnRealRemoval::End {
            ended.push((s.slot, slot));
        }
        let snap = build(
            &self.effective(&services),
            &ended,
            &self.ports,
            &self.routes,
        )?;
        self.services = services;
        self.ended = ended;
        Ok(snap)
    }

    /// Ended pairs whose connections are not all gone yet.
    fn live_ended(&self) -> Vec<(u16, u16)> {
        self.ended
            .iter()
            .copied()
            .filter(|(_, r)| self.conns_of(*r) > 0)
            .collect()
    }

    /// Applies upper/lower connection thresholds with hysteresis: a real
    /// at or over its upper threshold takes no new connections until it is
    /// down to its lower one (or under the upper one when none is set).
    pub fn update_overload(&self) {
        for s in &self.services {
            for (r, slot) in s.spec.reals.iter().zip(&s.real_slots) {
                let flag = &self.shared.overloaded[*slot as usize];
                if r.upper_threshold == 0 {
                    flag.store(false, Ordering::Relaxed);
                    continue;
                }
                let n = self.conns_of(*slot);
                let over = flag.load(Ordering::Relaxed);
                if !over && n >= r.upper_threshold as u64 {
                    flag.store(true, Ordering::Relaxed);
                } else if over {
                    let low = if r.lower_threshold > 0 {
                        r.lower_threshold as u64
                    } else {
                        r.upper_threshold as u64 - 1
                    };
                    if n <= low {
                        flag.store(false, Ordering::Relaxed);
                    }
                }
            }
        }
    }

    fn counters(&self, v: Values, base: Option<&Values>) -> LbCounters {
        let b = base.copied().unwrap_or([0; 5]);
        LbCounters {
            connections: v[0].saturating_sub(b[0]),
            packets_in: v[1].saturating_sub(b[1]),
            bytes_in: v[2].saturating_sub(b[2]),
            packets_out: v[3].saturating_sub(b[3]),
            bytes_out: v[4].saturating_sub(b[4]),
        }
    }

    /// Every service with its reals and live figures; `raw` ignores the
    /// baselines of `zero`.
    pub fn list(&self, raw: bool) -> ServiceList {
        let zs = |slot: &u16| {
            if raw {
                None
            } else {
                self.zero_services.get(slot)
            }
        };
        let zr = |slot: &u16| if raw { None } else { self.zero_reals.get(slot) };
        ServiceList {
            services: self
                .services
                .iter()
                .map(|s| ServiceInfo {
                    protocol: s.spec.protocol,
                    vip: s.spec.vip,
                    port: s.spec.port,
                    scheduler: s.spec.scheduler.clone(),
                    persistence: s.spec.persistence,
                    on_real_removal: s.spec.on_real_removal,
                    mh_table_size: s.spec.mh_table_size,
                    check: s.spec.check.clone(),
                    agent: s.spec.agent.clone(),
                    on_real_down: s.spec.on_real_down,
                    weight_by_latency: s.spec.weight_by_latency,
                    stats: self
                        .counters(self.values(|w| &w.services[s.slot as usize]), zs(&s.slot)),
                    rates: self.rate(|x| x.services.get(&s.slot).copied()),
                    reals: s
                        .spec
                        .reals
                        .iter()
                        .zip(&s.real_slots)
                        .map(|(r, slot)| RealInfo {
                            spec: r.clone(),
                            active: self.shared.active(*slot),
                            inactive: self.shared.inactive(*slot),
                            overloaded: self.shared.is_overloaded(*slot),
                            stats: self
                                .counters(self.values(|w| &w.reals[*slot as usize]), zr(slot)),
                            rates: self.rate(|x| x.reals.get(slot).copied()),
                            health: self
                                .health
                                .info(*slot, r.weight, &self.shared, Instant::now()),
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}

/// Builds a complete snapshot; any error refuses the change.
fn build(
    services: &[SlottedService],
    ended: &[(u16, u16)],
    ports: &[PortBase],
    routes: &Arc<RouteTable>,
) -> Result<Snapshot, String> {
    let table = ServiceTable::build(services, ended)?;
    let vips = table.vips().to_vec();
    let ports = ports
        .iter()
        .map(|p| {
            let mut addrs: Vec<Ipv4Addr> = p.addresses.iter().map(|a| a.addr).collect();
            addrs.extend_from_slice(&vips);
            PortView {
                local: LocalPort::new(p.mac, &addrs),
                mac: p.mac,
                addresses: p.addresses.clone(),
                kernel: p.kernel,
            }
        })
        .collect();
    Ok(Snapshot {
        ports,
        services: Arc::new(table),
        routes: routes.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_proto::{OnRealRemoval, Protocol};

    fn control() -> LbControl {
        let ports = vec![PortBase {
            mac: MacAddr([2, 0, 0, 0, 0, 1]),
            addresses: vec!["192.0.2.1/24".parse().unwrap()],
            kernel: false,
        }];
        let routes = RouteTable::new(&[(0, "192.0.2.1/24".parse().unwrap())], &[], None).unwrap();
        LbControl::new(ports, routes, SharedStats::new(1), 1).unwrap()
    }

    fn spec(upper: u32, lower: u32) -> ServiceSpec {
        ServiceSpec {
            protocol: Protocol::Tcp,
            vip: "192.0.2.100".parse().unwrap(),
            port: 80,
            scheduler: "rr".into(),
            persistence: None,
            on_real_removal: OnRealRemoval::Keep,
            mh_table_size: None,
            check: None,
            agent: None,
            on_real_down: OnRealRemoval::Keep,
            weight_by_latency: false,
            reals: vec![RealSpec {
                ip: "192.0.2.21".parse().unwrap(),
                port: 80,
                weight: 1,
                forward: Forward::Nat,
                upper_threshold: upper,
                lower_threshold: lower,
                check: None,
                agent: None,
            }],
        }
    }

    #[test]
    fn thresholds_apply_with_hysteresis() {
        let mut c = control();
        c.service_add(spec(10, 5)).unwrap();
        let slot = c.services[0].real_slots[0];
        let g = &c.shared.workers[0].gauges[slot as usize];
        g.active.add(9);
        c.update_overload();
        assert!(!c.shared.is_overloaded(slot));
        g.active.add(1);
        c.update_overload();
        assert!(c.shared.is_overloaded(slot), "10 >= upper 10");
        g.active.sub(4);
        c.update_overload();
        assert!(
            c.shared.is_overloaded(slot),
            "6 is above lower 5: still overloaded"
        );
        g.active.sub(1);
        c.update_overload();
        assert!(!c.shared.is_overloaded(slot), "5 <= lower 5: back");
        let l = c.list(false);
        assert_eq!(l.services[0].reals[0].active, 5);
    }

    #[test]
    fn refused_changes_leave_the_state_untouched() {
        let mut c = control();
        c.service_add(spec(0, 0)).unwrap();
        let before = c.list(false);
        let key = before.services[0].reals[0].spec.clone();
        assert!(c.service_add(spec(0, 0)).is_err(), "duplicate");
        let mut bad = spec(0, 0);
        bad.scheduler = "fastest".into();
        assert!(c.service_edit(bad).is_err());
        let mut dr = key;
        dr.ip = "203.0.113.9".parse().unwrap();
        dr.forward = Forward::Dr;
        assert!(c.real_add(&spec(0, 0).key(), dr).is_err(), "DR off-segment");
        assert_eq!(c.list(false), before);
    }

    #[test]
    fn replace_keeps_slots_of_what_stays() {
        let mut c = control();
        let mut a = spec(0, 0);
        c.service_add(a.clone()).unwrap();
        let slot = c.services[0].real_slots[0];
        let mut r2 = a.reals[0].clone();
        r2.ip = "192.0.2.22".parse().unwrap();
        a.reals.push(r2);
        let mut b = spec(0, 0);
        b.port = 81;
        let (_, summary) = c.replace(&[a.clone(), b]).unwrap();
        assert_eq!(c.services.len(), 2);
        assert_eq!(
            c.services[0].real_slots[0], slot,
            "the unchanged real kept its slot"
        );
        assert!(
            summary.contains("1 added, 0 removed, 1 changed"),
            "{summary}"
        );
        let (_, summary) = c.replace(&[a]).unwrap();
        assert!(summary.contains("0 added, 1 removed"), "{summary}");
        assert_eq!(c.services[0].real_slots[0], slot);
        let mut bad = spec(0, 0);
        bad.scheduler = "nope".into();
        let before = c.list(true);
        assert!(c.replace(&[bad]).is_err());
        assert_eq!(c.list(true), before);
    }

    #[test]
    fn slots_are_not_reused_while_connections_remain() {
        let mut c = control();
        c.service_add(spec(0, 0)).unwrap();
        let key = spec(0, 0).key();
        let slot = c.services[0].real_slots[0];
        c.shared.workers[0].gauges[slot as usize].inactive.add(1);
        c.real_del(&key, "192.0.2.21".parse().unwrap(), 80).unwrap();
        let mut r = spec(0, 0).reals[0].clone();
        r.ip = "192.0.2.22".parse().unwrap();
        c.real_add(&key, r).unwrap();
        assert_ne!(
            c.services[0].real_slots[0], slot,
            "slot with a live connection reused"
        );
    }
}

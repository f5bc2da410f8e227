//! Virtual services and real servers as the workers see them: an immutable
//! [`ServiceTable`] built by the control thread from the control protocol's
//! specs, with each service's scheduler built and every lookup the packet
//! path needs indexed. Services and reals carry stable *slots* (indices of
//! their counters) that survive configuration changes; connections record
//! slots, not positions.

use crate::slot::{RealSlot, ServiceSlot};
use crate::slot::{MAX_REALS, MAX_SERVICES};
use sluice_model::{
    Forward, OnMiss, Protocol, ProxyProtocol, ServiceKey, ServiceSpec, SynProxyMode,
};
use sluice_model::{IpAddress, SocketAddress};
use sluice_sched::{real_identity, Schedule, ScheduleConfig, TableSize, WeightedReal as SchedReal};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// A small, fast hasher for the service index. SipHash's protection is not
/// needed here: only configured keys are ever stored, so traffic cannot
/// grow a bucket; lookups of unknown keys just miss.
#[derive(Default, Clone, Copy)]
pub struct FastHasher(u64);

impl Hasher for FastHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(5) ^ *b as u64).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.0 = (self.0.rotate_left(5) ^ i as u64).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.0 = (self.0.rotate_left(5) ^ i as u64).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.0 = (self.0.rotate_left(5) ^ i as u64).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.0 = (self.0.rotate_left(5) ^ i as u64).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    #[inline]
    fn finish(&self) -> u64 {
        let mut z = self.0;
        z ^= z >> 33;
        z = z.wrapping_mul(0xff51_afd7_ed55_8ccd);
        z ^ (z >> 33)
    }
}

type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;

/// A real server of a service.
#[derive(Debug, Clone)]
pub struct RealServer<A: IpAddress = Ipv4Addr> {
    /// Counter slot.
    pub slot: RealSlot,
    /// Address and port.
    pub addr: A::Socket,
    /// Weight (0: quiesced).
    pub weight: u32,
    /// Forwarding method.
    pub fwd: Forward,
    /// Upper connection threshold (0: none).
    pub upper: u32,
    /// Lower connection threshold.
    pub lower: u32,
}

/// Persistence settings in the units the table uses.
#[derive(Debug, Clone, Copy)]
pub struct PersistCfg<A = Ipv4Addr> {
    /// Template timeout in milliseconds.
    pub timeout_ms: u32,
    /// Client netmask.
    pub netmask: A,
}

/// A virtual service.
#[derive(Debug)]
pub struct VirtualService<A: IpAddress = Ipv4Addr> {
    /// Counter slot.
    pub slot: ServiceSlot,
    /// Its key.
    pub key: ServiceKey,
    /// Protocol as the connection table spells it.
    pub proto: Protocol,
    /// VIP:port.
    pub vip: A::Socket,
    /// The scheduler, built for `reals`.
    pub schedule: Schedule,
    /// Reals, in configuration order (the scheduler's indices).
    pub reals: Vec<RealServer<A>>,
    /// Persistence, if any.
    pub persistence: Option<PersistCfg<A>>,
    /// Templates of quiesced reals are dropped when next used.
    pub expire_quiescent_template: bool,
    /// When its handshakes are proxied with SYN cookies.
    pub syn_proxy: SynProxyUse,
    /// A mid-connection TCP segment of no entry is scheduled by the
    /// service's hash (`on_miss = "hash"`) instead of dropped.
    pub hash_on_miss: bool,
    /// The local addresses its full-NAT connections leave from.
    pub locals: Vec<A>,
    /// New connections tell the real the client's address with the PROXY
    /// protocol (v2).
    pub proxy_protocol: bool,
    /// The spec it was built from (listing, save).
    pub spec: ServiceSpec,
}

impl<A: IpAddress> VirtualService<A> {
    /// The real in counter slot `slot`, if it belongs to this service.
    #[inline]
    pub fn real_by_slot(&self, slot: RealSlot) -> Option<&RealServer<A>> {
        self.reals.iter().find(|r| r.slot == slot)
    }
}

/// When a service's handshakes are proxied, as the packet path reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SynProxyUse {
    /// Never: a UDP service, one with a DR real, or `syn_proxy = "off"`.
    Never,
    /// While the worker's half-open connections are over its threshold.
    UnderFlood,
    /// Always (`syn_proxy = "on"`).
    Always,
}

impl SynProxyUse {
    /// What `spec` asks for and allows (IPv4 NAT TCP services only: the
    /// cookies and the proxied handshake are IPv4's for now).
    pub fn of(spec: &ServiceSpec) -> SynProxyUse {
        let nat_tcp = spec.protocol == Protocol::Tcp
            && spec.vip.is_ipv4()
            && spec.proxy_protocol == ProxyProtocol::Off
            && spec.reals.iter().all(|r| r.forward == Forward::Nat);
        // (Full NAT's sequence numbers are the real's own: the proxied
        // handshake's translation is NAT's alone.)
        match spec.syn_proxy {
            SynProxyMode::On if nat_tcp => SynProxyUse::Always,
            SynProxyMode::Auto if nat_tcp => SynProxyUse::UnderFlood,
            _ => SynProxyUse::Never,
        }
    }
}

/// One entry of the input to [`ServiceTable::build`]: a spec and the slots
/// the control thread assigned to it and to each of its reals.
#[derive(Debug, Clone)]
pub struct SlottedService {
    /// The service.
    pub spec: ServiceSpec,
    /// Its slot.
    pub slot: ServiceSlot,
    /// One slot per real of `spec.reals`, in order.
    pub real_slots: Vec<RealSlot>,
}

/// A (service, real) pair whose connections workers must end, with the
/// id the control thread gave this ending. Ids only grow: a pair ended
/// again later gets a new id (and a new scan), and a worker keeps its scan
/// progress per id across snapshots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Drain {
    /// Service slot.
    pub service: ServiceSlot,
    /// Real slot.
    pub real: RealSlot,
    /// Ending id.
    pub id: u64,
}

const WORDS_S: usize = MAX_SERVICES / 64;
const WORDS_R: usize = MAX_REALS / 64;

/// Every virtual service of one address family, indexed for the packet
/// path.
#[derive(Debug)]
pub struct ServiceTable<A: IpAddress = Ipv4Addr> {
    /// Services in configuration order.
    pub services: Vec<VirtualService<A>>,
    index: FastMap<(u8, A, u16), usize>,
    /// (proto, RIP, rport) -> service position, when exactly one service
    /// uses that real (for replies of connections without an entry).
    by_real: FastMap<(u8, A, u16), Option<usize>>,
    vips: Vec<A>,
    /// Every service's local addresses (full NAT), sorted.
    locals: Vec<A>,
    live_services: Vec<u64>,
    live_reals: Vec<u64>,
    ended_reals: Vec<u64>,
    /// Pairs whose connections workers must end, by increasing id.
    pub drains: Vec<Drain>,
}

fn bit(words: &[u64], i: usize) -> bool {
    words.get(i / 64).is_some_and(|w| w >> (i % 64) & 1 == 1)
}

fn set(words: &mut [u64], i: usize) {
    words[i / 64] |= 1 << (i % 64);
}

/// Checks a service spec on its own: scheduler name, table size,
/// persistence netmask, reals (duplicates, DR port rule).
pub fn validate(spec: &ServiceSpec) -> Result<(), String> {
    if let Some(p) = spec.passive_health {
        if !(1..=100).contains(&p.max_held_out_percent) {
            return Err(format!(
                "passive_health.max_held_out_percent {} is not 1..=100",
                p.max_held_out_percent
            ));
        }
    }
    if let Some(n) = spec.mh_table_size {
        TableSize::new(n).map_err(|e| format!("mh_table_size: {e}"))?;
    }
    let bits = if spec.vip.is_ipv4() { 32 } else { 128 };
    if let Some(p) = spec.persistence {
        if p.prefix_len(spec.vip) > bits {
            return Err(format!(
                "persistence netmask /{} is not 0..={bits}",
                p.prefix_len(spec.vip)
            ));
        }
        if p.timeout_secs == 0 {
            return Err("persistence timeout must be at least 1 second".into());
        }
    }
    if spec.port == 0 {
        return Err("port 0 is not a service port".into());
    }
    if let Some(c) = &spec.check {
        c.validate().map_err(|e| format!("check: {}", e.0))?;
    }
    if let Some(a) = &spec.agent {
        a.validate().map_err(|e| format!("agent: {}", e.0))?;
    }
    for r in &spec.reals {
        if let Some(c) = &r.check {
            c.validate()
                .map_err(|e| format!("real {}:{} check: {}", r.ip, r.port, e.0))?;
        }
        if let Some(a) = &r.agent {
            a.validate()
                .map_err(|e| format!("real {}:{} agent: {}", r.ip, r.port, e.0))?;
        }
    }
    if spec.on_miss() == OnMiss::Hash && !spec.scheduler.needs_hash() {
        return Err(format!(
            "on_miss = \"hash\" needs a hashing scheduler (sh or mh), not {}: only a hash \
             gives every appliance the same answer (other schedulers: connection sync)",
            spec.scheduler
        ));
    }
    if spec.syn_proxy == SynProxyMode::On {
        if spec.vip.is_ipv6() {
            return Err("syn_proxy = \"on\" is for IPv4 services (not IPv6 ones yet)".into());
        }
        if spec.protocol != Protocol::Tcp {
            return Err("syn_proxy = \"on\" is for TCP services".into());
        }
        if let Some(r) = spec.reals.iter().find(|r| r.forward != Forward::Nat) {
            let why = if r.forward.answers_directly() {
                "would answer the client past the sequence translation"
            } else {
                "keeps its own sequence numbers"
            };
            return Err(format!(
                "syn_proxy = \"on\" needs NAT reals: real {}:{} uses {} and {why}",
                r.ip,
                r.port,
                method(r.forward)
            ));
        }
    }
    if !usable_address(spec.vip) {
        return Err(format!("{} cannot be a virtual IP", spec.vip));
    }
    validate_locals(spec)?;
    validate_proxy_protocol(spec)?;
    for (i, r) in spec.reals.iter().enumerate() {
        if r.ip.is_ipv4() != spec.vip.is_ipv4() {
            return Err(format!(
                "real {} is {} but the virtual IP {} is {}: a service and its reals \
                 are of one address family (NAT46/64 is not supported)",
                SocketAddr::new(r.ip, r.port),
                family(r.ip),
                spec.vip,
                family(spec.vip)
            ));
        }
        if spec.reals[..i]
            .iter()
            .any(|o| o.ip == r.ip && o.port == r.port)
        {
            return Err(format!("real {}:{} is listed twice", r.ip, r.port));
        }
        if r.port == 0 {
            return Err(format!("real {}: port 0", r.ip));
        }
        if r.forward.answers_directly() && r.port != spec.port {
            return Err(format!(
                "real {}:{} uses {}, which cannot change the port: it must be {}",
                r.ip,
                r.port,
                method(r.forward),
                spec.port
            ));
        }
        if r.lower_threshold > 0 && r.upper_threshold > 0 && r.lower_threshold >= r.upper_threshold
        {
            return Err(format!(
                "real {}:{}: lower threshold {} must be below the upper threshold {}",
                r.ip, r.port, r.lower_threshold, r.upper_threshold
            ));
        }
    }
    Ok(())
}

/// Whether `ip` may be a VIP or a local address: not unspecified,
/// multicast, broadcast or loopback.
fn usable_address(ip: IpAddr) -> bool {
    let broadcast = matches!(ip, IpAddr::V4(v) if v.is_broadcast());
    !(ip.is_unspecified() || ip.is_multicast() || broadcast || ip.is_loopback())
}

/// Most local addresses a service may have: each is tried in turn when
/// a local port is allocated, so the list bounds that search.
pub const MAX_LOCAL_ADDRESSES: usize = 16;

/// Checks a service's local addresses: usable, of the VIP's family, not
/// the VIP, listed once, at most [`MAX_LOCAL_ADDRESSES`], and present
/// when a real uses full NAT.
fn validate_locals(spec: &ServiceSpec) -> Result<(), String> {
    let l = &spec.local_addresses;
    if l.len() > MAX_LOCAL_ADDRESSES {
        return Err(format!(
            "local_addresses: {} given, at most {MAX_LOCAL_ADDRESSES}",
            l.len()
        ));
    }
    for (i, a) in l.iter().enumerate() {
        if !usable_address(*a) || *a == spec.vip {
            return Err(format!("local_addresses: {a} cannot be a local address"));
        }
        if a.is_ipv4() != spec.vip.is_ipv4() {
            return Err(format!(
                "local_addresses: {a} is {} but the virtual IP {} is {}",
                family(*a),
                spec.vip,
                family(spec.vip)
            ));
        }
        if l[..i].contains(a) {
            return Err(format!("local_addresses: {a} is listed twice"));
        }
    }
    if l.is_empty() {
        if let Some(r) = spec.reals.iter().find(|r| r.forward == Forward::FullNat) {
            return Err(format!(
                "real {}: full NAT needs local_addresses on the service (the \
                 addresses its connections leave from)",
                SocketAddr::new(r.ip, r.port)
            ));
        }
    }
    Ok(())
}

/// The PROXY protocol needs reals whose traffic both ways goes through
/// the appliance (NAT, full NAT), and is not for the SYN proxy's
/// connections (whose sequence numbers it translates already).
fn validate_proxy_protocol(spec: &ServiceSpec) -> Result<(), String> {
    if spec.proxy_protocol == ProxyProtocol::Off {
        return Ok(());
    }
    if let Some(r) = spec.reals.iter().find(|r| !r.forward.translates()) {
        return Err(format!(
            "proxy_protocol needs NAT or full-NAT reals: real {} uses {}, whose replies \
             would not have the header's sequence shift taken back",
            SocketAddr::new(r.ip, r.port),
            method(r.forward)
        ));
    }
    if spec.syn_proxy == SynProxyMode::On {
        return Err("proxy_protocol and syn_proxy = \"on\" do not go together".into());
    }
    Ok(())
}

/// The forwarding method `f` in words.
fn method(f: Forward) -> &'static str {
    match f {
        Forward::Nat => "NAT",
        Forward::Dr => "direct routing",
        Forward::Ipip => "an IP-in-IP tunnel",
        Forward::Gue => "a GUE tunnel",
        Forward::FullNat => "full NAT",
    }
}

fn family(ip: IpAddr) -> &'static str {
    if ip.is_ipv4() {
        "IPv4"
    } else {
        "IPv6"
    }
}

impl<A: IpAddress> Default for ServiceTable<A> {
    fn default() -> Self {
        ServiceTable {
            services: Vec::new(),
            index: FastMap::default(),
            by_real: FastMap::default(),
            vips: Vec::new(),
            locals: Vec::new(),
            live_services: Vec::new(),
            live_reals: Vec::new(),
            ended_reals: Vec::new(),
            drains: Vec::new(),
        }
    }
}

impl<A: IpAddress> ServiceTable<A> {
    /// Builds the table of the services of family `A` among `entries`
    /// (off the packet path: allocates, builds scheduler tables); every
    /// entry is validated, whatever its family. `drains` lists the
    /// (service, real) pairs whose connections workers must end: reals
    /// removed with the "end" policy, found down under `on_real_down =
    /// "end"`, or drained past their deadline.
    pub fn build(entries: &[SlottedService], drains: &[Drain]) -> Result<ServiceTable<A>, String> {
        let mut drains = drains.to_vec();
        drains.sort_by_key(|d| d.id);
        let mut t = ServiceTable {
            live_services: vec![0; WORDS_S],
            live_reals: vec![0; WORDS_R],
            ended_reals: vec![0; WORDS_R],
            drains,
            ..Default::default()
        };
        for d in &t.drains {
            set(&mut t.ended_reals, d.real.index());
        }
        for e in entries {
            let spec = &e.spec;
            validate(spec).map_err(|m| format!("{}: {m}", spec.key()))?;
            let Some(vip) = A::from_ip(spec.vip) else {
                continue;
            };
            if e.real_slots.len() != spec.reals.len() {
                return Err(format!("{}: a slot per real is needed", spec.key()));
            }
            let kind = spec.scheduler;
            let mut cfg = ScheduleConfig::default();
            if let Some(n) = spec.mh_table_size {
                cfg.maglev_table_size = TableSize::new(n).map_err(|x| format!("{x}"))?;
            }
            let sched_reals: Vec<SchedReal> = spec
                .reals
                .iter()
                .map(|r| SchedReal::new(real_identity(r.ip, r.port), r.weight))
                .collect();
            let schedule = Schedule::build(kind, &sched_reals, &cfg)
                .map_err(|x| format!("{}: {x}", spec.key()))?;
            let reals: Vec<RealServer<A>> = spec
                .reals
                .iter()
                .zip(&e.real_slots)
                .map(|(r, slot)| RealServer {
                    slot: *slot,
                    addr: A::from_ip(r.ip)
                        .expect("validated: one family")
                        .socket(r.port),
                    weight: r.weight,
                    fwd: r.forward,
                    upper: r.upper_threshold,
                    lower: r.lower_threshold,
                })
                .collect();
            let pos = t.services.len();
            let proto = spec.protocol;
            if t.index
                .insert((proto.number(), vip, spec.port), pos)
                .is_some()
            {
                return Err(format!("{} is defined twice", spec.key()));
            }
            for r in &reals {
                if bit(&t.live_reals, r.slot.index()) {
                    return Err(format!("{} used twice", r.slot));
                }
                set(&mut t.live_reals, r.slot.index());
                t.by_real
                    .entry((proto.number(), r.addr.addr(), r.addr.port_number()))
                    .and_modify(|v| *v = None)
                    .or_insert(Some(pos));
            }
            set(&mut t.live_services, e.slot.index());
            if !t.vips.contains(&vip) {
                t.vips.push(vip);
            }
            let locals: Vec<A> = spec
                .local_addresses
                .iter()
                .map(|a| A::from_ip(*a).expect("validated: one family"))
                .collect();
            t.locals.extend_from_slice(&locals);
            t.services.push(VirtualService {
                slot: e.slot,
                key: spec.key(),
                proto,
                vip: vip.socket(spec.port),
                schedule,
                reals,
                persistence: spec.persistence.map(|p| PersistCfg {
                    timeout_ms: p.timeout_secs.saturating_mul(1000),
                    netmask: A::prefix_mask(p.prefix_len(spec.vip)),
                }),
                expire_quiescent_template: spec.expire_quiescent_template,
                syn_proxy: SynProxyUse::of(spec),
                hash_on_miss: spec.on_miss() == OnMiss::Hash,
                locals,
                proxy_protocol: spec.proxy_protocol == ProxyProtocol::V2,
                spec: spec.clone(),
            });
        }
        t.vips.sort_unstable();
        t.locals.sort_unstable();
        t.locals.dedup();
        if let Some(a) = t.locals.iter().find(|a| t.vips.contains(a)) {
            return Err(format!(
                "{a} is both a virtual IP and a local address: a reply to it \
                 could not be told from a client's packet"
            ));
        }
        Ok(t)
    }

    /// The service for (protocol number, VIP, port).
    #[inline]
    pub fn lookup(&self, proto: u8, vip: A, port: u16) -> Option<&VirtualService<A>> {
        self.index
            .get(&(proto, vip, port))
            .map(|i| &self.services[*i])
    }

    /// The one service that uses real (proto, RIP, rport), if exactly one.
    #[inline]
    pub fn by_real(&self, proto: u8, rip: A, rport: u16) -> Option<&VirtualService<A>> {
        self.by_real
            .get(&(proto, rip, rport))
            .copied()
            .flatten()
            .map(|i| &self.services[i])
    }

    /// Every distinct VIP.
    pub fn vips(&self) -> &[A] {
        &self.vips
    }

    /// Whether `ip` is a VIP of some service.
    #[inline]
    pub fn is_vip(&self, ip: A) -> bool {
        sluice_core::contains_sorted(&self.vips, ip)
    }

    /// Every distinct local address (full NAT).
    pub fn local_addresses(&self) -> &[A] {
        &self.locals
    }

    /// Whether `ip` is a local address of some service: full-NAT
    /// replies come to it.
    #[inline]
    pub fn is_local_address(&self, ip: A) -> bool {
        !self.locals.is_empty() && sluice_core::contains_sorted(&self.locals, ip)
    }

    /// Whether service slot `s` is configured.
    #[inline]
    pub fn service_live(&self, s: ServiceSlot) -> bool {
        bit(&self.live_services, s.index())
    }

    /// Whether real slot `r` is configured.
    #[inline]
    pub fn real_live(&self, r: RealSlot) -> bool {
        bit(&self.live_reals, r.index())
    }

    /// Whether real slot `r`'s connections are being ended.
    #[inline]
    pub fn real_ended(&self, r: RealSlot) -> bool {
        bit(&self.ended_reals, r.index())
    }

    /// Whether a connection recorded with service slot `service` and real
    /// slot `real` has lost its real: the service was removed, or the real
    /// was removed with the "end" policy. Its packets are dropped.
    #[inline]
    pub fn connection_gone(&self, service: ServiceSlot, real: RealSlot) -> bool {
        !self.service_live(service) || (!self.real_live(real) && self.real_ended(real))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_model::SchedulerKind;
    use sluice_model::{OnRealRemoval, RealSpec};

    fn spec(reals: &[(&str, u16, Forward)]) -> ServiceSpec {
        ServiceSpec {
            protocol: Protocol::Tcp,
            vip: "192.0.2.100".parse().unwrap(),
            port: 80,
            scheduler: SchedulerKind::Rr,
            persistence: None,
            on_real_removal: OnRealRemoval::Keep,
            mh_table_size: None,
            check: None,
            agent: None,
            on_real_down: Default::default(),
            weight_by_latency: false,
            expire_quiescent_template: false,
            passive_health: None,
            syn_proxy: Default::default(),
            on_miss_setting: None,
            local_addresses: Vec::new(),
            proxy_protocol: Default::default(),
            reals: reals
                .iter()
                .map(|(ip, port, f)| RealSpec {
                    ip: ip.parse().unwrap(),
                    port: *port,
                    weight: 1,
                    forward: *f,
                    upper_threshold: 0,
                    lower_threshold: 0,
                    check: None,
                    agent: None,
                })
                .collect(),
        }
    }

    #[test]
    fn builds_and_indexes() {
        let s = spec(&[
            ("198.51.100.11", 8080, Forward::Nat),
            ("198.51.100.12", 8080, Forward::Nat),
        ]);
        let t: ServiceTable = ServiceTable::build(
            &[SlottedService {
                spec: s,
                slot: ServiceSlot(3),
                real_slots: vec![RealSlot(7), RealSlot(9)],
            }],
            &[Drain {
                service: ServiceSlot(1),
                real: RealSlot(2),
                id: 1,
            }],
        )
        .unwrap();
        let v = t.lookup(6, "192.0.2.100".parse().unwrap(), 80).unwrap();
        assert_eq!(v.reals.len(), 2);
        assert!(t.is_vip("192.0.2.100".parse().unwrap()));
        assert!(t.service_live(ServiceSlot(3)) && !t.service_live(ServiceSlot(2)));
        assert!(t.real_live(RealSlot(7)) && t.real_live(RealSlot(9)) && !t.real_live(RealSlot(8)));
        assert!(t.real_ended(RealSlot(2)) && !t.real_ended(RealSlot(7)));
        assert!(t
            .by_real(6, "198.51.100.11".parse().unwrap(), 8080)
            .is_some());
        assert!(t.lookup(17, "192.0.2.100".parse().unwrap(), 80).is_none());
    }

    #[test]
    fn refuses_bad_specs() {
        let mut s = spec(&[("198.51.100.11", 8080, Forward::Dr)]);
        assert!(validate(&s).unwrap_err().contains("direct routing"));
        // A tunnel carries the client's packet unchanged: its port too.
        s = spec(&[("198.51.100.11", 8080, Forward::Gue)]);
        assert!(validate(&s)
            .unwrap_err()
            .contains("a GUE tunnel, which cannot change the port"));
        s = spec(&[("198.51.100.11", 80, Forward::Ipip)]);
        validate(&s).unwrap();
        // And the real answers past the SYN proxy's translation.
        s.syn_proxy = SynProxyMode::On;
        let e = validate(&s).unwrap_err();
        assert!(
            e.contains("uses an IP-in-IP tunnel and would answer"),
            "{e}"
        );
        s = spec(&[
            ("198.51.100.11", 80, Forward::Nat),
            ("198.51.100.11", 80, Forward::Nat),
        ]);
        assert!(validate(&s).unwrap_err().contains("twice"));
        s = spec(&[]);
        s.scheduler = SchedulerKind::Mh;
        s.mh_table_size = Some(65536);
        assert!(validate(&s).unwrap_err().contains("prime"));
        s = spec(&[]);
        for (p, ok) in [(0, false), (1, true), (100, true), (101, false)] {
            s.passive_health = Some(sluice_model::PassiveHealth {
                max_held_out_percent: p,
            });
            assert_eq!(validate(&s).is_ok(), ok, "{p} %");
        }
    }

    /// A service and its reals are of one family: an IPv6 real behind an
    /// IPv4 VIP, or the reverse, is refused naming both; an IPv6 service of
    /// one family validates, with persistence prefixes up to /128; and the
    /// packet path refuses it for now, saying why.
    #[test]
    fn address_families() {
        let mixed = spec(&[("2001:db8:2::11", 8080, Forward::Nat)]);
        let e = validate(&mixed).unwrap_err();
        assert!(
            e.contains("[2001:db8:2::11]:8080 is IPv6 but the virtual IP 192.0.2.100 is IPv4"),
            "{e}"
        );
        let mut v6 = spec(&[("2001:db8:2::11", 8080, Forward::Nat)]);
        v6.vip = "2001:db8::100".parse().unwrap();
        v6.persistence = Some(sluice_model::Persistence {
            timeout_secs: 60,
            netmask: Some(64),
        });
        validate(&v6).unwrap();
        assert_eq!(v6.key().to_string(), "tcp [2001:db8::100]:80");
        v6.persistence = Some(sluice_model::Persistence {
            timeout_secs: 60,
            netmask: Some(129),
        });
        assert!(validate(&v6).unwrap_err().contains("/129 is not 0..=128"));
        v6.persistence = None;
        let mut back = v6.clone();
        back.reals[0].ip = "198.51.100.11".parse().unwrap();
        assert!(validate(&back)
            .unwrap_err()
            .contains("is IPv4 but the virtual IP 2001:db8::100 is IPv6"));
        for bad in ["::", "ff02::1", "::1"] {
            let mut b = v6.clone();
            b.vip = bad.parse().unwrap();
            assert!(
                validate(&b).unwrap_err().contains("cannot be a virtual IP"),
                "{bad}"
            );
        }
        // Each family's table holds its own services.
        let both = [
            SlottedService {
                spec: v6,
                slot: ServiceSlot(0),
                real_slots: vec![RealSlot(0)],
            },
            SlottedService {
                spec: spec(&[("198.51.100.11", 8080, Forward::Nat)]),
                slot: ServiceSlot(1),
                real_slots: vec![RealSlot(1)],
            },
        ];
        let t6 = ServiceTable::<std::net::Ipv6Addr>::build(&both, &[]).unwrap();
        let t4: ServiceTable = ServiceTable::build(&both, &[]).unwrap();
        assert_eq!((t6.services.len(), t4.services.len()), (1, 1));
        let v = t6.lookup(6, "2001:db8::100".parse().unwrap(), 80).unwrap();
        assert_eq!(v.reals[0].addr, "[2001:db8:2::11]:8080".parse().unwrap());
        assert!(t6.is_vip("2001:db8::100".parse().unwrap()));
        assert!(t6.service_live(ServiceSlot(0)) && !t6.service_live(ServiceSlot(1)));
    }
}

//! Health of the real servers, as the control thread manages it: the
//! active checks and agent polls (a `sluice_health::Monitor` whose threads
//! never touch the dataplane), passive suspicion from the dataplane's
//! counters (connections left unanswered or refused, as a share of those
//! given, for services that turn it on) with exponential
//! back-off, and drains with a deadline. From these it decides, per real
//! slot, whether the real takes new connections (the `down` flag schedulers
//! read) and the effective weight the next snapshot is built with.

use sluice_health::{CheckKind, CheckSpec, Monitor, State, Target, TargetStatus};
use sluice_lb::model::SlottedService;
use sluice_lb::{RealSlot, ServiceSlot, SharedStats};
use sluice_proto::{HealthInfo, HealthState};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};
use tracing::{info, warn};

/// First hold-out of a real found suspect by passive detection.
pub const SUSPECT_FIRST: Duration = Duration::from_secs(5);
/// Longest hold-out.
pub const SUSPECT_MAX: Duration = Duration::from_secs(300);
/// The fewest failed connections (SYNs left unanswered, or refused with a
/// reset) within one sampling period that can make a real suspect.
pub const SUSPECT_MIN_FAILURES: u64 = 3;
/// The sampling period of passive detection.
pub const PASSIVE_PERIOD: Duration = Duration::from_secs(1);

/// Whether a real whose connections failed `failed` times in a period in
/// which it was given `connections` new ones is failing: at least
/// [`SUSPECT_MIN_FAILURES`], and at least half as many as it was given. A
/// busy real that answers most of its SYNs is healthy however many resets
/// or timeouts it has in absolute terms.
pub fn failing(failed: u64, connections: u64) -> bool {
    failed >= SUSPECT_MIN_FAILURES && failed.saturating_mul(2) >= connections
}

/// A real's passive counters, summed over the workers.
#[derive(Debug, Default, Clone, Copy)]
struct PassiveCounts {
    syn_timeouts: u64,
    refused: u64,
    connections: u64,
}

impl PassiveCounts {
    fn read(shared: &SharedStats, slot: RealSlot) -> PassiveCounts {
        PassiveCounts {
            syn_timeouts: shared.sum(|w| w.real(slot).syn_timeouts.get()),
            refused: shared.sum(|w| w.real(slot).resets.get()),
            connections: shared.sum(|w| w.real(slot).connections.get()),
        }
    }
}

#[derive(Debug, Default, Clone)]
struct Passive {
    last: PassiveCounts,
    syn_total: u64,
    rst_total: u64,
    suspect_until: Option<Instant>,
    backoff: Option<Duration>,
    clean_since: Option<Instant>,
}

/// What a tick changed.
#[derive(Debug, Default)]
pub struct Changes {
    /// (service slot, real slot) pairs that went down under a service whose
    /// `on_real_down` is `end`: their connections must be ended.
    pub end: Vec<(ServiceSlot, RealSlot)>,
    /// Reals that came back: any pending end for them is cancelled.
    pub recovered: Vec<RealSlot>,
}

/// The control thread's view of every real's health.
pub struct HealthManager {
    monitor: Monitor,
    targets: HashMap<RealSlot, Target>,
    passive: HashMap<RealSlot, Passive>,
    drains: HashMap<RealSlot, Instant>,
    available: HashMap<RealSlot, bool>,
    transitions: HashMap<RealSlot, u64>,
    last_passive: Option<Instant>,
}

impl HealthManager {
    /// A manager with its check threads started.
    pub fn new() -> std::io::Result<HealthManager> {
        Ok(HealthManager {
            monitor: Monitor::new(sluice_health::DEFAULT_POOL_SIZE)?,
            targets: HashMap::new(),
            passive: HashMap::new(),
            drains: HashMap::new(),
            available: HashMap::new(),
            transitions: HashMap::new(),
            last_passive: None,
        })
    }

    /// Makes the checked set follow the configured services.
    pub fn sync(&mut self, services: &[SlottedService]) {
        let mut targets = HashMap::new();
        for s in services {
            for (r, slot) in s.spec.reals.iter().zip(&s.real_slots) {
                // A real's own check or agent replaces the service's.
                let check = r.check.clone().or_else(|| s.spec.check.clone());
                let agent = r.agent.clone().or_else(|| s.spec.agent.clone());
                if check.is_none() && agent.is_none() {
                    continue;
                }
                targets.insert(
                    *slot,
                    Target {
                        id: u64::from(slot.0),
                        addr: SocketAddr::new(r.ip, r.port),
                        vip: SocketAddr::new(s.spec.vip, s.spec.port),
                        check: check.unwrap_or_else(|| CheckSpec::new(CheckKind::None)),
                        agent,
                    },
                );
            }
        }
        if targets != self.targets {
            if let Err(e) = self
                .monitor
                .set_targets(targets.values().cloned().collect())
            {
                warn!("health checks not updated: {}", e.0);
                return;
            }
            self.targets = targets;
        }
        let live: Vec<RealSlot> = services
            .iter()
            .flat_map(|s| s.real_slots.iter().copied())
            .collect();
        self.passive.retain(|k, _| live.contains(k));
        self.drains.retain(|k, _| live.contains(k));
        self.available.retain(|k, _| live.contains(k));
        self.transitions.retain(|k, _| live.contains(k));
    }

    /// Starts draining real `slot`: no new connections now, the rest ended
    /// at `deadline`.
    pub fn drain(&mut self, slot: RealSlot, deadline: Instant) {
        self.drains.insert(slot, deadline);
    }

    /// Stops a drain (the real was given a weight).
    pub fn undrain(&mut self, slot: RealSlot) {
        self.drains.remove(&slot);
    }

    /// The deadline of real `slot`'s drain, if it is draining.
    pub fn drain_deadline(&self, slot: RealSlot) -> Option<Instant> {
        self.drains.get(&slot).copied()
    }

    /// Puts back a drain state read with [`drain_deadline`](Self::drain_deadline)
    /// (a change that was refused).
    pub fn restore_drain(&mut self, slot: RealSlot, deadline: Option<Instant>) {
        match deadline {
            Some(d) => self.drains.insert(slot, d),
            None => self.drains.remove(&slot),
        };
    }

    /// Drains whose deadline passed: (real slot) to end now. Each is
    /// reported once.
    pub fn expired_drains(&mut self, now: Instant) -> Vec<RealSlot> {
        let mut out = Vec::new();
        for (slot, at) in self.drains.iter_mut() {
            if *at <= now {
                out.push(*slot);
                // Keep draining (weight 0), but never report it again.
                *at = now + Duration::from_secs(100 * 365 * 86400);
            }
        }
        out
    }

    fn status_of(&self, slot: RealSlot) -> Option<TargetStatus> {
        self.targets.get(&slot)?;
        self.monitor.status(u64::from(slot.0))
    }

    /// Reads check results, agent replies and the dataplane's passive
    /// counters; updates the `down` flags; reports what the caller must do.
    pub fn tick(
        &mut self,
        services: &[SlottedService],
        shared: &SharedStats,
        now: Instant,
    ) -> Changes {
        let mut ch = Changes::default();
        while let Ok(t) = self.monitor.transitions().try_recv() {
            let slot = RealSlot(t.id as u16);
            *self.transitions.entry(slot).or_insert(0) += 1;
            let real = self
                .targets
                .get(&slot)
                .map(|x| x.addr.to_string())
                .unwrap_or_else(|| format!("slot {slot}"));
            if t.up {
                info!(real = %real, reason = %t.reason, "real up");
            } else {
                warn!(real = %real, reason = %t.reason, "real down");
            }
        }
        // Passive counters are judged over one-second periods.
        let passive_due = self
            .last_passive
            .is_none_or(|t| now.duration_since(t) >= PASSIVE_PERIOD);
        if passive_due {
            self.last_passive = Some(now);
        }
        for s in services {
            // Passive detection holds out at most this many of the
            // service's reals (none when it is off).
            let limit = s
                .spec
                .passive_health
                .map(|ph| ph.max_held_out(s.real_slots.len()));
            let mut held = s
                .real_slots
                .iter()
                .filter(|slot| self.passive.get(slot).is_some_and(|p| p.is_suspect(now)))
                .count();
            for (r, slot) in s.spec.reals.iter().zip(&s.real_slots) {
                let st = self.status_of(*slot);
                let p = self.passive.entry(*slot).or_default();
                if passive_due {
                    let counts = PassiveCounts::read(shared, *slot);
                    let who = format!("{} {}:{}", s.spec.key(), r.ip, r.port);
                    let was = p.is_suspect(now);
                    match limit {
                        Some(limit) => {
                            let may = was || held < limit;
                            if judge_passive(p, counts, now, &who, may) && !was {
                                held += 1;
                            }
                        }
                        None => {
                            p.observe(counts);
                            p.suspect_until = None;
                        }
                    }
                }
                let suspect = p.suspect_until.is_some_and(|u| u > now);
                let active_ok = st.as_ref().is_none_or(|x| x.is_available());
                let available = active_ok && !suspect;
                shared.set_down(*slot, !available);
                let was = self.available.insert(*slot, available).unwrap_or(true);
                if was && !available && s.spec.on_real_down == sluice_proto::OnRealRemoval::End {
                    ch.end.push((s.slot, *slot));
                }
                if !was && available {
                    ch.recovered.push(*slot);
                }
            }
        }
        ch
    }

    /// The effective weight of every real of `services` as of now: its
    /// configured weight (as `services` has it), scaled by its agent's
    /// percentage while it is available, 0 while it is draining, and with
    /// `weight_by_latency` scaled by the service's fastest check latency
    /// over its own. Computed whenever a snapshot is built, so a weight
    /// an operator sets is in force in the very next snapshot.
    pub fn weights(&self, services: &[SlottedService]) -> HashMap<RealSlot, u32> {
        let mut out = HashMap::new();
        for s in services {
            let lat: Vec<Option<Duration>> = s
                .real_slots
                .iter()
                .map(|slot| self.status_of(*slot).and_then(|x| x.latency_ewma))
                .collect();
            let fastest = lat.iter().flatten().min().copied();
            for ((r, slot), l) in s.spec.reals.iter().zip(&s.real_slots).zip(&lat) {
                let mut w = r.weight as u64;
                if let Some(st) = self.status_of(*slot) {
                    if st.is_available() {
                        w = w * st.effective_weight_percent() as u64 / 100;
                    }
                }
                if self.drains.contains_key(slot) {
                    w = 0;
                }
                if s.spec.weight_by_latency {
                    if let (Some(f), Some(l)) = (fastest, l) {
                        w = latency_scaled(w, f, *l);
                    }
                }
                out.insert(*slot, w.min(u32::MAX as u64) as u32);
            }
        }
        out
    }

    /// What `sluicectl list` shows of a real's health; `effective_weight`
    /// is the weight in the snapshot in force.
    pub fn info(
        &self,
        slot: RealSlot,
        effective_weight: u32,
        shared: &SharedStats,
        now: Instant,
    ) -> HealthInfo {
        let st = self.status_of(slot);
        let p = self.passive.get(&slot).cloned().unwrap_or_default();
        let suspect_for = p
            .suspect_until
            .map(|u| u.saturating_duration_since(now).as_secs());
        let drain = self
            .drains
            .get(&slot)
            .map(|d| d.saturating_duration_since(now).as_secs());
        let state = if p.suspect_until.is_some() {
            HealthState::Suspect
        } else if self.drains.contains_key(&slot) {
            HealthState::Drain
        } else {
            match &st {
                None => HealthState::Unchecked,
                Some(x) if !x.is_available() => HealthState::Down,
                Some(x) if x.is_draining() => HealthState::Drain,
                Some(x) => match x.state {
                    State::Up => HealthState::Up,
                    State::Down => HealthState::Down,
                    State::Unknown => HealthState::Unknown,
                },
            }
        };
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        HealthInfo {
            state,
            available: !shared.is_down(slot),
            check: st
                .as_ref()
                .map(|x| x.kind.as_str().to_string())
                .unwrap_or_else(|| "none".into()),
            last_ok: st
                .as_ref()
                .and_then(|x| x.last_result.as_ref().map(|r| r.ok)),
            last_detail: st
                .as_ref()
                .and_then(|x| x.last_result.as_ref().map(|r| r.detail.clone())),
            last_latency_ms: st
                .as_ref()
                .and_then(|x| x.last_result.as_ref().map(|r| ms(r.latency))),
            latency_ewma_ms: st.as_ref().and_then(|x| x.latency_ewma.map(ms)),
            since_change_secs: st
                .as_ref()
                .and_then(|x| x.last_change)
                .and_then(|t| SystemTime::now().duration_since(t).ok())
                .map(|d| d.as_secs()),
            checks: st.as_ref().map(|x| x.checks).unwrap_or(0),
            agent_reply: st
                .as_ref()
                .and_then(|x| x.agent.as_ref().map(|a| a.last_reply.clone())),
            agent_weight_percent: st
                .as_ref()
                .and_then(|x| x.agent.as_ref().and_then(|a| a.weight_percent)),
            agent_error: st
                .as_ref()
                .and_then(|x| x.agent.as_ref().and_then(|a| a.last_error.clone())),
            effective_weight,
            syn_timeouts: p.syn_total,
            resets: p.rst_total,
            suspect_for_secs: suspect_for,
            drain_deadline_secs: drain,
            transitions: self.transitions.get(&slot).copied().unwrap_or(0),
        }
    }
}

impl Passive {
    fn is_suspect(&self, now: Instant) -> bool {
        self.suspect_until.is_some_and(|u| u > now)
    }

    /// Takes in one period's counters; returns (failed, connections) in
    /// the period.
    fn observe(&mut self, c: PassiveCounts) -> (u64, u64) {
        let failed = c.syn_timeouts.saturating_sub(self.last.syn_timeouts)
            + c.refused.saturating_sub(self.last.refused);
        let given = c.connections.saturating_sub(self.last.connections);
        self.last = c;
        self.syn_total = c.syn_timeouts;
        self.rst_total = c.refused;
        (failed, given)
    }
}

/// Judges one period of a real's passive counters: a real that is
/// [`failing`] is made suspect (when `may_hold_out`: the service's share
/// of reals held out allows it) for a back-off that doubles up to
/// SUSPECT_MAX; a clean minute after release resets the back-off. Returns
/// whether it is held out for this period.
fn judge_passive(
    p: &mut Passive,
    counts: PassiveCounts,
    now: Instant,
    who: &str,
    may_hold_out: bool,
) -> bool {
    let (failed, given) = p.observe(counts);
    if failing(failed, given) {
        if !may_hold_out {
            warn!(
                real = who,
                failed,
                connections = given,
                "real failing (passive detection) but kept in service: the service's share of held-out reals is reached"
            );
            return false;
        }
        let b = p
            .backoff
            .map(|b| (b * 2).min(SUSPECT_MAX))
            .unwrap_or(SUSPECT_FIRST);
        p.backoff = Some(b);
        p.suspect_until = Some(now + b);
        p.clean_since = None;
        warn!(
            real = who,
            failed,
            connections = given,
            hold_secs = b.as_secs(),
            "real suspect (passive detection): held out"
        );
        return true;
    }
    if p.suspect_until.is_some_and(|u| u <= now) {
        p.suspect_until = None;
        p.clean_since = Some(now);
        info!(real = who, "suspect real released");
    } else if p.suspect_until.is_none()
        && p.clean_since
            .is_some_and(|c| now.duration_since(c) > Duration::from_secs(60))
    {
        p.backoff = None;
        p.clean_since = None;
    }
    false
}

/// Scales a weight by check latency: the fastest real of the service keeps
/// its weight, one `k` times slower gets `1/k` of it (at least 1 while the
/// weight is not 0).
pub fn latency_scaled(weight: u64, fastest: Duration, mine: Duration) -> u64 {
    if weight == 0 {
        return 0;
    }
    let scaled = (weight as f64 * fastest.as_secs_f64() / mine.as_secs_f64().max(1e-9)).round();
    (scaled as u64).clamp(1, weight)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failing_is_a_share_of_the_connections_given() {
        assert!(!failing(2, 2), "too few to judge");
        assert!(failing(3, 3) && failing(3, 6) && failing(3, 0));
        assert!(!failing(3, 7), "answers most of its SYNs");
        assert!(!failing(50, 1000), "a busy real with some resets");
        assert!(failing(500, 1000));
    }

    fn counts(failed: u64, connections: u64) -> PassiveCounts {
        PassiveCounts {
            syn_timeouts: failed,
            refused: 0,
            connections,
        }
    }

    #[test]
    fn a_failing_real_is_held_out_only_when_the_share_allows() {
        let t0 = Instant::now();
        let mut p = Passive::default();
        assert!(!judge_passive(&mut p, counts(10, 10), t0, "r", false));
        assert!(!p.is_suspect(t0));
        assert!(judge_passive(&mut p, counts(20, 20), t0, "r", true));
        assert!(p.is_suspect(t0));
        // Healthy periods after the hold-out release it.
        let later = t0 + SUSPECT_FIRST + Duration::from_secs(1);
        assert!(!judge_passive(&mut p, counts(20, 120), later, "r", true));
        assert!(!p.is_suspect(later));
    }

    #[test]
    fn latency_scaling_keeps_the_fastest_and_divides_the_slower() {
        let ms = Duration::from_millis;
        assert_eq!(latency_scaled(100, ms(2), ms(2)), 100);
        assert_eq!(latency_scaled(100, ms(2), ms(4)), 50);
        assert_eq!(latency_scaled(100, ms(2), ms(8)), 25);
        assert_eq!(latency_scaled(3, ms(1), ms(1000)), 1, "never below 1");
        assert_eq!(
            latency_scaled(0, ms(1), ms(2)),
            0,
            "a quiesced real stays quiesced"
        );
        assert_eq!(
            latency_scaled(10, ms(5), ms(1)),
            10,
            "never above its weight"
        );
    }
}

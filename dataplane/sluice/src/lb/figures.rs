//! The figures `sluicectl list` reports per service and per real:
//! counters summed over every worker (since start, or since the last
//! `zero`), and rates over a sliding window of once-a-second samples.

use sluice_lb::model::SlottedService;
use sluice_lb::stats::TrafficCounters;
use sluice_lb::{RealSlot, ServiceSlot, SharedStats, WorkerLbStats};
use sluice_proto::{LbCounters, Rates, ServiceKey};
use std::collections::{HashMap, VecDeque};
use std::time::Instant;

/// Counter values of one service or real: connections, packets in, bytes
/// in, packets out, bytes out.
type Values = [u64; 5];

/// One sample of every counter, for rates.
struct Sample {
    at: Instant,
    services: HashMap<ServiceSlot, Values>,
    reals: HashMap<RealSlot, Values>,
}

/// Samples kept for the sliding window (one per second).
pub const RATE_WINDOW: usize = 5;

/// Samples and the baselines of `zero`.
#[derive(Default)]
pub struct Figures {
    samples: VecDeque<Sample>,
    zero_services: HashMap<ServiceSlot, Values>,
    zero_reals: HashMap<RealSlot, Values>,
}

/// The sum over workers of one service's or real's counters.
fn values(shared: &SharedStats, f: impl Fn(&WorkerLbStats) -> &TrafficCounters) -> Values {
    let mut v = [0u64; 5];
    for w in &shared.workers {
        let t = f(w);
        v[0] += t.connections.get();
        v[1] += t.packets_in.get();
        v[2] += t.bytes_in.get();
        v[3] += t.packets_out.get();
        v[4] += t.bytes_out.get();
    }
    v
}

fn service_values(shared: &SharedStats, slot: ServiceSlot) -> Values {
    values(shared, |w| w.service(slot))
}

fn real_values(shared: &SharedStats, slot: RealSlot) -> Values {
    values(shared, |w| w.real(slot))
}

fn counters(v: Values, base: Option<&Values>) -> LbCounters {
    let b = base.copied().unwrap_or([0; 5]);
    LbCounters {
        connections: v[0].saturating_sub(b[0]),
        packets_in: v[1].saturating_sub(b[1]),
        bytes_in: v[2].saturating_sub(b[2]),
        packets_out: v[3].saturating_sub(b[3]),
        bytes_out: v[4].saturating_sub(b[4]),
    }
}

impl Figures {
    /// Takes a sample of every counter for the rate window (call about
    /// once a second).
    pub fn sample(&mut self, shared: &SharedStats, services: &[SlottedService]) {
        let mut s = HashMap::new();
        let mut r = HashMap::new();
        for svc in services {
            s.insert(svc.slot, service_values(shared, svc.slot));
            for slot in &svc.real_slots {
                r.insert(*slot, real_values(shared, *slot));
            }
        }
        self.samples.push_back(Sample {
            at: Instant::now(),
            services: s,
            reals: r,
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

    /// Rates of service slot `slot` over the window.
    pub fn service_rates(&self, slot: ServiceSlot) -> Rates {
        self.rate(|x| x.services.get(&slot).copied())
    }

    /// Rates of real slot `slot` over the window.
    pub fn real_rates(&self, slot: RealSlot) -> Rates {
        self.rate(|x| x.reals.get(&slot).copied())
    }

    /// Counters of service slot `slot`; `raw` ignores `zero`.
    pub fn service_counters(
        &self,
        shared: &SharedStats,
        slot: ServiceSlot,
        raw: bool,
    ) -> LbCounters {
        let base = (!raw).then(|| self.zero_services.get(&slot)).flatten();
        counters(service_values(shared, slot), base)
    }

    /// Counters of real slot `slot`; `raw` ignores `zero`.
    pub fn real_counters(&self, shared: &SharedStats, slot: RealSlot, raw: bool) -> LbCounters {
        let base = (!raw).then(|| self.zero_reals.get(&slot)).flatten();
        counters(real_values(shared, slot), base)
    }

    /// Resets the reported counters of every service (or of `only`) and
    /// its reals: later reports count from now. The workers' own counters
    /// stay monotonic (metrics read those).
    pub fn zero(
        &mut self,
        shared: &SharedStats,
        services: &[SlottedService],
        only: Option<&ServiceKey>,
    ) -> Result<String, super::ChangeError> {
        let mut n = 0;
        for s in services {
            if only.is_some_and(|k| *k != s.spec.key()) {
                continue;
            }
            n += 1;
            self.zero_services
                .insert(s.slot, service_values(shared, s.slot));
            for r in &s.real_slots {
                self.zero_reals.insert(*r, real_values(shared, *r));
            }
        }
        match only {
            Some(k) if n == 0 => Err(super::ChangeError::NoService(*k)),
            Some(k) => Ok(format!("zeroed {k}")),
            None => Ok(format!("zeroed {n} services")),
        }
    }

    /// Forgets the baseline of a service slot given to a new service.
    pub fn forget_service(&mut self, slot: ServiceSlot) {
        self.zero_services.remove(&slot);
    }

    /// Forgets the baseline of a real slot given to a new real.
    pub fn forget_real(&mut self, slot: RealSlot) {
        self.zero_reals.remove(&slot);
    }
}

//! `service list`: every service with its reals, their counters, rates,
//! connection gauges and health.

use super::LbControl;
use sluice_proto::{RealInfo, ServiceInfo, ServiceList};
use std::time::Instant;

impl LbControl {
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
                    on_miss: Some(s.spec.on_miss()),
                    passive_health: s.spec.passive_health,
                    syn_proxy: s.spec.syn_proxy,
                    local_addresses: s.spec.local_addresses.clone(),
                    local_ports_per_real: s.spec.local_addresses.len() as u64
                        * self.local_ports.len() as u64,
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

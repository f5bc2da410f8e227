//! Reload and restore: every service replaced by a new list, applying only
//! the difference. A service or real that stays keeps its slot, so its
//! connections and counters carry on; removed reals and services are
//! handled as by `real del` / `service del`.

use super::endings::{EndCause, Endings};
use super::{ChangeError, LbControl};
use sluice_lb::model::SlottedService;
use sluice_lb::{RealSlot, ServiceSlot, Snapshot};
use sluice_proto::{OnRealRemoval, RealSpec, ServiceSpec};

/// What a replacement changed, for its summary.
#[derive(Default)]
struct Tally {
    services_added: usize,
    services_removed: usize,
    services_changed: usize,
    reals_added: usize,
    reals_removed: usize,
}

/// A replacement being planned: the next services and endings, and the
/// slots it gives out (their counters are cleared once it is committed).
struct Plan {
    next: Vec<SlottedService>,
    endings: Endings,
    new_services: Vec<ServiceSlot>,
    new_reals: Vec<RealSlot>,
    tally: Tally,
}

/// Whether `a` and `b` are the same real (address and port).
fn same_real(a: &RealSpec, b: &RealSpec) -> bool {
    a.ip == b.ip && a.port == b.port
}

impl LbControl {
    /// Replaces every service by `specs`. Returns the snapshot and a
    /// summary of the changes.
    pub fn replace(&mut self, specs: &[ServiceSpec]) -> Result<(Snapshot, String), ChangeError> {
        self.check_all(specs)?;
        let mut plan = Plan {
            next: Vec::new(),
            endings: self.live_endings(),
            new_services: Vec::new(),
            new_reals: Vec::new(),
            tally: Tally::default(),
        };
        for spec in specs {
            self.plan_service(&mut plan, spec)?;
        }
        for gone in self
            .services
            .iter()
            .filter(|o| !specs.iter().any(|s| s.key() == o.spec.key()))
        {
            plan.tally.services_removed += 1;
            for r in &gone.real_slots {
                plan.endings.end(gone.slot, *r, EndCause::Removed);
            }
        }
        let snap = self.commit(plan.next, plan.endings)?;
        for s in plan.new_services {
            self.reset_service(s);
        }
        for r in plan.new_reals {
            self.reset_real(r);
        }
        let t = plan.tally;
        let summary = format!(
            "{} services: {} added, {} removed, {} changed; reals: {} added, {} removed",
            specs.len(),
            t.services_added,
            t.services_removed,
            t.services_changed,
            t.reals_added,
            t.reals_removed
        );
        Ok((snap, summary))
    }

    /// Every service valid and listed once.
    fn check_all(&self, specs: &[ServiceSpec]) -> Result<(), ChangeError> {
        for (index, s) in specs.iter().enumerate() {
            self.check_spec(s).map_err(|e| ChangeError::InService {
                index,
                key: s.key(),
                source: Box::new(e),
            })?;
            if specs[..index].iter().any(|o| o.key() == s.key()) {
                return Err(ChangeError::DefinedTwice(s.key()));
            }
        }
        Ok(())
    }

    /// Adds `spec` to the plan: its old slots where it had them, new ones
    /// where not, and endings for the reals it no longer lists.
    fn plan_service(&self, plan: &mut Plan, spec: &ServiceSpec) -> Result<(), ChangeError> {
        let old = self.services.iter().find(|o| o.spec.key() == spec.key());
        let slot = match old {
            Some(o) => o.slot,
            None => {
                plan.tally.services_added += 1;
                let s = self.free_service_slot(&plan.new_services, &plan.endings)?;
                plan.new_services.push(s);
                s
            }
        };
        let mut real_slots = Vec::new();
        for r in &spec.reals {
            let kept = old.and_then(|o| {
                let i = o.spec.reals.iter().position(|x| same_real(x, r))?;
                Some(o.real_slots[i])
            });
            let rs = match kept {
                Some(x) => x,
                None => {
                    plan.tally.reals_added += 1;
                    let x = self.free_real_slot(&plan.new_reals, &plan.endings)?;
                    plan.new_reals.push(x);
                    x
                }
            };
            real_slots.push(rs);
        }
        if let Some(o) = old {
            plan_removed_reals(plan, o, spec);
        }
        plan.next.push(SlottedService {
            spec: spec.clone(),
            slot,
            real_slots,
        });
        Ok(())
    }
}

/// Counts what changed in a service that stays, and ends the connections
/// of the reals it no longer lists where it says so.
fn plan_removed_reals(plan: &mut Plan, old: &SlottedService, spec: &ServiceSpec) {
    for (r, rs) in old.spec.reals.iter().zip(&old.real_slots) {
        if !spec.reals.iter().any(|x| same_real(x, r)) {
            plan.tally.reals_removed += 1;
            if old.spec.on_real_removal == OnRealRemoval::End {
                plan.endings.end(old.slot, *rs, EndCause::Removed);
            }
        }
    }
    if old.spec != *spec {
        plan.tally.services_changed += 1;
    }
}

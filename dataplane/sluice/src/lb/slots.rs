//! Counter slots: which service and real slots are free (no service, no
//! ending and no connection still refers to them), and clearing a slot's
//! counters when it is given out.

use super::endings::Endings;
use super::{ChangeError, LbControl};
use sluice_lb::{RealSlot, ServiceSlot, MAX_REALS};

impl LbControl {
    /// Connections that refer to real slot `slot`, on every worker.
    pub(super) fn conns_of(&self, slot: RealSlot) -> u64 {
        self.shared.entries(slot)
    }

    /// A service slot no service uses and no ending still refers to.
    pub(super) fn free_service_slot(
        &self,
        taken: &[ServiceSlot],
        endings: &Endings,
    ) -> Result<ServiceSlot, ChangeError> {
        ServiceSlot::all()
            .find(|s| {
                !taken.contains(s)
                    && !self.services.iter().any(|x| x.slot == *s)
                    && !endings.holds_service(*s)
            })
            .ok_or(ChangeError::TooManyServices)
    }

    /// A real slot no real uses, no ending refers to and no connection
    /// refers to (a connection records its real's slot), searched from
    /// `next_real_slot` on.
    pub(super) fn free_real_slot(
        &self,
        taken: &[RealSlot],
        endings: &Endings,
    ) -> Result<RealSlot, ChangeError> {
        (0..MAX_REALS)
            .map(|i| RealSlot(((self.next_real_slot.index() + i) % MAX_REALS) as u16))
            .find(|r| {
                !taken.contains(r)
                    && !self.services.iter().any(|s| s.real_slots.contains(r))
                    && !endings.holds_real(*r)
                    && self.conns_of(*r) == 0
            })
            .ok_or(ChangeError::TooManyReals)
    }

    /// Clears the counters of a slot given to a new real, and moves the
    /// slot search past it.
    pub(super) fn reset_real(&mut self, slot: RealSlot) {
        self.next_real_slot = slot.next();
        self.figures.forget_real(slot);
        for w in &self.shared.workers {
            w.real(slot).reset();
        }
        self.shared.set_overloaded(slot, false);
    }

    /// Clears the counters of a slot given to a new service.
    pub(super) fn reset_service(&mut self, slot: ServiceSlot) {
        self.figures.forget_service(slot);
        for w in &self.shared.workers {
            w.service(slot).reset();
        }
    }
}

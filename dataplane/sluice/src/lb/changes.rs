//! One change at a time: `service add|edit|del` and `real
//! add|edit|drain|del`, each made on a copy and committed only when its
//! snapshot builds.

use super::endings::EndCause;
use super::{ChangeError, LbControl};
use sluice_lb::model::{validate, SlottedService};
use sluice_lb::Snapshot;
use sluice_proto::{
    Forward, OnRealRemoval, RealPatch, RealSpec, ServiceKey, ServicePatch, ServiceSpec,
};
use std::net::IpAddr;
use std::time::{Duration, Instant};

impl LbControl {
    /// The position of service `key`.
    fn find_service(&self, key: &ServiceKey) -> Result<usize, ChangeError> {
        self.services
            .iter()
            .position(|s| s.spec.key() == *key)
            .ok_or(ChangeError::NoService(*key))
    }

    /// The position of service `key` and of its real `ip:port`.
    fn find_real(
        &self,
        key: &ServiceKey,
        ip: IpAddr,
        port: u16,
    ) -> Result<(usize, usize), ChangeError> {
        let s = self.find_service(key)?;
        let r = self.services[s]
            .spec
            .reals
            .iter()
            .position(|r| r.ip == ip && r.port == port)
            .ok_or(ChangeError::NoReal {
                service: *key,
                ip,
                port,
            })?;
        Ok((s, r))
    }

    /// Whether `spec` is valid and possible on this box.
    pub(super) fn check_spec(&self, spec: &ServiceSpec) -> Result<(), ChangeError> {
        validate(spec)?;
        if let Some(p) = spec.persistence {
            let len = p.prefix_len(spec.vip);
            if len < 32 && self.workers > 1 {
                return Err(ChangeError::NetworkPersistence(len));
            }
        }
        for r in &spec.reals {
            self.check_real(r)?;
        }
        Ok(())
    }

    /// Whether the appliance can reach `r` the way it forwards to it.
    fn check_real(&self, r: &RealSpec) -> Result<(), ChangeError> {
        let (connected, routed) = match r.ip {
            IpAddr::V4(ip) => (
                self.routes.is_connected(ip).is_some(),
                self.routes.lookup(ip).is_some(),
            ),
            IpAddr::V6(ip) => (
                self.routes6.is_connected(ip).is_some(),
                self.routes6.lookup(ip).is_some(),
            ),
        };
        if r.forward == Forward::Dr && !connected {
            return Err(ChangeError::DirectRoutingOffSegment {
                ip: r.ip,
                port: r.port,
            });
        }
        if !routed {
            return Err(ChangeError::NoRoute(r.ip));
        }
        Ok(())
    }

    /// Adds a service with its reals.
    pub fn service_add(&mut self, spec: ServiceSpec) -> Result<Snapshot, ChangeError> {
        self.check_spec(&spec)?;
        if self.find_service(&spec.key()).is_ok() {
            return Err(ChangeError::ServiceExists(spec.key()));
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

    /// Changes the settings a patch gives of a service; every other
    /// setting and its reals stay.
    pub fn service_edit(&mut self, patch: &ServicePatch) -> Result<Snapshot, ChangeError> {
        let pos = self.find_service(&patch.key())?;
        let new = patch.apply(&self.services[pos].spec)?;
        self.check_spec(&new)?;
        let mut services = self.services.clone();
        services[pos].spec = new;
        self.commit(services, self.endings.clone())
    }

    /// Removes a service; its connections end.
    pub fn service_del(&mut self, key: &ServiceKey) -> Result<Snapshot, ChangeError> {
        let pos = self.find_service(key)?;
        let mut services = self.services.clone();
        let gone = services.remove(pos);
        let mut endings = self.live_endings();
        for r in &gone.real_slots {
            endings.end(gone.slot, *r, EndCause::Removed);
        }
        self.commit(services, endings)
    }

    /// Adds a real to a service.
    pub fn real_add(&mut self, key: &ServiceKey, real: RealSpec) -> Result<Snapshot, ChangeError> {
        let i = self.find_service(key)?;
        if self.find_real(key, real.ip, real.port).is_ok() {
            return Err(ChangeError::RealExists {
                service: *key,
                ip: real.ip,
                port: real.port,
            });
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
    pub fn real_edit(
        &mut self,
        key: &ServiceKey,
        patch: &RealPatch,
    ) -> Result<Snapshot, ChangeError> {
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

    /// Drains a real: effective weight 0 in the snapshot this returns, its
    /// remaining connections ended after `deadline_secs`.
    pub fn real_drain(
        &mut self,
        key: &ServiceKey,
        ip: IpAddr,
        port: u16,
        deadline_secs: u32,
    ) -> Result<Snapshot, ChangeError> {
        let (s, r) = self.find_real(key, ip, port)?;
        let slot = self.services[s].real_slots[r];
        let was = self.health.drain_deadline(slot);
        let deadline = Instant::now() + Duration::from_secs(deadline_secs as u64);
        self.health.drain(slot, deadline);
        let r = self.commit(self.services.clone(), self.endings.clone());
        if r.is_err() {
            self.health.restore_drain(slot, was);
        }
        r
    }

    /// Removes a real; its connections end at once or continue, as the
    /// service's `on_real_removal` says.
    pub fn real_del(
        &mut self,
        key: &ServiceKey,
        ip: IpAddr,
        port: u16,
    ) -> Result<Snapshot, ChangeError> {
        let (s, r) = self.find_real(key, ip, port)?;
        let mut services = self.services.clone();
        let mut endings = self.live_endings();
        let svc = &mut services[s];
        svc.spec.reals.remove(r);
        let slot = svc.real_slots.remove(r);
        if svc.spec.on_real_removal == OnRealRemoval::End {
            endings.end(svc.slot, slot, EndCause::Removed);
        }
        self.commit(services, endings)
    }
}

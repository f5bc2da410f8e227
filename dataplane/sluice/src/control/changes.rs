//! Changes to services and reals: each is made on the control copy, built
//! into a snapshot, published, and answered once every worker runs it.

use super::Control;
use crate::lb::ChangeError;
use sluice_lb::Snapshot;
use sluice_proto::{self as proto, Command, ErrorCode, Reply, ReplyBody, ServiceKey};
use std::net::SocketAddr;
use std::time::Duration;
use tracing::{info, warn};

/// How long a change waits for every worker to pick it up.
const PICKUP_WAIT: Duration = Duration::from_secs(1);

impl Control<'_> {
    /// Makes the service or real change `c`.
    pub(super) fn change(&mut self, c: &Command) -> Reply {
        let lb = &mut self.lb;
        let (what, r) = match c {
            Command::ServiceAdd { service } => (
                format!("service add {}", service.key()),
                lb.service_add(service.clone()),
            ),
            Command::ServiceEdit { service } => (
                format!("service edit {}", service.key()),
                lb.service_edit(service),
            ),
            Command::ServiceDel { key } => (format!("service del {key}"), lb.service_del(key)),
            Command::RealAdd { service, real } => (
                format!(
                    "real add {service} {} weight {} {}",
                    SocketAddr::new(real.ip, real.port),
                    real.weight,
                    real.forward
                ),
                lb.real_add(service, real.clone()),
            ),
            Command::RealEdit { service, real } => (
                format!(
                    "real edit {service} {} {}",
                    SocketAddr::new(real.ip, real.port),
                    real.describe()
                ),
                lb.real_edit(service, real),
            ),
            Command::RealDrain {
                service,
                ip,
                port,
                deadline_secs,
            } => (
                format!(
                    "real drain {service} {} deadline {deadline_secs}s",
                    SocketAddr::new(*ip, *port)
                ),
                lb.real_drain(service, *ip, *port, *deadline_secs),
            ),
            Command::RealDel { service, ip, port } => (
                format!("real del {service} {}", SocketAddr::new(*ip, *port)),
                lb.real_del(service, *ip, *port),
            ),
            _ => return Reply::error(ErrorCode::Internal, "not a change".to_string()),
        };
        self.apply(what, r)
    }

    /// Publishes a change and answers only once every worker runs it, so
    /// the very next packet after the reply sees it (a wedged worker is
    /// waited for at most [`PICKUP_WAIT`], and named in the reply).
    pub(super) fn apply(&mut self, what: String, r: Result<Snapshot, ChangeError>) -> Reply {
        let peer = self.peer;
        let snap = match r {
            Ok(snap) => snap,
            Err(e) => {
                warn!(change = %what, uid = peer.uid, pid = peer.pid, by = %peer, "change refused: {e}");
                return Reply::error(ErrorCode::Refused, e.to_string());
            }
        };
        let epoch = self.publisher.publish(snap);
        let lagging = self.publisher.wait_for(epoch, PICKUP_WAIT);
        self.lb.sync_health();
        info!(change = %what, epoch, uid = peer.uid, pid = peer.pid, by = %peer, "configuration changed");
        let message = if lagging.is_empty() {
            what
        } else {
            warn!(epoch, workers = ?lagging, "workers have not picked up the change");
            format!("{what} (not yet picked up by workers {lagging:?})")
        };
        Reply::ok(ReplyBody::Applied(proto::Applied { message, epoch }))
    }

    /// Zeroes the rate and counter baselines of one service or all.
    pub(super) fn zero(&mut self, only: Option<&ServiceKey>) -> Reply {
        match self.lb.zero(only) {
            Ok(m) => {
                info!(uid = self.peer.uid, by = %self.peer, "{m}");
                Reply::ok(ReplyBody::Applied(proto::Applied {
                    message: m,
                    epoch: self.publisher.epoch(),
                }))
            }
            Err(e) => Reply::error(ErrorCode::Refused, e.to_string()),
        }
    }
}

//! Why a change to the services was refused. Every variant reads as the
//! reply an operator gets.

use sluice_lb::{MAX_REALS, MAX_SERVICES};
use sluice_proto::ServiceKey;
use std::net::{IpAddr, SocketAddr};

/// A refused change; the running state is untouched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChangeError {
    /// No service has this key.
    #[error("no service {0}")]
    NoService(ServiceKey),
    /// The service has no such real.
    #[error("no real {} in {service}", SocketAddr::new(*.ip, *.port))]
    NoReal {
        /// The service.
        service: ServiceKey,
        /// The real's address.
        ip: IpAddr,
        /// The real's port.
        port: u16,
    },
    /// A service with this key exists.
    #[error("{0} exists")]
    ServiceExists(ServiceKey),
    /// The service has this real already.
    #[error("real {} exists in {service}", SocketAddr::new(*.ip, *.port))]
    RealExists {
        /// The service.
        service: ServiceKey,
        /// The real's address.
        ip: IpAddr,
        /// The real's port.
        port: u16,
    },
    /// A replacement lists a service twice.
    #[error("{0} is defined twice")]
    DefinedTwice(ServiceKey),
    /// Every service slot is taken.
    #[error("at most {MAX_SERVICES} services")]
    TooManyServices,
    /// Every real slot is taken (or still referred to).
    #[error("at most {MAX_REALS} real servers")]
    TooManyReals,
    /// A direct-routing real off the appliance's segments.
    #[error(
        "real {} uses direct routing but is not on a port's prefix",
        SocketAddr::new(*.ip, *.port)
    )]
    DirectRoutingOffSegment {
        /// The real's address.
        ip: IpAddr,
        /// The real's port.
        port: u16,
    },
    /// No route reaches the real.
    #[error("real {0}: no route to it")]
    NoRoute(IpAddr),
    /// Persistence by client network with several workers.
    #[error(
        "persistence netmask /{0} groups clients, which needs a single worker \
         (flows are steered per client address)"
    )]
    NetworkPersistence(u8),
    /// The service's settings do not hold together.
    #[error("{0}")]
    Invalid(String),
    /// One service of a replacement was refused.
    #[error("service {index} ({key}): {source}")]
    InService {
        /// Its position in the replacement.
        index: usize,
        /// Its key.
        key: ServiceKey,
        /// Why.
        source: Box<ChangeError>,
    },
}

impl From<String> for ChangeError {
    /// A refusal of the sans-IO validation or snapshot build.
    fn from(reason: String) -> ChangeError {
        ChangeError::Invalid(reason)
    }
}

//! The `[control]` and `[metrics]` sections: where operators and scrapers
//! reach the daemon.

use super::raw::{RawControl, RawMetrics};
use super::refusal::{refusal, refuse, Refusal};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Control socket settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ControlConfig {
    /// Path of the Unix socket.
    pub socket: PathBuf,
    /// File mode of the socket.
    pub mode: u32,
    /// Group allowed to use the socket besides root (name, gid).
    pub group: Option<(String, u32)>,
}

/// Where the Prometheus/OpenMetrics endpoint listens, if enabled.
pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:9469";

/// Where the control socket lives unless configured.
const DEFAULT_SOCKET: &str = "/run/sluice/sluice.sock";

/// Checks `[control]`: the group exists, the mode is octal, the path fits.
pub(super) fn validate(raw: &RawControl) -> Result<ControlConfig, Refusal> {
    let group = match &raw.group {
        None => None,
        Some(name) => match nix::unistd::Group::from_name(name) {
            Ok(Some(g)) => Some((name.clone(), g.gid.as_raw())),
            _ => {
                return refuse(
                    "control.group",
                    format!("no group named {name:?} on this system"),
                )
            }
        },
    };
    let default_mode = if group.is_some() { "0660" } else { "0600" };
    let mode_str = raw.mode.as_deref().unwrap_or(default_mode);
    let mode = u32::from_str_radix(mode_str.trim_start_matches("0o"), 8)
        .ok()
        .filter(|m| *m <= 0o777)
        .ok_or_else(|| {
            refusal(
                "control.mode",
                format!("{mode_str:?} is not an octal file mode such as \"0600\""),
            )
        })?;
    let socket = PathBuf::from(raw.socket.as_deref().unwrap_or(DEFAULT_SOCKET));
    if socket.as_os_str().len() > 100 {
        return refuse(
            "control.socket",
            "path longer than a Unix socket address allows (100 bytes)",
        );
    }
    Ok(ControlConfig {
        socket,
        mode,
        group,
    })
}

/// Checks `[metrics]`: the endpoint's address when it is enabled.
pub(super) fn validate_metrics(raw: &RawMetrics) -> Result<Option<SocketAddr>, Refusal> {
    if !raw.enabled {
        return Ok(None);
    }
    let listen = raw.listen.as_deref().unwrap_or(DEFAULT_METRICS_LISTEN);
    let addr = listen.parse().map_err(|_| {
        refusal(
            "metrics.listen",
            format!("{listen:?} is not an address:port such as \"127.0.0.1:9469\""),
        )
    })?;
    Ok(Some(addr))
}

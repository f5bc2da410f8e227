//! The `[sync]` section: connection synchronisation with the peer
//! appliances (see [`crate::sync`]).

use super::raw::RawSync;
use super::refusal::{refusal, refuse, Refusal};
use std::net::SocketAddr;

/// Datagrams per second a sender sends at most, by default.
pub const DEFAULT_DATAGRAMS_PER_SEC: u32 = 2000;
/// The shortest key accepted (bytes).
pub const MIN_KEY: usize = 16;

/// Sync settings, checked.
#[derive(Clone, PartialEq, Eq)]
pub struct SyncConfig {
    /// Where this appliance receives its peers' datagrams (an address of
    /// its kernel interface).
    pub listen: SocketAddr,
    /// Where the peers receive.
    pub peers: Vec<SocketAddr>,
    /// The shared key.
    pub key: Vec<u8>,
    /// Rate limit of the datagrams sent.
    pub max_datagrams_per_sec: u32,
}

impl std::fmt::Debug for SyncConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncConfig")
            .field("listen", &self.listen)
            .field("peers", &self.peers)
            .field("key", &"(secret)")
            .field("max_datagrams_per_sec", &self.max_datagrams_per_sec)
            .finish()
    }
}

/// Checks `[sync]` (and reads `key_file`).
pub(super) fn validate(raw: &Option<RawSync>) -> Result<Option<SyncConfig>, Refusal> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    let listen: SocketAddr = raw.listen.parse().map_err(|_| {
        refusal(
            "sync.listen",
            format!("{:?} is not an address and port", raw.listen),
        )
    })?;
    if listen.ip().is_unspecified() {
        return refuse(
            "sync.listen",
            "an address of this appliance's kernel interface, not 0.0.0.0 or :: \
             (it also identifies the appliance to its peers)",
        );
    }
    if raw.peers.is_empty() {
        return refuse("sync.peers", "at least one peer is needed");
    }
    let mut peers = Vec::new();
    for (i, p) in raw.peers.iter().enumerate() {
        let a: SocketAddr = p.parse().map_err(|_| {
            refusal(
                format!("sync.peers[{i}]"),
                format!("{p:?} is not an address and port"),
            )
        })?;
        if a == listen {
            return refuse(format!("sync.peers[{i}]"), "this is the listen address");
        }
        peers.push(a);
    }
    let key = match (&raw.key, &raw.key_file) {
        (Some(k), None) => k.as_bytes().to_vec(),
        (None, Some(f)) => {
            let k = std::fs::read(f).map_err(|e| refusal("sync.key_file", format!("{f}: {e}")))?;
            k.strip_suffix(b"\n").map(<[u8]>::to_vec).unwrap_or(k)
        }
        _ => return refuse("sync", "give exactly one of key and key_file"),
    };
    if key.len() < MIN_KEY {
        let field = if raw.key.is_some() {
            "sync.key"
        } else {
            "sync.key_file"
        };
        return refuse(
            field,
            format!(
                "a key of {} bytes is too short: at least {MIN_KEY} (e.g. `openssl rand -hex 32`)",
                key.len()
            ),
        );
    }
    let max = raw
        .max_datagrams_per_sec
        .unwrap_or(DEFAULT_DATAGRAMS_PER_SEC);
    if max == 0 {
        return refuse("sync.max_datagrams_per_sec", "0 would send nothing");
    }
    Ok(Some(SyncConfig {
        listen,
        peers,
        key,
        max_datagrams_per_sec: max,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw() -> RawSync {
        RawSync {
            listen: "198.51.100.11:8848".into(),
            peers: vec!["198.51.100.12:8848".into()],
            key: Some("0123456789abcdef0123".into()),
            ..RawSync::default()
        }
    }

    #[test]
    fn a_good_section_and_its_refusals() {
        let c = validate(&Some(raw())).unwrap().unwrap();
        assert_eq!(c.max_datagrams_per_sec, DEFAULT_DATAGRAMS_PER_SEC);
        assert!(
            !format!("{c:?}").contains("0123456789"),
            "the key is not logged"
        );
        let mut r = raw();
        r.key = Some("short".into());
        assert_eq!(validate(&Some(r)).unwrap_err().location, "sync.key");
        let mut r = raw();
        r.key_file = Some("/nonexistent/key".into());
        assert_eq!(validate(&Some(r)).unwrap_err().location, "sync");
        let mut r = raw();
        r.peers = vec!["198.51.100.11:8848".into()];
        assert_eq!(validate(&Some(r)).unwrap_err().location, "sync.peers[0]");
        let mut r = raw();
        r.listen = "nowhere".into();
        assert_eq!(validate(&Some(r)).unwrap_err().location, "sync.listen");
        let mut r = raw();
        r.listen = "0.0.0.0:8848".into();
        assert_eq!(validate(&Some(r)).unwrap_err().location, "sync.listen");
    }
}

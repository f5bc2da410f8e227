//! [`SchedulerKind`]: the scheduler names of a virtual service, as in LVS
//! (`ipvsadm -s rr|wrr|lc|wlc|sed|nq|sh|mh`), parsed from and printed as
//! those strings (in the configuration file and on the wire too). The
//! algorithms themselves are in `sluice-sched`.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// Which algorithm picks the real server for a new connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SchedulerKind {
    /// Round robin: each eligible real in turn.
    Rr,
    /// Weighted round robin, LVS's interleaved algorithm (gcd stepping).
    Wrr,
    /// Least connection: lowest `active * 256 + inactive`.
    Lc,
    /// Weighted least connection: lowest `(active * 256 + inactive) / weight`.
    Wlc,
    /// Shortest expected delay: lowest `(active + 1) / weight`.
    Sed,
    /// Never queue: a real with no active connection, else as [`Sed`](Self::Sed).
    Nq,
    /// Source hashing: a weighted bucket table indexed by a hash of the client.
    Sh,
    /// Maglev consistent hashing with weights.
    Mh,
}

impl SchedulerKind {
    /// Every kind, in the order of the enum.
    pub const ALL: [SchedulerKind; 8] = [
        SchedulerKind::Rr,
        SchedulerKind::Wrr,
        SchedulerKind::Lc,
        SchedulerKind::Wlc,
        SchedulerKind::Sed,
        SchedulerKind::Nq,
        SchedulerKind::Sh,
        SchedulerKind::Mh,
    ];

    /// The LVS name of the scheduler: `"rr"`, `"wrr"`, `"lc"`, `"wlc"`,
    /// `"sed"`, `"nq"`, `"sh"` or `"mh"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            SchedulerKind::Rr => "rr",
            SchedulerKind::Wrr => "wrr",
            SchedulerKind::Lc => "lc",
            SchedulerKind::Wlc => "wlc",
            SchedulerKind::Sed => "sed",
            SchedulerKind::Nq => "nq",
            SchedulerKind::Sh => "sh",
            SchedulerKind::Mh => "mh",
        }
    }

    /// Whether the scheduler reads the client hash (sh and mh). For the others the caller may pass any value, e.g. 0,
    /// and skip computing it.
    pub const fn needs_hash(self) -> bool {
        matches!(self, SchedulerKind::Sh | SchedulerKind::Mh)
    }

    /// Whether the scheduler advances a per-worker cursor (rr and wrr).
    pub const fn uses_cursor(self) -> bool {
        matches!(self, SchedulerKind::Rr | SchedulerKind::Wrr)
    }

    /// Whether the scheduler reads live connection counts (lc, wlc, sed, nq).
    pub const fn uses_connection_counts(self) -> bool {
        matches!(
            self,
            SchedulerKind::Lc | SchedulerKind::Wlc | SchedulerKind::Sed | SchedulerKind::Nq
        )
    }
}

impl fmt::Display for SchedulerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SchedulerKind {
    type Err = ParseKindError;

    /// Parses an LVS scheduler name. ASCII case is ignored (`"WRR"` is
    /// `wrr`); surrounding whitespace is not.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SchedulerKind::ALL
            .into_iter()
            .find(|kind| kind.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| ParseKindError::new(s))
    }
}

/// An unknown scheduler name given to [`SchedulerKind::from_str`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseKindError {
    name: String,
}

impl ParseKindError {
    fn new(name: &str) -> Self {
        ParseKindError {
            name: name.to_owned(),
        }
    }

    /// The name that was not recognised.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Display for ParseKindError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown scheduler {:?} (expected one of: ", self.name)?;
        for (i, kind) in SchedulerKind::ALL.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(kind.as_str())?;
        }
        f.write_str(")")
    }
}

impl std::error::Error for ParseKindError {}

impl Default for SchedulerKind {
    /// wlc, as in ipvsadm.
    fn default() -> Self {
        SchedulerKind::Wlc
    }
}

impl Serialize for SchedulerKind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for SchedulerKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_name() {
        let names = ["rr", "wrr", "lc", "wlc", "sed", "nq", "sh", "mh"];
        for (kind, name) in SchedulerKind::ALL.into_iter().zip(names) {
            assert_eq!(kind.to_string(), name);
            assert_eq!(name.parse::<SchedulerKind>(), Ok(kind));
            assert_eq!(name.to_uppercase().parse::<SchedulerKind>(), Ok(kind));
        }
    }

    #[test]
    fn unknown_names_are_rejected_with_the_list_of_valid_ones() {
        for bad in ["", "rrr", "maglev", " rr", "wlc ", "lblc"] {
            let err = bad.parse::<SchedulerKind>().unwrap_err();
            assert_eq!(err.name(), bad);
            let msg = err.to_string();
            assert!(msg.contains("unknown scheduler"), "{msg}");
            assert!(
                msg.ends_with("(expected one of: rr, wrr, lc, wlc, sed, nq, sh, mh)"),
                "{msg}"
            );
        }
    }

    #[test]
    fn serialized_as_the_lvs_name() {
        #[derive(Serialize, Deserialize, PartialEq, Debug)]
        struct S {
            scheduler: SchedulerKind,
        }
        let s: S = toml::from_str("scheduler = \"WRR\"").unwrap();
        assert_eq!(s.scheduler, SchedulerKind::Wrr);
        assert_eq!(toml::to_string(&s).unwrap().trim(), "scheduler = \"wrr\"");
        let e = toml::from_str::<S>("scheduler = \"fastest\"").unwrap_err();
        assert!(e.to_string().contains("unknown scheduler"), "{e}");
    }

    #[test]
    fn properties() {
        use SchedulerKind::*;
        let hashed: Vec<_> = SchedulerKind::ALL
            .into_iter()
            .filter(|k| k.needs_hash())
            .collect();
        assert_eq!(hashed, [Sh, Mh]);
        let cursor: Vec<_> = SchedulerKind::ALL
            .into_iter()
            .filter(|k| k.uses_cursor())
            .collect();
        assert_eq!(cursor, [Rr, Wrr]);
        let counts: Vec<_> = SchedulerKind::ALL
            .into_iter()
            .filter(|k| k.uses_connection_counts())
            .collect();
        assert_eq!(counts, [Lc, Wlc, Sed, Nq]);
    }
}

//! [`WeightedReal`]: a real server as the schedulers see it, an identity
//! and a weight.

/// One real server of a service, as the schedulers see its configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct WeightedReal {
    /// A stable 64-bit identity, distinct within the service, e.g.
    /// [`real_identity`](crate::real_identity)`(ip, port)`. Maglev derives
    /// the real's permutation from it, so that the table does not depend on
    /// the order of the reals.
    pub identity: u64,
    /// The configured weight; 0 means the real takes no new connections
    /// (quiesced).
    pub weight: u32,
}

impl WeightedReal {
    /// A real with this identity and weight.
    pub const fn new(identity: u64, weight: u32) -> Self {
        WeightedReal { identity, weight }
    }
}

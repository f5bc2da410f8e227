//! Errors returned while building schedules and parsing configuration values.
//!
//! Everything that can fail in this crate fails at build time (when the
//! configuration changes); picking a real on the packet path never fails, it
//! returns `None` when no real can take the connection.

use std::fmt;

/// An error building a [`Schedule`](crate::Schedule) or one of its tables.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SchedError {
    /// A lookup-table size that is not a prime number. Maglev needs a prime
    /// size so that every real's permutation visits every slot; the sh
    /// table's interleaved layout relies on it too.
    TableSizeNotPrime {
        /// The rejected size.
        size: u32,
        /// The next prime within the accepted sizes, if any.
        next_prime: Option<u32>,
    },
    /// A lookup-table size below [`MIN_TABLE_SIZE`](crate::MIN_TABLE_SIZE).
    TableSizeTooSmall {
        /// The rejected size.
        size: u32,
        /// The smallest size accepted.
        min: u32,
    },
    /// A lookup-table size above [`MAX_TABLE_SIZE`](crate::MAX_TABLE_SIZE).
    TableSizeTooLarge {
        /// The rejected size.
        size: u32,
        /// The largest size accepted.
        max: u32,
    },
    /// A lookup table with fewer slots than reals of positive weight, so that
    /// some of them could never be picked.
    TableSmallerThanReals {
        /// The table size.
        size: u32,
        /// How many reals have a positive weight.
        reals: usize,
    },
    /// More reals than a schedule can index (see [`MAX_REALS`](crate::MAX_REALS)).
    TooManyReals {
        /// How many reals were given.
        count: usize,
        /// The most a schedule accepts.
        max: usize,
    },
    /// Two reals with the same identity. Maglev derives each real's
    /// permutation from its identity, so identities must be distinct.
    DuplicateIdentity {
        /// The identity both reals share.
        identity: u64,
        /// Index of the first real with it.
        first: usize,
        /// Index of the second real with it.
        second: usize,
    },
}

impl fmt::Display for SchedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            SchedError::TableSizeNotPrime { size, next_prime } => {
                write!(f, "lookup table size {size} is not a prime number")?;
                match next_prime {
                    Some(p) => write!(f, " (the next prime is {p})"),
                    None => Ok(()),
                }
            }
            SchedError::TableSizeTooSmall { size, min } => {
                write!(f, "lookup table size {size} is too small (minimum {min})")
            }
            SchedError::TableSizeTooLarge { size, max } => {
                write!(f, "lookup table size {size} is too large (maximum {max})")
            }
            SchedError::TableSmallerThanReals { size, reals } => write!(
                f,
                "lookup table size {size} is smaller than the number of reals with a positive weight ({reals}); \
                 use a prime at least 100 times larger than the number of reals"
            ),
            SchedError::TooManyReals { count, max } => {
                write!(f, "{count} reals in one service, at most {max} are supported")
            }
            SchedError::DuplicateIdentity {
                identity,
                first,
                second,
            } => write!(
                f,
                "reals #{first} and #{second} have the same identity {identity:#018x}; \
                 each real of a service needs a distinct identity (e.g. a hash of its ip:port)"
            ),
        }
    }
}

impl std::error::Error for SchedError {}

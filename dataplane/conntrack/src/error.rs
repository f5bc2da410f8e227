//! Error types.

use std::fmt;

/// Why an insert was refused. Never a panic: the data path forwards the
/// packet without an entry (by consistent hash) and counts the failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum InsertError {
    /// No free entry (or, practically never below the designed load, no
    /// room could be made in the hash index).
    Full,
    /// An entry with the same key already exists: for a connection, the
    /// same inbound key, or (NAT) the same outbound key; for a template, the
    /// same service and masked client address.
    Exists,
    /// The [`TemplateId`](crate::TemplateId) given does not name a live,
    /// hashed persistence template.
    InvalidTemplate,
}

impl fmt::Display for InsertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            InsertError::Full => "table full",
            InsertError::Exists => "entry already exists",
            InsertError::InvalidTemplate => "invalid persistence template",
        })
    }
}

impl std::error::Error for InsertError {}

/// An invalid [`TableConfig`](crate::Config).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableConfigError(pub(crate) String);

impl fmt::Display for TableConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid conntrack config: {}", self.0)
    }
}

impl std::error::Error for TableConfigError {}

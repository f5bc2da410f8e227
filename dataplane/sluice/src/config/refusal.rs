//! What a section validator returns when it refuses: the field and why.

/// A refused field: where (e.g. `port[0].addresses[1]`) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Refusal {
    pub(super) location: String,
    pub(super) reason: String,
}

/// Refuses `location` for `reason`.
pub(super) fn refuse<T>(
    location: impl Into<String>,
    reason: impl Into<String>,
) -> Result<T, Refusal> {
    Err(Refusal {
        location: location.into(),
        reason: reason.into(),
    })
}

/// The refusal of `location` for `reason`, for `map_err`.
pub(super) fn refusal(location: impl Into<String>, reason: impl Into<String>) -> Refusal {
    Refusal {
        location: location.into(),
        reason: reason.into(),
    }
}

/// Whether `s` is non-empty and all letters, digits, `-` or `_`.
pub(super) fn is_plain_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

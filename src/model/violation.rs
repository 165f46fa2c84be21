//! A rule one field of the input broke: how every layer reports bad input,
//! so the sender learns which field to fix and why.

use serde::Serialize;

/// A rule one field of the request broke.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldViolation {
    /// Path of the field in the request, e.g. `entries[3].tags[0]`.
    pub field: String,
    /// What is wrong, with the limit where one applies.
    pub description: String,
}

impl FieldViolation {
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        FieldViolation {
            field: field.into(),
            description: description.into(),
        }
    }

    /// The same violation, seen from an enclosing message.
    pub fn within(mut self, prefix: &str) -> Self {
        self.field = if self.field.is_empty() {
            prefix.to_string()
        } else if self.field.starts_with('[') {
            format!("{prefix}{}", self.field)
        } else {
            format!("{prefix}.{}", self.field)
        };
        self
    }
}

/// `field: description; ...`, the violations as one line.
pub fn describe(v: &[FieldViolation]) -> String {
    v.iter()
        .map(|v| format!("{}: {}", v.field, v.description))
        .collect::<Vec<_>>()
        .join("; ")
}

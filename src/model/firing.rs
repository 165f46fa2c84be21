//! An alert notification as the store keeps it: written by the alerts when
//! a rule fires or resolves (and again once its delivery is settled), read
//! by the API that lists them. A document of kind [`KIND`], named so that
//! names sort by time ([`Firing::name`]).

use serde::{Deserialize, Serialize};

/// The store's document kind for firings.
pub const KIND: &str = "alert_firing";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Firing {
    /// The rule's name.
    pub alert: String,
    /// `firing` or `resolved`.
    pub state: String,
    /// The rule's condition in words.
    pub condition: String,
    /// The rule's services: who may see the firing (every service when
    /// empty, so only a key limited to none).
    pub services: Vec<String>,
    /// Matching entries in the window when it was decided.
    pub count: u64,
    pub first_id: Option<u64>,
    pub last_id: Option<u64>,
    /// When it was decided, µs since the epoch.
    pub at_us: i64,
    /// `pending`, `delivered`, or `failed: REASON`.
    pub delivery: String,
    /// POSTs made so far.
    pub attempts: u32,
    /// The viewer on the rule's filter over the window.
    pub url: String,
}

impl Firing {
    /// The document name: the time first, zero-padded, so names sort as
    /// times do; the rule after it keeps two rules at one moment apart.
    pub fn name(&self) -> String {
        format!("{:020}-{}", self.at_us.max(0), self.alert)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sort_as_times() {
        let at = |at_us| Firing {
            alert: "r".into(),
            state: "firing".into(),
            condition: String::new(),
            services: Vec::new(),
            count: 0,
            first_id: None,
            last_id: None,
            at_us,
            delivery: "pending".into(),
            attempts: 0,
            url: String::new(),
        };
        assert!(at(9).name() < at(10).name());
        assert!(at(999_999_999_999_999).name() < at(1_000_000_000_000_000).name());
    }
}

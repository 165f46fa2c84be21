//! The alerts' figures in `/metrics`, by rule name.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering::Relaxed};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use super::state::Phase;
use crate::metrics::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Notified {
    rule: String,
    state: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RuleLabel {
    rule: String,
}

#[derive(Clone)]
pub struct AlertMetrics {
    /// Notifications decided, by rule and state (firing, resolved).
    notifications: Family<Notified, Counter>,
    /// Notifications that were not delivered after every attempt.
    failures: Family<RuleLabel, Counter>,
    /// Reloads of the rules file that were refused.
    pub reload_failures: Counter,
    /// 1 while the rules in force are the file's (0: its last edit was
    /// refused and the rules before it are kept).
    pub file_valid: Arc<AtomicI64>,
    /// Rules in force.
    pub rules: Arc<AtomicI64>,
    /// 1 while this node evaluates the rules (one node of a cluster does).
    pub holder: Arc<AtomicI64>,
}

impl AlertMetrics {
    pub fn new(registry: &Registry) -> Self {
        let gauge = |name: &str, help: &str, v: i64| {
            let cell = Arc::new(AtomicI64::new(v));
            let read = cell.clone();
            registry.gauge_fn(name, help, move || read.load(Relaxed));
            cell
        };
        AlertMetrics {
            notifications: registry.family(
                "taillight_alert_notifications",
                "Alert notifications, by rule and state (firing, resolved)",
            ),
            failures: registry.family(
                "taillight_alert_delivery_failures",
                "Alert notifications not delivered after every retry, by rule",
            ),
            reload_failures: registry.counter(
                "taillight_alerts_reload_failures",
                "Edits of the alerts file that were refused; the rules before stay in force",
            ),
            file_valid: gauge(
                "taillight_alerts_file_valid",
                "1 while the alert rules in force are the file's; 0 after a refused edit",
                1,
            ),
            rules: gauge("taillight_alerts_rules", "Alert rules in force", 0),
            holder: gauge(
                "taillight_alerts_holder",
                "1 while this node evaluates the alert rules",
                0,
            ),
        }
    }

    pub fn notified(&self, rule: &str, phase: Phase) {
        let state = match phase {
            Phase::Firing => "firing",
            Phase::Resolved => "resolved",
        };
        (self.notifications)
            .get_or_create(&Notified {
                rule: rule.to_string(),
                state,
            })
            .inc();
    }

    pub fn failed(&self, rule: &str) {
        (self.failures)
            .get_or_create(&RuleLabel {
                rule: rule.to_string(),
            })
            .inc();
    }
}

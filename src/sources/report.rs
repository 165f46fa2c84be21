//! What every source reports: messages taken, entries stored, rejections by
//! reason and messages lost before the intake (both logged at a bounded
//! rate, so a flood cannot flood the log), and whether its upstream is
//! reachable (`/metrics` and `/readyz`).

use std::collections::HashMap;
use std::fmt::Display;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;

use crate::health::{Health, State};
use crate::metrics::Registry;

/// At most one log line per reason in this period; the rest are counted.
const LOG_EVERY: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabel {
    source: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    source: &'static str,
    reason: &'static str,
}

/// What is logged at a bounded rate: a kind (rejected, lost) and a reason.
type LogKey = (&'static str, &'static str);

pub struct SourceReport {
    /// The source's label in every metric, and its name in `/readyz`.
    name: &'static str,
    /// Messages taken from upstream.
    received: Counter,
    /// Entries the intake acknowledged as durable.
    accepted: Counter,
    /// Messages that can never become entries, by reason.
    rejected: prometheus_client::metrics::family::Family<ReasonLabel, Counter>,
    /// Messages lost before they reached the intake, by reason.
    lost: prometheus_client::metrics::family::Family<ReasonLabel, Counter>,
    /// 1 while the source is connected to its upstream.
    up: Gauge,
    /// Times the connection was lost.
    disconnects: Counter,
    health: Health,
    /// Per kind (rejected, lost) and reason: when it was last logged, and
    /// how many messages were not logged since.
    logged: Mutex<HashMap<LogKey, (Instant, u64)>>,
}

impl SourceReport {
    pub fn new(name: &'static str, registry: &Registry, health: Health) -> Self {
        let label = SourceLabel { source: name };
        let counter = |metric: &str, help: &str| {
            registry
                .family::<SourceLabel, Counter>(metric, help)
                .get_or_create(&label)
                .clone()
        };
        SourceReport {
            name,
            received: counter(
                "taillight_source_received",
                "Messages a source took from upstream.",
            ),
            accepted: counter(
                "taillight_source_accepted",
                "Entries from a source acknowledged as durable.",
            ),
            rejected: registry.family(
                "taillight_source_rejected",
                "Messages a source could not turn into entries, by reason.",
            ),
            lost: registry.family(
                "taillight_source_lost",
                "Messages lost before they reached the intake, by reason.",
            ),
            up: registry
                .family::<SourceLabel, Gauge>(
                    "taillight_source_up",
                    "1 while a source is connected to its upstream.",
                )
                .get_or_create(&label)
                .clone(),
            disconnects: counter(
                "taillight_source_disconnects",
                "Times a source lost its upstream connection.",
            ),
            health,
            logged: Mutex::new(HashMap::new()),
        }
    }

    pub fn received(&self, n: u64) {
        self.received.inc_by(n);
    }

    pub fn accepted(&self, n: u64) {
        self.accepted.inc_by(n);
    }

    /// A message that can never be stored: counted, and logged unless this
    /// reason was logged a moment ago.
    pub fn rejected(&self, reason: &'static str, detail: impl Display, origin: &str) {
        let label = ReasonLabel {
            source: self.name,
            reason,
        };
        self.rejected.get_or_create(&label).inc();
        if let Some(also) = self.log_now("rejected", reason, 1) {
            tracing::warn!(source = self.name, origin, reason, %detail, not_logged_since = also, "message rejected");
        }
    }

    /// Messages lost on the way (pub/sub delivers at most once, and so does
    /// syslog): counted, and logged unless this reason was logged a moment
    /// ago (a flood loses in many small bites).
    pub fn lost(&self, reason: &'static str, n: u64) {
        if n == 0 {
            return;
        }
        let label = ReasonLabel {
            source: self.name,
            reason,
        };
        self.lost.get_or_create(&label).inc_by(n);
        if let Some(also) = self.log_now("lost", reason, n) {
            tracing::warn!(
                source = self.name,
                reason,
                messages = n,
                not_logged_since = also,
                "messages lost"
            );
        }
    }

    /// Whether to log `n` more messages of `kind` and `reason` now; if so,
    /// how many went unlogged before them.
    fn log_now(&self, kind: &'static str, reason: &'static str, n: u64) -> Option<u64> {
        let mut logged = self.logged.lock().unwrap_or_else(|p| p.into_inner());
        match logged.get_mut(&(kind, reason)) {
            Some((at, quiet)) if at.elapsed() < LOG_EVERY => {
                *quiet += n;
                None
            }
            Some((at, quiet)) => {
                *at = Instant::now();
                Some(std::mem::take(quiet))
            }
            None => {
                logged.insert((kind, reason), (Instant::now(), 0));
                Some(0)
            }
        }
    }

    pub fn connected(&self) {
        self.up.set(1);
        self.health.set(self.name, State::Ok);
    }

    /// The upstream went away (or cannot be reached), and why.
    pub fn disconnected(&self, why: &str) {
        if self.up.get() == 1 {
            self.disconnects.inc();
        }
        self.up.set(0);
        self.health.set(self.name, State::Degraded(why.to_string()));
    }

    /// The source waits for another node to give up a role (its lease).
    pub fn standing_by(&self, why: &str) {
        self.up.set(0);
        self.health.set(self.name, State::Ok);
        tracing::info!(source = self.name, why, "standing by");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejections_and_losses_are_counted_always_and_logged_at_a_bounded_rate() {
        let registry = Registry::default();
        let report = SourceReport::new("test", &registry, Health::default());
        assert_eq!(report.log_now("lost", "backlog", 256), Some(0));
        assert_eq!(report.log_now("lost", "backlog", 256), None);
        assert_eq!(report.log_now("lost", "backlog", 10), None);
        // Another kind or reason has a rate of its own.
        assert_eq!(report.log_now("rejected", "backlog", 1), Some(0));
        assert_eq!(report.log_now("lost", "shutdown", 1), Some(0));
        // A period later, the next line tells how many went unlogged.
        report
            .logged
            .lock()
            .unwrap()
            .get_mut(&("lost", "backlog"))
            .unwrap()
            .0 -= LOG_EVERY;
        assert_eq!(report.log_now("lost", "backlog", 1), Some(266));
        report.lost("backlog", 5);
        report.lost("backlog", 5);
        let text = registry.render();
        assert!(
            text.contains("taillight_source_lost_total{source=\"test\",reason=\"backlog\"} 10"),
            "{text}"
        );
    }
}

//! Counters exposed at `GET /metrics` in the Prometheus text format. Plain
//! atomics: the hot path pays one relaxed add per event.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Upper bounds of the batch-size histogram buckets.
const BATCH_BUCKETS: [u64; 8] = [1, 10, 100, 500, 1000, 2000, 5000, 10000];

#[derive(Default)]
pub struct Metrics {
    /// Entries acknowledged to clients.
    pub entries_accepted: AtomicU64,
    /// Entries committed to the store by the writer.
    pub entries_stored: AtomicU64,
    /// Write batches committed, and their size distribution.
    batch_count: AtomicU64,
    batch_sum: AtomicU64,
    batch_buckets: [AtomicU64; BATCH_BUCKETS.len()],
    /// Entries the writer has yet to read from its Kafka partitions.
    pub writer_lag: AtomicU64,
    /// Live tail streams open now.
    pub tail_subscribers: AtomicU64,
    /// Records dropped from slow tail subscribers (each was told).
    pub tail_skipped: AtomicU64,
    /// Errors by kind.
    pub invalid_entries: AtomicU64,
    pub store_errors: AtomicU64,
    pub queue_errors: AtomicU64,
    pub bus_errors: AtomicU64,
}

impl Metrics {
    pub fn observe_batch(&self, size: u64) {
        self.batch_count.fetch_add(1, Relaxed);
        self.batch_sum.fetch_add(size, Relaxed);
        for (i, le) in BATCH_BUCKETS.iter().enumerate() {
            if size <= *le {
                self.batch_buckets[i].fetch_add(1, Relaxed);
            }
        }
    }

    /// The text exposition; `queue_depth` is sampled by the caller.
    pub fn render(&self, queue_depth: u64) -> String {
        let mut out = String::with_capacity(2048);
        let mut counter = |name: &str, help: &str, kind: &str, v: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}"
            );
        };
        counter(
            "taillight_entries_accepted_total",
            "Entries acknowledged to clients.",
            "counter",
            self.entries_accepted.load(Relaxed),
        );
        counter(
            "taillight_entries_stored_total",
            "Entries committed to the store.",
            "counter",
            self.entries_stored.load(Relaxed),
        );
        counter(
            "taillight_queue_depth",
            "Entries queued and not yet durable.",
            "gauge",
            queue_depth,
        );
        counter(
            "taillight_writer_lag",
            "Entries on the writer's Kafka partitions not yet read.",
            "gauge",
            self.writer_lag.load(Relaxed),
        );
        counter(
            "taillight_tail_subscribers",
            "Open live tail streams.",
            "gauge",
            self.tail_subscribers.load(Relaxed),
        );
        counter(
            "taillight_tail_skipped_total",
            "Records dropped from tail subscribers that could not keep up.",
            "counter",
            self.tail_skipped.load(Relaxed),
        );
        let _ = writeln!(
            out,
            "# HELP taillight_errors_total Errors by kind.\n# TYPE taillight_errors_total counter"
        );
        for (kind, v) in [
            ("invalid_entry", &self.invalid_entries),
            ("store", &self.store_errors),
            ("queue", &self.queue_errors),
            ("bus", &self.bus_errors),
        ] {
            let _ = writeln!(
                out,
                "taillight_errors_total{{kind=\"{kind}\"}} {}",
                v.load(Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP taillight_batch_size Entries per committed write batch.\n# TYPE taillight_batch_size histogram"
        );
        for (le, b) in BATCH_BUCKETS.iter().zip(&self.batch_buckets) {
            let _ = writeln!(
                out,
                "taillight_batch_size_bucket{{le=\"{le}\"}} {}",
                b.load(Relaxed)
            );
        }
        let count = self.batch_count.load(Relaxed);
        let _ = writeln!(out, "taillight_batch_size_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(
            out,
            "taillight_batch_size_sum {}",
            self.batch_sum.load(Relaxed)
        );
        let _ = writeln!(out, "taillight_batch_size_count {count}");
        out
    }
}

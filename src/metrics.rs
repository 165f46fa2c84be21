//! Counters exposed at `GET /metrics` in the Prometheus text format. Plain
//! atomics: the hot path pays one relaxed add per event.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

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
    /// Microseconds the writer spent in each stage, so an operator (and the
    /// benchmark) can see where a slow pipeline spends its time.
    writer_us: [AtomicU64; Stage::ALL.len()],
}

/// The writer's stages, timed separately.
#[derive(Debug, Clone, Copy)]
pub enum Stage {
    /// Taking a batch from the queue (including waiting for one).
    Read = 0,
    /// The store transaction.
    Store = 1,
    /// Committing the batch to the queue (acknowledging or storing offsets).
    Commit = 2,
    /// Publishing on the bus and updating the catalogue (its own task).
    Publish = 3,
}

impl Stage {
    const ALL: [Stage; 4] = [Stage::Read, Stage::Store, Stage::Commit, Stage::Publish];

    fn name(self) -> &'static str {
        match self {
            Stage::Read => "read",
            Stage::Store => "store",
            Stage::Commit => "commit",
            Stage::Publish => "publish",
        }
    }
}

impl Metrics {
    /// Adds the time since `since` to `stage`; returns now, the start of
    /// whatever comes next.
    pub fn time(&self, stage: Stage, since: Instant) -> Instant {
        let now = Instant::now();
        self.writer_us[stage as usize]
            .fetch_add(now.duration_since(since).as_micros() as u64, Relaxed);
        now
    }

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
        let _ = writeln!(
            out,
            "# HELP taillight_writer_seconds_total Time the writer spent per stage.\n# TYPE taillight_writer_seconds_total counter"
        );
        for stage in Stage::ALL {
            let _ = writeln!(
                out,
                "taillight_writer_seconds_total{{stage=\"{}\"}} {:.6}",
                stage.name(),
                self.writer_us[stage as usize].load(Relaxed) as f64 / 1e6
            );
        }
        out
    }
}

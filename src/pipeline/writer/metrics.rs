//! What the writer reports in `/metrics`: entries stored, batch sizes, time
//! per stage, how long after receipt entries reached each point, and the
//! errors of the store, the queue and the bus.

use std::sync::atomic::AtomicU64;
use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram as Sizes;

use crate::metrics::{Histogram, Registry};
use crate::model::time;
use crate::proto::LogRecord;

/// Upper bounds of the batch-size histogram buckets.
const BATCH_BUCKETS: [f64; 8] = [1.0, 10.0, 100.0, 500.0, 1000.0, 2000.0, 5000.0, 10000.0];

/// Upper bounds, in seconds, of the entry-delay histogram buckets: from a
/// live tail's budget of a few ms up to a writer that is minutes behind.
/// Five or six per decade: with 1-2-5 buckets a p99 interpolated in 200-500
/// ms read 447 ms for a run whose clients measured 247 ms.
const DELAY_BUCKETS: [f64; 26] = [
    0.001, 0.002, 0.003, 0.005, 0.007, 0.01, 0.015, 0.02, 0.03, 0.05, 0.07, 0.1, 0.15, 0.2, 0.3,
    0.5, 0.7, 1.0, 1.5, 2.0, 3.0, 5.0, 7.0, 10.0, 30.0, 120.0,
];

/// Points of the pipeline an entry's delay is measured to, from the time the
/// receiving node stamped on it (so across nodes it includes clock skew).
#[derive(Debug, Clone, Copy)]
pub enum Point {
    /// The writer took it from the queue and started storing it.
    Read = 0,
    /// Its store transaction committed: queries can see it.
    Stored = 1,
    /// It was handed to the bus for live tails.
    Published = 2,
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

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StageLabel {
    stage: &'static str,
}

#[derive(Clone)]
pub struct WriterMetrics {
    /// Entries committed to the store.
    pub stored: Counter,
    /// Entries per committed batch.
    batches: Sizes,
    /// Seconds spent per stage (indexed by [`Stage`]), so an operator (and
    /// the benchmark) can see where a slow pipeline spends its time.
    stages: [Counter<f64, AtomicU64>; 4],
    /// How long after receipt entries reached each [`Point`]: the one figure
    /// that says how fresh the store and the live tails are.
    delays: Histogram,
    pub store_errors: Counter,
    pub queue_errors: Counter,
    pub bus_errors: Counter,
}

impl WriterMetrics {
    pub fn new(registry: &Registry) -> Self {
        let batches = Sizes::new(BATCH_BUCKETS);
        registry.register(
            "taillight_batch_size",
            "Entries per committed write batch.",
            batches.clone(),
        );
        let family = Family::<StageLabel, Counter<f64, AtomicU64>>::default();
        let stages = Stage::ALL.map(|s| {
            family
                .get_or_create(&StageLabel { stage: s.name() })
                .clone()
        });
        registry.register(
            "taillight_writer_seconds",
            "Time the writer spent per stage.",
            family,
        );
        let delays = Histogram::new("point", &["read", "stored", "published"], &DELAY_BUCKETS);
        registry.register(
            "taillight_entry_delay_seconds",
            "Time from an entry's receipt to a point of the pipeline: read by the writer, stored, published to live tails.",
            delays.clone(),
        );
        WriterMetrics {
            stored: registry.counter(
                "taillight_entries_stored",
                "Entries committed to the store.",
            ),
            batches,
            stages,
            delays,
            store_errors: registry.error("store"),
            queue_errors: registry.error("queue"),
            bus_errors: registry.error("bus"),
        }
    }

    /// Adds the time since `since` to `stage`; returns now, the start of
    /// whatever comes next.
    pub fn time(&self, stage: Stage, since: Instant) -> Instant {
        let now = Instant::now();
        self.stages[stage as usize].inc_by(now.duration_since(since).as_secs_f64());
        now
    }

    pub fn observe_batch(&self, size: u64) {
        self.batches.observe(size as f64);
    }

    /// Records that entries received at `received_us` (microseconds since the
    /// epoch) reached `point` now.
    pub fn observe_delays(&self, point: Point, received_us: impl IntoIterator<Item = i64>) {
        let now = time::now_micros();
        self.delays.observe_many(
            point as usize,
            received_us
                .into_iter()
                .map(|r| now.saturating_sub(r).max(0) as f64 / 1e6),
        );
    }
}

/// When the receiving node stamped a stored record.
pub(super) fn received_us(r: &LogRecord) -> i64 {
    r.received_time.as_ref().map_or(0, time::to_micros)
}

//! A validated entry on its way from a way in, through the queue, to the
//! store.

use crate::proto::LogEntry;

/// A validated entry on its way to the store.
#[derive(Debug, Clone, PartialEq)]
pub struct QueuedEntry {
    /// The entry as validated; `time` and `level` are always set.
    pub entry: LogEntry,
    /// When the server received it, in microseconds since the epoch.
    pub received_us: i64,
    /// Where the entry sits in a durable log (Kafka partition and offset), so
    /// a redelivery can be recognised and stored once: with `received_us`,
    /// since a new topic numbers its offsets from 0 again. `None` in memory.
    pub source: Option<SourcePosition>,
    /// A key naming the entry at its origin (a Redis stream entry's id), so
    /// that the same entry handed over twice is stored once, however it
    /// travelled. At most [`MAX_DEDUP_KEY`] bytes.
    pub dedup_key: Option<String>,
}

/// Longest dedup key, in bytes (the stores' indexed column width).
pub const MAX_DEDUP_KEY: usize = 255;

/// A position in the Kafka topic between ingest and writers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SourcePosition {
    pub partition: i32,
    pub offset: i64,
}

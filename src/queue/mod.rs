//! The queue between ingestion and the writer.
//!
//! The API hands validated entries to a [`Producer`]; the writer pulls batches
//! from a [`Consumer`], stores them, and only then commits the batch. What
//! "durable" means for an acknowledged push differs by backend and is the
//! producer's to decide: the in-process queue acknowledges after the store
//! commit, Kafka after the broker acknowledged.

pub mod kafka;
pub mod memory;
mod stall;

use async_trait::async_trait;
use futures::future::BoxFuture;

use crate::proto::LogEntry;

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("the queue is shutting down")]
    Closed,
    #[error("the store could not commit the batch: {0}")]
    StoreFailed(String),
    #[error("the queue is unavailable: {0}")]
    Unavailable(String),
    #[error("timed out waiting for the queue after {0:?}")]
    Timeout(std::time::Duration),
}

impl From<QueueError> for tonic::Status {
    fn from(e: QueueError) -> Self {
        match e {
            QueueError::Timeout(_) => tonic::Status::deadline_exceeded(e.to_string()),
            _ => tonic::Status::unavailable(e.to_string()),
        }
    }
}

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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SourcePosition {
    pub partition: i32,
    pub offset: i64,
}

/// Resolves once the submitted entries are durable.
pub type Durable = BoxFuture<'static, Result<(), QueueError>>;

#[async_trait]
pub trait Producer: Send + Sync + 'static {
    /// Queues entries, waiting while the queue is full (backpressure). The
    /// returned future resolves once every entry is durable, so callers can
    /// submit again before the previous submission is acknowledged.
    async fn submit(&self, entries: Vec<QueuedEntry>) -> Result<Durable, QueueError>;

    /// Entries queued but not yet durable, for metrics.
    fn depth(&self) -> u64;
}

/// One batch pulled by the writer and the means to commit it afterwards.
pub struct Batch<T> {
    pub entries: Vec<QueuedEntry>,
    pub token: T,
}

#[async_trait]
pub trait Consumer: Send + 'static {
    type Token: Send + 'static;

    /// Waits for the next batch of at most about `max` entries. `None` once
    /// the queue is closed and drained.
    async fn next_batch(&mut self, max: usize) -> Result<Option<Batch<Self::Token>>, QueueError>;

    /// Adds to `batch`, up to about `max` entries, what has already arrived,
    /// without waiting: a batch read early takes in what came meanwhile.
    fn top_up(&mut self, batch: &mut Batch<Self::Token>, max: usize);

    /// The batch is stored: acknowledge it so it is never delivered again.
    async fn commit(&mut self, token: Self::Token) -> Result<(), QueueError>;

    /// The batch could not be stored.
    async fn abort(&mut self, token: Self::Token, error: String);
}

//! What every queue backend promises: a [`Producer`] the intake submits to,
//! a [`Consumer`] the writer pulls batches from and commits after storing.

use async_trait::async_trait;
use futures::future::BoxFuture;

use crate::model::QueuedEntry;

#[derive(Debug, Clone, thiserror::Error)]
pub enum QueueError {
    #[error("the queue is shutting down")]
    Closed,
    #[error("the store could not commit the batch: {0}")]
    StoreFailed(String),
    /// The store's disk is full: nothing of the batch was stored, and a
    /// retry passes once space returns.
    #[error("the store is out of space: {0}")]
    StoreFull(String),
    #[error("the queue is unavailable: {0}")]
    Unavailable(String),
    #[error("timed out waiting for the queue after {0:?}")]
    Timeout(std::time::Duration),
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

    /// The batch could not be stored, for `error`.
    async fn abort(&mut self, token: Self::Token, error: QueueError);
}

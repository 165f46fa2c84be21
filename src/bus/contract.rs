//! What every bus promises: committed batches to every subscriber, and a
//! word when some were lost; and the catalogue kept beside the store.

use std::sync::Arc;

use async_trait::async_trait;
use futures::stream::BoxStream;

use crate::proto::LogRecord;

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("the bus is unavailable: {0}")]
    Unavailable(String),
}

/// Records of one committed batch, in id order, shared by every receiver.
pub type RecordBatch = Arc<Vec<LogRecord>>;

#[derive(Debug, Clone)]
pub enum BusEvent {
    Records(RecordBatch),
    /// Some published batches were not received; what follows may not be
    /// contiguous with what came before.
    Gap,
    /// The feed is down; no records arrive until [`BusEvent::Up`].
    Down(String),
    /// The feed is back (a `Gap` is implied).
    Up,
}

/// The service and tag sets kept beside the store (in Redis, as the seed
/// kept them) so listing them never touches the database. The store stays
/// the source of truth: a catalogue that is empty, was flushed, or cannot be
/// reached answers `None`, and callers ask the store and `fill` it again.
#[async_trait]
pub trait Catalog: Send + Sync + 'static {
    /// Adds the services and tags of committed records.
    async fn remember(&self, records: &[LogRecord]) -> Result<(), BusError>;

    /// Adds the store's full sets and marks the catalogue complete.
    async fn fill(&self, sets: Vec<(String, Vec<String>)>) -> Result<(), BusError>;

    /// Every service, sorted; `None` unless the catalogue is complete.
    async fn services(&self) -> Result<Option<Vec<String>>, BusError>;

    /// A service's tags, sorted; `None` unless the catalogue is complete.
    async fn tags(&self, service: &str) -> Result<Option<Vec<String>>, BusError>;
}

#[async_trait]
pub trait Bus: Send + Sync + 'static {
    async fn publish(&self, records: RecordBatch) -> Result<(), BusError>;

    /// One subscription; a node takes exactly one and fans it out itself.
    fn subscribe(&self) -> BoxStream<'static, BusEvent>;
}

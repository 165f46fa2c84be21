//! The embedded bus: a tokio broadcast channel within one process.

use async_trait::async_trait;
use futures::StreamExt;
use futures::stream::BoxStream;
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

use super::contract::{Bus, BusError, BusEvent, RecordBatch};

pub struct MemoryBus {
    /// Lagging receivers lose the oldest batches and see a `Gap` instead.
    tx: broadcast::Sender<RecordBatch>,
}

impl MemoryBus {
    /// `capacity` batches are kept for a receiver that falls behind.
    pub fn new(capacity: usize) -> Self {
        MemoryBus {
            tx: broadcast::channel(capacity.max(1)).0,
        }
    }
}

#[async_trait]
impl Bus for MemoryBus {
    async fn publish(&self, records: RecordBatch) -> Result<(), BusError> {
        // No receivers is not an error: nobody is tailing.
        let _ = self.tx.send(records);
        Ok(())
    }

    fn subscribe(&self) -> BoxStream<'static, BusEvent> {
        BroadcastStream::new(self.tx.subscribe())
            .map(|r| match r {
                Ok(batch) => BusEvent::Records(batch),
                Err(BroadcastStreamRecvError::Lagged(_)) => BusEvent::Gap,
            })
            .boxed()
    }
}

//! The writer: pulls batches from the queue, stores each in one transaction,
//! then commits the batch to the queue (acknowledging the pushers or storing
//! Kafka offsets) and publishes the stored records on the bus.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use crate::bus::{Bus, Catalog};
use crate::metrics::Metrics;
use crate::queue::Consumer;
use crate::storage::Store;

/// Pause after a failed batch, so a broken database is not hammered.
const RETRY_PAUSE: Duration = Duration::from_millis(200);

pub struct Writer<C: Consumer> {
    pub consumer: C,
    pub store: Arc<dyn Store>,
    pub bus: Arc<dyn Bus>,
    /// Told the services and tags of each committed batch, when configured.
    pub catalog: Option<Arc<dyn Catalog>>,
    pub metrics: Arc<Metrics>,
    /// Most entries per transaction: larger batches amortise the commit, but
    /// delay the acknowledgement of everything in them.
    pub max_batch: usize,
    /// Fault injection for tests: abort the process after this many stored
    /// batches, between the store commit and the queue commit.
    pub abort_after_store: Option<u64>,
}

impl<C: Consumer> Writer<C> {
    /// Runs until the queue is closed and drained.
    pub async fn run(mut self) {
        let mut stored_batches = 0u64;
        loop {
            let batch = match self.consumer.next_batch(self.max_batch).await {
                Ok(Some(b)) => b,
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "queue read failed");
                    self.metrics.queue_errors.fetch_add(1, Relaxed);
                    tokio::time::sleep(RETRY_PAUSE).await;
                    continue;
                }
            };
            let n = batch.entries.len() as u64;
            match self.store.insert(batch.entries).await {
                Ok(records) => {
                    stored_batches += 1;
                    if self.abort_after_store == Some(stored_batches) {
                        tracing::error!("fault injection: aborting between store and queue commit");
                        std::process::abort();
                    }
                    if let Err(e) = self.consumer.commit(batch.token).await {
                        // Stored but not committed: a redelivery is recognised
                        // by its source position and not stored twice.
                        tracing::warn!(error = %e, "queue commit failed");
                        self.metrics.queue_errors.fetch_add(1, Relaxed);
                    }
                    self.metrics
                        .entries_stored
                        .fetch_add(records.len() as u64, Relaxed);
                    self.metrics.observe_batch(n);
                    if let Some(cat) = &self.catalog
                        && !records.is_empty()
                        && let Err(e) = cat.remember(&records).await
                    {
                        // The store stays the source of truth for listings.
                        tracing::debug!(error = %e, "catalogue update failed");
                    }
                    if !records.is_empty()
                        && let Err(e) = self.bus.publish(Arc::new(records)).await
                    {
                        // Tails repair the hole from the store.
                        tracing::warn!(error = %e, "publish failed");
                        self.metrics.bus_errors.fetch_add(1, Relaxed);
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, entries = n, "storing a batch failed");
                    self.metrics.store_errors.fetch_add(1, Relaxed);
                    self.consumer.abort(batch.token, e.to_string()).await;
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
            }
        }
    }
}

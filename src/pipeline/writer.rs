//! The writer: pulls batches from the queue, stores each in one transaction,
//! then commits the batch to the queue (acknowledging the pushers or storing
//! Kafka offsets) and hands the stored records to the publisher. The next
//! batch is read while the current one is being stored.
//!
//! Publishing (and the service/tag catalogue) runs in its own task, in
//! commit order, so a Redis round trip never delays the next transaction;
//! a bounded channel between the two keeps a slow bus from growing memory.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::bus::{Bus, Catalog};
use crate::metrics::{Metrics, Stage};
use crate::proto::LogRecord;
use crate::queue::{Batch, Consumer};
use crate::storage::Store;

/// Pause after a failed batch, so a broken database is not hammered.
const RETRY_PAUSE: Duration = Duration::from_millis(200);

/// Stored batches waiting for the publisher before the writer waits too.
const PUBLISH_BACKLOG: usize = 32;

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
    /// Runs until the queue is closed and drained, and everything stored
    /// has been published.
    pub async fn run(mut self) {
        let (to_publisher, backlog) = mpsc::channel(PUBLISH_BACKLOG);
        let publisher = tokio::spawn(publish(
            backlog,
            self.bus.clone(),
            self.catalog.clone(),
            self.metrics.clone(),
        ));
        let mut stored_batches = 0u64;
        // The batch read while the previous one was being stored.
        let mut ahead: Option<Batch<C::Token>> = None;
        loop {
            let t = Instant::now();
            let batch = match ahead.take() {
                Some(b) => b,
                None => match self.consumer.next_batch(self.max_batch).await {
                    Ok(Some(b)) => b,
                    Ok(None) => break,
                    Err(e) => {
                        self.read_failed(&e);
                        tokio::time::sleep(RETRY_PAUSE).await;
                        continue;
                    }
                },
            };
            // Includes waiting for the first entry when the queue is idle.
            let t = self.metrics.time(Stage::Read, t);
            let n = batch.entries.len() as u64;
            // Read (fetch and decode) the next batch while this one is in
            // the database, so the two overlap instead of taking turns.
            // Both reads are cancel-safe: if the store finishes first, the
            // read is dropped before it has taken anything.
            let storing = self.store.insert(batch.entries);
            tokio::pin!(storing);
            let stored = tokio::select! {
                r = &mut storing => r,
                next = self.consumer.next_batch(self.max_batch) => {
                    match next {
                        Ok(b) => ahead = b,
                        Err(e) => self.read_failed(&e),
                    }
                    storing.await
                }
            };
            let t = self.metrics.time(Stage::Store, t);
            // What arrived during the store joins the batch read early, as it
            // would have joined a batch read now.
            if let Some(next) = ahead.as_mut() {
                self.consumer.top_up(next, self.max_batch);
            }
            let t = self.metrics.time(Stage::Read, t);
            match stored {
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
                    self.metrics.time(Stage::Commit, t);
                    self.metrics
                        .entries_stored
                        .fetch_add(records.len() as u64, Relaxed);
                    self.metrics.observe_batch(n);
                    if !records.is_empty() && to_publisher.send(records).await.is_err() {
                        tracing::error!("the publisher stopped; live tails repair from the store");
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, entries = n, "storing a batch failed");
                    self.metrics.store_errors.fetch_add(1, Relaxed);
                    // The batch read ahead goes back too, newest first: a
                    // rewinding queue then resumes at the failed batch, so
                    // nothing is stored out of order.
                    if let Some(next) = ahead.take() {
                        self.consumer.abort(next.token, e.to_string()).await;
                    }
                    self.consumer.abort(batch.token, e.to_string()).await;
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
            }
        }
        drop(to_publisher);
        if let Err(e) = publisher.await {
            tracing::error!(error = %e, "publisher task failed");
        }
    }

    /// A failed queue read: logged and counted; the caller decides whether
    /// to pause.
    fn read_failed(&self, e: &crate::queue::QueueError) {
        tracing::warn!(error = %e, "queue read failed");
        self.metrics.queue_errors.fetch_add(1, Relaxed);
    }
}

/// Publishes stored batches in commit order and updates the catalogue.
async fn publish(
    mut backlog: mpsc::Receiver<Vec<LogRecord>>,
    bus: Arc<dyn Bus>,
    catalog: Option<Arc<dyn Catalog>>,
    metrics: Arc<Metrics>,
) {
    while let Some(records) = backlog.recv().await {
        let t = Instant::now();
        if let Some(cat) = &catalog
            && let Err(e) = cat.remember(&records).await
        {
            // The store stays the source of truth for listings.
            tracing::debug!(error = %e, "catalogue update failed");
        }
        if let Err(e) = bus.publish(Arc::new(records)).await {
            // Tails repair the hole from the store.
            tracing::warn!(error = %e, "publish failed");
            metrics.bus_errors.fetch_add(1, Relaxed);
        }
        metrics.time(Stage::Publish, t);
    }
}

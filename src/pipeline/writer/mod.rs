//! The writer: pulls batches from the queue, stores each in one transaction,
//! then commits the batch to the queue (acknowledging the pushers or storing
//! Kafka offsets) and hands the stored records to the publisher. The next
//! batch is read while the store works, and where the store keeps commit
//! order (MariaDB) up to its pipeline depth of batches are stored at once.
//!
//! Publishing (and the service/tag catalogue) runs in its own task, in
//! commit order, so a Redis round trip never delays the next transaction;
//! a bounded channel between the two keeps a slow bus from growing memory.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::{JoinError, JoinHandle};

use crate::bus::{Bus, Catalog};
use crate::net::backoff::Backoff;
use crate::proto::LogRecord;
use crate::queue::{AnyConsumer, AnyToken, Batch, QueueError};
use crate::storage::{Store, StoreError};
pub use metrics::WriterMetrics;
use metrics::{Point, Stage, received_us};

mod metrics;
mod publish;

/// Pause after a failed read or batch, so a broken queue or database is not
/// hammered.
const RETRY_PAUSE: Duration = Duration::from_millis(200);

/// Where the pause between attempts at a failing batch stops doubling: the
/// longest a recovered database waits for the writer.
const MAX_STORE_RETRY_PAUSE: Duration = Duration::from_secs(2);

/// Stored batches waiting for the publisher before the writer waits too.
const PUBLISH_BACKLOG: usize = 8;

/// The writer's flags.
#[derive(Debug, Clone, clap::Args)]
pub struct WriterArgs {
    /// Most entries the writer commits in one transaction. By default 5,000
    /// with SQLite, whose fsync per commit is worth spreading over many
    /// entries, and 2,500 with Kafka and MariaDB, where smaller batches hold
    /// less memory and reach live tails sooner at the same throughput (see
    /// docs/benchmarks/memory.md).
    #[arg(long, env = "TAILLIGHT_BATCH_MAX")]
    pub batch_max: Option<usize>,
    /// Fault injection for the exactly-once test: abort the process after the
    /// Nth stored batch, before its queue offsets are committed.
    #[arg(long, env = "TAILLIGHT_FAULT_ABORT_AFTER_STORE", hide = true)]
    pub fault_abort_after_store: Option<u64>,
    /// Fault injection for the readiness test: the writer's task panics
    /// after the Nth stored batch, as a bug would end it.
    #[arg(long, env = "TAILLIGHT_FAULT_PANIC_AFTER_STORE", hide = true)]
    pub fault_panic_after_store: Option<u64>,
}

impl WriterArgs {
    /// Most entries per write transaction, given or the default for a queue
    /// that is Kafka (`kafka`) or in process.
    pub fn batch_max(&self, kafka: bool) -> usize {
        let default = if kafka { 2_500 } else { 5_000 };
        self.batch_max.unwrap_or(default).max(1)
    }
}

pub struct Writer {
    pub consumer: AnyConsumer,
    pub store: Arc<dyn Store>,
    pub bus: Arc<dyn Bus>,
    /// Told the services and tags of each committed batch, when configured.
    pub catalog: Option<Arc<dyn Catalog>>,
    pub metrics: WriterMetrics,
    /// Most entries per transaction: larger batches amortise the commit, but
    /// delay the acknowledgement of everything in them.
    pub max_batch: usize,
    /// Fault injection for tests: abort the process after this many stored
    /// batches, between the store commit and the queue commit.
    pub abort_after_store: Option<u64>,
    /// Fault injection: panic after this many stored batches.
    pub panic_after_store: Option<u64>,
}

/// A batch in the store.
struct InFlight {
    token: AnyToken,
    entries: u64,
    storing: JoinHandle<Result<Vec<LogRecord>, StoreError>>,
}

/// What the writer waited for.
enum Event {
    Stored(Result<Vec<LogRecord>, StoreError>),
    Read(Result<Option<Batch<AnyToken>>, QueueError>),
}

impl Writer {
    /// Runs until the queue is closed and drained, and everything stored
    /// has been published.
    pub async fn run(mut self) {
        let (to_publisher, backlog) = mpsc::channel(PUBLISH_BACKLOG);
        let publisher = tokio::spawn(publish::run(
            backlog,
            self.bus.clone(),
            self.catalog.clone(),
            self.metrics.clone(),
        ));
        let depth = self.store.pipeline_depth().max(1);
        let mut stored_batches = 0u64;
        // Batches in the store, oldest first: they commit in this order.
        let mut in_flight: VecDeque<InFlight> = VecDeque::new();
        // The batch read while the store had no room for it.
        let mut ahead: Option<Batch<AnyToken>> = None;
        let mut closed = false;
        // A store that keeps failing (down, full, locked) is asked less and
        // less often, so its log and its load stay small while it recovers.
        let mut retry = Backoff::new(RETRY_PAUSE, MAX_STORE_RETRY_PAUSE);
        loop {
            let t = Instant::now();
            if in_flight.len() < depth
                && let Some(mut batch) = ahead.take()
            {
                // What arrived since it was read joins it, as it would have
                // joined a batch read now.
                self.consumer.top_up(&mut batch, self.max_batch);
                self.metrics.time(Stage::Read, t);
                in_flight.push_back(self.start(batch));
                continue;
            }
            let Some(oldest) = in_flight.front_mut() else {
                if closed {
                    break;
                }
                // Idle; includes waiting for the first entry.
                let next = self.consumer.next_batch(self.max_batch).await;
                self.metrics.time(Stage::Read, t);
                self.read(next, &mut ahead, &mut closed).await;
                continue;
            };
            // Read the next batch while the store works, so the two overlap
            // instead of taking turns. The read is cancel-safe: if the store
            // finishes first, it is dropped before it has taken anything.
            let event = if ahead.is_none() && !closed {
                tokio::select! {
                    r = &mut oldest.storing => Event::Stored(joined(r)),
                    next = self.consumer.next_batch(self.max_batch) => Event::Read(next),
                }
            } else {
                Event::Stored(joined((&mut oldest.storing).await))
            };
            match event {
                Event::Read(next) => {
                    self.metrics.time(Stage::Read, t);
                    self.read(next, &mut ahead, &mut closed).await;
                }
                Event::Stored(stored) => {
                    let t = self.metrics.time(Stage::Store, t);
                    let Some(done) = in_flight.pop_front() else {
                        continue;
                    };
                    match stored {
                        Ok(records) => {
                            retry.reset();
                            stored_batches += 1;
                            if self.abort_after_store == Some(stored_batches) {
                                tracing::error!(
                                    "fault injection: aborting between store and queue commit"
                                );
                                std::process::abort();
                            }
                            if self.panic_after_store == Some(stored_batches) {
                                panic!("fault injection: the writer's task panics");
                            }
                            if let Err(e) = self.consumer.commit(done.token).await {
                                // Stored but not committed: a redelivery is
                                // recognised by its source position and not
                                // stored twice.
                                tracing::warn!(error = %e, "queue commit failed");
                                self.metrics.queue_errors.inc();
                            }
                            self.metrics.time(Stage::Commit, t);
                            self.metrics.stored.inc_by(records.len() as u64);
                            self.metrics.observe_batch(done.entries);
                            self.metrics
                                .observe_delays(Point::Stored, records.iter().map(received_us));
                            if !records.is_empty() && to_publisher.send(records).await.is_err() {
                                tracing::error!(
                                    "the publisher stopped; live tails repair from the store"
                                );
                            }
                        }
                        Err(e) => {
                            let pause = retry.step();
                            self.failed(done, e, pause, &mut in_flight, &mut ahead)
                                .await;
                            tokio::time::sleep(pause).await;
                        }
                    }
                }
            }
        }
        drop(to_publisher);
        if let Err(e) = publisher.await {
            tracing::error!(error = %e, "publisher task failed");
        }
    }

    /// Hands a batch to the store, behind the batches already there.
    fn start(&self, batch: Batch<AnyToken>) -> InFlight {
        self.metrics
            .observe_delays(Point::Read, batch.entries.iter().map(|q| q.received_us));
        InFlight {
            token: batch.token,
            entries: batch.entries.len() as u64,
            // Its own task, so building its rows can use another core.
            storing: tokio::spawn(self.store.clone().start_insert(batch.entries)),
        }
    }

    /// Takes in the result of a queue read.
    async fn read(
        &mut self,
        next: Result<Option<Batch<AnyToken>>, QueueError>,
        ahead: &mut Option<Batch<AnyToken>>,
        closed: &mut bool,
    ) {
        match next {
            Ok(Some(batch)) => *ahead = Some(batch),
            Ok(None) => *closed = true,
            Err(e) => {
                tracing::warn!(error = %e, "queue read failed");
                self.metrics.queue_errors.inc();
                tokio::time::sleep(RETRY_PAUSE).await;
            }
        }
    }

    /// The oldest batch in the store failed. Every later batch fails with it
    /// (the store commits them only after it), so all go back to the queue,
    /// newest first: a rewinding queue then resumes at the failed batch, and
    /// nothing is stored out of order.
    async fn failed(
        &mut self,
        batch: InFlight,
        e: StoreError,
        retry_in: Duration,
        in_flight: &mut VecDeque<InFlight>,
        ahead: &mut Option<Batch<AnyToken>>,
    ) {
        tracing::error!(error = %e, entries = batch.entries, ?retry_in, "storing a batch failed; it will be stored again");
        self.metrics.store_errors.inc();
        let e = match e.is_full() {
            true => QueueError::StoreFull(e.to_string()),
            false => QueueError::StoreFailed(e.to_string()),
        };
        if let Some(next) = ahead.take() {
            self.consumer.abort(next.token, e.clone()).await;
        }
        while let Some(mut later) = in_flight.pop_back() {
            if let Ok(records) = joined((&mut later.storing).await) {
                // Cannot happen with a store that keeps its order; if it
                // did, the redelivery is recognised by its source position.
                tracing::error!(
                    stored = records.len(),
                    "a batch committed after an earlier one failed"
                );
            }
            self.consumer.abort(later.token, e.clone()).await;
        }
        self.consumer.abort(batch.token, e).await;
    }
}

/// A store task's result; a panicked task stored nothing.
fn joined(
    r: Result<Result<Vec<LogRecord>, StoreError>, JoinError>,
) -> Result<Vec<LogRecord>, StoreError> {
    r.unwrap_or_else(|e| Err(StoreError::Refused(format!("the store task failed: {e}"))))
}

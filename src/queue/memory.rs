//! The embedded queue: a bounded in-process channel. Nothing here survives a
//! crash, so a push is acknowledged only once the writer has committed it.

use std::sync::Arc;

use async_trait::async_trait;
use futures::FutureExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::contract::{Batch, Consumer, Durable, Producer, QueueError};
use crate::model::QueuedEntry;

/// Entries of one `submit` call, acknowledged together.
pub struct Submission {
    entries: Vec<QueuedEntry>,
    /// Told the outcome once the batch holding these entries commits.
    ack: oneshot::Sender<Result<(), QueueError>>,
    /// Holds the queue capacity these entries occupy until they are stored.
    _permit: OwnedSemaphorePermit,
}

/// Creates a queue holding at most `capacity` entries not yet stored. Once
/// `closed` is cancelled it takes no more, and the consumer ends when it has
/// handed out what it holds.
pub fn channel(capacity: usize, closed: CancellationToken) -> (MemoryProducer, MemoryConsumer) {
    let (tx, rx) = mpsc::unbounded_channel();
    let permits = Arc::new(Semaphore::new(capacity));
    (
        MemoryProducer {
            tx,
            permits: permits.clone(),
            capacity,
        },
        MemoryConsumer {
            rx,
            next: None,
            permits,
            closed,
        },
    )
}

#[derive(Clone)]
pub struct MemoryProducer {
    /// Unbounded, because the semaphore bounds it by entries, not messages.
    tx: mpsc::UnboundedSender<Submission>,
    /// One permit per queued entry: the backpressure.
    permits: Arc<Semaphore>,
    /// The semaphore's size, to report depth and clamp oversized submissions.
    capacity: usize,
}

#[async_trait]
impl Producer for MemoryProducer {
    async fn submit(&self, entries: Vec<QueuedEntry>) -> Result<Durable, QueueError> {
        // A submission larger than the whole queue waits for all of it.
        let n = entries.len().clamp(1, self.capacity) as u32;
        let permit = self
            .permits
            .clone()
            .acquire_many_owned(n)
            .await
            .map_err(|_| QueueError::Closed)?;
        let (ack, done) = oneshot::channel();
        self.tx
            .send(Submission {
                entries,
                ack,
                _permit: permit,
            })
            .map_err(|_| QueueError::Closed)?;
        Ok(done.map(|r| r.unwrap_or(Err(QueueError::Closed))).boxed())
    }

    fn depth(&self) -> u64 {
        (self.capacity - self.permits.available_permits()) as u64
    }
}

pub struct MemoryConsumer {
    rx: mpsc::UnboundedReceiver<Submission>,
    /// A submission received but left for the next batch because it would
    /// have made this one too large.
    next: Option<Submission>,
    /// The producer's permits, closed with the queue so that submissions
    /// waiting for room fail instead of waiting for a consumer that is gone.
    permits: Arc<Semaphore>,
    /// Cancelled when the queue is to drain and end.
    closed: CancellationToken,
}

#[async_trait]
impl Consumer for MemoryConsumer {
    type Token = Vec<Submission>;

    async fn next_batch(&mut self, max: usize) -> Result<Option<Batch<Self::Token>>, QueueError> {
        let first = match self.next.take() {
            Some(s) => s,
            None => tokio::select! {
                biased;
                s = self.rx.recv() => match s {
                    Some(s) => s,
                    None => return Ok(None),
                },
                _ = self.closed.cancelled() => {
                    self.permits.close();
                    match self.rx.try_recv() {
                        Ok(s) => s,
                        Err(_) => return Ok(None),
                    }
                }
            },
        };
        let mut batch = Batch {
            entries: Vec::new(),
            token: Vec::new(),
        };
        add(&mut batch, first);
        // Group commit: take whatever else is already waiting, never wait for
        // more. Under load batches grow by themselves; when idle, latency stays low.
        self.top_up(&mut batch, max);
        Ok(Some(batch))
    }

    fn top_up(&mut self, batch: &mut Batch<Self::Token>, max: usize) {
        while batch.entries.len() < max {
            let next = match self.next.take() {
                Some(s) => s,
                None => match self.rx.try_recv() {
                    Ok(s) => s,
                    Err(_) => break,
                },
            };
            if batch.entries.len() + next.entries.len() > max {
                self.next = Some(next);
                break;
            }
            add(batch, next);
        }
    }

    async fn commit(&mut self, token: Self::Token) -> Result<(), QueueError> {
        for s in token {
            // The pusher may have gone away; its entries are stored regardless.
            let _ = s.ack.send(Ok(()));
        }
        Ok(())
    }

    async fn abort(&mut self, token: Self::Token, error: QueueError) {
        for s in token {
            let _ = s.ack.send(Err(error.clone()));
        }
    }
}

/// Moves a submission's entries into `batch`, keeping the submission to
/// acknowledge it.
fn add(batch: &mut Batch<Vec<Submission>>, mut s: Submission) {
    batch.entries.append(&mut s.entries);
    batch.token.push(s);
}

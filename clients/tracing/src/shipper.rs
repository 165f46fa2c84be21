//! Sending entries: batches of up to [`Builder::batch`] entries, sent as
//! soon as one is full or [`Builder::linger`] after its first entry, one
//! `PushLogs` call each. A batch the server could not take is sent again
//! with backoff, while new entries wait in the bounded buffer; an entry the
//! server refuses as invalid is left out and counted.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use prost::Message as _;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tonic::Code;
use tonic::transport::{Channel, Endpoint};

use crate::layer::TaillightLayer;
use crate::proto::log_service_client::LogServiceClient;
use crate::proto::{LogEntry, PushLogsRequest};

/// First pause before sending a refused batch again.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
/// Longest pause between attempts while the server stays away.
const BACKOFF_MAX: Duration = Duration::from_secs(10);
/// Most encoded bytes per call, well under the server's 4 MiB message limit.
const BATCH_BYTES: usize = 1 << 20;

/// How to reach the server and how much to hold.
pub struct Builder {
    server: String,
    service: String,
    buffer: usize,
    batch: usize,
    linger: Duration,
}

impl Builder {
    /// Entries of `service`, shipped to the taillight server at `server`
    /// (`http://HOST:PORT`).
    pub fn new(server: impl Into<String>, service: impl Into<String>) -> Self {
        Builder {
            server: server.into(),
            service: service.into(),
            buffer: 10_000,
            batch: 500,
            linger: Duration::from_millis(200),
        }
    }

    /// Most entries waiting to be sent (default 10,000): the memory bound
    /// while the server is slow or away. Beyond it, events are dropped.
    pub fn buffer(mut self, entries: usize) -> Self {
        self.buffer = entries.max(1);
        self
    }

    /// Most entries per call (default 500).
    pub fn batch(mut self, entries: usize) -> Self {
        self.batch = entries.max(1);
        self
    }

    /// Longest an entry waits for more to share its call (default 200 ms).
    pub fn linger(mut self, linger: Duration) -> Self {
        self.linger = linger;
        self
    }

    /// The layer to install, and the shipper to run; fails on a malformed
    /// server URL. Nothing connects until the first batch is sent.
    pub fn build(self) -> Result<(TaillightLayer, Shipper), tonic::transport::Error> {
        let channel = Endpoint::from_shared(self.server)?
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .connect_lazy();
        let (tx, rx) = mpsc::channel(self.buffer);
        let stats = Arc::new(Counters::default());
        let layer = TaillightLayer {
            tx,
            service: self.service,
            dropped: stats.dropped.clone(),
        };
        let shipper = Shipper {
            client: LogServiceClient::new(channel),
            rx,
            batch: self.batch,
            linger: self.linger,
            stats,
        };
        Ok((layer, shipper))
    }
}

#[derive(Default)]
struct Counters {
    /// Dropped by the layer (buffer full); shared with it.
    dropped: Arc<AtomicU64>,
    sent: AtomicU64,
    rejected: AtomicU64,
    retries: AtomicU64,
}

/// What the shipper has done so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Entries the server acknowledged.
    pub sent: u64,
    /// Events dropped because the buffer was full.
    pub dropped: u64,
    /// Entries the server refused as invalid.
    pub rejected: u64,
    /// Calls sent again after a failure.
    pub retries: u64,
}

/// Sends the layer's entries; run it on a tokio runtime with [`Shipper::spawn`].
pub struct Shipper {
    client: LogServiceClient<Channel>,
    rx: mpsc::Receiver<LogEntry>,
    batch: usize,
    linger: Duration,
    stats: Arc<Counters>,
}

/// Controls a running shipper.
pub struct Handle {
    stats: Arc<Counters>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Handle {
    pub fn stats(&self) -> Stats {
        stats(&self.stats)
    }

    /// Sends what is buffered, within `grace`, and stops; events after this
    /// are dropped.
    pub async fn shutdown(mut self, grace: Duration) -> Stats {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if tokio::time::timeout(grace, &mut self.task).await.is_err() {
            self.task.abort();
        }
        stats(&self.stats)
    }
}

fn stats(c: &Counters) -> Stats {
    Stats {
        sent: c.sent.load(Relaxed),
        dropped: c.dropped.load(Relaxed),
        rejected: c.rejected.load(Relaxed),
        retries: c.retries.load(Relaxed),
    }
}

impl Shipper {
    /// Runs the shipper on the current tokio runtime.
    pub fn spawn(self) -> Handle {
        let (stop, stopped) = oneshot::channel();
        let stats = self.stats.clone();
        let task = tokio::spawn(self.run(stopped));
        Handle {
            stats,
            stop: Some(stop),
            task,
        }
    }

    async fn run(mut self, stopped: oneshot::Receiver<()>) {
        let mut stopped = Some(stopped);
        while let Some(batch) = self.next_batch(&mut stopped).await {
            self.deliver(batch).await;
        }
    }

    /// The next batch: waits for a first entry, then up to `linger` for more.
    /// `None` once the layer is gone (or the shipper stopping) and the
    /// buffer is empty. The stop is heard only while waiting for a first
    /// entry: a batch begun is finished, never dropped with what it holds.
    async fn next_batch(
        &mut self,
        stopped: &mut Option<oneshot::Receiver<()>>,
    ) -> Option<Vec<LogEntry>> {
        let first = loop {
            let Some(stop) = stopped.as_mut() else {
                break self.rx.recv().await?;
            };
            tokio::select! {
                e = self.rx.recv() => break e?,
                _ = stop => {
                    // Drain: what is queued is still sent, nothing new comes.
                    *stopped = None;
                    self.rx.close();
                }
            }
        };
        let mut bytes = first.encoded_len();
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + self.linger;
        while batch.len() < self.batch && bytes < BATCH_BYTES {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(e)) => {
                    bytes += e.encoded_len();
                    batch.push(e);
                }
                Ok(None) | Err(_) => break,
            }
        }
        Some(batch)
    }

    /// Sends `batch` until the server has it, leaving out what it refuses.
    async fn deliver(&mut self, mut batch: Vec<LogEntry>) {
        let mut pause = BACKOFF_MIN;
        while !batch.is_empty() {
            let req = PushLogsRequest {
                entries: batch.clone(),
            };
            match self.client.push_logs(tokio_stream::once(req)).await {
                Ok(_) => {
                    self.stats.sent.fetch_add(batch.len() as u64, Relaxed);
                    return;
                }
                Err(status) if status.code() == Code::InvalidArgument => {
                    // Entries before the refused one are stored: send the
                    // rest after it.
                    let accepted = accepted(&status).min(batch.len());
                    self.stats.sent.fetch_add(accepted as u64, Relaxed);
                    self.stats.rejected.fetch_add(1, Relaxed);
                    batch.drain(..(accepted + 1).min(batch.len()));
                }
                Err(_) => {
                    self.stats.retries.fetch_add(1, Relaxed);
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(BACKOFF_MAX);
                }
            }
        }
    }
}

/// How many entries the server accepted before refusing one (its
/// `accepted` metadata).
fn accepted(status: &tonic::Status) -> usize {
    status
        .metadata()
        .get("accepted")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

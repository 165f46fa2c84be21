//! The public API: gRPC ([`grpc`]), the HTTP/JSON gateway ([`gateway`]) and
//! the seed-era endpoints ([`seed`]), all over one shared [`AppState`], so
//! every protocol validates, queues and queries the same way.

pub mod error;
pub mod gateway;
pub mod grpc;
pub mod grpc_tail;
pub mod json;
pub mod ops;
pub mod query;
pub mod seed;
pub mod validate;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::bus::Catalog;
use crate::metrics::Metrics;
use crate::pipeline::tail::TailHub;
use crate::proto::LogEntry;
use crate::queue::{Durable, Producer, QueueError, QueuedEntry};
use crate::storage::Store;
use crate::time;
use error::{ApiError, FieldViolation};
use validate::Limits;

/// Everything a request handler needs.
pub struct AppState {
    /// Where accepted entries go.
    pub producer: Arc<dyn Producer>,
    /// History queries and tail backfill.
    pub store: Arc<dyn Store>,
    /// Live records for tail streams.
    pub hub: Arc<TailHub>,
    pub metrics: Arc<Metrics>,
    pub limits: Limits,
    /// Default heartbeat interval of tail streams.
    pub heartbeat: Duration,
    /// Longest a push waits to become durable before DEADLINE_EXCEEDED.
    pub push_timeout: Duration,
    /// The service/tag sets beside the store (Redis), when configured.
    pub catalog: Option<Arc<dyn Catalog>>,
    /// Cleared when shutdown begins, before connections drain (`/readyz`).
    pub ready: Arc<AtomicBool>,
    /// Ends tail streams when the server shuts down.
    pub shutdown: CancellationToken,
}

/// The outcome of validating a batch.
pub struct Prepared {
    /// Valid entries, in order.
    pub entries: Vec<QueuedEntry>,
    /// Index (within the batch) and violation of every invalid entry.
    pub invalid: Vec<(usize, FieldViolation)>,
}

impl AppState {
    /// Validates entries and stamps their receipt time. With `stop_at_first`,
    /// entries after the first invalid one are left out (stream semantics).
    pub fn prepare(&self, entries: Vec<LogEntry>, stop_at_first: bool) -> Prepared {
        let received_us = time::now_micros();
        let mut out = Prepared {
            entries: Vec::with_capacity(entries.len()),
            invalid: Vec::new(),
        };
        for (i, mut entry) in entries.into_iter().enumerate() {
            match self.limits.check_entry(&mut entry, received_us) {
                Ok(()) => out.entries.push(QueuedEntry {
                    entry,
                    received_us,
                    source: None,
                }),
                Err(v) => {
                    self.metrics.invalid_entries.fetch_add(1, Relaxed);
                    out.invalid.push((i, v));
                    if stop_at_first {
                        break;
                    }
                }
            }
        }
        out
    }

    /// Queues entries; the returned future resolves when they are durable,
    /// or fails after `push_timeout`.
    pub async fn submit(&self, entries: Vec<QueuedEntry>) -> Result<Durable, ApiError> {
        if self.shutdown.is_cancelled() {
            return Err(ApiError::ShuttingDown);
        }
        let n = entries.len() as u64;
        let timeout = self.push_timeout;
        let metrics = self.metrics.clone();
        let durable = tokio::time::timeout(timeout, self.producer.submit(entries))
            .await
            .map_err(|_| QueueError::Timeout(timeout))??;
        Ok(Box::pin(async move {
            let r = tokio::time::timeout(timeout, durable)
                .await
                .map_err(|_| QueueError::Timeout(timeout))
                .and_then(|r| r);
            match &r {
                Ok(()) => metrics.entries_accepted.fetch_add(n, Relaxed),
                Err(_) => metrics.queue_errors.fetch_add(1, Relaxed),
            };
            r
        }))
    }

    /// Every service: from the catalogue when it is complete, otherwise from
    /// the store (refilling the catalogue in the background).
    pub async fn services(&self) -> Result<Vec<String>, ApiError> {
        if let Some(cat) = &self.catalog {
            match cat.services().await {
                Ok(Some(s)) => return Ok(s),
                Ok(None) => self.refill_catalog(cat.clone()),
                Err(e) => tracing::debug!(error = %e, "catalogue unavailable; asking the store"),
            }
        }
        Ok(self.store.services().await?)
    }

    /// A service's tags, like [`AppState::services`].
    pub async fn tags(&self, service: String) -> Result<Vec<String>, ApiError> {
        if let Some(cat) = &self.catalog {
            match cat.tags(&service).await {
                Ok(Some(t)) => return Ok(t),
                Ok(None) => self.refill_catalog(cat.clone()),
                Err(e) => tracing::debug!(error = %e, "catalogue unavailable; asking the store"),
            }
        }
        Ok(self.store.tags(service).await?)
    }

    fn refill_catalog(&self, cat: Arc<dyn Catalog>) {
        let store = self.store.clone();
        tokio::spawn(async move {
            let result: Result<(), String> = async {
                let mut sets = Vec::new();
                for s in store.services().await.map_err(|e| e.to_string())? {
                    let tags = store.tags(s.clone()).await.map_err(|e| e.to_string())?;
                    sets.push((s, tags));
                }
                cat.fill(sets).await.map_err(|e| e.to_string())
            }
            .await;
            if let Err(e) = result {
                tracing::warn!(error = %e, "refilling the catalogue failed");
            }
        });
    }

    /// Queues entries and waits until they are durable.
    pub async fn push(&self, entries: Vec<QueuedEntry>) -> Result<(), ApiError> {
        if entries.is_empty() {
            return Ok(());
        }
        Ok(self.submit(entries).await?.await?)
    }
}

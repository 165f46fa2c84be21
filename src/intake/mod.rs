//! The one door every way in uses: the gRPC and HTTP handlers as much as the
//! sources that pull entries (Redis, later syslog). [`Intake`] validates and
//! stamps entries, hands them to the queue, and tells the caller when they
//! are durable, within the push timeout, and refuses new work once the ways
//! in are stopping.

pub mod limits;

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use tokio_util::sync::CancellationToken;

use crate::access::{AccessError, Grant};
use crate::metrics::Registry;
use crate::model::time::{self, parse_duration};
use crate::model::{FieldViolation, QueuedEntry};
use crate::proto::LogEntry;
use crate::queue::{Durable, Producer, QueueError};
pub use limits::Limits;

/// The intake's flags.
#[derive(Debug, Clone, clap::Args)]
pub struct IntakeArgs {
    /// Longest a push may wait to become durable before DEADLINE_EXCEEDED.
    #[arg(long, env = "TAILLIGHT_PUSH_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub push_timeout: Duration,
    #[command(flatten)]
    pub limits: Limits,
}

#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error("the server is shutting down")]
    ShuttingDown,
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// A cheap handle on the intake; every way in holds a clone.
#[derive(Clone)]
pub struct Intake {
    inner: Arc<Inner>,
}

struct Inner {
    /// Where accepted entries go.
    producer: Arc<dyn Producer>,
    limits: Limits,
    /// Longest a submission waits for room and then for durability.
    push_timeout: Duration,
    /// Cancelled when the ways in stop: later submissions are refused.
    closing: CancellationToken,
    /// Entries acknowledged as durable.
    accepted: Counter,
    /// Entries refused by validation.
    invalid: Counter,
    /// Submissions the queue failed.
    queue_errors: Counter,
    /// Valid entries clients pushed, by the name of their API key.
    by_key: Family<KeyName, Counter>,
}

/// The label of per-key counts (the key's name, never the key).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KeyName {
    key: String,
}

/// The outcome of validating a batch.
pub struct Prepared {
    /// Valid entries, in order.
    pub entries: Vec<QueuedEntry>,
    /// Index (within the batch) and violation of every invalid entry.
    pub invalid: Vec<(usize, FieldViolation)>,
}

impl Intake {
    /// An intake in front of `producer` that refuses work once `closing` is
    /// cancelled; registers its metrics in `registry`.
    pub fn new(
        producer: Arc<dyn Producer>,
        args: &IntakeArgs,
        closing: CancellationToken,
        registry: &Registry,
    ) -> Self {
        let depth = producer.clone();
        registry.gauge_fn(
            "taillight_queue_depth",
            "Entries queued and not yet durable.",
            move || depth.depth().min(i64::MAX as u64) as i64,
        );
        Intake {
            inner: Arc::new(Inner {
                producer,
                limits: args.limits.clone(),
                push_timeout: args.push_timeout,
                closing,
                accepted: registry.counter(
                    "taillight_entries_accepted",
                    "Entries acknowledged to clients.",
                ),
                invalid: registry.error("invalid_entry"),
                queue_errors: registry.error("queue"),
                by_key: registry.family(
                    "taillight_key_entries",
                    "Valid entries pushed by clients, by API key name (`open` without keys).",
                ),
            }),
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// [`Intake::prepare`] for a client: refuses the whole batch, storing
    /// none of it, when `grant` does not cover an entry's service or the
    /// batch is over the client's rates.
    pub fn prepare_for(
        &self,
        grant: &Grant,
        entries: Vec<LogEntry>,
        stop_at_first: bool,
    ) -> Result<Prepared, AccessError> {
        if let Some((i, e)) = entries
            .iter()
            .enumerate()
            .find(|(_, e)| !grant.covers(&e.service))
        {
            return Err(AccessError::Denied(format!(
                "API key {:?} may not push to service {:?} (entry {i})",
                &*grant.name, e.service
            )));
        }
        let bytes = entries.iter().map(prost::Message::encoded_len).sum();
        grant.charge(entries.len(), bytes)?;
        let prepared = self.prepare(entries, stop_at_first);
        self.inner
            .by_key
            .get_or_create(&KeyName {
                key: grant.name.to_string(),
            })
            .inc_by(prepared.entries.len() as u64);
        Ok(prepared)
    }

    /// Validates entries and stamps their receipt time. With `stop_at_first`,
    /// entries after the first invalid one are left out (stream semantics).
    pub fn prepare(&self, entries: Vec<LogEntry>, stop_at_first: bool) -> Prepared {
        let received_us = time::now_micros();
        let mut out = Prepared {
            entries: Vec::with_capacity(entries.len()),
            invalid: Vec::new(),
        };
        for (i, mut entry) in entries.into_iter().enumerate() {
            match self.inner.limits.check_entry(&mut entry, received_us) {
                Ok(()) => out.entries.push(QueuedEntry {
                    entry,
                    received_us,
                    source: None,
                    dedup_key: None,
                }),
                Err(v) => {
                    self.inner.invalid.inc();
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
    /// or fails after the push timeout.
    pub async fn submit(&self, entries: Vec<QueuedEntry>) -> Result<Durable, IntakeError> {
        let inner = self.inner.clone();
        if inner.closing.is_cancelled() {
            return Err(IntakeError::ShuttingDown);
        }
        let n = entries.len() as u64;
        let timeout = inner.push_timeout;
        let durable = tokio::time::timeout(timeout, inner.producer.submit(entries))
            .await
            .map_err(|_| QueueError::Timeout(timeout))??;
        Ok(Box::pin(async move {
            let r = tokio::time::timeout(timeout, durable)
                .await
                .map_err(|_| QueueError::Timeout(timeout))
                .and_then(|r| r);
            match &r {
                Ok(()) => inner.accepted.inc_by(n),
                Err(_) => inner.queue_errors.inc(),
            };
            r
        }))
    }

    /// Queues entries and waits until they are durable.
    pub async fn push(&self, entries: Vec<QueuedEntry>) -> Result<(), IntakeError> {
        if entries.is_empty() {
            return Ok(());
        }
        Ok(self.submit(entries).await?.await?)
    }
}

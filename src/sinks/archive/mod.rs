//! The file archive: every stored entry written to
//! `DIR/<service>/<period start>.ndjson`, one gateway JSON object a line,
//! compressed when its period ends and copied to S3 when asked.
//!
//! It follows the store by record id ([`Hub::follow`] with holes repaired),
//! so it is exact: its position in the store (see [`state`]) says which
//! records are in closed files, and on taking the role the open period is
//! written again from there (see [`recover`]), so a crash at any moment
//! leaves every stored entry in the archive once, with no torn line. In the
//! Kafka mode one node writes it, the holder of a Redis lease; another takes
//! over from the same position when it goes away.
//!
//! - [`period`]: how long a file stays open; [`names`]: safe directory names.
//! - [`files`]: the open period's files; [`checkpoint`]: how far they are
//!   known good; [`recover`]: the directory on taking the role.
//! - [`term`]: one holder's writing loop; [`close`]: compressing, uploading
//!   ([`s3`]), moving the position.
//! - [`read`]: reading archive files back (used by `taillight restore`).

mod checkpoint;
pub mod close;
pub mod files;
mod metrics;
pub mod names;
pub mod period;
pub mod read;
mod recover;
pub mod s3;
pub mod state;
mod term;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::{Sink, SinkContext, SinkError};
use crate::health::{Health, State};
use crate::model::time::parse_duration;
use crate::net::Cluster;
use crate::net::backoff::Backoff;
use crate::net::redis::Link;
use crate::net::redis::lease::{Lease, next_term};
use crate::pipeline::hub::Hub;
use crate::storage::{Store, StoreError};
use metrics::ArchiveMetrics;
use s3::S3Target;
use term::TermEnd;

/// How long the archive's lease lasts without renewal: how long the archive
/// may stand still after its writer died before another node takes over.
const LEASE_TTL: Duration = Duration::from_secs(6);
/// First pause before a new term after a failed one.
const RETRY_MIN: Duration = Duration::from_secs(1);
/// Longest pause between failed terms.
const RETRY_MAX: Duration = Duration::from_secs(30);
/// The health part the archive reports as.
const PART: &str = "archive";

/// The archive's flags.
#[derive(Debug, Clone, clap::Args)]
pub struct ArchiveArgs {
    /// Write every stored entry to DIR/<service>/<period start>.ndjson (one
    /// JSON object a line, as `GET /v1/logs` shows records), compressed to
    /// `.ndjson.zst` when the period ends. Off when unset.
    #[arg(long, env = "TAILLIGHT_ARCHIVE_DIR")]
    pub archive_dir: Option<PathBuf>,
    /// How long an archive file stays open, by the archive's clock, aligned
    /// to UTC multiples (`1d`: midnight to midnight UTC; `1h`, `1m` for
    /// small deployments). Whole seconds.
    #[arg(long, env = "TAILLIGHT_ARCHIVE_PERIOD", default_value = "1d", value_parser = parse_duration)]
    pub archive_period: Duration,
    /// Copy every closed file to `s3://bucket/prefix`; credentials, region
    /// and endpoint from the usual AWS variables (`AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT_URL`,
    /// `AWS_ALLOW_HTTP`). Needs --archive-dir.
    #[arg(long, env = "TAILLIGHT_ARCHIVE_S3_URL")]
    pub archive_s3_url: Option<String>,
    /// zstd level of closed files (1-22): higher is smaller and slower. 9
    /// keeps the benchmark's entries under a fifth of their NDJSON at tens
    /// of MB/s on one core.
    #[arg(long, env = "TAILLIGHT_ARCHIVE_ZSTD_LEVEL", default_value_t = 9,
          value_parser = clap::value_parser!(i32).range(1..=22))]
    pub archive_zstd_level: i32,
}

impl Default for ArchiveArgs {
    fn default() -> Self {
        ArchiveArgs {
            archive_dir: None,
            archive_period: Duration::from_secs(86_400),
            archive_s3_url: None,
            archive_zstd_level: 9,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("archive directory: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("S3: {0}")]
    S3(String),
    #[error("archive state: {0}")]
    State(String),
}

impl ArchiveArgs {
    /// The archive sink, when --archive-dir asks for one.
    pub fn build(&self, cluster: &Cluster) -> Result<Option<Box<dyn Sink>>, SinkError> {
        let bad = |m: String| Err(SinkError::Config(m));
        let Some(root) = self.archive_dir.clone() else {
            if self.archive_s3_url.is_some() {
                return bad(
                    "--archive-s3-url needs --archive-dir: files are uploaded once closed there"
                        .into(),
                );
            }
            return Ok(None);
        };
        let period_len = period::length(self.archive_period).map_err(SinkError::Config)?;
        let lease = match (cluster.shared, &cluster.redis_url) {
            (false, _) => None,
            (true, None) => {
                return bad("--archive-dir with --kafka-brokers needs --redis-url: one node of the cluster writes the archive, holding a lease in Redis".into());
            }
            (true, Some(url)) => {
                let client = ::redis::Client::open(url.as_str())
                    .map_err(|e| SinkError::Config(format!("--redis-url: {e}")))?;
                Some((client, format!("{}archive:lease", cluster.redis_prefix)))
            }
        };
        let s3 = match &self.archive_s3_url {
            Some(url) => Some(
                S3Target::from_url(url)
                    .map_err(|e| SinkError::Config(format!("--archive-s3-url: {e}")))?,
            ),
            None => None,
        };
        Ok(Some(Box::new(ArchiveSink {
            root,
            period_len,
            zstd_level: self.archive_zstd_level,
            s3,
            lease,
        })))
    }
}

/// The archive, as built from its flags.
struct ArchiveSink {
    root: PathBuf,
    period_len: i64,
    zstd_level: i32,
    s3: Option<S3Target>,
    /// The Redis client and key of the lease, in the Kafka mode.
    lease: Option<(::redis::Client, String)>,
}

/// What every part of the archive shares while it runs.
struct Shared {
    /// The archive directory.
    root: PathBuf,
    /// The period length, in seconds.
    period_len: i64,
    zstd_level: i32,
    s3: Option<S3Target>,
    store: Arc<dyn Store>,
    hub: Arc<Hub>,
    metrics: ArchiveMetrics,
    /// Where the archive says how it is doing.
    health: Health,
}

impl Shared {
    fn health(&self, state: State) {
        self.health.set(PART, state);
    }
}

#[async_trait]
impl Sink for ArchiveSink {
    fn name(&self) -> &'static str {
        "archive"
    }

    async fn run(self: Box<Self>, cx: SinkContext) {
        let this = *self;
        let shared = Arc::new(Shared {
            root: this.root,
            period_len: this.period_len,
            zstd_level: this.zstd_level,
            s3: this.s3,
            store: cx.store,
            hub: cx.hub,
            metrics: ArchiveMetrics::new(&cx.registry),
            health: cx.health,
        });
        let Some((client, key)) = this.lease else {
            return terms(shared, None, cx.stop).await;
        };
        let link = match Link::new(client) {
            Ok(link) => link,
            Err(e) => {
                shared.health(State::Down(format!("no Redis link for the lease: {e}")));
                return;
            }
        };
        let (held, holding) = Lease::new(link, key, LEASE_TTL).hold(cx.stop.clone());
        // The lease is given up when both end, after the last write.
        tokio::join!(holding, terms(shared, Some(held), cx.stop));
    }
}

/// Writes the archive whenever this node has the role, until `stop`.
async fn terms(
    shared: Arc<Shared>,
    mut held: Option<watch::Receiver<bool>>,
    stop: CancellationToken,
) {
    let mut backoff = Backoff::new(RETRY_MIN, RETRY_MAX);
    loop {
        let Some(term) = next_term(&mut held, &stop).await else {
            return;
        };
        shared
            .metrics
            .holder
            .store(1, std::sync::atomic::Ordering::Relaxed);
        let end = term::run(shared.clone(), term.clone(), &stop).await;
        term.cancel();
        shared
            .metrics
            .holder
            .store(0, std::sync::atomic::Ordering::Relaxed);
        match end {
            Ok(TermEnd::Stopped) if stop.is_cancelled() => return,
            Ok(TermEnd::Stopped) => {
                tracing::warn!("lost the archive lease; another node writes the archive");
                backoff.reset();
                continue;
            }
            Ok(TermEnd::Fenced) => {
                tracing::warn!("the archive position was moved by another node; reading it again");
            }
            Err(e) => {
                tracing::error!(error = %e, "archive stopped; starting again from its position");
                shared.health(State::Degraded(e.to_string()));
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(backoff.step()) => {}
        }
    }
}

//! Closing a period: each of its files is compressed (zstd), uploaded when
//! there is an S3 copy, and only then is the position moved past the
//! period's last id, which lets retention delete those records. A crash
//! anywhere in between leaves the position where it was, and the next
//! holder writes the period again from the store and closes it again:
//! every step is safe to repeat (the compressed file is renamed into place,
//! the object key is the same).
//!
//! Closes run one after the other in their own task, so that writing the
//! next period goes on while a slow upload is retried.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::checkpoint::sync_dir;
use super::files::{CLOSED, OPEN, PARTIAL};
use super::s3::S3Target;
use super::state::{self, ArchiveState};
use super::{ArchiveError, Shared};
use crate::health::State;
use crate::net::backoff::Backoff;

/// First pause before retrying a failed step.
const RETRY_MIN: Duration = Duration::from_millis(200);
/// Longest pause between retries.
const RETRY_MAX: Duration = Duration::from_secs(30);

/// One period to close.
pub(super) struct CloseJob {
    /// Its files, as written (`.ndjson`).
    pub files: Vec<PathBuf>,
    /// The position once it is closed.
    pub next: ArchiveState,
}

/// How the closer ended.
#[derive(Debug)]
pub(super) enum CloserEnd {
    /// Asked to stop, or no more jobs.
    Stopped,
    /// The position had moved: another holder has the role.
    Fenced,
}

/// Closes the jobs in order, starting from the position `at`, until `stop`
/// or until the position is found moved.
pub(super) async fn run(
    shared: Arc<Shared>,
    mut at: ArchiveState,
    mut jobs: mpsc::Receiver<CloseJob>,
    stop: CancellationToken,
) -> CloserEnd {
    loop {
        let job = tokio::select! {
            _ = stop.cancelled() => return CloserEnd::Stopped,
            job = jobs.recv() => match job { Some(j) => j, None => return CloserEnd::Stopped },
        };
        match close(&shared, &at, &job, &stop).await {
            Some(true) => {
                shared.metrics.files_closed.inc_by(job.files.len() as u64);
                tracing::info!(
                    files = job.files.len(),
                    through = job.next.closed_through,
                    "archive period closed"
                );
                at = job.next;
            }
            Some(false) => return CloserEnd::Fenced,
            None => return CloserEnd::Stopped,
        }
    }
}

/// Closes one period; whether the position moved (false: someone else moved
/// it first), `None` if stopped first.
async fn close(
    shared: &Shared,
    at: &ArchiveState,
    job: &CloseJob,
    stop: &CancellationToken,
) -> Option<bool> {
    let level = shared.zstd_level;
    for file in &job.files {
        let src = file.clone();
        retry(shared, stop, "compressing", || {
            let src = src.clone();
            async move {
                tokio::task::spawn_blocking(move || compress(&src, level))
                    .await
                    .map_err(|e| ArchiveError::Io(std::io::Error::other(e)))?
                    .map(|_| ())
            }
        })
        .await?;
    }
    if let Some(s3) = &shared.s3 {
        for file in &job.files {
            let closed = closed_path(file);
            let rel = relative(&shared.root, &closed);
            retry(shared, stop, "uploading", || {
                upload(shared, s3, &closed, &rel)
            })
            .await?;
        }
    }
    retry(shared, stop, "moving the archive position", || {
        state::advance(shared.store.as_ref(), at, &job.next)
    })
    .await
}

async fn upload(
    shared: &Shared,
    s3: &S3Target,
    path: &Path,
    rel: &str,
) -> Result<(), ArchiveError> {
    let done = s3.upload(path, rel).await.map_err(ArchiveError::S3);
    if done.is_err() {
        shared.metrics.upload_failures.inc();
    }
    done
}

/// Runs `step` until it succeeds, pausing longer after each failure; the
/// archive is degraded meanwhile. `None` if stopped first.
async fn retry<T, F, Fut>(
    shared: &Shared,
    stop: &CancellationToken,
    what: &str,
    mut step: F,
) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ArchiveError>>,
{
    let mut backoff = Backoff::new(RETRY_MIN, RETRY_MAX);
    let mut failed = false;
    loop {
        let attempt = tokio::select! {
            _ = stop.cancelled() => return None,
            r = step() => r,
        };
        match attempt {
            Ok(v) => {
                if failed {
                    shared.health(State::Ok);
                }
                return Some(v);
            }
            Err(e) => {
                failed = true;
                tracing::warn!(error = %e, "archive: {what} failed; retrying");
                shared.health(State::Degraded(format!("{what} failed: {e}")));
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return None,
            _ = tokio::time::sleep(backoff.step()) => {}
        }
    }
}

/// The compressed file's path for an open file's.
pub fn closed_path(open: &Path) -> PathBuf {
    let name = open
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = name.strip_suffix(OPEN).unwrap_or(&name);
    open.with_file_name(format!("{stem}{CLOSED}"))
}

/// `path` relative to the archive directory, with `/` between parts: the
/// object key under the S3 prefix.
pub fn relative(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// Compresses `open` to its `.ndjson.zst` beside it: written to a `.tmp`,
/// fsynced, renamed into place, and only then is `open` removed. Done
/// already (`open` gone, the compressed file there) counts as success, so a
/// retried close goes on. Blocking.
pub fn compress(open: &Path, level: i32) -> Result<PathBuf, ArchiveError> {
    let closed = closed_path(open);
    if !open.exists() && closed.exists() {
        return Ok(closed);
    }
    let tmp = closed.with_file_name(format!(
        "{}{PARTIAL}",
        closed
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    ));
    let mut input = std::fs::File::open(open)?;
    let output = std::fs::File::create(&tmp)?;
    let mut encoder = zstd::stream::Encoder::new(output, level)?;
    std::io::copy(&mut input, &mut encoder)?;
    let output = encoder.finish()?;
    output.sync_all()?;
    drop(output);
    std::fs::rename(&tmp, &closed)?;
    std::fs::remove_file(open)?;
    if let Some(dir) = closed.parent() {
        sync_dir(dir)?;
    }
    Ok(closed)
}

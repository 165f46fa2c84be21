//! Retention: periodically deletes records older than the configured age.
//!
//! Deletes go in small batches, each its own short transaction, with a pause
//! in between, so writers (and the id counter they lock) are never held up
//! for long even when a large backlog expires at once.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::model::time::{self, parse_duration};
use crate::storage::Store;

/// Retention's flag.
#[derive(Debug, Clone, clap::Args)]
pub struct RetentionArgs {
    /// Delete entries older than this (e.g. `30d`); keep everything when unset.
    #[arg(long, env = "TAILLIGHT_RETENTION", value_parser = parse_duration)]
    pub retention: Option<Duration>,
}

/// Records deleted per transaction.
const BATCH: u32 = 1000;

/// Pause between two delete batches, giving writers the database.
const PAUSE: Duration = Duration::from_millis(50);

/// Deletes records whose entry time is older than `max_age`, once at start
/// and then every `every`, until `shutdown` is cancelled. Store errors are
/// logged and the round is retried at the next tick; they never end the task.
pub async fn run(
    store: Arc<dyn Store>,
    max_age: Duration,
    every: Duration,
    shutdown: CancellationToken,
) {
    let max_age_us = i64::try_from(max_age.as_micros()).unwrap_or(i64::MAX);
    loop {
        let cutoff_us = time::now_micros().saturating_sub(max_age_us);
        match sweep(store.as_ref(), cutoff_us, &shutdown).await {
            Ok(0) => tracing::debug!("retention: nothing expired"),
            Ok(n) => tracing::info!(deleted = n, "retention: deleted expired records"),
            Err((n, e)) => tracing::warn!(
                deleted = n,
                error = %e,
                "retention: delete failed, retrying next round"
            ),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            // A zero interval would spin.
            _ = tokio::time::sleep(every.max(PAUSE)) => {}
        }
    }
}

/// Deletes everything before `cutoff_us` batch by batch. Returns how many
/// were deleted, with the error if a batch failed.
async fn sweep(
    store: &dyn Store,
    cutoff_us: i64,
    shutdown: &CancellationToken,
) -> Result<u64, (u64, crate::storage::StoreError)> {
    let mut total = 0;
    loop {
        let n = store
            .delete_before(cutoff_us, BATCH)
            .await
            .map_err(|e| (total, e))?;
        total += n;
        if n < u64::from(BATCH) {
            return Ok(total);
        }
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(total),
            _ = tokio::time::sleep(PAUSE) => {}
        }
    }
}

//! The archive's figures in `/metrics`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use prometheus_client::metrics::counter::Counter;

use crate::metrics::Registry;

pub struct ArchiveMetrics {
    /// Records written to archive files (again after a rewrite).
    pub written: Counter,
    /// Files compressed (and uploaded) with their period closed.
    pub files_closed: Counter,
    /// Uploads that failed (each is retried).
    pub upload_failures: Counter,
    /// The newest stored id, as last read; with `written_through`, the lag.
    pub newest: Arc<AtomicU64>,
    /// The last id written to the open files.
    pub written_through: Arc<AtomicU64>,
    /// 1 while this node writes the archive.
    pub holder: Arc<AtomicU64>,
}

impl ArchiveMetrics {
    pub fn new(registry: &Registry) -> Self {
        let (newest, written_through, holder) = (
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicU64::new(0)),
        );
        let lag = {
            let (newest, through, holder) =
                (newest.clone(), written_through.clone(), holder.clone());
            move || match holder.load(Relaxed) {
                0 => 0,
                _ => newest.load(Relaxed).saturating_sub(through.load(Relaxed)) as i64,
            }
        };
        registry.gauge_fn(
            "taillight_archive_lag",
            "Stored entries not yet written to the archive (on the node that writes it).",
            lag,
        );
        let h = holder.clone();
        registry.gauge_fn(
            "taillight_archive_holder",
            "1 while this node writes the archive.",
            move || h.load(Relaxed) as i64,
        );
        ArchiveMetrics {
            written: registry.counter(
                "taillight_archive_written",
                "Entries written to archive files.",
            ),
            files_closed: registry.counter(
                "taillight_archive_files_closed",
                "Archive files compressed (and uploaded) at the end of their period.",
            ),
            upload_failures: registry.counter(
                "taillight_archive_upload_failures",
                "Failed uploads of closed archive files to S3 (each is retried).",
            ),
            newest,
            written_through,
            holder,
        }
    }
}

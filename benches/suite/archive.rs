//! The file archive under load: a node writing an archive is pushed at the
//! mode's end-to-end maximum rate while its lag (stored entries not yet in
//! an archive file) is sampled every 100 ms; then how long it takes
//! to catch up, and the bytes of the closed (zstd) files against the NDJSON
//! they hold, on the benchmark's workload. Short periods (5 s in the full
//! run), so files are compressed while the load runs: harder than a daily
//! period.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::node::{Mode, Node};
use crate::report::percentile;
use crate::tail;

/// What one archive run measured.
#[derive(Debug, Clone, Copy)]
pub struct ArchiveRun {
    /// Entries per second pushed.
    pub rate: f64,
    /// Lag while pushing, in entries: p50, p99 and most.
    pub lag: [f64; 3],
    /// From the last push until the lag was 0.
    pub catch_up_ms: f64,
    /// NDJSON bytes held by the closed files.
    pub ndjson_bytes: u64,
    /// The closed files' own bytes.
    pub zst_bytes: u64,
    /// Lines in the closed files.
    pub entries: u64,
    /// The same NDJSON gzipped (level 6), for the choice of zstd.
    pub gzip_bytes: u64,
}

pub async fn run(
    mode: Mode,
    bin: &str,
    marker: &str,
    rate: f64,
    secs: f64,
    period: &str,
) -> ArchiveRun {
    let dir = tempfile::tempdir().expect("archive dir");
    let env = [
        ("TAILLIGHT_ARCHIVE_DIR", dir.path().display().to_string()),
        ("TAILLIGHT_ARCHIVE_PERIOD", period.to_string()),
    ];
    let node = Node::start_with(mode, bin, &env).await;
    let sampling = Instant::now();
    let base = node.base.clone();
    let sampler = tokio::spawn(async move {
        let mut lags = Vec::new();
        while sampling.elapsed().as_secs_f64() < secs {
            lags.push(lag(&base).await as f64);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        lags
    });
    let (sent, elapsed) = tail::pace(&node, marker, rate, secs).await;
    let pushed = Instant::now();
    let mut lags = sampler.await.expect("lag sampler");
    let catch_up = wait_caught_up(&node).await;
    let catch_up_ms = catch_up.duration_since(pushed).as_secs_f64() * 1e3;
    lags.sort_by(f64::total_cmp);
    // Every period of the run closed: the files left open hold none of it.
    let closed = wait_closed(&node, dir.path(), period).await;
    node.stop();
    ArchiveRun {
        rate: sent as f64 / elapsed,
        lag: [
            percentile(&lags, 0.5),
            percentile(&lags, 0.99),
            lags.last().copied().unwrap_or(0.0),
        ],
        catch_up_ms,
        ndjson_bytes: closed.0,
        zst_bytes: closed.1,
        entries: closed.2,
        gzip_bytes: closed.3,
    }
}

/// Entries stored and not yet written to the archive, from the node's
/// counters (one node, no restart: every entry is written once). The
/// archive's own `taillight_archive_lag` reads the newest id every 250 ms,
/// so it can miss a short lag; this cannot.
async fn lag(base: &str) -> u64 {
    let stored = crate::common::metric_at(base, "taillight_entries_stored_total").await;
    let written = crate::common::metric_at(base, "taillight_archive_written_total").await;
    stored.saturating_sub(written)
}

async fn wait_caught_up(node: &Node) -> Instant {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        if lag(&node.base).await == 0 {
            return Instant::now();
        }
        assert!(Instant::now() < deadline, "the archive never caught up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until two periods have passed after the load and a file has closed
/// since, then sums the closed files: (NDJSON bytes inside, compressed
/// bytes, lines, bytes gzipped instead).
async fn wait_closed(node: &Node, dir: &Path, period: &str) -> (u64, u64, u64, u64) {
    let start = node.metric("taillight_archive_files_closed_total").await;
    let period = taillight::model::time::parse_duration(period).expect("period");
    tokio::time::sleep(period * 2).await;
    let deadline = Instant::now() + Duration::from_secs(300);
    while node.metric("taillight_archive_files_closed_total").await <= start {
        assert!(Instant::now() < deadline, "no archive file closed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || sizes(&dir))
        .await
        .expect("sizes")
}

fn sizes(dir: &Path) -> (u64, u64, u64, u64) {
    let (mut ndjson, mut zst, mut lines, mut gzip) = (0, 0, 0, 0);
    for d in std::fs::read_dir(dir).expect("archive").flatten() {
        let Ok(files) = std::fs::read_dir(d.path()) else {
            continue;
        };
        for f in files.flatten() {
            if !f.file_name().to_string_lossy().ends_with(".ndjson.zst") {
                continue;
            }
            let file = std::fs::File::open(f.path()).expect("open");
            zst += file.metadata().expect("size").len();
            let text = zstd::stream::decode_all(file).expect("decompress");
            ndjson += text.len() as u64;
            lines += text.iter().filter(|b| **b == b'\n').count() as u64;
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
            std::io::Write::write_all(&mut gz, &text).expect("gzip");
            gzip += gz.finish().expect("gzip").len() as u64;
        }
    }
    (ndjson, zst, lines, gzip)
}

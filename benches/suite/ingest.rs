//! Ingest throughput over PushLogs, unary PushLog, HTTP NDJSON, OTLP and
//! Loki push ([`protocols`]): the rate
//! pushes were acknowledged at, and the end-to-end rate until every entry
//! was stored and queryable. Every run checks the store holds each entry
//! exactly once, with consecutive ids.

use std::time::{Duration, Instant};

use futures::future::join_all;
use taillight::proto::{LogEntry, PushLogRequest, PushLogsRequest};

use crate::node::Node;
use crate::{protocols, workload};

/// What one ingest run measured.
#[derive(Debug, Clone, Copy)]
pub struct Ingest {
    /// Entries acknowledged per second.
    pub accepted: f64,
    /// Entries stored per second, from the first push to the last commit.
    pub e2e: f64,
    /// Server CPU cores busy per 10k entries/s of end-to-end throughput.
    pub cores_per_10k: f64,
    /// Highest server RSS during the run, bytes.
    pub peak_rss: u64,
    /// Share of the run the writer spent reading, storing, committing and
    /// (in its own task) publishing.
    pub writer_share: [f64; 4],
}

/// How entries are sent.
#[derive(Debug, Clone, Copy)]
pub enum Shape {
    /// `streams` concurrent PushLogs streams (one connection each), `batch`
    /// entries per message.
    Stream { streams: usize, batch: usize },
    /// `concurrency` unary PushLog calls in flight.
    Unary { concurrency: usize },
    /// `concurrency` HTTP POSTs of `batch`-line NDJSON bodies in flight.
    Ndjson { concurrency: usize, batch: usize },
    /// `concurrency` OTLP gRPC exports of `batch` records in flight.
    Otlp { concurrency: usize, batch: usize },
    /// `concurrency` Loki protobuf pushes of `batch` lines in flight.
    Loki { concurrency: usize, batch: usize },
}

pub fn entries(marker: &str, n: u64) -> Vec<LogEntry> {
    let t = workload::now();
    (0..n)
        .map(|i| workload::entry(marker, i, Some(t)))
        .collect()
}

pub async fn run(node: &Node, marker: &str, n: u64, shape: Shape) -> Ingest {
    let es = entries(marker, n);
    let stored_before = node.metric("taillight_entries_stored_total").await;
    node.reset_peak_rss();
    let stages0 = node.writer_seconds().await;
    let cpu0 = node.cpu_seconds();
    let t0 = Instant::now();
    match shape {
        Shape::Stream { streams, batch } => push_streams(node, es, streams, batch).await,
        Shape::Unary { concurrency } => push_unary(node, es, concurrency).await,
        Shape::Ndjson { concurrency, batch } => push_ndjson(node, es, concurrency, batch).await,
        Shape::Otlp { concurrency, batch } => {
            protocols::push_otlp(node, es, concurrency, batch).await
        }
        Shape::Loki { concurrency, batch } => {
            protocols::push_loki(node, es, concurrency, batch).await
        }
    }
    let acked = t0.elapsed().as_secs_f64();
    let done = node
        .wait_stored(stored_before + n, Duration::from_secs(600))
        .await;
    let e2e = done.duration_since(t0).as_secs_f64();
    let cpu = node.cpu_seconds() - cpu0;
    let peak_rss = node.peak_rss();
    let stages = node.writer_seconds().await;
    let writer_share = std::array::from_fn(|i| (stages[i] - stages0[i]) / e2e);
    check_stored(node, marker, n).await;
    let e2e_rate = n as f64 / e2e;
    Ingest {
        accepted: n as f64 / acked,
        e2e: e2e_rate,
        cores_per_10k: cpu / e2e / (e2e_rate / 10_000.0),
        peak_rss,
        writer_share,
    }
}

/// Asserts the store holds the `n` entries of `marker` once each, with
/// consecutive ids.
/// Each of `n` entries of `marker` stored once, where a lossy source
/// (pub/sub) may have dropped some: no duplicates, no more than sent.
pub async fn check_stored_lossy(node: &Node, marker: &str, n: u64) {
    let (rows, distinct, _, _) = node.stored_counts(marker).await;
    assert_eq!(
        (rows, distinct),
        (n, n),
        "{}: stored rows / distinct entries of {marker}",
        node.mode.name()
    );
}

pub async fn check_stored(node: &Node, marker: &str, n: u64) {
    let (rows, distinct, min, max) = node.stored_counts(marker).await;
    assert_eq!(
        (rows, distinct),
        (n, n),
        "{}: stored rows / distinct entries of {marker}",
        node.mode.name()
    );
    assert_eq!(
        max + 1 - min,
        n,
        "{}: ids of {marker} have holes",
        node.mode.name()
    );
}

async fn push_streams(node: &Node, es: Vec<LogEntry>, streams: usize, batch: usize) {
    let per = es.len().div_ceil(streams);
    let mut parts = Vec::new();
    let mut it = es.into_iter();
    for _ in 0..streams {
        let part: Vec<LogEntry> = it.by_ref().take(per).collect();
        let msgs: Vec<PushLogsRequest> = part
            .chunks(batch)
            .map(|c| PushLogsRequest {
                entries: c.to_vec(),
            })
            .collect();
        parts.push((node.client().await, msgs));
    }
    let tasks = parts.into_iter().map(|(mut c, msgs)| async move {
        let want: usize = msgs.iter().map(|m| m.entries.len()).sum();
        let r = c
            .push_logs(tokio_stream::iter(msgs))
            .await
            .expect("PushLogs")
            .into_inner();
        assert_eq!(r.accepted as usize, want, "PushLogs accepted");
    });
    join_all(tasks).await;
}

async fn push_unary(node: &Node, es: Vec<LogEntry>, concurrency: usize) {
    let queue = std::sync::Arc::new(std::sync::Mutex::new(es.into_iter()));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let mut c = node.client().await;
        let queue = queue.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let next = queue.lock().expect("queue").next();
                let Some(entry) = next else { return };
                c.push_log(PushLogRequest { entry: Some(entry) })
                    .await
                    .expect("PushLog");
            }
        }));
    }
    for t in tasks {
        t.await.expect("unary pusher");
    }
}

/// `es` as the gateway's JSON entries, one a line.
pub fn ndjson(es: &[LogEntry]) -> String {
    let mut out = String::new();
    for e in es {
        let mut v = serde_json::json!({
            "service": e.service,
            "level": taillight::model::level::name(e.level),
            "message": e.message,
            "tags": e.tags,
            "attributes": e.attributes,
            "time": taillight::model::time::rfc3339(e.time.as_ref().map_or(0, taillight::model::time::to_micros)),
        });
        if !e.trace_id.is_empty() {
            v["traceId"] = e.trace_id.clone().into();
            v["spanId"] = e.span_id.clone().into();
        }
        out.push_str(&v.to_string());
        out.push('\n');
    }
    out
}

async fn push_ndjson(node: &Node, es: Vec<LogEntry>, concurrency: usize, batch: usize) {
    let bodies = es
        .chunks(batch)
        .map(|c| (c.len(), ndjson(c).into_bytes()))
        .collect();
    let url = format!("{}/v1/logs", node.base);
    protocols::post_all(
        &url,
        "application/x-ndjson",
        bodies,
        concurrency,
        |n, status, text| {
            let v: serde_json::Value = serde_json::from_str(text).expect("JSON answer");
            assert!(status.is_success(), "POST /v1/logs: {status} {v}");
            assert_eq!(v["accepted"].as_u64(), Some(n as u64), "accepted: {v}");
        },
    )
    .await;
}

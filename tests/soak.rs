//! A soak: a `taillight serve` process (embedded mode) takes entries at half
//! the maximum rate measured in the same run, with a few tails reading them,
//! for `TAILLIGHT_SOAK_SECONDS` (60 by default, which CI runs). Every 10 s
//! it samples the server's RSS (VmRSS), its open files (/proc/PID/fd) and
//! the window's push latency (p50, p99), prints the samples and writes them
//! to `CARGO_TARGET_TMPDIR/soak.csv`. It proves that none of them grows
//! (the second half against the first), that the load held its rate, and
//! that every acknowledged entry is stored exactly once. The tails (two
//! over gRPC, two over SSE, reading everything) are load, and what they
//! received and skipped is reported, not asserted: each decodes the whole
//! load in this process, on the same two cores as the server, so whether
//! it keeps up says more about the test than the server. That readers
//! which keep up are never skipped is `tail_load`'s to prove.
//!
//! The long run, by hand (not in CI), 30 minutes:
//!
//! ```sh
//! TAILLIGHT_SOAK_SECONDS=1800 cargo test --release --test soak -- --nocapture
//! ```
//!
//! The store keeps every entry, about 270 bytes each on disk (the CSV's
//! `store_mb`): 30 minutes at 50,000 entries/s need some 25 GB free under
//! the system's temporary directory.

mod common;

use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::process::{self, Proc, serve_args};
use common::reliability::Row;
use common::{Backend, only, unique};
use futures::StreamExt;
use taillight::proto::log_service_client::LogServiceClient;
use taillight::proto::{TailRequest, tail_response};

const DEFAULT_SECONDS: u64 = 60;
const SAMPLE_EVERY: Duration = Duration::from_secs(10);
/// Entries per push.
const BATCH: usize = 100;
const MEASURING_PUSHERS: usize = 4;
/// More clients at the paced rate than when measuring, so a slow answer
/// does not make the load fall behind its schedule.
const PACED_PUSHERS: usize = 8;
const MEASURE_FOR: Duration = Duration::from_secs(5);
/// Tails of each kind reading everything pushed.
const TAILS: usize = 2;
/// Roughly the length of a real log line.
const FILLER: &str = "GET /api/v1/orders?page=2&status=open 200 12.4ms user=8f3a2c1e \
     region=eu-west-1 trace=4bf92f3577b34da6a3ce929d0e0e4736 agent=checkout-service/2.14.0";

/// Tolerances of "no growth", second half against first. Open files may
/// differ by the connections of the moment (clients, SQLite's journal);
/// RSS by allocator noise; latency by a neighbour's burst on a shared
/// machine, hence medians over each half, not single windows.
const FILES_SLACK: usize = 16;
const RSS_FACTOR: f64 = 1.5;
const RSS_SLACK: u64 = 32 << 20;
const P99_FACTOR: f64 = 5.0;
const P99_SLACK_MS: f64 = 50.0;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_at_half_the_maximum_rate() {
    let seconds = soak_seconds();
    let (cfg, _scratch) = common::test_config(Backend::Embedded);
    let server = Proc::spawn(&serve_args(&cfg, "all"));
    let base = server.url();
    let observed = Observed {
        pid: server.child.id(),
        data_dir: cfg.store.sqlite.data_dir.clone(),
    };
    let max_rate = measure_max_rate(&base, &unique("max")).await;
    let target = max_rate / 2.0;
    let svc = unique("soak");
    let tails = open_tails(&base, &svc).await;
    let baseline = Sample::at(&observed, Duration::ZERO, &mut []);
    eprintln!("maximum rate {max_rate:.0}/s, target {target:.0}/s, {seconds} s");
    eprintln!("{}", Sample::HEADER);
    eprintln!("{}", baseline.csv());

    let load = Load::start(&base, &svc, target, Duration::from_secs(seconds));
    let samples = sample_until_done(&observed, &load).await;
    let pushed = load.finish().await;
    let achieved = pushed.acked_entries() as f64 / seconds as f64;
    let stored = stored_once(&base, &svc, &pushed).await;
    let tails: Vec<TailCount> = tails
        .iter()
        .map(|t| t.lock().expect("tail").clone())
        .collect();
    write_csv(baseline, &samples);

    let verdict = Verdict::of(&samples);
    let (first, last) = (&samples[0], &samples[samples.len() - 1]);
    Row {
        fault: format!("soak: {seconds} s at half the maximum rate"),
        mode: "embedded".into(),
        pushed: pushed.sent * BATCH as u64,
        acknowledged: pushed.acked_entries(),
        found: stored.found,
        lost: stored.lost,
        duplicated: stored.duplicated,
        recovery: None,
        detail: format!(
            "max rate {max_rate:.0}/s, target {target:.0}/s, achieved {achieved:.0}/s; \
             RSS first/last {}/{} MB (max {}); open files first/last {}/{}; \
             p99 first/last {:.0}/{:.0} ms; store {} MB; {} tails received {} records, \
             skipped {}",
            first.rss >> 20,
            last.rss >> 20,
            samples.iter().map(|s| s.rss).max().unwrap_or(0) >> 20,
            first.files,
            last.files,
            first.p99_ms,
            last.p99_ms,
            last.store >> 20,
            tails.len(),
            tails.iter().map(|t| t.records).sum::<u64>(),
            tails.iter().map(|t| t.skipped).sum::<u64>(),
        ),
        test: "soak::soak_at_half_the_maximum_rate".into(),
    }
    .record();

    assert_eq!(
        (stored.lost, stored.duplicated),
        (0, 0),
        "of {} acknowledged entries: lost, stored twice",
        pushed.acked_entries()
    );
    assert!(
        achieved >= 0.9 * target,
        "the load reached {achieved:.0}/s of its target {target:.0}/s ({} pushes refused)",
        pushed.refused
    );
    verdict.assert_no_growth();
    for t in &tails {
        assert!(t.out_of_order == 0 && t.ended.is_none(), "a tail: {t:?}");
    }
}

/// The soak's length from TAILLIGHT_SOAK_SECONDS; at least two samples.
fn soak_seconds() -> u64 {
    let seconds = match std::env::var("TAILLIGHT_SOAK_SECONDS") {
        Ok(s) => s
            .parse()
            .expect("TAILLIGHT_SOAK_SECONDS is a number of seconds"),
        Err(_) => DEFAULT_SECONDS,
    };
    seconds.max(2 * SAMPLE_EVERY.as_secs())
}

/// The server process sampled.
struct Observed {
    pid: u32,
    data_dir: std::path::PathBuf,
}

/// One 10-second window.
#[derive(Debug, Clone)]
struct Sample {
    /// Since the load began.
    at: Duration,
    rss: u64,
    files: usize,
    /// Bytes of the data directory: the store keeps every entry, so this
    /// grows with the load (a long soak needs the disk).
    store: u64,
    /// Pushes answered in the window.
    pushes: usize,
    p50_ms: f64,
    p99_ms: f64,
}

impl Sample {
    const HEADER: &str = "seconds,rss_mb,open_files,store_mb,pushes,p50_ms,p99_ms";

    /// The server's state now, with the latencies of the pushes answered
    /// since the last sample.
    fn at(server: &Observed, at: Duration, latencies: &mut [f64]) -> Sample {
        latencies.sort_by(f64::total_cmp);
        Sample {
            at,
            rss: process::rss(server.pid).expect("the server runs"),
            files: process::open_files(server.pid),
            store: dir_bytes(&server.data_dir),
            pushes: latencies.len(),
            p50_ms: percentile(latencies, 0.50),
            p99_ms: percentile(latencies, 0.99),
        }
    }

    fn csv(&self) -> String {
        format!(
            "{},{:.1},{},{},{},{:.1},{:.1}",
            self.at.as_secs(),
            self.rss as f64 / f64::from(1 << 20),
            self.files,
            self.store >> 20,
            self.pushes,
            self.p50_ms,
            self.p99_ms
        )
    }
}

/// `q` of sorted values; 0 for none.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i]
}

/// Samples every `SAMPLE_EVERY` while the load runs.
async fn sample_until_done(server: &Observed, load: &Load) -> Vec<Sample> {
    let mut samples = Vec::new();
    let mut tick = tokio::time::interval_at(load.t0 + SAMPLE_EVERY, SAMPLE_EVERY);
    let windows = (load.duration.as_secs_f64() / SAMPLE_EVERY.as_secs_f64()).ceil() as usize;
    for _ in 0..windows {
        tick.tick().await;
        let mut window = std::mem::take(&mut *load.latencies.lock().expect("latencies"));
        let sample = Sample::at(server, load.t0.elapsed(), &mut window);
        eprintln!("{}", sample.csv());
        samples.push(sample);
    }
    samples
}

fn write_csv(baseline: Sample, samples: &[Sample]) {
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("soak.csv");
    let rows: Vec<String> = std::iter::once(baseline)
        .chain(samples.iter().cloned())
        .map(|s| s.csv())
        .collect();
    let text = format!("{}\n{}\n", Sample::HEADER, rows.join("\n"));
    std::fs::write(&path, text).expect("write soak.csv");
    eprintln!("samples written to {}", path.display());
}

/// What "no growth" compares: each half of the samples.
struct Verdict {
    files_first: usize,
    files_last: usize,
    rss_first_half: u64,
    rss_second_half: u64,
    p99_first_half: f64,
    p99_second_half: f64,
}

impl Verdict {
    fn of(samples: &[Sample]) -> Verdict {
        let (early, late) = samples.split_at(samples.len() / 2);
        let max_rss = |s: &[Sample]| s.iter().map(|s| s.rss).max().unwrap_or(0);
        let median_p99 = |s: &[Sample]| {
            let mut p: Vec<f64> = s.iter().map(|s| s.p99_ms).collect();
            p.sort_by(f64::total_cmp);
            percentile(&p, 0.5)
        };
        Verdict {
            files_first: early[0].files,
            files_last: late[late.len() - 1].files,
            rss_first_half: max_rss(early),
            rss_second_half: max_rss(late),
            p99_first_half: median_p99(early),
            p99_second_half: median_p99(late),
        }
    }

    fn assert_no_growth(&self) {
        assert!(
            self.files_last <= self.files_first + FILES_SLACK,
            "open files grew from {} to {}",
            self.files_first,
            self.files_last
        );
        let rss_bound = (self.rss_first_half as f64 * RSS_FACTOR) as u64 + RSS_SLACK;
        assert!(
            self.rss_second_half <= rss_bound,
            "RSS grew: at most {} MB in the first half, {} MB in the second",
            self.rss_first_half >> 20,
            self.rss_second_half >> 20
        );
        assert!(
            self.p99_second_half <= self.p99_first_half * P99_FACTOR + P99_SLACK_MS,
            "push latency grew: median p99 {:.0} ms in the first half, {:.0} ms in the second",
            self.p99_first_half,
            self.p99_second_half
        );
    }
}

/// Entries per second `MEASURING_PUSHERS` clients get acknowledged, each
/// pushing batches back to back for `MEASURE_FOR`.
async fn measure_max_rate(base: &str, svc: &str) -> f64 {
    let t0 = Instant::now();
    let pushers: Vec<_> = (0..MEASURING_PUSHERS)
        .map(|p| {
            let (url, svc) = (logs_url(base), svc.to_string());
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                let mut acked = 0u64;
                for k in 0.. {
                    if t0.elapsed() >= MEASURE_FOR {
                        break;
                    }
                    if push(&http, &url, batch(&svc, &format!("m{p}-{k}"))).await {
                        acked += BATCH as u64;
                    }
                }
                acked
            })
        })
        .collect();
    let mut acked = 0;
    for p in pushers {
        acked += p.await.expect("pusher");
    }
    let rate = acked as f64 / t0.elapsed().as_secs_f64();
    assert!(rate > 0.0, "no push was acknowledged while measuring");
    rate
}

/// The paced load while it runs: batch `k` is due at `k × BATCH / rate`,
/// and a pusher that is late sends at once, so a slow answer is made up
/// for by the others.
struct Load {
    t0: tokio::time::Instant,
    duration: Duration,
    /// Push latencies in ms since the last sample.
    latencies: Arc<Mutex<Vec<f64>>>,
    pushers: Vec<tokio::task::JoinHandle<(Vec<u64>, u64)>>,
    batches: u64,
}

/// What the load did.
struct Pushed {
    /// Batches sent.
    sent: u64,
    /// Numbers of the batches acknowledged.
    acked: Vec<u64>,
    /// Pushes answered with anything but 200, or not at all.
    refused: u64,
}

impl Pushed {
    fn acked_entries(&self) -> u64 {
        self.acked.len() as u64 * BATCH as u64
    }
}

impl Load {
    fn start(base: &str, svc: &str, rate: f64, duration: Duration) -> Load {
        let batches = (rate * duration.as_secs_f64() / BATCH as f64).ceil() as u64;
        let every = Duration::from_secs_f64(BATCH as f64 / rate);
        let next = Arc::new(AtomicU64::new(0));
        let latencies = Arc::new(Mutex::new(Vec::new()));
        let t0 = tokio::time::Instant::now();
        let pushers = (0..PACED_PUSHERS)
            .map(|_| {
                let (next, latencies) = (next.clone(), latencies.clone());
                let (url, svc) = (logs_url(base), svc.to_string());
                tokio::spawn(async move {
                    let http = reqwest::Client::new();
                    let (mut acked, mut refused) = (Vec::new(), 0u64);
                    loop {
                        let k = next.fetch_add(1, Relaxed);
                        if k >= batches {
                            return (acked, refused);
                        }
                        tokio::time::sleep_until(t0 + every.mul_f64(k as f64)).await;
                        let sent = Instant::now();
                        let ok = push(&http, &url, batch(&svc, &format!("s{k}"))).await;
                        let ms = sent.elapsed().as_secs_f64() * 1e3;
                        latencies.lock().expect("latencies").push(ms);
                        if ok {
                            acked.push(k);
                        } else {
                            refused += 1;
                        }
                    }
                })
            })
            .collect();
        Load {
            t0,
            duration,
            latencies,
            pushers,
            batches,
        }
    }

    async fn finish(self) -> Pushed {
        let (mut acked, mut refused) = (Vec::new(), 0);
        for p in self.pushers {
            let (a, r) = p.await.expect("pusher");
            acked.extend(a);
            refused += r;
        }
        acked.sort_unstable();
        Pushed {
            sent: self.batches,
            acked,
            refused,
        }
    }
}

/// A batch of entries tagged `{prefix}-{i}`, as JSON written by hand: the
/// messages need no escaping, and the pushers of a debug build must not be
/// what limits the rate.
fn batch(svc: &str, prefix: &str) -> String {
    let entries: Vec<String> = (0..BATCH)
        .map(|i| format!(r#"{{"service":"{svc}","message":"{prefix}-{i} {FILLER}"}}"#))
        .collect();
    format!("[{}]", entries.join(","))
}

fn logs_url(base: &str) -> String {
    format!("{base}/v1/logs")
}

/// Whether the server acknowledged the batch.
async fn push(http: &reqwest::Client, url: &str, body: String) -> bool {
    let sent = http
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .timeout(Duration::from_secs(30))
        .send()
        .await;
    matches!(sent, Ok(r) if r.status() == reqwest::StatusCode::OK)
}

/// The acknowledged entries found in the store, missing, and stored twice.
struct Stored {
    found: u64,
    lost: u64,
    duplicated: u64,
}

/// Reads the service's export as it streams, one bit per entry: a long
/// soak stores millions, more than is worth holding as strings.
async fn stored_once(base: &str, svc: &str, pushed: &Pushed) -> Stored {
    let mut seen = vec![0u128; pushed.sent as usize];
    let mut duplicated = 0;
    let resp = reqwest::get(format!("{base}/v1/logs/export?service={svc}"))
        .await
        .expect("export");
    assert!(resp.status().is_success(), "export: {}", resp.status());
    let mut body = resp.bytes_stream();
    let mut carry = Vec::new();
    while let Some(chunk) = body.next().await {
        carry.extend_from_slice(&chunk.expect("export body"));
        let end = carry.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        for line in carry[..end]
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
        {
            let (k, i) = entry_number(line);
            let bit = 1u128 << i;
            if seen[k] & bit != 0 {
                duplicated += 1;
            }
            seen[k] |= bit;
        }
        carry.drain(..end);
    }
    let found: u64 = pushed
        .acked
        .iter()
        .map(|&k| u64::from(seen[k as usize].count_ones()))
        .sum();
    Stored {
        found,
        lost: pushed.acked_entries() - found,
        duplicated,
    }
}

/// Batch and index of an exported record's message `s{k}-{i} …`, found
/// without parsing the JSON: the export is long and the messages plain.
fn entry_number(line: &[u8]) -> (usize, usize) {
    let text = std::str::from_utf8(line).expect("UTF-8 export");
    let tag = text
        .split_once(r#""message":"s"#)
        .and_then(|(_, rest)| rest.split_once(' '))
        .map(|(tag, _)| tag)
        .unwrap_or_else(|| panic!("no message in {text}"));
    let (k, i) = tag.split_once('-').expect("s{k}-{i}");
    (
        k.parse().expect("a batch number"),
        i.parse().expect("an entry number"),
    )
}

/// What one tail received.
#[derive(Debug, Default, Clone)]
struct TailCount {
    records: u64,
    last_id: u64,
    out_of_order: u64,
    skipped: u64,
    ended: Option<String>,
}

impl TailCount {
    fn record(&mut self, id: u64) {
        if id <= self.last_id {
            self.out_of_order += 1;
        }
        self.last_id = id;
        self.records += 1;
    }
}

type Tail = Arc<Mutex<TailCount>>;

/// `TAILS` gRPC and `TAILS` SSE streams following `svc`, reading in tasks
/// of their own from now on.
async fn open_tails(base: &str, svc: &str) -> Vec<Tail> {
    let mut tails = Vec::new();
    for _ in 0..TAILS {
        let tail = Tail::default();
        let mut client = LogServiceClient::connect(base.to_string())
            .await
            .expect("connect");
        let req = TailRequest {
            filter: Some(only(svc)),
            ..Default::default()
        };
        let stream = client.tail(req).await.expect("Tail").into_inner();
        tokio::spawn(read_grpc(stream, tail.clone()));
        tails.push(tail);
    }
    for _ in 0..TAILS {
        let tail = Tail::default();
        let resp = reqwest::get(format!("{base}/v1/tail?service={svc}"))
            .await
            .expect("GET /v1/tail");
        assert!(
            resp.status().is_success(),
            "GET /v1/tail: {}",
            resp.status()
        );
        tokio::spawn(read_sse(resp, tail.clone()));
        tails.push(tail);
    }
    tails
}

async fn read_grpc(mut stream: tonic::Streaming<taillight::proto::TailResponse>, tail: Tail) {
    let ended = loop {
        match stream.message().await {
            Ok(Some(msg)) => {
                let mut t = tail.lock().expect("tail");
                match msg.event {
                    Some(tail_response::Event::Records(r)) => {
                        r.records.iter().for_each(|r| t.record(r.id));
                    }
                    Some(tail_response::Event::Skipped(s)) => t.skipped += s.count,
                    _ => {}
                }
            }
            Ok(None) => break "ended".to_string(),
            Err(e) => break e.to_string(),
        }
    };
    tail.lock().expect("tail").ended = Some(ended);
}

/// Counts `id:` lines (one per record) and skip notices' counts; lines
/// may be cut between chunks, so the last partial one waits for the next.
async fn read_sse(mut resp: reqwest::Response, tail: Tail) {
    let mut carry = Vec::new();
    let mut skip_next_data = false;
    let ended = loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                carry.extend_from_slice(&chunk);
                let end = carry.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
                let mut t = tail.lock().expect("tail");
                for line in carry[..end].split(|&b| b == b'\n') {
                    let line = String::from_utf8_lossy(line);
                    if let Some(id) = line.strip_prefix("id: ") {
                        t.record(id.parse().expect("a numeric event id"));
                    } else if line == "event: skipped" {
                        skip_next_data = true;
                    } else if let Some(data) = line.strip_prefix("data: ")
                        && std::mem::take(&mut skip_next_data)
                    {
                        let v: serde_json::Value =
                            serde_json::from_str(data).expect("a skip notice is JSON");
                        t.skipped += v["count"].as_u64().expect("count");
                    }
                }
                drop(t);
                carry.drain(..end);
            }
            Ok(None) => break "ended".to_string(),
            Err(e) => break e.to_string(),
        }
    };
    tail.lock().expect("tail").ended = Some(ended);
}

/// Bytes of the files in `dir` (the store's database, WAL and journal).
fn dir_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .expect("the data directory")
        .filter_map(|e| e.ok()?.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

//! 1,000 live tails at once, 500 over gRPC and 500 over SSE, on a
//! `taillight serve` process (embedded mode) that takes entries at half its
//! maximum rate, with one more stream that never reads. It proves that
//! every reading stream receives every entry of the service it follows, in
//! id order and never skipped; that the stalled stream slows neither ingest
//! (which keeps its target rate) nor the readers; that the server's RSS
//! stays bounded (sampled every second); and that the stalled stream, once
//! it reads again, is told exactly which ids it missed.
//!
//! The 1,000 streams follow a service that gets one entry of each pushed
//! batch of 100; the other 99 go to a second service that only the stalled
//! stream follows. All 1,000 receiving everything would be 1,000 copies of
//! the load, more than two cores deliver: readers that slow are skipped by
//! design, which says nothing about the fan-out.
//!
//! "Maximum" is measured in the same run twice: without streams (reported)
//! and with the 1,000 readers open, in batches shaped as the load's; the
//! load is half of the latter. Each stored batch costs the server work for
//! every one of the 1,000 streams (matching its filter, queueing, a write to
//! its connection), so it takes far fewer entries with them open: about a
//! twelfth of the rate without them in this debug build, a fifth to a third
//! in a release build, on two cores shared with the test's own readers (see
//! docs/RELIABILITY.md). Half the rate without them would only measure this
//! cost, not what a stalled stream does.

mod common;

use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::process::{self, Proc, serve_args};
use common::reliability::Row;
use common::{Backend, only, unique};
use futures::StreamExt;
use taillight::proto::log_service_client::LogServiceClient;
use taillight::proto::{
    Order, QueryLogsRequest, TailRequest, TailResponse, stream_status, tail_response,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::transport::Channel;

/// Streams of each kind.
const STREAMS: usize = 500;
/// gRPC streams share a few HTTP/2 connections, as a client's would.
const GRPC_CONNECTIONS: usize = 10;
/// Entries per push; the first goes to the followed service.
const BATCH: usize = 100;
/// Clients pushing at once, both when measuring and at the paced rate
/// (where more of them absorb the latency of a busy moment).
const MEASURING_PUSHERS: usize = 4;
const PACED_PUSHERS: usize = 8;
const MEASURE_FOR: Duration = Duration::from_secs(5);
const LOAD_FOR: Duration = Duration::from_secs(10);
/// What one stream may hold before it skips (the default is 64 MiB): low,
/// so that the stalled stream overflows within the load on any machine.
/// The readers' shares of a batch are a hundredth of it, so their limit is
/// the count of batches (256), as by default.
const STREAM_BYTES: usize = 1 << 20;
/// Opening streams this many at a time.
const OPENING: usize = 50;
/// How long a stream may take to go live, and the readers to take in what
/// was pushed, on two busy cores.
const OPEN_WITHIN: Duration = Duration::from_secs(60);
const DRAIN_WITHIN: Duration = Duration::from_secs(60);
/// What the server's RSS may grow by with the streams open: all that the
/// live feed may hold for streams that are behind (--tail-buffer-total-bytes,
/// 256 MiB by default), and a quarter megabyte per stream for its
/// connection's buffers. Far above what they take (about 20 KB a stream);
/// growth without bound is not.
const RSS_GROWTH: u64 = (256 << 20) + (2 * STREAMS as u64 + 1) * (256 << 10);
/// Roughly the length of a real log line, so that the stalled stream's
/// bytes, not only its batch count, are what a real one would hold.
const FILLER: &str = "GET /api/v1/orders?page=2&status=open 200 12.4ms user=8f3a2c1e \
     region=eu-west-1 trace=4bf92f3577b34da6a3ce929d0e0e4736 agent=checkout-service/2.14.0";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_tails_at_half_the_maximum_rate() {
    let started = Instant::now();
    let (cfg, _scratch) = common::test_config(Backend::Embedded);
    let mut args = serve_args(&cfg, "all");
    // Every stream comes from 127.0.0.1, which counts as one keyless client.
    args.extend(["--max-tail-streams-per-key".into(), "2000".into()]);
    args.extend(["--tail-buffer-bytes".into(), STREAM_BYTES.to_string()]);
    let server = Proc::spawn(&args);
    let (base, pid) = (server.url(), server.child.id());
    let (watched, bulk) = (unique("watched"), unique("bulk"));

    let idle = unique("idle");
    let bare = measure_max_rate(&base, move |tag| {
        body((0..BATCH).map(|i| (idle.as_str(), format!("{tag}-{i}"))))
    })
    .await;
    let rss_before = process::rss(pid).expect("the server runs");
    // From the first stream opened to the stalled one read out.
    let stop = Arc::new(AtomicBool::new(false));
    let peaks = tokio::spawn(sample_peaks(pid, base.clone(), stop.clone()));
    let readers = open_readers(&base, &watched).await;
    let rss_open = process::rss(pid).expect("the server runs");
    // What "maximum" means with 1,000 streams open (see the top).
    let measured = measure_max_rate(&base, {
        let (watched, bulk) = (watched.clone(), bulk.clone());
        move |tag| load_batch(&watched, &bulk, tag)
    })
    .await;
    let target = measured.rate / 2.0;
    let mut stalled = Stalled::open(&server.addr, &bulk).await;
    eprintln!(
        "maximum rate {:.0}/s without streams, {:.0}/s with {} reading; target {target:.0}/s; \
         RSS {} MB before the streams, {} MB with them; {:.0?} so far",
        bare.rate,
        measured.rate,
        readers.len(),
        rss_before >> 20,
        rss_open >> 20,
        started.elapsed(),
    );

    let load = push_paced(&base, &watched, &bulk, target).await;
    let achieved = load.entries_acked() as f64 / load.took.as_secs_f64();
    let readers = check_readers(&base, &watched, &readers).await;
    let caught = stalled.read_up_to(newest_id(&base, &bulk).await).await;
    stop.store(true, Relaxed);
    let (rss_max, held_max) = peaks.await.expect("sampler");
    let unaccounted = check_notices(&base, &bulk, &caught).await;

    // The followed service's entries, both while measuring and after.
    let acked: Vec<String> = (measured.acked.iter().map(String::as_str))
        .chain(load.acked.iter().map(String::as_str))
        .map(message)
        .collect();
    let (_, lost, duplicated) = common::reliability::tally(
        acked.iter().map(String::as_str),
        readers.stored.iter().map(String::as_str),
    );
    Row {
        fault: format!(
            "1,000 tail streams ({STREAMS} gRPC, {STREAMS} SSE) at half the maximum rate"
        ),
        mode: "embedded".into(),
        pushed: measured.sent + load.sent,
        acknowledged: acked.len() as u64,
        found: readers.min_seen,
        lost: lost.max(readers.want.saturating_sub(readers.min_seen)),
        duplicated,
        recovery: None,
        detail: format!(
            "max rate {:.0}/s without streams, {:.0}/s with the 1,000 open; target {target:.0}/s, \
             achieved {achieved:.0}/s; 1 entry in {BATCH} to the 1,000 streams' service; \
             RSS before/with streams/max {}/{}/{} MB; live feed held at most {} KB; \
             skip notice to the stalled stream: {}, after {} records, {} notices naming {} ids",
            bare.rate,
            measured.rate,
            rss_before >> 20,
            rss_open >> 20,
            rss_max >> 20,
            held_max >> 10,
            if caught.notices.is_empty() {
                "no"
            } else {
                "yes"
            },
            caught.records_before_notice,
            caught.notices.len(),
            caught.notices.iter().map(|n| n.count).sum::<u64>(),
        ),
        test: "tail_load::a_thousand_tails_at_half_the_maximum_rate".into(),
    }
    .record();

    assert!(
        readers.wrong.is_empty(),
        "{} of {STREAMS} × 2 reading streams did not receive the {} stored entries in order:\n{}",
        readers.wrong.len(),
        readers.want,
        readers.wrong.join("\n")
    );
    assert_eq!(
        (lost, duplicated),
        (0, 0),
        "acknowledged entries lost, stored twice"
    );
    assert!(
        achieved >= 0.9 * target,
        "ingest reached {achieved:.0}/s of its target {target:.0}/s ({} pushes refused)",
        load.refused
    );
    assert!(
        rss_max < rss_before + RSS_GROWTH,
        "the server's RSS reached {} MB from {} MB",
        rss_max >> 20,
        rss_before >> 20
    );
    assert!(
        !caught.notices.is_empty(),
        "the stalled stream was never told it skipped"
    );
    assert!(
        unaccounted.is_empty(),
        "the stalled stream: {}",
        unaccounted.join("; ")
    );
    eprintln!("done in {:.0?}", started.elapsed());
}

/// What a measurement of the maximum rate did.
struct Measured {
    /// Entries a second acknowledged.
    rate: f64,
    /// Batches sent.
    sent: u64,
    /// Tags of the batches acknowledged.
    acked: Vec<String>,
}

/// Entries per second `MEASURING_PUSHERS` clients get acknowledged, each
/// pushing batches back to back for `MEASURE_FOR`; `batch(tag)` makes the
/// batch tagged `tag`.
async fn measure_max_rate<F>(base: &str, batch: F) -> Measured
where
    F: Fn(&str) -> String + Clone + Send + 'static,
{
    let t0 = Instant::now();
    let pushers: Vec<_> = (0..MEASURING_PUSHERS)
        .map(|p| {
            let (url, batch) = (logs_url(base), batch.clone());
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                let (mut sent, mut acked) = (0, Vec::new());
                while t0.elapsed() < MEASURE_FOR {
                    let tag = format!("m{p}-{sent}");
                    sent += 1;
                    if push(&http, &url, batch(&tag)).await {
                        acked.push(tag);
                    }
                }
                (sent, acked)
            })
        })
        .collect();
    let (mut sent, mut acked) = (0, Vec::new());
    for p in pushers {
        let (s, a) = p.await.expect("pusher");
        sent += s;
        acked.extend(a);
    }
    let rate = (acked.len() * BATCH) as f64 / t0.elapsed().as_secs_f64();
    assert!(rate > 0.0, "no push was acknowledged while measuring");
    Measured { rate, sent, acked }
}

/// What the paced load did.
struct Load {
    /// Batches sent, each with one entry of the followed service.
    sent: u64,
    /// Tags of the batches acknowledged.
    acked: Vec<String>,
    /// Pushes answered with anything but 200, or not at all.
    refused: u64,
    /// From the first push due to the last answer.
    took: Duration,
}

impl Load {
    fn entries_acked(&self) -> u64 {
        (self.acked.len() * BATCH) as u64
    }
}

/// Pushes batches on a fixed schedule that makes `rate` entries a second
/// for `LOAD_FOR`: batch `k` is due at `k × BATCH / rate`, and a pusher that
/// is late sends at once, so a slow answer is made up for by the others.
async fn push_paced(base: &str, watched: &str, bulk: &str, rate: f64) -> Load {
    let batches = (rate * LOAD_FOR.as_secs_f64() / BATCH as f64).ceil() as u64;
    let every = Duration::from_secs_f64(BATCH as f64 / rate);
    let next = Arc::new(AtomicU64::new(0));
    let t0 = tokio::time::Instant::now();
    let pushers: Vec<_> = (0..PACED_PUSHERS)
        .map(|_| {
            let (next, url) = (next.clone(), logs_url(base));
            let (watched, bulk) = (watched.to_string(), bulk.to_string());
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                let (mut acked, mut refused) = (Vec::new(), 0u64);
                loop {
                    let k = next.fetch_add(1, Relaxed);
                    if k >= batches {
                        return (acked, refused);
                    }
                    tokio::time::sleep_until(t0 + every.mul_f64(k as f64)).await;
                    let tag = format!("w{k}");
                    if push(&http, &url, load_batch(&watched, &bulk, &tag)).await {
                        acked.push(tag);
                    } else {
                        refused += 1;
                    }
                }
            })
        })
        .collect();
    let (mut acked, mut refused) = (Vec::new(), 0);
    for p in pushers {
        let (a, r) = p.await.expect("pusher");
        acked.extend(a);
        refused += r;
    }
    Load {
        sent: batches,
        acked,
        refused,
        took: t0.elapsed(),
    }
}

/// A batch of the load: its first entry, tagged `tag`, to the followed
/// service, the rest to the one only the stalled stream follows.
fn load_batch(watched: &str, bulk: &str, tag: &str) -> String {
    let first = std::iter::once((watched, tag.to_string()));
    body(first.chain((1..BATCH).map(|i| (bulk, format!("{tag}-{i}")))))
}

/// The message an entry tagged `tag` is pushed with.
fn message(tag: &str) -> String {
    format!("{tag} {FILLER}")
}

/// A JSON array for POST /v1/logs, written by hand: the messages need no
/// escaping, and the pushers of a debug build must not be what limits the
/// rate.
fn body<'a>(entries: impl Iterator<Item = (&'a str, String)>) -> String {
    let mut out = String::from("[");
    for (i, (svc, tag)) in entries.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&format!(
            r#"{{"service":"{svc}","message":"{}"}}"#,
            message(&tag)
        ));
    }
    out.push(']');
    out
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

/// What one reading stream received.
#[derive(Debug, Default, Clone)]
struct Seen {
    records: u64,
    /// Of the ids in the order received (see [`sequence_hash`]).
    hash: u64,
    last_id: u64,
    out_of_order: u64,
    /// Records the server said it skipped.
    skipped: u64,
    /// Why the stream ended, if it did.
    ended: Option<String>,
}

impl Seen {
    fn new() -> Self {
        Seen {
            hash: HASH_START,
            ..Default::default()
        }
    }

    fn record(&mut self, id: u64) {
        if id <= self.last_id {
            self.out_of_order += 1;
        }
        self.last_id = id;
        self.records += 1;
        self.hash = hash_step(self.hash, id);
    }
}

type Tally = Arc<Mutex<Seen>>;

const HASH_START: u64 = 0xcbf2_9ce4_8422_2325;

/// One step of an order-sensitive hash of ids: equal hashes mean the same
/// ids in the same order, to all practical purposes.
fn hash_step(h: u64, id: u64) -> u64 {
    (h ^ id).wrapping_mul(0x0000_0100_0000_01b3)
}

fn sequence_hash(ids: &[u64]) -> u64 {
    ids.iter().fold(HASH_START, |h, &id| hash_step(h, id))
}

/// Opens every reading stream on `svc`, each live (past its catch-up)
/// before this returns, and reading in a task of its own.
async fn open_readers(base: &str, svc: &str) -> Vec<Tally> {
    let mut clients = Vec::new();
    for _ in 0..GRPC_CONNECTIONS {
        // Each `connect` is an HTTP/2 connection of its own.
        clients.push(
            LogServiceClient::connect(base.to_string())
                .await
                .expect("gRPC connection"),
        );
    }
    let mut readers: Vec<Tally> = futures::stream::iter(0..STREAMS)
        .map(|i| open_grpc(clients[i % GRPC_CONNECTIONS].clone(), svc.to_string()))
        .buffer_unordered(OPENING)
        .collect()
        .await;
    // HTTP/1.1: one connection per stream, as browsers' EventSources.
    let http = reqwest::Client::new();
    let url = format!("{base}/v1/tail?service={svc}");
    let sse: Vec<Tally> = futures::stream::iter(0..STREAMS)
        .map(|_| open_sse(http.clone(), url.clone()))
        .buffer_unordered(OPENING)
        .collect()
        .await;
    readers.extend(sse);
    readers
}

async fn open_grpc(mut client: LogServiceClient<Channel>, svc: String) -> Tally {
    let req = TailRequest {
        filter: Some(only(&svc)),
        ..Default::default()
    };
    let mut stream = client.tail(req).await.expect("Tail").into_inner();
    let live = async {
        loop {
            let msg = stream
                .message()
                .await
                .expect("Tail stream")
                .expect("Tail ended");
            if let Some(tail_response::Event::Status(s)) = msg.event {
                assert_eq!(s.state, stream_status::State::Live as i32, "{s:?}");
                return;
            }
        }
    };
    tokio::time::timeout(OPEN_WITHIN, live)
        .await
        .expect("a Tail stream went live");
    let seen = Arc::new(Mutex::new(Seen::new()));
    tokio::spawn(read_grpc(stream, seen.clone()));
    seen
}

async fn read_grpc(mut stream: tonic::Streaming<TailResponse>, seen: Tally) {
    let ended = loop {
        match stream.message().await {
            Ok(Some(msg)) => {
                let mut s = seen.lock().expect("tally");
                match msg.event {
                    Some(tail_response::Event::Records(r)) => {
                        r.records.iter().for_each(|r| s.record(r.id));
                    }
                    Some(tail_response::Event::Skipped(k)) => s.skipped += k.count,
                    _ => {}
                }
            }
            Ok(None) => break "ended".to_string(),
            Err(e) => break e.to_string(),
        }
    };
    seen.lock().expect("tally").ended = Some(ended);
}

async fn open_sse(http: reqwest::Client, url: String) -> Tally {
    let mut resp = http.get(&url).send().await.expect("GET /v1/tail");
    assert!(
        resp.status().is_success(),
        "GET /v1/tail: {}",
        resp.status()
    );
    let mut sse = Sse::default();
    let seen = Arc::new(Mutex::new(Seen::new()));
    let live = async {
        let mut live = false;
        while !live {
            let chunk = resp.chunk().await.expect("SSE").expect("SSE ended");
            let mut s = seen.lock().expect("tally");
            for ev in sse.feed(&chunk) {
                if live {
                    apply(&mut s, &ev);
                } else if ev.kind == "status" {
                    assert!(ev.data.contains("LIVE"), "{}", ev.data);
                    live = true;
                }
            }
        }
    };
    tokio::time::timeout(OPEN_WITHIN, live)
        .await
        .expect("an SSE stream went live");
    tokio::spawn(read_sse(resp, sse, seen.clone()));
    seen
}

async fn read_sse(mut resp: reqwest::Response, mut sse: Sse, seen: Tally) {
    let ended = loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                let mut s = seen.lock().expect("tally");
                for ev in sse.feed(&chunk) {
                    apply(&mut s, &ev);
                }
            }
            Ok(None) => break "ended".to_string(),
            Err(e) => break e.to_string(),
        }
    };
    seen.lock().expect("tally").ended = Some(ended);
}

fn apply(s: &mut Seen, ev: &SseEvent) {
    match ev.kind.as_str() {
        "log" => s.record(ev.id.expect("a log event has an id")),
        "skipped" => s.skipped += skip_notice(&ev.data).count,
        _ => {}
    }
}

/// How the readers fared against the store.
struct Readers {
    /// Entries of the followed service stored: what each should have seen.
    want: u64,
    min_seen: u64,
    /// The readers that did not receive exactly those, in order.
    wrong: Vec<String>,
    /// The messages stored.
    stored: Vec<String>,
}

/// Compares what each reader received with what the store holds of the
/// service they follow, once they have taken it all in.
async fn check_readers(base: &str, svc: &str, readers: &[Tally]) -> Readers {
    let records = stored(base, svc).await;
    let ids: Vec<u64> = records.iter().map(|r| r.id).collect();
    let want = ids.len() as u64;
    let seen = wait_for_readers(readers, want).await;
    let hash = sequence_hash(&ids);
    let wrong = seen
        .iter()
        .enumerate()
        .filter(|(_, s)| s.records != want || s.hash != hash || s.skipped > 0 || s.out_of_order > 0)
        .map(|(i, s)| {
            format!(
                "{} stream {i}: {s:?}",
                if i < STREAMS { "gRPC" } else { "SSE" }
            )
        })
        .collect();
    Readers {
        want,
        min_seen: seen.iter().map(|s| s.records).min().unwrap_or(0),
        wrong,
        stored: records.into_iter().map(|r| r.message).collect(),
    }
}

/// Waits until every reader has `want` records, or one of them skipped or
/// ended (it never will then); what each has seen.
async fn wait_for_readers(readers: &[Tally], want: u64) -> Vec<Seen> {
    let deadline = Instant::now() + DRAIN_WITHIN;
    loop {
        let seen: Vec<Seen> = readers
            .iter()
            .map(|r| r.lock().expect("tally").clone())
            .collect();
        let done = seen.iter().all(|s| s.records >= want);
        let failed = seen.iter().any(|s| s.skipped > 0 || s.ended.is_some());
        if done || failed || Instant::now() > deadline {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// One server-sent event.
#[derive(Debug)]
struct SseEvent {
    kind: String,
    id: Option<u64>,
    data: String,
}

/// Cuts server-sent events out of a byte stream as it arrives.
#[derive(Default)]
struct Sse {
    buf: Vec<u8>,
}

impl Sse {
    /// The events completed by `bytes`.
    fn feed(&mut self, bytes: &[u8]) -> Vec<SseEvent> {
        self.buf.extend_from_slice(bytes);
        let mut events = Vec::new();
        let mut at = 0;
        while let Some(end) = find(&self.buf[at..], b"\n\n") {
            events.push(parse_event(&String::from_utf8_lossy(
                &self.buf[at..at + end],
            )));
            at += end + 2;
        }
        // Once per feed: a stalled stream reads megabytes at a time.
        self.buf.drain(..at);
        events
    }
}

fn parse_event(block: &str) -> SseEvent {
    let mut ev = SseEvent {
        kind: "message".into(),
        id: None,
        data: String::new(),
    };
    for line in block.lines() {
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => ev.kind = value.to_string(),
            "id" => ev.id = Some(value.parse().expect("a numeric event id")),
            "data" => ev.data.push_str(value),
            _ => {}
        }
    }
    ev
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// What a skip notice said.
#[derive(Debug, Clone, Copy)]
struct SkipNotice {
    count: u64,
    first: u64,
    last: u64,
}

fn skip_notice(data: &str) -> SkipNotice {
    let v: serde_json::Value = serde_json::from_str(data).expect("a skip notice is JSON");
    let field = |name: &str| {
        v[name]
            .as_u64()
            .unwrap_or_else(|| panic!("{name} in {data}"))
    };
    SkipNotice {
        count: field("count"),
        first: field("firstId"),
        last: field("lastId"),
    }
}

/// What the stalled stream received once it read again.
#[derive(Debug, Default)]
struct Caught {
    /// The first and the last id it was told of, as a record or in a
    /// skip notice.
    first_id: u64,
    last_id: u64,
    records: u64,
    records_before_notice: u64,
    notices: Vec<SkipNotice>,
}

impl Caught {
    /// Takes in one event, checking that ids only grow.
    fn take(&mut self, ev: &SseEvent) {
        let (first, last) = match ev.kind.as_str() {
            "log" => {
                let id = ev.id.expect("a log event has an id");
                self.records += 1;
                if self.notices.is_empty() {
                    self.records_before_notice += 1;
                }
                (id, id)
            }
            "skipped" => {
                let notice = skip_notice(&ev.data);
                self.notices.push(notice);
                (notice.first, notice.last)
            }
            _ => return,
        };
        assert!(
            first > self.last_id && last >= first,
            "{} of ids {first}..{last} after id {}",
            ev.kind,
            self.last_id
        );
        if self.first_id == 0 {
            self.first_id = first;
        }
        self.last_id = last;
    }
}

/// Whether the skip notices name exactly what the stalled stream missed:
/// each the count of records stored in its range, and with the records it
/// received, every stored record from the first id it was told of to the
/// last. What is not so.
async fn check_notices(base: &str, svc: &str, caught: &Caught) -> Vec<String> {
    let mut client = LogServiceClient::connect(base.to_string())
        .await
        .expect("connect");
    let mut wrong = Vec::new();
    for n in &caught.notices {
        let stored = count_between(&mut client, svc, n.first, n.last).await;
        if stored != n.count {
            wrong.push(format!("{n:?} where {stored} records are stored"));
        }
    }
    let stored = count_between(&mut client, svc, caught.first_id, caught.last_id).await;
    let told = caught.records + caught.notices.iter().map(|n| n.count).sum::<u64>();
    if told != stored {
        wrong.push(format!(
            "{told} records received or named from id {} to {}, where {stored} are stored",
            caught.first_id, caught.last_id
        ));
    }
    wrong
}

/// An SSE tail over a plain socket that stops reading once it is live, as
/// a browser tab in the background might: the server's writes to it block
/// soon, since the socket's receive buffer is kept small.
struct Stalled {
    tcp: tokio::net::TcpStream,
    /// Received and not yet decoded: the response head, then the chunked
    /// body.
    raw: Vec<u8>,
    head_read: bool,
    sse: Sse,
}

impl Stalled {
    async fn open(addr: &str, svc: &str) -> Stalled {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
        let mut tcp = socket
            .connect(addr.parse().expect("the server's address"))
            .await
            .expect("connect");
        let request = format!(
            "GET /v1/tail?service={svc} HTTP/1.1\r\nhost: {addr}\r\naccept: text/event-stream\r\n\r\n"
        );
        tcp.write_all(request.as_bytes())
            .await
            .expect("send the request");
        let mut stalled = Stalled {
            tcp,
            raw: Vec::new(),
            head_read: false,
            sse: Sse::default(),
        };
        let live = async { while !stalled.read().await.iter().any(|e| e.kind == "status") {} };
        tokio::time::timeout(OPEN_WITHIN, live)
            .await
            .expect("the stalled stream went live");
        stalled
    }

    /// Reads again until it has been told of every id up to `last`.
    async fn read_up_to(&mut self, last: u64) -> Caught {
        let deadline = Instant::now() + DRAIN_WITHIN;
        let mut caught = Caught::default();
        while caught.last_id < last {
            assert!(
                Instant::now() < deadline,
                "the stalled stream got only to id {} of {last}",
                caught.last_id
            );
            for ev in self.read().await {
                caught.take(&ev);
            }
        }
        caught
    }

    /// Reads what has arrived; the events it completed.
    async fn read(&mut self) -> Vec<SseEvent> {
        let mut buf = vec![0u8; 1 << 16];
        let n = tokio::time::timeout(DRAIN_WITHIN, self.tcp.read(&mut buf))
            .await
            .expect("the stalled stream goes on")
            .expect("read");
        assert!(n > 0, "the server closed the stalled stream");
        self.raw.extend_from_slice(&buf[..n]);
        if !self.head_read {
            let Some(end) = find(&self.raw, b"\r\n\r\n") else {
                return Vec::new();
            };
            let head = String::from_utf8_lossy(&self.raw[..end]).to_ascii_lowercase();
            assert!(head.starts_with("http/1.1 200"), "{head}");
            assert!(head.contains("transfer-encoding: chunked"), "{head}");
            self.raw.drain(..end + 4);
            self.head_read = true;
        }
        let body = dechunk(&mut self.raw);
        self.sse.feed(&body)
    }
}

/// The data of every complete chunk at the start of an HTTP/1.1 chunked
/// body, taken out of `raw`.
fn dechunk(raw: &mut Vec<u8>) -> Vec<u8> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(eol) = find(&raw[at..], b"\r\n") {
        let line = String::from_utf8_lossy(&raw[at..at + eol]);
        let size = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size, 16).expect("a chunk size");
        let start = at + eol + 2;
        if raw.len() < start + size + 2 {
            break;
        }
        out.extend_from_slice(&raw[start..start + size]);
        at = start + size + 2;
    }
    raw.drain(..at);
    out
}

/// Samples the server's RSS and the bytes its live feed holds every second
/// until `stop`; the largest of each.
async fn sample_peaks(pid: u32, base: String, stop: Arc<AtomicBool>) -> (u64, u64) {
    let (mut rss_max, mut held_max) = (0, 0);
    while !stop.load(Relaxed) {
        rss_max = rss_max.max(process::rss(pid).expect("the server runs"));
        let held = common::try_metric_at(&base, "taillight_tail_buffered_bytes").await;
        held_max = held_max.max(held.unwrap_or(0));
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    (
        rss_max.max(process::rss(pid).expect("the server runs")),
        held_max,
    )
}

/// Every stored record of `svc`, oldest first.
async fn stored(base: &str, svc: &str) -> Vec<taillight::proto::LogRecord> {
    let mut client = LogServiceClient::connect(base.to_string())
        .await
        .expect("connect");
    common::query_all(&mut client, only(svc)).await
}

/// How many records of `svc` have ids from `first` to `last`.
async fn count_between(
    client: &mut LogServiceClient<Channel>,
    svc: &str,
    first: u64,
    last: u64,
) -> u64 {
    let req = QueryLogsRequest {
        filter: Some(only(svc)),
        after_id: Some(first - 1),
        before_id: Some(last + 1),
        include_total: true,
        page_size: 1,
        ..Default::default()
    };
    let resp = client
        .query_logs(req)
        .await
        .expect("QueryLogs")
        .into_inner();
    resp.total_count.expect("total_count, asked for")
}

/// The id of the newest record of `svc`.
async fn newest_id(base: &str, svc: &str) -> u64 {
    let mut client = LogServiceClient::connect(base.to_string())
        .await
        .expect("connect");
    let req = QueryLogsRequest {
        filter: Some(only(svc)),
        order: Order::NewestFirst as i32,
        page_size: 1,
        ..Default::default()
    };
    let resp = client
        .query_logs(req)
        .await
        .expect("QueryLogs")
        .into_inner();
    resp.records
        .first()
        .map(|r| r.id)
        .expect("a record of the service")
}

//! Tail latency: entries pushed at a steady rate, each stamped with the time
//! it was made, and `subscribers` Tail streams measuring when each arrives.
//! Every subscriber must account for every entry: received once, in id
//! order, or reported in a `skipped` notice. Nothing may be missing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use taillight::proto::PushLogsRequest;
use taillight::proto::stream_status::State;
use tokio::sync::{mpsc, watch};

use crate::node::Node;
use crate::workload;
use lite::Event;

/// What one tail run measured.
#[derive(Debug, Clone)]
pub struct TailRun {
    /// Entries per second actually pushed.
    pub rate: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Fraction of (entries x subscribers) delivered; the rest was reported
    /// skipped (a subscriber that could not keep up).
    pub delivered: f64,
    pub peak_rss: u64,
    /// Server CPU cores busy per 10k entries/s.
    pub cores_per_10k: f64,
    /// Where the server's share of the latency went: p50 and p99 of the time
    /// from receipt to each of [`POINTS`], from the server's own histogram
    /// (so estimated within its buckets).
    pub server_ms: [[f64; 2]; POINTS.len()],
}

/// The pipeline points the server reports entry delays to: read by the
/// writer, stored, published to live tails.
pub const POINTS: [&str; 3] = ["read", "stored", "published"];

/// One subscriber's account.
#[derive(Default)]
struct Account {
    received: u64,
    skipped: u64,
    out_of_order: u64,
    latencies_us: Vec<u32>,
}

/// Streams carrying the pushes; more than one so a single connection is not
/// the limit at high rates.
const PUSH_STREAMS: usize = 4;
/// The pacer's tick.
pub const TICK: Duration = Duration::from_millis(10);

pub async fn run(node: &Node, marker: &str, rate: f64, subscribers: usize, secs: f64) -> TailRun {
    let (total_tx, total_rx) = watch::channel(None::<u64>);
    let (ready_tx, mut ready_rx) = mpsc::channel::<()>(subscribers.max(1));
    let mut subs = Vec::new();
    for _ in 0..subscribers {
        let channel = node.channel().await;
        let (marker, mut total_rx, ready) =
            (marker.to_string(), total_rx.clone(), ready_tx.clone());
        subs.push(tokio::spawn(async move {
            let mut stream = lite::tail(channel).await;
            let mut acc = Account::default();
            let mut last_id = 0u64;
            let mut ready = Some(ready);
            loop {
                if let Some(total) = *total_rx.borrow()
                    && acc.received + acc.skipped >= total
                {
                    return acc;
                }
                let msg = tokio::select! {
                    m = stream.message() => m,
                    _ = total_rx.changed() => continue,
                };
                let Ok(Some(msg)) = msg else { return acc };
                match msg.event {
                    Some(Event::Status(s)) if s.state == State::Live as i32 => {
                        if let Some(r) = ready.take() {
                            let _ = r.send(()).await;
                        }
                    }
                    Some(Event::Records(rs)) => {
                        let now = taillight::model::time::now_micros();
                        for r in rs.records {
                            if workload::seq_of(&marker, &r.message).is_none() {
                                continue;
                            }
                            if r.id <= last_id {
                                acc.out_of_order += 1;
                            }
                            last_id = r.id;
                            acc.received += 1;
                            let sent = r
                                .time
                                .as_ref()
                                .map_or(now, taillight::model::time::to_micros);
                            acc.latencies_us
                                .push((now - sent).clamp(0, u32::MAX as i64) as u32);
                        }
                    }
                    Some(Event::Skipped(s)) => {
                        acc.skipped += s.count;
                        last_id = last_id.max(s.last_id);
                    }
                    _ => {}
                }
            }
        }));
    }
    drop(ready_tx);
    for _ in 0..subscribers {
        ready_rx
            .recv()
            .await
            .expect("a subscriber ended before going live");
    }

    node.reset_peak_rss();
    let delays0 = node.delays(&POINTS).await;
    let cpu0 = node.cpu_seconds();
    let (sent, elapsed) = pace(node, marker, rate, secs).await;
    let _ = total_tx.send(Some(sent));
    let mut all = Vec::new();
    let mut delivered = 0u64;
    for (i, s) in subs.into_iter().enumerate() {
        let acc = tokio::time::timeout(Duration::from_secs(60), s)
            .await
            .unwrap_or_else(|_| panic!("subscriber {i} never accounted for all {sent} entries"))
            .expect("subscriber task");
        assert_eq!(
            acc.out_of_order, 0,
            "subscriber {i}: records out of order or repeated"
        );
        assert_eq!(
            acc.received + acc.skipped,
            sent,
            "subscriber {i}: {} received + {} skipped of {sent} sent",
            acc.received,
            acc.skipped
        );
        delivered += acc.received;
        all.extend(acc.latencies_us);
    }
    let cpu = node.cpu_seconds() - cpu0;
    let delays = node.delays(&POINTS).await;
    let server_ms = std::array::from_fn(|i| {
        let runs = histogram_delta(&delays[i], &delays0[i]);
        [
            histogram_quantile(&runs, 0.5),
            histogram_quantile(&runs, 0.99),
        ]
    });
    all.sort_unstable();
    let pct = |p: f64| crate::report::percentile(&all, p) / 1000.0;
    let achieved = sent as f64 / elapsed;
    TailRun {
        rate: achieved,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        max_ms: pct(1.0),
        delivered: delivered as f64 / (sent * subscribers as u64).max(1) as f64,
        peak_rss: node.peak_rss(),
        cores_per_10k: cpu / elapsed / (achieved / 10_000.0),
        server_ms,
    }
}

/// What a cumulative histogram counted between two readings.
fn histogram_delta(after: &[(f64, f64)], before: &[(f64, f64)]) -> Vec<(f64, f64)> {
    after
        .iter()
        .map(|&(le, n)| {
            let was = before.iter().find(|b| b.0 == le).map_or(0.0, |b| b.1);
            (le, n - was)
        })
        .collect()
}

/// The `q` quantile of a cumulative histogram, interpolated linearly within
/// its bucket as Prometheus's `histogram_quantile` does; the highest finite
/// bound when it falls in the last bucket, NaN when it is empty.
fn histogram_quantile(cumulative: &[(f64, f64)], q: f64) -> f64 {
    let total = cumulative.last().map_or(0.0, |b| b.1);
    if total <= 0.0 {
        return f64::NAN;
    }
    let rank = q * total;
    let mut below = (0.0, 0.0);
    for &(le, n) in cumulative {
        if n >= rank {
            if le.is_infinite() {
                return below.0;
            }
            let share = if n > below.1 {
                (rank - below.1) / (n - below.1)
            } else {
                1.0
            };
            return below.0 + (le - below.0) * share;
        }
        below = (le, n);
    }
    below.0
}

/// The parts of a Tail response the benchmark reads. The subscribers run on
/// the same cores as the server, and fifty of them fully decoding every tag
/// and attribute of every record measured mostly themselves; prost skips the
/// fields not named here, so the server's work is unchanged and the clients'
/// is a fraction of it. Tags match `logs.proto`.
pub mod lite {
    use taillight::proto::{Skipped, StreamStatus, TailRequest};
    use tonic::transport::Channel;

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TailResponse {
        /// Heartbeats (tag 2) are not needed, so they decode as no event.
        #[prost(oneof = "Event", tags = "1, 3, 4")]
        pub event: Option<Event>,
    }

    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Event {
        #[prost(message, tag = "1")]
        Records(Records),
        #[prost(message, tag = "3")]
        Skipped(Skipped),
        #[prost(message, tag = "4")]
        Status(StreamStatus),
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Records {
        #[prost(message, repeated, tag = "1")]
        pub records: Vec<Record>,
    }

    /// A `LogRecord` without service, level, tags, attributes and received
    /// time.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Record {
        #[prost(uint64, tag = "1")]
        pub id: u64,
        /// Carries the run's marker and sequence number.
        #[prost(string, tag = "4")]
        pub message: String,
        /// When the entry was made: the start of its latency.
        #[prost(message, optional, tag = "7")]
        pub time: Option<prost_types::Timestamp>,
    }

    /// Opens a Tail of everything, with a heartbeat every second.
    pub async fn tail(channel: Channel) -> tonic::Streaming<TailResponse> {
        let mut grpc = tonic::client::Grpc::new(channel)
            .max_decoding_message_size(crate::node::MAX_MESSAGE_BYTES);
        grpc.ready().await.expect("channel ready");
        let request = TailRequest {
            heartbeat_interval: Some(prost_types::Duration {
                seconds: 1,
                nanos: 0,
            }),
            ..Default::default()
        };
        grpc.server_streaming(
            tonic::Request::new(request),
            http::uri::PathAndQuery::from_static("/taillight.v1.LogService/Tail"),
            tonic_prost::ProstCodec::<TailRequest, TailResponse>::default(),
        )
        .await
        .expect("Tail")
        .into_inner()
    }
}

/// Pushes entries stamped with the current time at `rate` per second for
/// `secs`; returns how many were acknowledged and over how long.
pub async fn pace(node: &Node, marker: &str, rate: f64, secs: f64) -> (u64, f64) {
    let mut senders = Vec::new();
    let mut pushes = Vec::new();
    for _ in 0..PUSH_STREAMS {
        let (tx, rx) = mpsc::channel::<PushLogsRequest>(256);
        let mut c = node.client().await;
        senders.push(tx);
        pushes.push(tokio::spawn(async move {
            c.push_logs(tokio_stream::wrappers::ReceiverStream::new(rx))
                .await
                .expect("PushLogs")
                .into_inner()
                .accepted
        }));
    }
    let marker: Arc<str> = marker.into();
    let start = Instant::now();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut made = 0u64;
    let mut turn = 0usize;
    loop {
        tick.tick().await;
        let t = start.elapsed().as_secs_f64();
        if t >= secs {
            break;
        }
        let due = (rate * t) as u64;
        if due <= made {
            continue;
        }
        let now = workload::now();
        // A pacer that fell behind catches up in several messages, each
        // well under the server's 4 MiB message limit.
        for from in (made..due).step_by(1000) {
            let entries = (from..(from + 1000).min(due))
                .map(|i| workload::entry(&marker, i, Some(now)))
                .collect();
            if senders[turn % PUSH_STREAMS]
                .send(PushLogsRequest { entries })
                .await
                .is_err()
            {
                panic!("a push stream ended early");
            }
            turn += 1;
        }
        made = due;
    }
    drop(senders);
    let mut sent = 0;
    for p in pushes {
        sent += p.await.expect("push task");
    }
    assert_eq!(sent, made, "entries acknowledged");
    (sent, start.elapsed().as_secs_f64())
}

//! Query latency on a large store: the store is filled through taillight
//! itself, then three kinds of history query are timed one after another
//! from one client, as the viewer asks them.

use std::time::{Duration, Instant};

use futures::StreamExt;
use taillight::proto::{
    GetHistogramRequest, Level, LogFilter, Order, PushLogsRequest, QueryLogsRequest,
};

use crate::node::Node;
use crate::workload;

/// Result of filling the store.
#[derive(Debug, Clone, Copy)]
pub struct Fill {
    /// Entries stored per second while filling.
    pub rate: f64,
    /// Store size on disk per entry, bytes, text index included.
    pub disk_per_entry: f64,
    /// Seconds from the last entry stored to the text index covering every
    /// whole group of blocks.
    pub index_catch_up_s: f64,
    /// When the fill started (µs): its entries' times end there.
    pub end_us: i64,
}

/// p50 and p99 of one kind of query, milliseconds.
#[derive(Debug, Clone, Copy)]
pub struct Latency {
    pub p50_ms: f64,
    pub p99_ms: f64,
}

impl Latency {
    /// p50 and p99 of the times `ms`.
    fn of(mut ms: Vec<f64>) -> Latency {
        ms.sort_by(f64::total_cmp);
        let pct = |p: f64| crate::report::percentile(&ms, p);
        Latency {
            p50_ms: pct(0.5),
            p99_ms: pct(0.99),
        }
    }
}

pub const PAGE: u32 = 100;

/// The span the store's entry times are spread over, ending when the fill
/// starts: a day, as the histogram's target asks.
pub const SPAN_US: i64 = 24 * 3_600_000_000;

/// Pushes `n` entries over 8 streams, generated as they are sent so the
/// client's memory stays small, their times spread evenly over the
/// [`SPAN_US`] before now; waits until all are stored and checks them.
pub async fn fill(node: &Node, marker: &str, n: u64) -> Fill {
    const STREAMS: u64 = 8;
    const BATCH: u64 = 1000;
    let stored_before = node.metric("taillight_entries_stored_total").await;
    let t0 = Instant::now();
    let end_us = taillight::model::time::now_micros();
    let step_us = SPAN_US / n.max(1) as i64;
    let per = n.div_ceil(STREAMS);
    let mut tasks = Vec::new();
    for s in 0..STREAMS {
        let mut c = node.client().await;
        let (lo, hi) = (s * per, ((s + 1) * per).min(n));
        let marker = marker.to_string();
        tasks.push(tokio::spawn(async move {
            let msgs = futures::stream::iter((lo..hi).step_by(BATCH as usize)).map(move |from| {
                let at = |i: u64| {
                    let us = end_us - SPAN_US + i as i64 * step_us;
                    Some(taillight::model::time::from_micros(us))
                };
                PushLogsRequest {
                    entries: (from..(from + BATCH).min(hi))
                        .map(|i| workload::entry(&marker, i, at(i)))
                        .collect(),
                }
            });
            let r = c.push_logs(msgs).await.expect("PushLogs").into_inner();
            assert_eq!(r.accepted, hi.saturating_sub(lo), "PushLogs accepted");
        }));
    }
    for t in tasks {
        t.await.expect("fill stream");
    }
    let done = node
        .wait_stored(stored_before + n, Duration::from_secs(3600))
        .await;
    let rate = n as f64 / done.duration_since(t0).as_secs_f64();
    crate::ingest::check_stored(node, marker, n).await;
    let index_catch_up_s = wait_text_index(node).await.as_secs_f64();
    Fill {
        rate,
        disk_per_entry: node.disk_bytes() as f64 / n as f64,
        index_catch_up_s,
        end_us,
    }
}

/// Waits until the text index covers the store up to its last group or
/// two (the rest a search scans), as a search right after the fill finds
/// it once the server is idle; returns how long that took.
async fn wait_text_index(node: &Node) -> Duration {
    const SQL: &str = "SELECT blocks_below * 128 AS c0, (SELECT COALESCE(MAX(id), 0) FROM logs) AS c1, \
                       0 AS c2, 0 AS c3 FROM text_index";
    const TWO_GROUPS: u64 = 2 * 64 * 128;
    let t = Instant::now();
    loop {
        let row = match node.database() {
            Some(db) => crate::sql::mariadb(&db, SQL),
            None => crate::sql::sqlite(&node.sqlite_path(), SQL),
        };
        let v: Vec<u64> = row
            .split_whitespace()
            .map(|x| x.parse().expect("reach"))
            .collect();
        if v[0] + TWO_GROUPS > v[1] {
            return t.elapsed();
        }
        assert!(
            t.elapsed() < Duration::from_secs(3600),
            "the text index stayed at id {}",
            v[0]
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The viewer's first screen: newest page of one service at WARN and
/// above with one tag.
fn filtered() -> LogFilter {
    LogFilter {
        services: vec![workload::QUERY_SERVICE.into()],
        min_level: Level::Warn as i32,
        tags: vec![workload::QUERY_TAG.into()],
        ..Default::default()
    }
}

pub fn newest() -> QueryLogsRequest {
    QueryLogsRequest {
        filter: Some(filtered()),
        order: Order::NewestFirst as i32,
        page_size: PAGE,
        ..Default::default()
    }
}

/// The id halfway between the oldest and the newest entry matching the
/// newest-page filter (ids follow commit order, which with Kafka is not the
/// order entries were sent in, so the middle of the store is no guide).
pub async fn middle(node: &Node) -> u64 {
    let mut c = node.client().await;
    let mut ends = Vec::new();
    for order in [Order::OldestFirst, Order::NewestFirst] {
        let r = c
            .query_logs(QueryLogsRequest {
                order: order as i32,
                page_size: 1,
                ..newest()
            })
            .await
            .expect("QueryLogs")
            .into_inner();
        ends.push(r.records.first().expect("a matching entry").id);
    }
    (ends[0] + ends[1]) / 2
}

/// The same filter, paging back from `middle_id`.
pub fn deep(middle_id: u64) -> QueryLogsRequest {
    QueryLogsRequest {
        before_id: Some(middle_id),
        ..newest()
    }
}

/// Text search for a word in about one message in a thousand, in one
/// service.
pub fn text() -> QueryLogsRequest {
    QueryLogsRequest {
        filter: Some(LogFilter {
            services: vec![workload::QUERY_SERVICE.into()],
            text: workload::RARE_WORD.into(),
            ..Default::default()
        }),
        order: Order::NewestFirst as i32,
        page_size: PAGE,
        ..Default::default()
    }
}

/// Times `iters` answers of `ask` (after two untimed ones; at least 20 but
/// no more than fit in about 20 s), each then checked by `check`.
async fn timed<T>(
    iters: usize,
    mut ask: impl AsyncFnMut() -> T,
    mut check: impl FnMut(T),
) -> Latency {
    let mut ms = Vec::with_capacity(iters);
    let started = Instant::now();
    for i in 0..iters + 2 {
        // A slow query gets fewer repetitions, not a longer benchmark.
        if ms.len() >= 20 && started.elapsed() > Duration::from_secs(20) {
            break;
        }
        let t = Instant::now();
        let answer = ask().await;
        if i >= 2 {
            ms.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        check(answer);
    }
    Latency::of(ms)
}

/// Times `iters` runs of `req` (see [`timed`]); every answer must be
/// non-empty and match the filter.
pub async fn time(node: &Node, req: QueryLogsRequest, iters: usize) -> Latency {
    let mut c = node.client().await;
    let f = req.filter.clone().expect("filter");
    let ask = async || {
        c.query_logs(req.clone())
            .await
            .expect("QueryLogs")
            .into_inner()
    };
    let check = |r: taillight::proto::QueryLogsResponse| {
        assert!(!r.records.is_empty(), "no records for {req:?}");
        for rec in &r.records {
            assert!(
                f.services.contains(&rec.service)
                    && rec.level >= f.min_level
                    && f.tags.iter().all(|t| rec.tags.contains(t))
                    && rec.message.contains(&f.text)
                    && req.before_id.is_none_or(|b| rec.id < b),
                "{rec:?} does not match {req:?}"
            );
        }
    };
    timed(iters, ask, check).await
}

/// Times the volume histogram of the whole day (every entry, about 100
/// buckets), as the viewer asks it above an unfiltered list; every answer
/// must count all `n` entries.
pub async fn time_histogram(node: &Node, fill: &Fill, n: u64, iters: usize) -> Latency {
    let mut c = node.client().await;
    // From a minute before the fill's first entry time to now: a slow
    // fill (Kafka mode) takes longer than that minute.
    let req = GetHistogramRequest {
        start_time: Some(taillight::model::time::from_micros(
            fill.end_us - SPAN_US - 60_000_000,
        )),
        end_time: Some(taillight::model::time::from_micros(
            taillight::model::time::now_micros(),
        )),
        ..Default::default()
    };
    let ask = async || {
        c.get_histogram(req.clone())
            .await
            .expect("GetHistogram")
            .into_inner()
    };
    let check = |r: taillight::proto::GetHistogramResponse| {
        let counted: u64 = r.buckets.iter().flat_map(|b| b.counts.values()).sum();
        assert!(counted >= n, "the histogram counted {counted} of {n}");
    };
    timed(iters, ask, check).await
}

/// A text search over HTTP, as a user types it into `GET /v1/logs`.
pub struct TextSearch {
    /// The query string, `text` and any other filters.
    pub params: String,
    /// The text every record found must contain.
    pub text: &'static str,
    /// How many records the newest page must hold: all of them, for a
    /// word rarer than a page.
    pub found: Option<usize>,
}

/// The word in one message in a thousand, in every service: a full page
/// of it in a store of `n` entries, once `n` holds surely more than a page.
pub fn rare_word(n: u64) -> TextSearch {
    TextSearch {
        params: format!("text={}", workload::RARE_WORD),
        text: workload::RARE_WORD,
        found: (n >= 1_000_000).then_some(PAGE as usize),
    }
}

/// The word in one message in [`workload::NEEDLE_EVERY`]: every one of
/// them (ten of 10M) on the first page.
pub fn needle(n: u64) -> TextSearch {
    TextSearch {
        params: format!("text={}", workload::NEEDLE),
        text: workload::NEEDLE,
        found: Some(n.div_ceil(workload::NEEDLE_EVERY) as usize),
    }
}

/// The rare word with a service, a level and the last 12 hours.
pub fn rare_word_filtered() -> TextSearch {
    let start = taillight::model::time::now_micros() - SPAN_US / 2;
    let start = taillight::model::time::from_micros(start);
    TextSearch {
        params: format!(
            "text={}&service={}&min_level=info&start={}",
            workload::RARE_WORD,
            workload::QUERY_SERVICE,
            start
        ),
        text: workload::RARE_WORD,
        found: None,
    }
}

/// Times `iters` answers of `GET /v1/logs?{search.params}` for the newest
/// page (see [`timed`]); each must find what `search` says.
pub async fn time_http_text(node: &Node, search: TextSearch, iters: usize) -> Latency {
    let http = reqwest::Client::new();
    let url = format!(
        "{}/v1/logs?{}&page_size={PAGE}&order=newest",
        node.base, search.params
    );
    let ask = async || -> serde_json::Value {
        let r = http.get(&url).send().await.expect("GET /v1/logs");
        assert!(r.status().is_success(), "{url}: {}", r.status());
        r.json().await.expect("JSON")
    };
    let check = |body: serde_json::Value| {
        let records = body["records"].as_array().cloned().unwrap_or_default();
        assert!(!records.is_empty(), "nothing found by {url}");
        if let Some(n) = search.found {
            assert_eq!(records.len(), n, "{url}");
        }
        for r in &records {
            let m = r["message"].as_str().unwrap_or_default();
            assert!(m.contains(search.text), "{m} from {url}");
        }
    };
    timed(iters, ask, check).await
}

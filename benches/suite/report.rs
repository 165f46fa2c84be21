//! Results: every figure of every run, summarised as min / median / max per
//! mode, with the machine limits of the same runs beside them, the targets
//! checked, written as JSON and as a markdown table.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::node::Mode;

/// One mode's figures from one run, in the order measured.
#[derive(Debug, Serialize, serde::Deserialize)]
pub struct Run {
    pub mode: Mode,
    pub run: usize,
    pub values: Vec<(String, f64)>,
}

impl Run {
    pub fn new(mode: Mode, run: usize) -> Self {
        Run {
            mode,
            run,
            values: Vec::new(),
        }
    }

    pub fn set(&mut self, key: impl Into<String>, v: f64) {
        let key = key.into();
        eprintln!(
            "  {:<10} run {} {key:<34} {v:>14.2}",
            self.mode.name(),
            self.run
        );
        self.values.push((key, v));
    }

    fn get(&self, key: &str) -> Option<f64> {
        self.values.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
    }
}

/// How a figure is shown: its label, unit, and the limit it is compared to.
struct Row {
    key: &'static str,
    label: &'static str,
    unit: &'static str,
    vs: Option<&'static str>,
}

const fn row(key: &'static str, label: &'static str, unit: &'static str) -> Row {
    Row {
        key,
        label,
        unit,
        vs: None,
    }
}

const fn vs(
    key: &'static str,
    label: &'static str,
    unit: &'static str,
    limit: &'static str,
) -> Row {
    Row {
        key,
        label,
        unit,
        vs: Some(limit),
    }
}

const ROWS: &[Row] = &[
    row(
        "limit.sqlite_batched",
        "limit: SQLite batched insert (same rows, sync=FULL)",
        "entries/s",
    ),
    row(
        "limit.mariadb_load_data",
        "limit: MariaDB LOAD DATA",
        "entries/s",
    ),
    row(
        "limit.mariadb_insert_1000",
        "limit: MariaDB 1000-row INSERTs, one connection",
        "entries/s",
    ),
    row(
        "limit.broker_produce",
        "limit: broker produce (same payloads and settings)",
        "msgs/s",
    ),
    row(
        "limit.broker_consume",
        "limit: broker consume (consumer group)",
        "msgs/s",
    ),
    row(
        "limit.redis_publish",
        "limit: Redis PUBLISH (350 B, pipelined)",
        "msgs/s",
    ),
    row(
        "limit.redis_xadd",
        "limit: Redis XADD (350 B, pipelined)",
        "msgs/s",
    ),
    row(
        "limit.fanout_50sub",
        "limit: the same Tail messages to 50 local receivers by TCP (no gRPC)",
        "entries/s",
    ),
    vs(
        "ingest.stream.accepted",
        "PushLogs, 8 streams: acknowledged",
        "entries/s",
        "limit.broker_produce",
    ),
    vs(
        "ingest.stream.e2e",
        "PushLogs, 8 streams: stored end to end",
        "entries/s",
        "limit.sqlite_batched",
    ),
    vs(
        "ingest.stream.e2e",
        "PushLogs, 8 streams: stored end to end",
        "entries/s",
        "limit.mariadb_insert_1000",
    ),
    vs(
        "ingest.stream.e2e",
        "PushLogs, 8 streams: stored end to end",
        "entries/s",
        "limit.mariadb_load_data",
    ),
    row(
        "ingest.stream.cores_per_10k",
        "PushLogs: server CPU per 10k entries/s",
        "cores",
    ),
    row(
        "ingest.stream.peak_rss_mb",
        "PushLogs: server peak RSS",
        "MB",
    ),
    row(
        "ingest.stream.writer_store",
        "PushLogs: writer's time in store transactions",
        "fraction",
    ),
    row(
        "ingest.stream.writer_commit",
        "PushLogs: writer's time committing to the queue",
        "fraction",
    ),
    row(
        "ingest.stream.writer_publish",
        "PushLogs: publisher busy (its own task)",
        "fraction",
    ),
    row(
        "ingest.unary.accepted",
        "PushLog unary, 64 in flight: acknowledged",
        "entries/s",
    ),
    row(
        "ingest.unary.e2e",
        "PushLog unary: stored end to end",
        "entries/s",
    ),
    row(
        "ingest.ndjson.accepted",
        "HTTP NDJSON, 1000 per POST, 4 in flight: acknowledged",
        "entries/s",
    ),
    row(
        "ingest.ndjson.e2e",
        "HTTP NDJSON: stored end to end",
        "entries/s",
    ),
    vs(
        "ingest.otlp.e2e",
        "OTLP gRPC Export, 500 records each, 32 in flight: stored end to end",
        "entries/s",
        "ingest.stream.e2e",
    ),
    vs(
        "ingest.loki.e2e",
        "Loki push (snappy protobuf), 500 lines each, 32 in flight: stored end to end",
        "entries/s",
        "ingest.stream.e2e",
    ),
    vs(
        "redis.channel.e2e",
        "Redis channel (PUBLISH, JSON lines): stored end to end",
        "entries/s",
        "ingest.stream.e2e",
    ),
    row(
        "redis.channel.lost",
        "Redis channel: messages lost",
        "messages",
    ),
    vs(
        "redis.stream.e2e",
        "Redis stream (XADD, JSON lines): stored end to end",
        "entries/s",
        "ingest.stream.e2e",
    ),
    row(
        "steady.idle_rss_mb",
        "server RSS when idle after start",
        "MB",
    ),
    row("steady.rate", "steady load: rate pushed", "entries/s"),
    row("steady.peak_rss_mb", "steady load: server peak RSS", "MB"),
    row(
        "steady.cores_per_10k",
        "steady load: server CPU per 10k entries/s",
        "cores",
    ),
    row(
        "archive.rate",
        "archive (5 s periods) at the end-to-end maximum: rate pushed",
        "entries/s",
    ),
    row(
        "archive.lag_p50",
        "archive lag while pushed: p50",
        "entries",
    ),
    row(
        "archive.lag_p99",
        "archive lag while pushed: p99",
        "entries",
    ),
    row(
        "archive.lag_max",
        "archive lag while pushed: most",
        "entries",
    ),
    row(
        "archive.catch_up_ms",
        "archive lag back to 0 after the last push",
        "ms",
    ),
    row(
        "archive.ndjson_bytes_per_entry",
        "archive NDJSON per entry",
        "bytes",
    ),
    row(
        "archive.zst_ratio",
        "archive closed files: zstd bytes / NDJSON bytes",
        "ratio",
    ),
    row(
        "archive.gzip_ratio",
        "the same NDJSON gzipped (level 6) / NDJSON bytes, for comparison",
        "ratio",
    ),
    row("query.fill.rate", "query store fill: stored", "entries/s"),
    row("query.entries", "query store size", "entries"),
    row("disk.bytes_per_entry", "bytes on disk per entry", "bytes"),
    row(
        "query.text_index.catch_up_s",
        "text index: from the last entry stored to the index covering all but the last groups",
        "s",
    ),
    row(
        "query.newest.p50_ms",
        "newest page, service + level + tag: p50",
        "ms",
    ),
    row(
        "query.newest.p99_ms",
        "newest page, service + level + tag: p99",
        "ms",
    ),
    row(
        "query.deep.p50_ms",
        "page from the middle of history: p50",
        "ms",
    ),
    row(
        "query.deep.p99_ms",
        "page from the middle of history: p99",
        "ms",
    ),
    row(
        "query.text.p50_ms",
        "text search (1 in 1000), one service: p50",
        "ms",
    ),
    row(
        "query.text.p99_ms",
        "text search (1 in 1000), one service: p99",
        "ms",
    ),
    row(
        "query.http_text.rare.p50_ms",
        "HTTP text search (1 in 1000), every service: p50",
        "ms",
    ),
    row(
        "query.http_text.rare.p99_ms",
        "HTTP text search (1 in 1000), every service: p99",
        "ms",
    ),
    row(
        "query.http_text.needle.p50_ms",
        "HTTP text search (10 in 10M, all found): p50",
        "ms",
    ),
    row(
        "query.http_text.needle.p99_ms",
        "HTTP text search (10 in 10M, all found): p99",
        "ms",
    ),
    row(
        "query.http_text.rare_filtered.p50_ms",
        "HTTP text search (1 in 1000), service + level + 12 h: p50",
        "ms",
    ),
    row(
        "query.http_text.rare_filtered.p99_ms",
        "HTTP text search (1 in 1000), service + level + 12 h: p99",
        "ms",
    ),
    row(
        "query.histogram.p50_ms",
        "volume histogram of the whole store's day, ~100 buckets: p50",
        "ms",
    ),
    row(
        "query.histogram.p99_ms",
        "volume histogram of the whole store's day, ~100 buckets: p99",
        "ms",
    ),
];

/// Tail rows are generated: rate fraction x subscribers x statistic.
pub const TAIL_FRACTIONS: [u32; 3] = [10, 50, 90];

fn tail_rows() -> Vec<(String, String, &'static str, Option<String>)> {
    let mut out = Vec::new();
    for f in TAIL_FRACTIONS {
        // MariaDB alone at the same rate (Kafka mode, up to half the
        // maximum): what the simplest writer waits for its commits.
        let floor = |q: &str| format!("limit.mariadb_commit.{f}pct.{q}_ms");
        for q in ["p50", "p99"] {
            out.push((
                floor(q),
                format!(
                    "limit: MariaDB alone at the rate of the tail at {f}% of max, \
                     arrival to commit: {q}"
                ),
                "ms",
                None,
            ));
        }
        for s in ["1", "50"] {
            let k = format!("tail.{f}pct.{s}sub");
            let what = format!("tail at {f}% of max, {s} subscriber(s)");
            // Fifty subscribers' rate beside what plain TCP can carry to
            // fifty receivers on the same cores; one subscriber's latency
            // beside MariaDB's own.
            let ceiling = (s == "50").then(|| "limit.fanout_50sub".to_string());
            let own = |q: &str| (s == "1").then(|| floor(q));
            out.push((
                format!("{k}.rate"),
                format!("{what}: rate"),
                "entries/s",
                ceiling,
            ));
            out.push((
                format!("{k}.p50_ms"),
                format!("{what}: p50"),
                "ms",
                own("p50"),
            ));
            out.push((
                format!("{k}.p99_ms"),
                format!("{what}: p99"),
                "ms",
                own("p99"),
            ));
            out.push((format!("{k}.max_ms"), format!("{what}: max"), "ms", None));
            out.push((
                format!("{k}.delivered"),
                format!("{what}: delivered"),
                "fraction",
                None,
            ));
            // Where the server's share went; the JSON also has the time to
            // stored, a publish round trip short of published.
            for (point, q) in [("read", "p99"), ("published", "p50"), ("published", "p99")] {
                out.push((
                    format!("{k}.server.{point}.{q}_ms"),
                    format!("{what}: server, receipt to {point}: {q}"),
                    "ms",
                    None,
                ));
            }
        }
    }
    out
}

#[derive(Debug, Serialize)]
pub struct Summary {
    pub mode: Mode,
    pub key: String,
    pub label: String,
    pub unit: String,
    pub min: f64,
    pub median: f64,
    pub max: f64,
    /// The limit compared against, and taillight's figure as a fraction of
    /// it (min / median / max over runs, each run against its own limit).
    pub vs: Option<String>,
    pub fraction: Option<[f64; 3]>,
}

fn spread(mut v: Vec<f64>) -> Option<[f64; 3]> {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    let median = if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    };
    Some([v[0], median, v[v.len() - 1]])
}

/// The `p` quantile (0..=1) of ascending `sorted` values, by nearest rank;
/// NaN when there are none.
pub fn percentile<T: Copy + Into<f64>>(sorted: &[T], p: f64) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        n => sorted[((n - 1) as f64 * p).round() as usize].into(),
    }
}

/// The modes in the order they first appear (runs alternate between them).
fn distinct(modes: impl Iterator<Item = Mode>) -> Vec<Mode> {
    let mut out = Vec::new();
    for m in modes {
        if !out.contains(&m) {
            out.push(m);
        }
    }
    out
}

pub fn summarise(runs: &[Run]) -> Vec<Summary> {
    let mut out = Vec::new();
    let modes = distinct(runs.iter().map(|r| r.mode));
    let tail = tail_rows();
    for mode in modes {
        let mine: Vec<&Run> = runs.iter().filter(|r| r.mode == mode).collect();
        let rows = ROWS
            .iter()
            .map(|r| {
                (
                    r.key.to_string(),
                    r.label.to_string(),
                    r.unit,
                    r.vs.map(String::from),
                )
            })
            .chain(
                tail.iter()
                    .map(|(k, l, u, v)| (k.clone(), l.clone(), *u, v.clone())),
            );
        let mut mode_rows = Vec::new();
        for (key, label, unit, limit) in rows {
            let Some(s) = spread(mine.iter().filter_map(|r| r.get(&key)).collect()) else {
                continue;
            };
            let fraction = limit.as_deref().and_then(|l| {
                spread(
                    mine.iter()
                        .filter_map(|r| Some(r.get(&key)? / r.get(l)?))
                        .collect(),
                )
            });
            mode_rows.push(Summary {
                mode,
                key,
                label,
                unit: unit.to_string(),
                min: s[0],
                median: s[1],
                max: s[2],
                vs: fraction.and(limit),
                fraction,
            });
        }
        // A figure compared with limits this mode does not have is shown
        // once, plainly.
        let compared: Vec<String> = mode_rows
            .iter()
            .filter(|r| r.fraction.is_some())
            .map(|r| r.key.clone())
            .collect();
        let mut plain = std::collections::BTreeSet::new();
        out.extend(mode_rows.into_iter().filter(|r| {
            r.fraction.is_some() || (!compared.contains(&r.key) && plain.insert(r.key.clone()))
        }));
    }
    out
}

/// A target from the issue, checked on the medians.
#[derive(Debug, Serialize)]
pub struct Target {
    pub mode: Mode,
    pub target: String,
    pub measured: String,
    pub met: bool,
    /// What the machine itself did in the same run that the figure is
    /// judged against, when there is such a limit.
    pub limit: Option<String>,
}

fn median(s: &[Summary], mode: Mode, key: &str) -> Option<f64> {
    s.iter()
        .find(|x| x.mode == mode && x.key == key)
        .map(|x| x.median)
}

fn fraction(s: &[Summary], mode: Mode, key: &str, vs: &str) -> Option<f64> {
    s.iter()
        .find(|x| x.mode == mode && x.key == key && x.vs.as_deref() == Some(vs))
        .and_then(|x| x.fraction)
        .map(|f| f[1])
}

/// The medians of `keys` in `mode` as "label figure unit", joined; `None`
/// when none was measured.
fn limits(s: &[Summary], mode: Mode, keys: &[(&str, &str, &str)]) -> Option<String> {
    let parts: Vec<String> = keys
        .iter()
        .filter_map(|(key, label, unit)| {
            let v = median(s, mode, key)?;
            Some(format!("{label} {} {unit}", num(v, unit)))
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join("; "))
}

pub fn targets(s: &[Summary]) -> Vec<Target> {
    let mut t = Vec::new();
    let mut add = |mode: Mode,
                   target: &str,
                   measured: Option<f64>,
                   fmt: &dyn Fn(f64) -> String,
                   ok: &dyn Fn(f64) -> bool,
                   limit: &[(&str, &str, &str)]| {
        if let Some(m) = measured {
            t.push(Target {
                mode,
                target: target.into(),
                measured: fmt(m),
                met: ok(m),
                limit: limits(s, mode, limit),
            });
        }
    };
    let (e, d) = (Mode::Embedded, Mode::Distributed);
    let rate = |v: f64| format!("{v:.0} entries/s");
    let frac = |v: f64| format!("{:.0}%", v * 100.0);
    let ms = |v: f64| format!("{v:.1} ms");
    let sqlite = [(
        "limit.sqlite_batched",
        "raw SQLite batched insert",
        "entries/s",
    )];
    let push_logs = ("ingest.stream.e2e", "PushLogs", "entries/s");
    add(
        e,
        "end-to-end ingest >= 100,000 entries/s",
        median(s, e, "ingest.stream.e2e"),
        &rate,
        &|v| v >= 100_000.0,
        &sqlite,
    );
    add(
        e,
        "end-to-end ingest >= 50% of raw SQLite batched insert",
        fraction(s, e, "ingest.stream.e2e", "limit.sqlite_batched"),
        &frac,
        &|v| v >= 0.5,
        &sqlite,
    );
    add(
        d,
        "end-to-end ingest >= 100% of MariaDB 1000-row INSERTs",
        fraction(s, d, "ingest.stream.e2e", "limit.mariadb_insert_1000"),
        &frac,
        &|v| v >= 1.0,
        &[(
            "limit.mariadb_insert_1000",
            "MariaDB 1000-row INSERTs",
            "entries/s",
        )],
    );
    add(
        d,
        "end-to-end ingest >= 70% of MariaDB LOAD DATA (aim)",
        fraction(s, d, "ingest.stream.e2e", "limit.mariadb_load_data"),
        &frac,
        &|v| v >= 0.7,
        &[("limit.mariadb_load_data", "MariaDB LOAD DATA", "entries/s")],
    );
    for mode in [e, d] {
        for (key, what, redis) in [
            (
                "redis.channel.e2e",
                "channel",
                ("limit.redis_publish", "Redis PUBLISH", "msgs/s"),
            ),
            (
                "redis.stream.e2e",
                "stream",
                ("limit.redis_xadd", "Redis XADD", "msgs/s"),
            ),
        ] {
            add(
                mode,
                &format!("Redis {what} end to end >= 80% of PushLogs"),
                fraction(s, mode, key, "ingest.stream.e2e"),
                &frac,
                &|v| v >= 0.8,
                &[push_logs, redis],
            );
        }
        for (key, what) in [
            ("ingest.otlp.e2e", "OTLP gRPC"),
            ("ingest.loki.e2e", "Loki push"),
        ] {
            add(
                mode,
                &format!("{what} end to end >= 75% of PushLogs"),
                fraction(s, mode, key, "ingest.stream.e2e"),
                &frac,
                &|v| v >= 0.75,
                &[push_logs],
            );
        }
        for subs in [1, 50] {
            let fanout = (
                "limit.fanout_50sub",
                "plain TCP to 50 receivers",
                "entries/s",
            );
            let commit = (
                "limit.mariadb_commit.50pct.p99_ms",
                "MariaDB alone at that rate, p99",
                "ms",
            );
            add(
                mode,
                &format!("tail p99 < 50 ms at 50% of max, {subs} subscriber(s)"),
                median(s, mode, &format!("tail.50pct.{subs}sub.p99_ms")),
                &ms,
                &|v| v < 50.0,
                &[fanout, commit][usize::from(subs == 1)..],
            );
        }
        add(
            mode,
            "newest-page query p99 < 20 ms",
            median(s, mode, "query.newest.p99_ms"),
            &ms,
            &|v| v < 20.0,
            &[],
        );
        for (key, what) in [
            ("rare", "1 in 1000"),
            ("needle", "10 in 10M"),
            ("rare_filtered", "1 in 1000 with filters"),
        ] {
            for (q, limit) in [("p50", 50.0), ("p99", 150.0)] {
                add(
                    mode,
                    &format!("HTTP text search ({what}) {q} < {limit} ms"),
                    median(s, mode, &format!("query.http_text.{key}.{q}_ms")),
                    &ms,
                    &|v| v < limit,
                    &[],
                );
            }
        }
        // What an entry took in the recorded runs before any text index
        // (docs/benchmarks/recorded-runs.md); an index has to fit under it.
        let before = match mode {
            Mode::Embedded => 502.0,
            Mode::Distributed => 691.0,
        };
        add(
            mode,
            &format!("bytes on disk per entry <= {before:.0}"),
            median(s, mode, "disk.bytes_per_entry"),
            &|v| format!("{v:.0} bytes"),
            &|v| v <= before,
            &[],
        );
        // PushLogs end to end in the recorded run before the text index
        // (5e78703); with it, ingest has to stay within 10%.
        let rate_before = match mode {
            Mode::Embedded => 69_067.0,
            Mode::Distributed => 42_839.0,
        };
        add(
            mode,
            &format!(
                "end-to-end ingest >= 90% of {rate_before:.0} entries/s (before the text index)"
            ),
            median(s, mode, "ingest.stream.e2e"),
            &rate,
            &|v| v >= 0.9 * rate_before,
            &[],
        );
        add(
            mode,
            "volume histogram of 24 h p50 < 50 ms",
            median(s, mode, "query.histogram.p50_ms"),
            &ms,
            &|v| v < 50.0,
            &[],
        );
        add(
            mode,
            "archive files compressed to at most 1/5 of their NDJSON",
            median(s, mode, "archive.zst_ratio"),
            &|v| format!("1/{:.1}", 1.0 / v),
            &|v| v <= 0.2,
            &[],
        );
        add(
            mode,
            "archive back to 0 lag within 2 s of a maximum-rate load",
            median(s, mode, "archive.catch_up_ms"),
            &ms,
            &|v| v < 2_000.0,
            &[],
        );
        let steady = median(s, mode, "steady.rate").unwrap_or(0.0);
        add(
            mode,
            &format!("server RSS < 100 MB at 50,000 entries/s (pushed {steady:.0}/s)"),
            median(s, mode, "steady.peak_rss_mb"),
            &|v| format!("{v:.0} MB"),
            &|v| v < 100.0,
            &[],
        );
    }
    t
}

fn num(v: f64, unit: &str) -> String {
    if unit == "fraction" {
        return format!("{:.1}%", v * 100.0);
    }
    if v.abs() >= 1000.0 {
        // Thousands separated, no decimals.
        let s = format!("{:.0}", v);
        let mut out = String::new();
        for (i, c) in s.chars().enumerate() {
            if i > 0
                && (s.len() - i) % 3 == 0
                && c.is_ascii_digit()
                && s.as_bytes()[i - 1].is_ascii_digit()
            {
                out.push(',');
            }
            out.push(c);
        }
        out
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// Every target, measured and met or not, as one markdown table.
pub fn targets_table(targets: &[Target]) -> String {
    let mut md = String::from(
        "| mode | target | taillight | met | limit measured in the same run |\n|---|---|---|---|---|\n",
    );
    for t in targets {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} |",
            t.mode.name(),
            t.target,
            t.measured,
            if t.met { "yes" } else { "**no**" },
            t.limit.as_deref().unwrap_or("")
        );
    }
    md
}

/// The markdown tables: targets, then one table per mode.
pub fn markdown(
    summary: &[Summary],
    targets: &[Target],
    header: &BTreeMap<String, String>,
) -> String {
    let mut md = String::new();
    for (k, v) in header {
        let _ = writeln!(md, "- **{k}:** {v}");
    }
    let _ = writeln!(md, "\n### Targets (medians)\n");
    md.push_str(&targets_table(targets));
    for mode in distinct(summary.iter().map(|s| s.mode)) {
        let _ = writeln!(md, "\n### {}\n", mode.name());
        let _ = writeln!(
            md,
            "| measure | unit | min | median | max | fraction of limit (min / median / max) |\n|---|---|---:|---:|---:|---|"
        );
        for s in summary.iter().filter(|s| s.mode == mode) {
            let fr = match (&s.vs, s.fraction) {
                // A latency beside the least it could be: how many times it.
                (Some(l), Some(f)) if s.unit == "ms" => format!(
                    "{:.1}x / {:.1}x / {:.1}x `{}`",
                    f[0],
                    f[1],
                    f[2],
                    l.trim_start_matches("limit.")
                ),
                (Some(l), Some(f)) => format!(
                    "{:.0}% / {:.0}% / {:.0}% of `{}`",
                    f[0] * 100.0,
                    f[1] * 100.0,
                    f[2] * 100.0,
                    l.trim_start_matches("limit.")
                ),
                _ => String::new(),
            };
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} |",
                s.label,
                s.unit,
                num(s.min, &s.unit),
                num(s.median, &s.unit),
                num(s.max, &s.unit),
                fr
            );
        }
    }
    md
}

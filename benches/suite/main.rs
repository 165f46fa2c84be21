//! taillight's benchmark suite: ingest throughput, tail latency, query
//! latency and resources, in the embedded and the Kafka/MariaDB/Redis
//! modes, each beside the machine's limits measured in the same run.
//!
//! `cargo bench --bench suite` (see tests/bench.sh) runs it in full on a
//! release build and writes benches/results/latest.{json,md} and the
//! results section of BENCHMARKS.md. Run by `cargo test` (without
//! `--bench`) it is a smoke test: tiny sizes on the debug build, checking
//! that every entry is stored and tailed exactly once, not speed.
//!
//! Sizes come from `TAILLIGHT_BENCH_*` variables (see [`Settings`]).

mod archive;
#[path = "../../tests/common/mod.rs"]
mod common;
mod ingest;
mod limits;
mod node;
mod protocols;
mod query;
mod redis;
mod report;
mod sql;
mod tail;
mod workload;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use node::{Mode, Node};
use report::Run;

/// What to run, and how big. Each field is read from the environment
/// variable named beside it; defaults differ between full and smoke runs.
#[derive(Debug, Clone, serde::Serialize)]
struct Settings {
    /// Full benchmark (`cargo bench`) or smoke test (`cargo test`).
    full: bool,
    /// TAILLIGHT_BENCH_RUNS: repetitions of every measurement.
    runs: usize,
    /// TAILLIGHT_BENCH_MODES: `embedded,distributed` or one of them.
    modes: Vec<Mode>,
    /// TAILLIGHT_BENCH_ENTRIES: entries per PushLogs and NDJSON run, and
    /// per limit measurement.
    entries: u64,
    /// TAILLIGHT_BENCH_UNARY_ENTRIES: entries sent by unary PushLog.
    unary_entries: u64,
    /// TAILLIGHT_BENCH_TAIL_SECS: seconds of each steady tail run. Their
    /// rates are fractions of the measured PushLogs maximum, or of
    /// TAILLIGHT_BENCH_TAIL_MAX entries/s when set (read in `one_run`).
    tail_secs: f64,
    /// Subscribers of the tail runs.
    subscribers: Vec<usize>,
    /// TAILLIGHT_BENCH_STEADY_SECS: seconds of the 50k entries/s run.
    steady_secs: f64,
    /// TAILLIGHT_BENCH_QUERY_ENTRIES: size of the store queries run on.
    query_entries: u64,
    /// Timed repetitions of each query per run.
    query_iters: usize,
    /// TAILLIGHT_BENCH_OUT: where the JSON and markdown go. Not written into
    /// them: it is no result, and it would name a path of the machine. A
    /// full run with it set leaves BENCHMARKS.md alone (a trial run).
    #[serde(skip)]
    out: PathBuf,
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not valid")),
        Err(_) => default,
    }
}

impl Settings {
    fn from_env(full: bool) -> Self {
        fn pick<T>(full: bool, f: T, s: T) -> T {
            if full { f } else { s }
        }
        let modes = env_or("TAILLIGHT_BENCH_MODES", "embedded,distributed".to_string())
            .split(',')
            .map(|m| match m.trim() {
                "embedded" => Mode::Embedded,
                "distributed" => Mode::Distributed,
                other => panic!("TAILLIGHT_BENCH_MODES: unknown mode {other:?}"),
            })
            .collect();
        let default_out = if full {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/results")
        } else {
            std::env::temp_dir().join(format!("taillight-bench-smoke-{}", std::process::id()))
        };
        Settings {
            full,
            runs: env_or("TAILLIGHT_BENCH_RUNS", pick(full, 3, 1)),
            modes,
            entries: env_or("TAILLIGHT_BENCH_ENTRIES", pick(full, 300_000, 3_000)),
            unary_entries: env_or("TAILLIGHT_BENCH_UNARY_ENTRIES", pick(full, 50_000, 300)),
            tail_secs: env_or("TAILLIGHT_BENCH_TAIL_SECS", pick(full, 8.0, 1.0)),
            subscribers: if full { vec![1, 50] } else { vec![1, 3] },
            steady_secs: env_or("TAILLIGHT_BENCH_STEADY_SECS", pick(full, 15.0, 1.0)),
            query_entries: env_or(
                "TAILLIGHT_BENCH_QUERY_ENTRIES",
                pick(full, 10_000_000, 20_000),
            ),
            query_iters: pick(full, 200, 5),
            out: env_or("TAILLIGHT_BENCH_OUT", default_out),
        }
    }
}

/// The server measured: TAILLIGHT_BENCH_BIN, or the one built with the suite.
/// Another binary is for A/B runs of a change against the same suite.
fn bin() -> String {
    std::env::var("TAILLIGHT_BENCH_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_taillight").into())
}
const MB: f64 = 1024.0 * 1024.0;

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let s = Settings::from_env(full);
    eprintln!(
        "taillight bench ({}): {s:?}",
        if full { "full" } else { "smoke" }
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // TAILLIGHT_BENCH_REPORT=FILE rewrites the report from the runs saved
    // in a results JSON, without measuring anything.
    let (runs, header, settings): (Vec<Run>, BTreeMap<String, String>, serde_json::Value) =
        match std::env::var("TAILLIGHT_BENCH_REPORT") {
            Ok(file) => {
                let saved: serde_json::Value =
                    serde_json::from_str(&std::fs::read_to_string(&file).expect("results file"))
                        .expect("results JSON");
                (
                    serde_json::from_value(saved["runs"].clone()).expect("runs"),
                    serde_json::from_value(saved["machine"].clone()).expect("machine"),
                    saved["settings"].clone(),
                )
            }
            Err(_) => (
                rt.block_on(run_all(&s)),
                machine(&s),
                serde_json::to_value(&s).expect("settings"),
            ),
        };
    let summary = report::summarise(&runs);
    let targets = report::targets(&summary);
    std::fs::create_dir_all(&s.out).expect("output dir");
    let json = serde_json::json!({
        "machine": header,
        "settings": settings,
        "runs": runs,
        "summary": summary,
        "targets": targets,
    });
    let json_path = s.out.join("latest.json");
    std::fs::write(
        &json_path,
        serde_json::to_string_pretty(&json).expect("json"),
    )
    .expect("write json");
    let md = report::markdown(&summary, &targets, &header);
    std::fs::write(s.out.join("latest.md"), &md).expect("write markdown");
    eprintln!("\n{md}\nwritten to {}", s.out.display());
    if full && std::env::var_os("TAILLIGHT_BENCH_OUT").is_none() {
        let lead = format!(
            "Targets, medians of the latest recorded run ({}, {}, on {}; details under Results):\n\n{}",
            header.get("taillight").map_or("", String::as_str),
            header.get("date").map_or("", String::as_str),
            header.get("machine").map_or("", String::as_str),
            report::targets_table(&targets)
        );
        update_benchmarks_md(&md, &lead);
    } else if full {
        // Results sent elsewhere are a trial (one side of an A/B, a short
        // diagnostic run): the recorded results stay as they are.
        eprintln!("TAILLIGHT_BENCH_OUT is set: BENCHMARKS.md left as it is");
    } else {
        // The smoke run checked counts as it went; its files must parse.
        let back: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json_path).expect("read json"))
                .expect("json");
        assert!(back["summary"].as_array().is_some_and(|a| !a.is_empty()));
        let _ = std::fs::remove_dir_all(&s.out);
        println!("test result: ok. 1 passed; 0 failed (benchmark smoke run)");
    }
}

/// Replaces the generated parts of BENCHMARKS.md (between their markers):
/// the targets table it opens with, and the results section.
fn update_benchmarks_md(md: &str, lead: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("BENCHMARKS.md");
    let Ok(mut doc) = std::fs::read_to_string(&path) else {
        eprintln!("no BENCHMARKS.md to update");
        return;
    };
    for (name, text) in [("lead", lead), ("results", md)] {
        let begin = format!("<!-- {name}:begin (written by the benchmark suite) -->");
        let end = format!("<!-- {name}:end -->");
        let (Some(a), Some(b)) = (doc.find(&begin), doc.find(&end)) else {
            eprintln!("BENCHMARKS.md has no {name} markers; that part is left as it is");
            continue;
        };
        doc = format!("{}{begin}\n{text}\n{}", &doc[..a], &doc[b..]);
    }
    std::fs::write(&path, doc).expect("write BENCHMARKS.md");
}

async fn run_all(s: &Settings) -> Vec<Run> {
    let mut runs = Vec::new();
    // Modes alternate within each run so both see the same machine noise.
    for run in 0..s.runs {
        for &mode in &s.modes {
            runs.push(one_run(s, mode, run).await);
        }
    }
    for &mode in &s.modes {
        query_runs(s, mode, &mut runs).await;
    }
    runs
}

async fn one_run(s: &Settings, mode: Mode, run: usize) -> Run {
    eprintln!("\n== {} run {run}", mode.name());
    let mut r = Run::new(mode, run);
    let node = Node::start(mode, &bin()).await;
    let scratch = tempfile::tempdir().expect("temp dir");
    // Shared with the blocking limit measurements rather than copied.
    let limit_entries = std::sync::Arc::new(ingest::entries(&format!("r{run}-raw"), s.entries));

    match mode {
        Mode::Embedded => {
            let dir = scratch.path().join("raw-sqlite");
            let es = limit_entries.clone();
            let rate = tokio::task::spawn_blocking(move || limits::sqlite(&es, &dir))
                .await
                .expect("sqlite limit");
            r.set("limit.sqlite_batched", rate);
        }
        Mode::Distributed => {
            let db = node.database().expect("database");
            let (es, dir) = (limit_entries.clone(), scratch.path().to_path_buf());
            let (load, insert) =
                tokio::task::spawn_blocking(move || limits::mariadb(&db, &es, &dir))
                    .await
                    .expect("mariadb limit");
            r.set("limit.mariadb_load_data", load);
            r.set("limit.mariadb_insert_1000", insert);
            let brokers = node.cfg.queue.kafka.kafka_brokers.clone().expect("brokers");
            let tag = common::unique_name("bench");
            let (produce, consume) = limits::broker(
                &brokers,
                node.cfg.queue.kafka.kafka_linger,
                &limit_entries,
                &tag,
            )
            .await;
            r.set("limit.broker_produce", produce);
            r.set("limit.broker_consume", consume);
        }
    }
    // What Redis itself takes on this machine, for the Redis source runs
    // (and the bus, in the distributed mode).
    let n = if s.full { 2_000_000 } else { 20_000 };
    let tag = common::unique_name("bench");
    let (publish, xadd) = tokio::task::spawn_blocking(move || {
        (
            limits::redis_publish(350, n, &tag),
            limits::redis_xadd(350, n / 4, &tag),
        )
    })
    .await
    .expect("redis limits");
    r.set("limit.redis_publish", publish);
    r.set("limit.redis_xadd", xadd);
    // The ceiling for the largest tail run's fan-out; both modes measure it
    // so each mode's tail rates are shown against its own runs.
    let receivers = s.subscribers.iter().copied().max().unwrap_or(1);
    let fanout = limits::fanout(&limit_entries, &format!("r{run}-raw"), receivers).await;
    r.set(format!("limit.fanout_{receivers}sub"), fanout);
    drop(limit_entries);

    let m = |p: &str| format!("r{run}-{p}");
    let mut max = 0.0;
    for (name, n, shape) in [
        (
            "stream",
            s.entries,
            ingest::Shape::Stream {
                streams: 8,
                batch: 500,
            },
        ),
        (
            "unary",
            s.unary_entries,
            ingest::Shape::Unary { concurrency: 64 },
        ),
        (
            "ndjson",
            s.entries,
            ingest::Shape::Ndjson {
                concurrency: 4,
                batch: 1000,
            },
        ),
        (
            "otlp",
            s.entries,
            ingest::Shape::Otlp {
                concurrency: 32,
                batch: 500,
            },
        ),
        (
            "loki",
            s.entries,
            ingest::Shape::Loki {
                concurrency: 32,
                batch: 500,
            },
        ),
    ] {
        let x = ingest::run(&node, &m(name), n, shape).await;
        r.set(format!("ingest.{name}.accepted"), x.accepted);
        r.set(format!("ingest.{name}.e2e"), x.e2e);
        if name != "stream" {
            continue;
        }
        // The streamed run is the maximum the tail runs are scaled to, or
        // TAILLIGHT_BENCH_TAIL_MAX: the same rates for both sides of an A/B.
        max = env_or("TAILLIGHT_BENCH_TAIL_MAX", x.e2e);
        r.set("ingest.stream.cores_per_10k", x.cores_per_10k);
        r.set("ingest.stream.peak_rss_mb", x.peak_rss as f64 / MB);
        for (stage, share) in ["read", "store", "commit", "publish"]
            .iter()
            .zip(x.writer_share)
        {
            r.set(format!("ingest.stream.writer_{stage}"), share);
        }
    }
    // Entries from Redis, on a node of their own (it also subscribes).
    let from_redis = redis::run(mode, &bin(), &m("redis"), s.entries).await;
    r.set("redis.channel.e2e", from_redis.channel_e2e);
    r.set("redis.channel.lost", from_redis.channel_lost);
    r.set("redis.stream.e2e", from_redis.stream_e2e);
    let rate_at = |f: u32| max * f as f64 / 100.0;
    for f in report::TAIL_FRACTIONS {
        for &subs in &s.subscribers {
            let t = tail::run(
                &node,
                &m(&format!("t{f}x{subs}")),
                rate_at(f),
                subs,
                s.tail_secs,
            )
            .await;
            let k = format!("tail.{f}pct.{subs}sub");
            r.set(format!("{k}.rate"), t.rate);
            r.set(format!("{k}.p50_ms"), t.p50_ms);
            r.set(format!("{k}.p99_ms"), t.p99_ms);
            r.set(format!("{k}.max_ms"), t.max_ms);
            r.set(format!("{k}.delivered"), t.delivered);
            for (point, [p50, p99]) in tail::POINTS.iter().zip(t.server_ms) {
                r.set(format!("{k}.server.{point}.p50_ms"), p50);
                r.set(format!("{k}.server.{point}.p99_ms"), p99);
            }
            r.set(
                format!("{k}.server_cores"),
                t.cores_per_10k * t.rate / 10_000.0,
            );
        }
    }
    // The archive at the maximum rate, on a node of its own.
    let period = if s.full { "5s" } else { "2s" };
    let a = archive::run(mode, &bin(), &m("archive"), max, s.tail_secs, period).await;
    r.set("archive.rate", a.rate);
    for (k, v) in ["p50", "p99", "max"].iter().zip(a.lag) {
        r.set(format!("archive.lag_{k}"), v);
    }
    r.set("archive.catch_up_ms", a.catch_up_ms);
    if a.entries > 0 && a.ndjson_bytes > 0 {
        r.set(
            "archive.ndjson_bytes_per_entry",
            a.ndjson_bytes as f64 / a.entries as f64,
        );
        r.set(
            "archive.zst_ratio",
            a.zst_bytes as f64 / a.ndjson_bytes as f64,
        );
        r.set(
            "archive.gzip_ratio",
            a.gzip_bytes as f64 / a.ndjson_bytes as f64,
        );
    }
    // MariaDB by itself at the tail runs' rates, after them, so that its
    // rows (240k at half the maximum), written and dropped, cannot be part
    // of what a tail run measures. At 90% one connection falls behind, and
    // the latency measures only how far.
    if let (Some(url), Some(db)) = (&node.cfg.store.mysql.database_url, node.database()) {
        for f in report::TAIL_FRACTIONS.into_iter().filter(|f| *f <= 50) {
            let rate = rate_at(f);
            let es = ingest::entries(&m(&format!("c{f}")), (rate * s.tail_secs) as u64);
            let (p50, p99) =
                limits::mariadb_commit_latency(url, &db, &es, rate, node.cfg.batch_max()).await;
            r.set(format!("limit.mariadb_commit.{f}pct.p50_ms"), p50);
            r.set(format!("limit.mariadb_commit.{f}pct.p99_ms"), p99);
        }
    }
    // The memory target is set at 50,000 entries/s; a mode slower than that
    // is held at 90% of its maximum instead, and the rate is recorded.
    // A fresh server: memory the allocator kept from the runs above would
    // otherwise count against this one.
    node.stop();
    let node = Node::start(mode, &bin()).await;
    r.set("steady.idle_rss_mb", node.rss() as f64 / MB);
    let steady_rate = 50_000f64.min(max * 0.9);
    let t = tail::run(&node, &m("steady"), steady_rate, 1, s.steady_secs).await;
    r.set("steady.rate", t.rate);
    r.set("steady.peak_rss_mb", t.peak_rss as f64 / MB);
    r.set("steady.cores_per_10k", t.cores_per_10k);
    node.stop();
    r
}

/// Fills one store per mode, then times the queries once per run.
async fn query_runs(s: &Settings, mode: Mode, runs: &mut [Run]) {
    eprintln!(
        "\n== {}: filling a store with {} entries",
        mode.name(),
        s.query_entries
    );
    let node = Node::start(mode, &bin()).await;
    let fill = query::fill(&node, "q", s.query_entries).await;
    let middle = query::middle(&node).await;
    for r in runs.iter_mut().filter(|r| r.mode == mode) {
        if r.run == 0 {
            r.set("query.fill.rate", fill.rate);
            r.set("query.entries", s.query_entries as f64);
            r.set("disk.bytes_per_entry", fill.disk_per_entry);
            r.set("query.text_index.catch_up_s", fill.index_catch_up_s);
        }
        let newest = query::time(&node, query::newest(), s.query_iters).await;
        r.set("query.newest.p50_ms", newest.p50_ms);
        r.set("query.newest.p99_ms", newest.p99_ms);
        let deep = query::time(&node, query::deep(middle), s.query_iters).await;
        r.set("query.deep.p50_ms", deep.p50_ms);
        r.set("query.deep.p99_ms", deep.p99_ms);
        let text = query::time(&node, query::text(), (s.query_iters / 10).max(5)).await;
        r.set("query.text.p50_ms", text.p50_ms);
        r.set("query.text.p99_ms", text.p99_ms);
        let searches = [
            ("rare", query::rare_word(s.query_entries)),
            ("needle", query::needle(s.query_entries)),
            ("rare_filtered", query::rare_word_filtered()),
        ];
        for (name, search) in searches {
            let l = query::time_http_text(&node, search, s.query_iters).await;
            r.set(format!("query.http_text.{name}.p50_ms"), l.p50_ms);
            r.set(format!("query.http_text.{name}.p99_ms"), l.p99_ms);
        }
        let hist = query::time_histogram(&node, &fill, s.query_entries, s.query_iters).await;
        r.set("query.histogram.p50_ms", hist.p50_ms);
        r.set("query.histogram.p99_ms", hist.p99_ms);
    }
    node.stop();
}

fn command_line(cmd: &str, args: &[&str]) -> String {
    std::process::Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_string()
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "not found".into())
}

/// What the results were measured on.
fn machine(s: &Settings) -> BTreeMap<String, String> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name")?.split(':').nth(1))
        .unwrap_or("unknown")
        .trim()
        .to_string();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:").map(|v| v.trim().to_string()))
        .unwrap_or_default();
    let mut h = BTreeMap::new();
    h.insert(
        "machine".into(),
        format!(
            "{cpu}, {cores} cores, {mem} RAM; Kafka (tansu), MariaDB and Redis on the same machine"
        ),
    );
    h.insert("kernel".into(), command_line("uname", &["-sr"]));
    h.insert("mariadb".into(), command_line("mariadb", &["--version"]));
    // Searches of a 10M store read the disk when the buffer pool is small
    // (MariaDB's default is 128 MiB); tests/bench.sh sizes it.
    h.insert(
        "mariadb_buffer_pool".into(),
        command_line(
            "mariadb",
            &[
                "-h127.0.0.1",
                "-uroot",
                "-N",
                "-e",
                "SELECT CONCAT(@@innodb_buffer_pool_size DIV 1048576, ' MiB')",
            ],
        ),
    );
    h.insert("redis".into(), command_line("redis-server", &["--version"]));
    h.insert("broker".into(), command_line("tansu", &["--version"]));
    let measured = if std::env::var_os("TAILLIGHT_BENCH_BIN").is_some() {
        "the binary TAILLIGHT_BENCH_BIN named; suite at ".to_string()
    } else {
        String::new()
    };
    h.insert(
        "taillight".into(),
        format!(
            "{measured}{} ({} build)",
            command_line(
                "git",
                &[
                    "-C",
                    env!("CARGO_MANIFEST_DIR"),
                    "describe",
                    "--always",
                    "--dirty"
                ]
            ),
            if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            }
        ),
    );
    h.insert("runs".into(), format!(
        "{} per figure; {} entries per ingest run, {} per unary run; tail runs {} s each; query store {} entries",
        s.runs, s.entries, s.unary_entries, s.tail_secs, s.query_entries
    ));
    h.insert(
        "date".into(),
        command_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
    );
    h
}

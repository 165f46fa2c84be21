//! The machine's limits for the same rows, measured in the same run:
//! MariaDB's raw insert rate (LOAD DATA, and 1000-row INSERTs from one
//! connection of the C client), SQLite's batched insert rate with the same
//! durability, the broker's produce and consume rates, Redis' PUBLISH rate,
//! and how fast the same Tail messages reach 50 local receivers by plain TCP.
//! Every rate is in entries (or messages) per second. One limit is a
//! latency: how long MariaDB alone takes to commit entries arriving at a
//! tail run's rate.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut as _, Bytes, BytesMut};
use prost::Message as _;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer as _, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use taillight::model::{QueuedEntry, SourcePosition};
use taillight::proto::tail_response::Event;
use taillight::proto::{LogEntry, LogRecord, TailResponse};
use taillight::storage::codec::{BatchRows, LogRow};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::tail::lite;
use crate::workload;

/// Entries as the writer sees them, with a Kafka position each.
fn queued(entries: &[LogEntry]) -> Vec<QueuedEntry> {
    entries
        .iter()
        .enumerate()
        .map(|(i, e)| QueuedEntry {
            entry: e.clone(),
            received_us: e.time.as_ref().map_or(0, taillight::model::time::to_micros),
            source: Some(SourcePosition {
                partition: (i % 6) as i32,
                offset: (i / 6) as i64,
            }),
            dedup_key: None,
        })
        .collect()
}

/// Escapes a value for LOAD DATA's default format (tab-separated,
/// backslash escapes).
fn tsv(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('\t', "\\t")
        .replace('\n', "\\n")
}

fn sql_str(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// The columns of a `logs` row, in the table's order, text values passed
/// through `quote`.
fn fields(r: &LogRow, e: &QueuedEntry, quote: fn(&str) -> String) -> [String; 12] {
    let s = e.source.expect("source");
    [
        r.id.to_string(),
        quote(&r.service),
        r.level.to_string(),
        quote(&r.message),
        quote(&r.tags),
        quote(&r.attributes),
        r.time_us.to_string(),
        r.received_us.to_string(),
        quote(&r.trace_id),
        quote(&r.span_id),
        s.partition.to_string(),
        s.offset.to_string(),
    ]
}

/// The `logs` columns [`fields`] gives, in order: named, since the table
/// also has a generated one.
const LOG_COLUMNS: &str = "(id, service, level, message, tags, attributes, time_us, received_us, \
                           trace_id, span_id, source_partition, source_offset)";

/// Removes the raw limits' copies of taillight's MariaDB tables.
const DROP_RAW: &str = "DROP TABLE IF EXISTS raw_logs, raw_log_tags";

/// Makes empty copies of taillight's MariaDB tables for the raw limits.
fn reset_raw(db: &str) {
    crate::sql::mariadb(
        db,
        &format!(
            "{DROP_RAW}; CREATE TABLE raw_logs LIKE logs; CREATE TABLE raw_log_tags LIKE log_tags;"
        ),
    );
}

/// Each row's `raw_logs` VALUES tuple and its `raw_log_tags` tuples (`q`
/// are the entries `rows` were made of), written out before anything is
/// timed.
fn insert_tuples(rows: &BatchRows<'_>, q: &[QueuedEntry]) -> Vec<(String, Vec<String>)> {
    let mut tags_by_id: HashMap<i64, Vec<String>> = HashMap::new();
    for (tag, id) in &rows.tags {
        tags_by_id
            .entry(*id)
            .or_default()
            .push(format!("({},{id})", sql_str(tag)));
    }
    rows.logs
        .iter()
        .zip(q)
        .map(|(r, e)| {
            (
                format!("({})", fields(r, e, sql_str).join(",")),
                tags_by_id.remove(&r.id).unwrap_or_default(),
            )
        })
        .collect()
}

/// The INSERTs that store `rows` (from [`insert_tuples`]): 1000 `logs`
/// rows per statement, each followed by one for their tags.
fn insert_statements(rows: &[(String, Vec<String>)]) -> Vec<String> {
    let mut out = Vec::new();
    for chunk in rows.chunks(1000) {
        let logs: Vec<&str> = chunk.iter().map(|(l, _)| l.as_str()).collect();
        out.push(format!(
            "INSERT INTO raw_logs {LOG_COLUMNS} VALUES {}",
            logs.join(",")
        ));
        let tags: Vec<&str> = chunk
            .iter()
            .flat_map(|(_, t)| t.iter().map(String::as_str))
            .collect();
        if !tags.is_empty() {
            out.push(format!(
                "INSERT INTO raw_log_tags VALUES {}",
                tags.join(",")
            ));
        }
    }
    out
}

/// MariaDB rows/s for the same schema: `(LOAD DATA, 1000-row INSERTs)`,
/// each counted in entries (a `logs` row and its `log_tags` rows).
pub fn mariadb(db: &str, entries: &[LogEntry], scratch: &Path) -> (f64, f64) {
    let q = queued(entries);
    let rows = BatchRows::new(1, &q);

    // LOAD DATA: one file per table.
    let logs_file = scratch.join("logs.tsv");
    let tags_file = scratch.join("tags.tsv");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&logs_file).expect("tsv"));
        for (r, e) in rows.logs.iter().zip(&q) {
            writeln!(f, "{}", fields(r, e, tsv).join("\t")).expect("write");
        }
        let mut t = std::io::BufWriter::new(std::fs::File::create(&tags_file).expect("tsv"));
        for (tag, id) in &rows.tags {
            writeln!(t, "{}\t{id}", tsv(tag)).expect("write");
        }
    }
    reset_raw(db);
    let load = format!(
        "LOAD DATA LOCAL INFILE '{}' INTO TABLE raw_logs {LOG_COLUMNS}; LOAD DATA LOCAL INFILE '{}' INTO TABLE raw_log_tags;",
        logs_file.display(),
        tags_file.display()
    );
    let load_file = scratch.join("load.sql");
    std::fs::write(&load_file, load).expect("write");
    let t = Instant::now();
    crate::sql::mariadb_file(db, &load_file, &["--local-infile=1"]);
    let load_rate = entries.len() as f64 / t.elapsed().as_secs_f64();

    // 1000-row INSERTs, one transaction per 1000 entries.
    let insert_file = scratch.join("inserts.sql");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&insert_file).expect("sql"));
        for chunk in insert_tuples(&rows, &q).chunks(1000) {
            writeln!(f, "BEGIN;").expect("write");
            for stmt in insert_statements(chunk) {
                writeln!(f, "{stmt};").expect("write");
            }
            writeln!(f, "COMMIT;").expect("write");
        }
    }
    reset_raw(db);
    let t = Instant::now();
    crate::sql::mariadb_file(db, &insert_file, &[]);
    let insert_rate = entries.len() as f64 / t.elapsed().as_secs_f64();
    crate::sql::mariadb(db, DROP_RAW);
    for f in [logs_file, tags_file, load_file, insert_file] {
        let _ = std::fs::remove_file(f);
    }
    (load_rate, insert_rate)
}

/// What MariaDB alone can give a live tail at `rate` entries/s: `(p50,
/// p99)` ms from an entry's arrival to the commit that stores it. Entries
/// arrive as the tail runs push them, those due at each 10 ms tick at
/// once; one connection commits everything that has arrived (at most
/// `max_batch` entries, as taillight's writer) in one transaction of the
/// INSERTs above, then takes what arrived meanwhile. Nothing is in front of
/// it (no broker, no ids, no redelivery check) and nothing after it (no
/// publish, no fan-out). taillight's writer has all of those, and overlaps
/// two transactions on two connections, which this does not.
pub async fn mariadb_commit_latency(
    url: &str,
    db: &str,
    entries: &[LogEntry],
    rate: f64,
    max_batch: usize,
) -> (f64, f64) {
    use mysql_async::prelude::Queryable as _;
    let q = queued(entries);
    let rows = insert_tuples(&BatchRows::new(1, &q), &q);
    let n = rows.len();
    reset_raw(db);
    let mut conn = mysql_async::Conn::from_url(url).await.expect("connect");
    let tick = crate::tail::TICK.as_secs_f64();
    // As the pacer: at tick k, the entries due by k ticks have arrived.
    let arrived_by = |secs: f64| ((rate * (secs / tick).floor() * tick) as usize).min(n);
    let arrival = |i: usize| ((i + 1) as f64 / (rate * tick)).ceil() * tick;
    let mut latencies_us: Vec<u32> = Vec::with_capacity(n);
    let start = Instant::now();
    let mut done = 0;
    while done < n {
        let now = start.elapsed().as_secs_f64();
        let due = arrived_by(now);
        if due <= done {
            let next = ((now / tick).floor() + 1.0) * tick;
            tokio::time::sleep_until((start + Duration::from_secs_f64(next)).into()).await;
            continue;
        }
        let end = due.min(done + max_batch);
        conn.query_drop("BEGIN").await.expect("begin");
        for stmt in insert_statements(&rows[done..end]) {
            conn.query_drop(stmt).await.expect("insert");
        }
        conn.query_drop("COMMIT").await.expect("commit");
        let committed = start.elapsed().as_secs_f64();
        latencies_us.extend(
            (done..end)
                .map(|i| ((committed - arrival(i)).max(0.0) * 1e6).min(u32::MAX as f64) as u32),
        );
        done = end;
    }
    let _ = conn.disconnect().await;
    let stored = crate::sql::mariadb(db, "SELECT COUNT(*) FROM raw_logs");
    assert_eq!(
        stored.trim(),
        n.to_string(),
        "raw commit latency: rows stored"
    );
    crate::sql::mariadb(db, DROP_RAW);
    latencies_us.sort_unstable();
    let pct = |p: f64| crate::report::percentile(&latencies_us, p) / 1000.0;
    (pct(0.5), pct(0.99))
}

/// SQLite entries/s for the same rows and schema, in transactions of 5000
/// entries, WAL and synchronous=FULL as taillight runs: one prepared
/// single-row INSERT per row and table, stepped through SQLite's C API, the
/// fastest way measured here (1000-row INSERTs through diesel took 60-65% of
/// its time, 100-row prepared INSERTs 75%; see
/// docs/benchmarks/ingest-embedded.md). The rows only: taillight's text
/// index is part of what it does, not of the limit.
pub fn sqlite(entries: &[LogEntry], dir: &Path) -> f64 {
    use taillight::storage::sqlite::{SqliteArgs, SqliteStore, Synchronous, bulk::BulkWriter};
    // taillight's own migrations make the schema; then a connection of its own.
    let args = SqliteArgs {
        data_dir: dir.into(),
        sqlite_synchronous: Synchronous::Full,
    };
    drop(SqliteStore::open(&args).expect("create schema"));
    let mut w = BulkWriter::open(
        &dir.join("taillight.db"),
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;",
    )
    .expect("open sqlite");
    let q = queued(entries);
    let batches: Vec<BatchRows<'_>> = q
        .chunks(5000)
        .enumerate()
        .map(|(i, chunk)| BatchRows::new(1 + (i * 5000) as i64, chunk))
        .collect();
    let t = Instant::now();
    for b in &batches {
        w.insert(b, None).expect("sqlite insert");
    }
    entries.len() as f64 / t.elapsed().as_secs_f64()
}

/// The broker's rates for the same payloads as taillight's producer sends,
/// with its settings (idempotent, acks=all, lz4, the server's `linger`):
/// `(produce, consume)`, the
/// consume rate from the first message to the last in a fresh group.
pub async fn broker(
    brokers: &str,
    linger: Duration,
    entries: &[LogEntry],
    tag: &str,
) -> (f64, f64) {
    let topic = format!("raw.{tag}");
    taillight::queue::kafka::ensure_topic(&taillight::queue::kafka::KafkaArgs {
        kafka_brokers: Some(brokers.to_string()),
        kafka_topic: topic.clone(),
        kafka_partitions: 6,
        kafka_group: String::new(),
        kafka_session_timeout: Duration::from_secs(6),
        kafka_linger: Duration::ZERO,
        kafka_option: Vec::new(),
    })
    .await
    .expect("create topic");
    let payloads: Vec<(String, Vec<u8>)> = entries
        .iter()
        .map(|e| (e.service.clone(), workload::envelope(e).encode_to_vec()))
        .collect();
    let producer: FutureProducer = taillight::queue::kafka::producer_config(brokers, linger)
        .create()
        .expect("producer");
    let t = Instant::now();
    let mut deliveries = Vec::with_capacity(payloads.len());
    for (key, payload) in &payloads {
        let mut record = FutureRecord::to(&topic).key(key.as_str()).payload(payload);
        loop {
            match producer.send_result(record) {
                Ok(d) => {
                    deliveries.push(d);
                    break;
                }
                Err((_, r)) => {
                    record = r;
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        }
    }
    for d in deliveries {
        d.await.expect("delivery").expect("delivered");
    }
    let produce = entries.len() as f64 / t.elapsed().as_secs_f64();

    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("raw.{tag}.group"))
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    consumer.subscribe(&[&topic]).expect("subscribe");
    let mut n = 0usize;
    let mut start = None;
    while n < entries.len() {
        let m = tokio::time::timeout(Duration::from_secs(60), consumer.recv())
            .await
            .expect("broker stopped delivering")
            .expect("consume");
        drop(m);
        start.get_or_insert_with(Instant::now);
        n += 1;
    }
    let consume = (n - 1) as f64 / start.map_or(1.0, |s| s.elapsed().as_secs_f64()).max(1e-9);
    (produce, consume)
}

/// PUBLISH/s of `len`-byte messages by redis-benchmark (4 connections,
/// pipelines of 64), to a channel nobody listens on.
pub fn redis_publish(len: usize, n: u64, tag: &str) -> f64 {
    let payload = "x".repeat(len);
    redis_benchmark(n, &["PUBLISH", &format!("raw.{tag}"), &payload])
}

/// Redis XADD messages/s with one `len`-byte field, pipelined as the
/// publish limit is; the stream is deleted afterwards.
pub fn redis_xadd(len: usize, n: u64, tag: &str) -> f64 {
    let payload = "x".repeat(len);
    let stream = format!("raw.{tag}.stream");
    let rate = redis_benchmark(n, &["XADD", &stream, "*", "line", &payload]);
    let _ = std::process::Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "DEL", &stream])
        .output();
    rate
}

/// Requests/s of `command` by redis-benchmark: 4 connections, 64 pipelined.
fn redis_benchmark(n: u64, command: &[&str]) -> f64 {
    let out = std::process::Command::new("redis-benchmark")
        .args(["-h", "127.0.0.1", "-p", "6379", "-q", "-c", "4", "-P", "64"])
        .args(["-n", &n.to_string()])
        .args(command)
        .output()
        .expect("redis-benchmark must be installed (redis-tools)");
    let text = String::from_utf8_lossy(&out.stdout);
    // "...: 1234567.89 requests per second, p50=..." (after \r progress).
    text.rsplit('\r')
        .next()
        .and_then(|l| l.split("requests per second").next())
        .and_then(|l| l.rsplit(' ').nth(1))
        .and_then(|x| x.parse().ok())
        .unwrap_or_else(|| panic!("unexpected redis-benchmark output: {text}"))
}

/// Records per message in the fan-out limit: about what one commit batch
/// carries at the tail runs' rates.
const FANOUT_BATCH: usize = 500;

/// The most entries/s a live tail can carry to `receivers` local clients:
/// one process writes the same encoded `TailResponse` messages, gRPC-framed,
/// to each of them over loopback TCP from one shared buffer, and each
/// decodes them as the suite's subscribers do. Nothing else is between the
/// bytes and the sockets (no HTTP/2, no copy per stream, no pipeline), so a
/// Tail with that many subscribers on these cores cannot go faster.
pub async fn fanout(entries: &[LogEntry], marker: &str, receivers: usize) -> f64 {
    let mut id = 0u64;
    let frames: Arc<Vec<Bytes>> = Arc::new(
        entries
            .chunks(FANOUT_BATCH)
            .map(|chunk| {
                let records: Vec<LogRecord> = chunk
                    .iter()
                    .map(|e| {
                        id += 1;
                        LogRecord {
                            id,
                            ..workload::envelope(e)
                        }
                    })
                    .collect();
                let msg = TailResponse {
                    event: Some(Event::Records(records.into())),
                };
                let len = msg.encoded_len();
                let mut buf = BytesMut::with_capacity(5 + len);
                buf.put_u8(0);
                buf.put_u32(len as u32);
                msg.encode(&mut buf).expect("encode");
                buf.freeze()
            })
            .collect(),
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    // The sender has its own runtime and threads, as the server is its own
    // process beside the suite's.
    let sender = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_io()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            listener.set_nonblocking(true).expect("nonblocking");
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            let mut socks = Vec::new();
            for _ in 0..receivers {
                let (sock, _) = listener.accept().await.expect("accept");
                sock.set_nodelay(true).expect("nodelay");
                socks.push(sock);
            }
            let _ = started_tx.send(Instant::now());
            let writers: Vec<_> = socks
                .into_iter()
                .map(|mut sock| {
                    let frames = frames.clone();
                    tokio::spawn(async move {
                        for f in frames.iter() {
                            sock.write_all(f).await.expect("write");
                        }
                    })
                })
                .collect();
            for w in writers {
                w.await.expect("writer");
            }
        });
    });
    let mut readers = Vec::new();
    for _ in 0..receivers {
        let sock = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let marker = marker.to_string();
        readers.push(tokio::spawn(async move {
            let mut sock = tokio::io::BufReader::with_capacity(64 * 1024, sock);
            let (mut n, mut last) = (0u64, 0u64);
            let mut header = [0u8; 5];
            while sock.read_exact(&mut header).await.is_ok() {
                let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]);
                let mut body = vec![0; len as usize];
                sock.read_exact(&mut body).await.expect("message");
                let msg = lite::TailResponse::decode(&body[..]).expect("decode");
                let Some(lite::Event::Records(rs)) = msg.event else {
                    panic!("fan-out carries only records");
                };
                for r in rs.records {
                    assert!(r.id > last, "fan-out records out of order");
                    last = r.id;
                    n += u64::from(workload::seq_of(&marker, &r.message).is_some());
                }
            }
            n
        }));
    }
    let start = started_rx.await.expect("sender started");
    for r in readers {
        assert_eq!(
            r.await.expect("receiver"),
            entries.len() as u64,
            "fan-out delivered"
        );
    }
    let secs = start.elapsed().as_secs_f64();
    sender.join().expect("sender");
    entries.len() as f64 / secs
}

//! Store conformance: each behaviour is written once against `Arc<dyn Store>`
//! and run on SQLite (a temporary directory) and MariaDB (a database of its
//! own per test, dropped afterwards), followed by what only the distributed
//! store promises: redeliveries stored once, commit-ordered ids across
//! processes, and a clear error instead of a hang for a dead server.
//!
//! MariaDB is reached at `mysql://root@127.0.0.1:3306/` unless
//! `TAILLIGHT_TEST_MYSQL` names another server URL (without a database).

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use diesel_async::{AsyncConnection, AsyncMysqlConnection, RunQueryDsl, SimpleAsyncConnection};
use futures::FutureExt;
use taillight::model::Filter;
use taillight::model::time;
use taillight::model::{QueuedEntry, SourcePosition};
use taillight::proto::{Level, LogEntry, LogRecord};
use taillight::storage::histogram::{self, Histogram, HistogramQuery, MINUTE_US};
use taillight::storage::mysql::{BulkMode, MysqlStore};
use taillight::storage::sqlite::{SqliteArgs, SqliteStore, Synchronous};
use taillight::storage::{Document, Order, Position, Query, Store, StoreError};
use tokio_util::sync::CancellationToken;

// ---------------------------------------------------------------- harness

/// Instantiates each conformance test once per backend, and MariaDB once
/// per way of sending rows (`insert` is for servers without `local_infile`).
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::with_sqlite(super::$name).await
                }
            )*
        }
        conformance!(@mysql mysql, LoadData; $($name),*);
        conformance!(@mysql mysql_insert, Insert; $($name),*);
    };
    (@mysql $module:ident, $bulk:ident; $($name:ident),*) => {
        mod $module {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::with_mysql(async |db| {
                        super::$name(Arc::new(db.open_with(BulkMode::$bulk).await)).await
                    })
                    .await
                }
            )*
            use std::sync::Arc;
            use taillight::storage::mysql::BulkMode;
        }
    };
}

conformance!(
    dedup_keys_store_each_keyed_entry_once,
    stream_ids_as_keys_store_each_entry_once,
    positions_swap_only_from_what_was_read,
    documents_are_kept_by_kind_and_name,
    retention_keeps_what_a_hold_has_not_covered,
    insert_returns_records_in_id_order,
    filters_agree_with_the_tail_filter,
    time_and_id_bounds,
    pages_in_both_orders,
    services_and_tags_are_sorted_and_exact,
    delete_before_takes_the_oldest_first,
    retention_deletes_expired_records,
    large_batch,
    any_text_round_trips,
    histogram_counts_agree_with_count_star,
    text_search_finds_what_the_tail_filter_finds,
);

async fn with_sqlite<F: Future<Output = ()>>(test: impl FnOnce(Arc<dyn Store>) -> F) {
    let dir = tempfile::tempdir().expect("temp dir");
    test(Arc::new(open_sqlite(dir.path()).await)).await;
}

async fn open_sqlite(dir: &std::path::Path) -> SqliteStore {
    let args = SqliteArgs {
        data_dir: dir.to_owned(),
        sqlite_synchronous: Synchronous::Normal,
    };
    tokio::task::spawn_blocking(move || SqliteStore::open(&args))
        .await
        .expect("open task")
        .expect("open SQLite")
}

/// A MariaDB database of one test's own.
#[derive(Clone)]
struct TestDb {
    /// The server URL, ending in `/`.
    server: String,
    /// Unique per test, so tests run in parallel.
    name: String,
}

impl TestDb {
    fn url(&self) -> String {
        format!("{}{}", self.server, self.name)
    }

    async fn open(&self) -> MysqlStore {
        self.open_with(BulkMode::Auto).await
    }

    async fn open_with(&self, bulk: BulkMode) -> MysqlStore {
        MysqlStore::open(&self.url(), 4, bulk).await.unwrap_or_else(|e| {
            panic!(
                "cannot open {} ({e}); is MariaDB running? Set TAILLIGHT_TEST_MYSQL to another server",
                self.url()
            )
        })
    }

    /// A plain connection, for looking behind the store's back.
    async fn sql(&self) -> AsyncMysqlConnection {
        AsyncMysqlConnection::establish(&self.url())
            .await
            .expect("connect")
    }

    async fn count(&self, table: &str) -> i64 {
        diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(&format!(
            "(SELECT COUNT(*) FROM {table})"
        )))
        .get_result(&mut self.sql().await)
        .await
        .expect("count")
    }
}

/// Runs `test` with a fresh database name and drops the database afterwards,
/// also when the test panics.
async fn with_mysql<F: Future<Output = ()>>(test: impl FnOnce(TestDb) -> F) {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let mut server = std::env::var("TAILLIGHT_TEST_MYSQL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/".into());
    if !server.ends_with('/') {
        server.push('/');
    }
    let db = TestDb {
        server,
        name: format!(
            "taillight_test_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ),
    };
    let outcome = AssertUnwindSafe(test(db.clone())).catch_unwind().await;
    if let Ok(mut c) = AsyncMysqlConnection::establish(&db.server).await {
        let _ = c
            .batch_execute(&format!("DROP DATABASE IF EXISTS `{}`", db.name))
            .await;
    }
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

fn entry(service: &str, level: Level, message: &str, tags: &[&str], time_us: i64) -> QueuedEntry {
    QueuedEntry {
        entry: LogEntry {
            service: service.into(),
            level: level as i32,
            message: message.into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            attributes: HashMap::from([("host".into(), "h1".into())]),
            time: Some(time::from_micros(time_us)),
            trace_id: format!("{:032x}", time_us + 1),
            span_id: format!("{:016x}", time_us + 2),
        },
        received_us: time_us + 7,
        source: None,
        dedup_key: None,
    }
}

fn sourced(partition: i32, offset: i64) -> QueuedEntry {
    let mut e = entry(
        "kafka",
        Level::Info,
        &format!("{partition}/{offset}"),
        &[],
        1_000,
    );
    e.source = Some(SourcePosition { partition, offset });
    e
}

fn all() -> Query {
    Query {
        order: Order::OldestFirst,
        limit: 100_000,
        ..Default::default()
    }
}

async fn ids(store: &dyn Store, q: Query) -> Vec<u64> {
    let r = store.query(q).await.expect("query");
    r.records.iter().map(|r| r.id).collect()
}

fn ids_of(records: &[LogRecord]) -> Vec<u64> {
    records.iter().map(|r| r.id).collect()
}

// ------------------------------------------------------------ conformance

/// Text with quotes, backslashes, LIKE wildcards, SQL, control characters
/// and non-ASCII comes back byte for byte (the MariaDB writer sends rows
/// as text: SQL literals or LOAD DATA's tab-separated lines).
async fn any_text_round_trips(store: Arc<dyn Store>) {
    let nasty = "it's \\ \"q\" %_ \t\n\r\0 \\N \\t NULL ');DROP TABLE logs;-- héllo 日本 🙂\\";
    let mut e = entry(
        "svc-ü'\\",
        Level::Warn,
        nasty,
        &["t'ag", "标签", "a\\b"],
        42,
    );
    e.entry.attributes = HashMap::from([
        ("k'ey".into(), nasty.into()),
        ("empty".into(), String::new()),
    ]);
    let stored = store
        .insert(vec![e.clone(), entry("svc", Level::Info, "", &[], 43)])
        .await
        .expect("insert");
    let back = store.query(all()).await.expect("query").records;
    assert_eq!(back.len(), 2);
    assert_eq!(back, stored);
    assert_eq!(back[0].message, nasty);
    assert_eq!(back[0].service, e.entry.service);
    assert_eq!(back[0].tags, e.entry.tags);
    assert_eq!(back[0].attributes, e.entry.attributes);
    assert_eq!(back[1].message, "");
}

async fn insert_returns_records_in_id_order(store: Arc<dyn Store>) {
    assert!(store.insert(vec![]).await.expect("empty").is_empty());
    let a = store
        .insert(vec![
            entry("api", Level::Info, "one", &["x", "y"], 10),
            entry("api", Level::Warn, "two", &[], 20),
            entry("web", Level::Error, "three", &["x"], 5),
        ])
        .await
        .expect("insert a");
    let b = store
        .insert(vec![entry("api", Level::Info, "four", &[], 1)])
        .await
        .expect("insert b");
    let got = ids_of(&a);
    assert!(got.windows(2).all(|w| w[1] == w[0] + 1), "{got:?}");
    assert!(b[0].id > got[2]);
    assert_eq!(a[0].message, "one");
    assert_eq!(a[0].tags, ["x", "y"]);
    assert_eq!(a[0].attributes["host"], "h1");
    assert_eq!(a[0].time, Some(time::from_micros(10)));
    assert_eq!(a[0].received_time, Some(time::from_micros(17)));
    // What insert returns is exactly what is read back.
    let stored = store.query(all()).await.expect("query").records;
    assert_eq!(stored, [a, b].concat());
}

/// Records in [`filters_agree_with_the_tail_filter`]: (service, level,
/// message, tags).
const CORPUS: &[(&str, Level, &str, &[&str])] = &[
    ("api", Level::Info, "GET /users took 12ms", &["http"]),
    (
        "api",
        Level::Error,
        "upstream TIMEOUT after 30s",
        &["http", "db"],
    ),
    ("API", Level::Warn, "disk 50% full", &["DB"]),
    ("web", Level::Debug, "cache miss for a_b", &["cache"]),
    ("web", Level::Warn, "cache miss for axb", &["cache", "db"]),
    ("worker", Level::Fatal, r"cannot open C:\temp\x", &[]),
    ("worker", Level::Trace, "timeout retried", &["retry"]),
    ("db", Level::Info, "100 percent done", &[]),
];

async fn filters_agree_with_the_tail_filter(store: Arc<dyn Store>) {
    let entries: Vec<_> = CORPUS
        .iter()
        .enumerate()
        .map(|(i, (s, l, m, t))| entry(s, *l, m, t, 1_000 + i as i64))
        .collect();
    let records = store.insert(entries).await.expect("insert");
    let filters = [
        Filter::default(),
        Filter {
            services: vec!["api".into()],
            ..Default::default()
        },
        Filter {
            services: vec!["api".into(), "web".into()],
            ..Default::default()
        },
        Filter {
            levels: vec![Level::Warn as i32, Level::Fatal as i32],
            ..Default::default()
        },
        Filter {
            min_level: Level::Warn as i32,
            ..Default::default()
        },
        Filter {
            tags: vec!["db".into()],
            ..Default::default()
        },
        Filter {
            tags: vec!["cache".into(), "retry".into()],
            ..Default::default()
        },
        Filter {
            text: "timeout".into(),
            ..Default::default()
        },
        Filter {
            text: "50%".into(),
            ..Default::default()
        },
        Filter {
            text: "a_b".into(),
            ..Default::default()
        },
        Filter {
            text: r"c:\TEMP".into(),
            ..Default::default()
        },
        Filter {
            services: vec!["api".into(), "worker".into()],
            min_level: Level::Info as i32,
            tags: vec!["http".into(), "retry".into()],
            text: "Time".into(),
            ..Default::default()
        },
    ];
    for filter in filters {
        let expected: Vec<u64> = records
            .iter()
            .filter(|r| filter.matches(r))
            .map(|r| r.id)
            .collect();
        let q = Query {
            filter: filter.clone(),
            count_total: true,
            ..all()
        };
        let r = store.query(q).await.expect("query");
        assert_eq!(ids_of(&r.records), expected, "{filter:?}");
        assert_eq!(r.total, Some(expected.len() as u64), "{filter:?}");
    }
}

async fn time_and_id_bounds(store: Arc<dyn Store>) {
    let r = store
        .insert(
            (0..10)
                .map(|i| entry("s", Level::Info, "m", &[], 100 * i))
                .collect(),
        )
        .await
        .expect("insert");
    let id = |i: usize| r[i].id;
    let q = Query {
        start_us: Some(200),
        end_us: Some(500),
        ..all()
    };
    assert_eq!(ids(&*store, q).await, [id(2), id(3), id(4)]);
    let q = Query {
        after_id: Some(id(6)),
        ..all()
    };
    assert_eq!(ids(&*store, q).await, [id(7), id(8), id(9)]);
    let q = Query {
        after_id: Some(id(1)),
        before_id: Some(id(4)),
        order: Order::NewestFirst,
        ..all()
    };
    assert_eq!(ids(&*store, q).await, [id(3), id(2)]);
}

async fn pages_in_both_orders(store: Arc<dyn Store>) {
    let r = store
        .insert(
            (0..10)
                .map(|i| {
                    entry(
                        if i % 2 == 0 { "even" } else { "odd" },
                        Level::Info,
                        "m",
                        &[],
                        i,
                    )
                })
                .collect(),
        )
        .await
        .expect("insert");
    let inserted = ids_of(&r);
    for order in [Order::NewestFirst, Order::OldestFirst] {
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let q = Query {
                order,
                cursor,
                limit: 3,
                count_total: true,
                ..Default::default()
            };
            let page = store.query(q).await.expect("page");
            // The cursor and limit never narrow the total.
            assert_eq!(page.total, Some(10));
            if page.records.is_empty() {
                break;
            }
            cursor = page.records.last().map(|r| r.id);
            seen.extend(ids_of(&page.records));
        }
        let mut expected = inserted.clone();
        if order == Order::NewestFirst {
            expected.reverse();
        }
        assert_eq!(seen, expected, "{order:?}");
    }
    let q = Query {
        order: Order::OldestFirst,
        limit: 3,
        offset: 3,
        count_total: true,
        ..Default::default()
    };
    let page = store.query(q).await.expect("offset page");
    assert_eq!(ids_of(&page.records), inserted[3..6]);
    assert_eq!(page.total, Some(10));
    let q = Query {
        filter: Filter {
            services: vec!["odd".into()],
            ..Default::default()
        },
        after_id: Some(inserted[4]),
        limit: 1,
        count_total: true,
        ..Default::default()
    };
    let page = store.query(q).await.expect("filtered page");
    assert_eq!(ids_of(&page.records), [inserted[9]]);
    assert_eq!(page.total, Some(3), "bounds and filter do narrow the total");
    let q = Query {
        count_total: false,
        limit: 0,
        ..Default::default()
    };
    let page = store.query(q).await.expect("no count");
    assert_eq!(page.total, None);
}

async fn services_and_tags_are_sorted_and_exact(store: Arc<dyn Store>) {
    store
        .insert(vec![
            entry("web", Level::Info, "m", &["z", "a"], 1),
            entry("api", Level::Info, "m", &["m", "db", "DB"], 2),
            entry("API", Level::Info, "m", &["x"], 3),
        ])
        .await
        .expect("insert 1");
    store
        .insert(vec![entry("api", Level::Info, "m", &["b", "db"], 4)])
        .await
        .expect("insert 2");
    let services = store.services().await.expect("services");
    assert_eq!(services, ["API", "api", "web"]);
    assert_eq!(
        store.tags("api".into()).await.expect("tags"),
        ["DB", "b", "db", "m"]
    );
    assert_eq!(store.tags("API".into()).await.expect("tags"), ["x"]);
    assert!(store.tags("none".into()).await.expect("tags").is_empty());
}

async fn delete_before_takes_the_oldest_first(store: Arc<dyn Store>) {
    // Times out of id order: deletion follows time, not id.
    let times = [7, 3, 9, 1, 5, 10, 2, 8, 4, 6];
    store
        .insert(
            times
                .iter()
                .map(|t| entry("s", Level::Info, "m", &["t"], *t))
                .collect(),
        )
        .await
        .expect("insert");
    let remaining = async || -> BTreeSet<i64> {
        let r = store.query(all()).await.expect("query");
        r.records
            .iter()
            .map(|r| time::to_micros(r.time.as_ref().expect("time")))
            .collect()
    };
    assert_eq!(store.delete_before(6, 3).await.expect("delete"), 3);
    assert_eq!(remaining().await, BTreeSet::from([4, 5, 6, 7, 8, 9, 10]));
    assert_eq!(store.delete_before(6, 100).await.expect("delete"), 2);
    assert_eq!(store.delete_before(6, 100).await.expect("delete"), 0);
    assert_eq!(remaining().await, BTreeSet::from([6, 7, 8, 9, 10]));
    let q = Query {
        filter: Filter {
            tags: vec!["t".into()],
            ..Default::default()
        },
        count_total: true,
        ..all()
    };
    assert_eq!(store.query(q).await.expect("query").total, Some(5));
}

async fn retention_deletes_expired_records(store: Arc<dyn Store>) {
    let now = time::now_micros();
    let hour = 3_600_000_000;
    store
        .insert(
            (0..2500)
                .map(|i| entry("s", Level::Info, "old", &["t"], now - 2 * hour - i))
                .chain((0..3).map(|_| entry("s", Level::Info, "new", &[], now)))
                .collect(),
        )
        .await
        .expect("insert");
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(taillight::pipeline::retention::run(
        store.clone(),
        Duration::from_secs(3600),
        Duration::from_millis(50),
        shutdown.clone(),
    ));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let q = Query {
            count_total: true,
            limit: 0,
            ..all()
        };
        if store.query(q).await.expect("count").total == Some(3) {
            break;
        }
        assert!(Instant::now() < deadline, "retention did not finish");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("retention stops on shutdown")
        .expect("retention task");
    let left = store.query(all()).await.expect("query").records;
    assert!(left.iter().all(|r| r.message == "new"));
}

/// Entries over three hours (and one before 1970) in several services,
/// levels and tags: every histogram, from the rollup or from the rows, with
/// or without a range that splits minutes, counts what `COUNT(*)` counts
/// for each bucket and level; also after retention deleted some.
async fn histogram_counts_agree_with_count_star(store: Arc<dyn Store>) {
    let base = 1_700_000_000_000_000i64;
    let levels = [Level::Debug, Level::Info, Level::Warn, Level::Error];
    let entries: Vec<QueuedEntry> = (0..3_000i64)
        .map(|i| {
            let service = ["api", "db", "web"][(i % 3) as usize];
            let level = levels[((i * 7) % 4) as usize];
            let tags: &[&str] = if i % 5 == 0 { &["slow"] } else { &[] };
            let word = if i % 11 == 0 { "timeout" } else { "ok" };
            let t = base + (i * i * 1_234_567) % (3 * 3_600_000_000);
            entry(service, level, &format!("{word} {i}"), tags, t)
        })
        .chain([entry("api", Level::Info, "old", &[], -MINUTE_US / 2)])
        .collect();
    store.insert(entries).await.expect("insert");
    let filters = [
        Filter::default(),
        Filter {
            services: vec!["api".into(), "web".into()],
            min_level: Level::Warn as i32,
            ..Default::default()
        },
        Filter {
            tags: vec!["slow".into()],
            ..Default::default()
        },
        Filter {
            text: "TIMEOUT".into(),
            ..Default::default()
        },
    ];
    let ranges = [
        (None, None),
        (Some(base + 1_234), Some(base + 2 * 3_600_000_000 + 17)),
        (Some(base + 90_000_000), Some(base + 100_000_000)),
    ];
    let check = async |store: &Arc<dyn Store>| {
        for f in &filters {
            for (start_us, end_us) in ranges {
                let q = HistogramQuery {
                    filter: f.clone(),
                    start_us,
                    end_us,
                    buckets: 12,
                };
                let h = histogram::histogram(store.as_ref(), q)
                    .await
                    .expect("histogram");
                assert_counts(store, f, (start_us, end_us), &h).await;
            }
        }
    };
    check(&store).await;
    store
        .delete_before(base + 3_600_000_000, 700)
        .await
        .expect("retention");
    check(&store).await;
}

/// Each bucket of `h` holds, per level, what a query counts in it; the
/// buckets cover `range` (or every match) and nothing is left outside.
async fn assert_counts(
    store: &Arc<dyn Store>,
    f: &Filter,
    range: (Option<i64>, Option<i64>),
    h: &Histogram,
) {
    let count = async |start_us: Option<i64>, end_us: Option<i64>, level: Option<i32>| {
        let mut filter = f.clone();
        filter.levels.extend(level);
        let q = Query {
            filter,
            start_us,
            end_us,
            count_total: true,
            limit: 0,
            ..Default::default()
        };
        store.query(q).await.expect("count").total.unwrap_or(0)
    };
    let in_buckets: u64 = h.buckets.iter().flat_map(|b| b.counts.values()).sum();
    assert_eq!(
        in_buckets,
        count(range.0, range.1, None).await,
        "{f:?} {range:?}"
    );
    assert!(h.buckets.len() <= 12, "{} buckets", h.buckets.len());
    for b in &h.buckets {
        let start = range.0.map_or(b.start_us, |s| s.max(b.start_us));
        let end = range.1.map_or(b.end_us, |e| e.min(b.end_us));
        for level in 1..=6 {
            let want = count(Some(start), Some(end), Some(level)).await;
            let got = b.counts.get(&level).copied().unwrap_or(0);
            assert_eq!(
                got, want,
                "{f:?} {range:?} bucket {} level {level}",
                b.start_us
            );
        }
    }
}

/// Words of [`text_search_finds_what_the_tail_filter_finds`]: mixed case,
/// LIKE's wildcards and escape, quotes (FTS5's), non-ASCII (in one case
/// only: MariaDB's collation also folds non-ASCII case, which the tail
/// filter does not; see its first migration).
const TEXT_WORDS: &[&str] = &[
    "Timeout",
    "timeOUT",
    "deadlock",
    "GET",
    "/api/v1",
    "50%",
    "a_b",
    r"C:\tmp",
    "\"quoted\"",
    "Ünïcode",
    "日本語",
    "ok",
    "x",
    "status=500",
    "took=12ms",
    "rare-needle",
];

/// Generated entries in batches of awkward sizes (so index blocks are
/// begun by one batch and finished by another): every text search, with
/// other filters, paged newest and oldest first, finds exactly the
/// entries the tail filter matches, and counts them; also after retention
/// deleted the oldest. SQLite answers through its text index (or a scan,
/// for texts shorter than a trigram); MariaDB by scanning.
async fn text_search_finds_what_the_tail_filter_finds(store: Arc<dyn Store>) {
    let mut seed = 7u64;
    let mut next = move |n: u64| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) % n
    };
    let mut records = Vec::new();
    let sizes = [1usize, 63, 64, 65, 7, 200, 129, 1, 500, 31];
    for size in sizes.into_iter().chain([FILLER]).chain(sizes) {
        if size == FILLER {
            let first_round = records.len() as u64;
            insert_filler(store.as_ref()).await;
            wait_for_text_index(store.as_ref(), first_round).await;
            continue;
        }
        let batch: Vec<QueuedEntry> = (0..size)
            .map(|_| {
                let n = records.len() as i64;
                let words: Vec<&str> = (0..1 + next(5))
                    .map(|_| match next(400) {
                        0 => "rare-needle",
                        i => TEXT_WORDS[(i % (TEXT_WORDS.len() as u64 - 1)) as usize],
                    })
                    .collect();
                let service = ["api", "web"][next(2) as usize];
                let level = [Level::Info, Level::Error][next(2) as usize];
                let tags: &[&str] = if next(3) == 0 { &["db"] } else { &[] };
                entry(service, level, &words.join(" "), tags, 1_000 * n)
            })
            .collect();
        records.extend(store.insert(batch).await.expect("insert"));
    }
    let texts = [
        "timeout",
        "TIMEOUT",
        "deadlock",
        "rare-needle",
        "50%",
        "a_b",
        "%",
        "_",
        r"c:\TMP",
        "\"quoted\"",
        "Ünïcode",
        "nïco",
        "日本語",
        "本語",
        "ok",
        "x",
        "imeou",
        "status=500 took",
        "t ok",
        "not there at all",
    ];
    let filters = |text: &str| {
        [
            Filter {
                text: text.into(),
                ..Default::default()
            },
            Filter {
                text: text.into(),
                services: vec!["web".into()],
                min_level: Level::Error as i32,
                ..Default::default()
            },
            Filter {
                text: text.into(),
                tags: vec!["db".into()],
                ..Default::default()
            },
            Filter {
                text: text.into(),
                services: vec!["api".into(), "web".into()],
                levels: vec![Level::Info as i32],
                ..Default::default()
            },
        ]
    };
    let check = async |records: &[LogRecord]| {
        for text in texts {
            for filter in filters(text) {
                for range in [(None, None), (Some(200_000), Some(700_000))] {
                    let expected: Vec<u64> = records
                        .iter()
                        .filter(|r| filter.matches(r))
                        .filter(|r| {
                            let t = time::to_micros(r.time.as_ref().expect("time"));
                            range.0.is_none_or(|s| t >= s) && range.1.is_none_or(|e| t < e)
                        })
                        .map(|r| r.id)
                        .collect();
                    let q = Query {
                        filter: filter.clone(),
                        start_us: range.0,
                        end_us: range.1,
                        ..Default::default()
                    };
                    assert_text_pages(store.as_ref(), q, &expected).await;
                }
            }
        }
    };
    check(&records).await;
    store
        .delete_before(300_000, 10_000)
        .await
        .expect("retention");
    records.retain(|r| time::to_micros(r.time.as_ref().expect("time")) >= 300_000);
    check(&records).await;
}

/// Entries between the two rounds of the text search test: enough that the
/// embedded store's text index (written in groups of 8,192 entries) holds
/// the first round and the second is past its reach, so that both halves
/// of a search are tried. They match no text of the test, and their time,
/// far ahead, keeps them out of its time ranges and its retention.
const FILLER: usize = 2 * 8_192 + 100;

async fn insert_filler(store: &dyn Store) {
    let filler: Vec<QueuedEntry> = (0..FILLER)
        .map(|_| entry("api", Level::Info, "filler", &[], 1_000_000_000_000_000))
        .collect();
    for batch in filler.chunks(4_096) {
        store.insert(batch.to_vec()).await.expect("filler");
    }
}

/// Waits until the text index covers the first `n` ids (MariaDB's writes
/// it behind the commits).
async fn wait_for_text_index(store: &dyn Store, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let reach = store.text_index_reach().await.expect("reach");
        if reach > n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the text index stayed at {reach}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `q` read in pages of 37 both ways (by cursor newest first, by offset
/// oldest first) gives `expected` (ascending ids), and counts it.
async fn assert_text_pages(store: &dyn Store, q: Query, expected: &[u64]) {
    let mut newest = Vec::new();
    let mut cursor = None;
    loop {
        let page = Query {
            cursor,
            limit: 37,
            count_total: true,
            order: Order::NewestFirst,
            ..q.clone()
        };
        let r = store.query(page).await.expect("query");
        assert_eq!(r.total, Some(expected.len() as u64), "{:?}", q.filter);
        let Some(last) = r.records.last() else { break };
        cursor = Some(last.id);
        newest.extend(ids_of(&r.records));
    }
    newest.reverse();
    assert_eq!(
        newest,
        expected,
        "newest first: {:?} {:?}",
        q.filter,
        (q.start_us, q.end_us)
    );
    let mut oldest = Vec::new();
    for offset in (0..).step_by(37) {
        let page = Query {
            offset,
            limit: 37,
            order: Order::OldestFirst,
            ..q.clone()
        };
        let r = store.query(page).await.expect("query");
        if r.records.is_empty() {
            break;
        }
        oldest.extend(ids_of(&r.records));
    }
    assert_eq!(oldest, expected, "oldest first: {:?}", q.filter);
}

/// The records' messages, in their order.
fn messages(records: &[LogRecord]) -> Vec<String> {
    records.iter().map(|r| r.message.clone()).collect()
}

/// The messages stored for the service `keyed`, oldest first.
async fn keyed_messages(store: &Arc<dyn Store>) -> Vec<String> {
    let all_keyed = Query {
        filter: Filter {
            services: vec!["keyed".into()],
            ..Default::default()
        },
        order: Order::OldestFirst,
        ..all()
    };
    let stored = store.query(all_keyed).await.expect("query").records;
    stored.into_iter().map(|r| r.message).collect()
}

fn keyed(key: &str, message: &str) -> QueuedEntry {
    let mut e = entry("keyed", Level::Info, message, &["k"], 1);
    e.dedup_key = Some(key.into());
    e
}

/// An entry handed over again with its key (a source that crashed before it
/// could acknowledge it upstream) is not stored again, in the same batch or
/// a later one; entries without a key are never compared.
async fn dedup_keys_store_each_keyed_entry_once(store: Arc<dyn Store>) {
    let first = store
        .insert(vec![
            keyed("s:1", "one"),
            keyed("s:2", "two"),
            keyed("s:1", "one again, same batch"),
            entry("plain", Level::Info, "no key", &[], 1),
        ])
        .await
        .expect("insert");
    assert_eq!(messages(&first), ["one", "two", "no key"]);
    let second = store
        .insert(vec![
            keyed("s:2", "two again"),
            keyed("s:3", "three"),
            entry("plain", Level::Info, "no key", &[], 1),
        ])
        .await
        .expect("insert");
    assert_eq!(messages(&second), ["three", "no key"]);
    assert_eq!(keyed_messages(&store).await, ["one", "two", "three"]);
}

/// Keys that name a Redis stream entry (`<stream>:<ms>-<seq>`, which the
/// MariaDB store keeps in the row's source pair): the same id in another
/// stream is another entry; the same entry received again later, through
/// another Kafka position, in the same batch or a later one, is not stored
/// again.
async fn stream_ids_as_keys_store_each_entry_once(store: Arc<dyn Store>) {
    let again = |key: &str, message: &str, partition: i32, offset: i64| {
        let mut e = keyed(key, message);
        e.received_us += 5_000_000;
        e.source = Some(SourcePosition { partition, offset });
        e
    };
    let (a0, a1) = (
        "redis-stream:a:1700000000000-0",
        "redis-stream:a:1700000000000-1",
    );
    let b0 = "redis-stream:b:1700000000000-0";
    let first = store
        .insert(vec![
            keyed(a0, "a0"),
            keyed(b0, "b0"),
            again(a0, "a0 again, same batch", 0, 1),
        ])
        .await
        .expect("insert");
    assert_eq!(messages(&first), ["a0", "b0"]);
    let second = store
        .insert(vec![again(a0, "a0 again", 1, 7), keyed(a1, "a1")])
        .await
        .expect("insert");
    assert_eq!(messages(&second), ["a1"]);
    assert_eq!(keyed_messages(&store).await, ["a0", "b0", "a1"]);
}

/// A position is replaced only by whoever read it as it stands: a second
/// holder of the same role, working from an older read, is refused.
/// Documents (saved views): written, replaced by name, listed by name
/// within their kind, deleted once; names and bodies kept byte for byte.
async fn documents_are_kept_by_kind_and_name(store: Arc<dyn Store>) {
    let doc = |kind: &str, name: &str, body: &str, at: i64| Document {
        kind: kind.into(),
        name: name.into(),
        body: body.into(),
        updated_us: at,
    };
    assert!(
        store
            .documents("view", Order::OldestFirst, 10)
            .await
            .expect("list")
            .is_empty()
    );
    let odd = "Ünïcode 日本語 \"quoted\" 'x' %_\\";
    for d in [
        doc("view", "b", "{\"state\":\"service=b\"}", 1),
        doc("view", odd, "{}", 2),
        doc("view", "a", "{\"state\":\"old\"}", 3),
        doc("other", "a", "elsewhere", 4),
        doc("view", "a", "{\"state\":\"new\"}", 5),
    ] {
        store.put_document(d).await.expect("put");
    }
    let views = store
        .documents("view", Order::OldestFirst, 10)
        .await
        .expect("list");
    let names: Vec<&str> = views.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["a", "b", odd]);
    assert_eq!(views[0], doc("view", "a", "{\"state\":\"new\"}", 5));
    let newest: Vec<String> = (store.documents("view", Order::NewestFirst, 2).await)
        .expect("newest first")
        .into_iter()
        .map(|d| d.name)
        .collect();
    assert_eq!(newest, [odd.to_string(), "b".to_string()]);
    assert_eq!(
        store
            .documents("other", Order::OldestFirst, 10)
            .await
            .expect("other"),
        [doc("other", "a", "elsewhere", 4)]
    );
    for at in 0..5 {
        let name = format!("{at:020}-r");
        store
            .put_document(doc("firing", &name, "{}", at))
            .await
            .expect("put");
    }
    assert_eq!(store.trim_documents("firing", 2).await.expect("trim"), 3);
    assert_eq!(store.trim_documents("firing", 2).await.expect("again"), 0);
    let kept: Vec<i64> = (store.documents("firing", Order::NewestFirst, 10).await)
        .expect("kept")
        .iter()
        .map(|d| d.updated_us)
        .collect();
    assert_eq!(kept, [4, 3]);
    assert_eq!(store.trim_documents("firing", 0).await.expect("all"), 2);
    assert!(store.delete_document("view", "a").await.expect("delete"));
    assert!(!store.delete_document("view", "a").await.expect("again"));
    assert_eq!(
        store
            .documents("view", Order::OldestFirst, 10)
            .await
            .expect("list")
            .len(),
        2
    );
    assert_eq!(
        store
            .documents("other", Order::OldestFirst, 10)
            .await
            .expect("other")
            .len(),
        1
    );
}

async fn positions_swap_only_from_what_was_read(store: Arc<dyn Store>) {
    let p = |value: &str, hold: Option<u64>| Position {
        value: value.into(),
        hold,
    };
    assert_eq!(store.position("archive").await.expect("read"), None);
    assert!(
        store
            .swap_position("archive", None, &p("a", Some(3)))
            .await
            .expect("create")
    );
    assert!(
        !store
            .swap_position("archive", None, &p("b", None))
            .await
            .expect("create twice"),
        "a position that exists is not created again"
    );
    let a = p("a", Some(3));
    assert_eq!(
        store.position("archive").await.expect("read"),
        Some(a.clone())
    );
    assert!(
        store
            .swap_position("archive", Some(&a), &p("c", Some(9)))
            .await
            .expect("swap")
    );
    assert!(
        !store
            .swap_position("archive", Some(&a), &p("d", Some(10)))
            .await
            .expect("stale swap"),
        "a swap from a stale read must fail"
    );
    assert_eq!(
        store.position("archive").await.expect("read"),
        Some(p("c", Some(9)))
    );
    // The same value again is still a success (nothing else moved it).
    let c = p("c", Some(9));
    assert!(
        store
            .swap_position("archive", Some(&c), &c)
            .await
            .expect("same again")
    );
}

/// Retention deletes nothing above the lowest hold, however old.
async fn retention_keeps_what_a_hold_has_not_covered(store: Arc<dyn Store>) {
    let stored = store
        .insert((1..=10).map(|t| keyed(&format!("r:{t}"), "old")).collect())
        .await
        .expect("insert");
    let ids: Vec<u64> = stored.iter().map(|r| r.id).collect();
    let hold = Position {
        value: "x".into(),
        hold: Some(ids[3]),
    };
    assert!(
        store
            .swap_position("archive", None, &hold)
            .await
            .expect("hold")
    );
    assert_eq!(store.delete_before(i64::MAX, 100).await.expect("delete"), 4);
    let left: Vec<u64> = store
        .query(all())
        .await
        .expect("query")
        .records
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(left.len(), 6);
    assert!(left.iter().all(|id| *id > ids[3]), "{left:?}");
    // The deleted records' keys went with them: the entries may come again.
    let again = store
        .insert(vec![keyed("r:1", "old")])
        .await
        .expect("insert");
    assert_eq!(again.len(), 1);
}

/// 5000 entries of ~200-byte messages in one batch, timed (printed with
/// `--nocapture`): the writer's default batch at its largest.
async fn large_batch(store: Arc<dyn Store>) {
    let body = "x".repeat(180);
    let mut timings = Vec::new();
    for round in 0..3 {
        let batch: Vec<_> = (0..5000)
            .map(|i| {
                let msg = format!("request {round}/{i:05} {body}");
                entry(&format!("svc{}", i % 7), Level::Info, &msg, &["a", "b"], i)
            })
            .collect();
        let start = Instant::now();
        let r = store.insert(batch).await.expect("insert");
        timings.push(start.elapsed());
        assert_eq!(r.len(), 5000);
        assert!(ids_of(&r).windows(2).all(|w| w[1] == w[0] + 1));
    }
    eprintln!("5000-entry batch insert: {timings:?}");
    let q = Query {
        count_total: true,
        limit: 0,
        ..all()
    };
    assert_eq!(store.query(q).await.expect("count").total, Some(15_000));
}

// ------------------------------------------------------------ MariaDB only

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_redelivered_sources_are_stored_once() {
    with_mysql(async |db| {
        let store = db.open().await;
        let mut first: Vec<_> = (0..5).map(|o| sourced(0, o)).collect();
        first.push(entry("plain", Level::Info, "no source", &[], 1));
        let a = store.insert(first).await.expect("first delivery");
        assert_eq!(a.len(), 6);

        // Offsets 3 and 4 again, 7 twice in one batch, a new partition, and
        // an entry without source (always stored).
        let mut second: Vec<_> = (3..8).map(|o| sourced(0, o)).collect();
        second.extend([sourced(0, 7), sourced(1, 0)]);
        second.push(entry("plain", Level::Info, "no source", &[], 1));
        let b = store.insert(second).await.expect("redelivery");
        let messages: Vec<_> = b.iter().map(|r| r.message.as_str()).collect();
        assert_eq!(messages, ["0/5", "0/6", "0/7", "1/0", "no source"]);
        assert_eq!(b[0].id, a[5].id + 1, "skipped entries use no ids");
        assert!(ids_of(&b).windows(2).all(|w| w[1] == w[0] + 1));

        // A second process sees the same positions.
        let other = db.open().await;
        let c = other
            .insert((0..8).map(|o| sourced(0, o)).collect())
            .await
            .expect("third delivery");
        assert!(c.is_empty(), "{c:?}");
        let q = Query {
            count_total: true,
            limit: 0,
            ..all()
        };
        assert_eq!(store.query(q).await.expect("count").total, Some(11));
        assert_eq!(db.count("logs").await, 11);
    })
    .await
}

/// A new topic numbers its offsets from 0 again (the topic setting changed,
/// or a broker that lost its data created it again). Its entries at stored
/// positions were received at other times: they are stored, and their own
/// redeliveries are still dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_a_new_topic_at_stored_positions_is_stored() {
    with_mysql(async |db| {
        let store = db.open().await;
        let old = store
            .insert((0..4).map(|o| sourced(0, o)).collect())
            .await
            .expect("the old topic");
        assert_eq!(old.len(), 4);
        let new = |offset: i64| {
            let mut e = sourced(0, offset);
            e.entry.message = format!("new {offset}");
            e.received_us += 60_000_000;
            e
        };
        let b = store
            .insert(vec![new(0), new(1), new(1)])
            .await
            .expect("the new topic");
        let messages: Vec<_> = b.iter().map(|r| r.message.as_str()).collect();
        assert_eq!(messages, ["new 0", "new 1"]);

        // Redeliveries from either topic, seen by another process.
        let other = db.open().await;
        let c = other
            .insert(vec![sourced(0, 2), new(0), new(2), sourced(0, 3), new(1)])
            .await
            .expect("redeliveries");
        let messages: Vec<_> = c.iter().map(|r| r.message.as_str()).collect();
        assert_eq!(messages, ["new 2"]);
        assert_eq!(db.count("logs").await, 7);
    })
    .await
}

/// A value the schema cannot hold fails the whole batch in both ways of
/// sending rows: LOAD DATA LOCAL would only warn and cut it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_a_value_too_long_fails_the_batch() {
    for bulk in [BulkMode::LoadData, BulkMode::Insert] {
        with_mysql(async |db| {
            let store = db.open_with(bulk).await;
            let long = "s".repeat(300);
            let batch = vec![
                entry("fine", Level::Info, "kept?", &["t"], 1),
                entry(&long, Level::Info, "too long a service", &[], 2),
            ];
            let e = store.insert(batch).await.expect_err("stored a cut value");
            assert!(
                matches!(e, StoreError::Refused(_) | StoreError::Database(_)),
                "{e:?}"
            );
            assert_eq!(
                db.count("logs").await,
                0,
                "{bulk:?}: part of the batch stayed"
            );
            assert_eq!(db.count("log_tags").await, 0);

            let ok = store
                .insert(vec![entry("fine", Level::Info, "m", &["t"], 1)])
                .await;
            assert_eq!(ok.expect("next batch").len(), 1, "{bulk:?}");
            let mut tagged = entry(&"x".repeat(10), Level::Info, "m", &[], 3);
            tagged.entry.tags = vec!["t".repeat(300)];
            store
                .insert(vec![tagged])
                .await
                .expect_err("stored a cut tag");
            assert_eq!(db.count("log_tags").await, 1, "{bulk:?}");
        })
        .await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_concurrent_writers_commit_in_id_order() {
    with_mysql(async |db| {
        // Opening together also exercises the migration lock.
        let (a, b) = tokio::join!(db.open(), db.open());
        let stores: [Arc<dyn Store>; 2] = [Arc::new(a), Arc::new(b)];
        let done = CancellationToken::new();

        // A live tail's resume query, run as fast as it goes: had an id
        // committed after a larger one, the reader would have skipped it.
        let reader = {
            let store = stores[0].clone();
            let done = done.clone();
            tokio::spawn(async move {
                let mut seen: Vec<u64> = Vec::new();
                loop {
                    let finished = done.is_cancelled();
                    let q = Query {
                        after_id: seen.last().copied(),
                        ..all()
                    };
                    seen.extend(ids(&*store, q).await);
                    if finished {
                        return seen;
                    }
                    tokio::task::yield_now().await;
                }
            })
        };
        let writers: Vec<_> = (0..6)
            .map(|w| {
                let store = stores[w % 2].clone();
                tokio::spawn(async move {
                    let mut batches = Vec::new();
                    for n in 0..25 {
                        let batch = (0..(1 + (w * 7 + n) % 40))
                            .map(|i| entry("s", Level::Info, &format!("{w}/{n}/{i}"), &["t"], 1))
                            .collect();
                        let r = store.insert(batch).await.expect("insert");
                        batches.push(ids_of(&r));
                    }
                    batches
                })
            })
            .collect();
        let mut batches = Vec::new();
        for w in writers {
            batches.extend(w.await.expect("writer"));
        }
        done.cancel();
        let seen = reader.await.expect("reader");

        batches.sort();
        for pair in batches.windows(2) {
            let (x, y) = (&pair[0], &pair[1]);
            assert!(
                x.iter().max() < y.iter().min(),
                "batches interleave: {x:?} {y:?}"
            );
        }
        let all_ids: Vec<u64> = batches.concat();
        assert!(
            all_ids.windows(2).all(|w| w[1] == w[0] + 1),
            "ids have gaps"
        );
        assert_eq!(seen, all_ids, "the resuming reader missed or repeated ids");
    })
    .await
}

/// Batches handed to the store together commit in the order they were
/// handed over, whichever finishes first, and fail together.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_pipelined_batches_commit_in_order_and_fail_together() {
    with_mysql(async |db| {
        let store: Arc<dyn Store> = Arc::new(db.open().await);
        assert!(store.pipeline_depth() > 1);
        // Starts a one-entry batch behind those started before.
        let start_one = |message: &str, n| {
            let e = entry("s", Level::Info, message, &[], n);
            tokio::spawn(store.clone().start_insert(vec![e]))
        };
        let big: Vec<_> = (0..3000)
            .map(|i| entry("s", Level::Info, &format!("big {i}"), &["t"], 1))
            .collect();
        let a = tokio::spawn(store.clone().start_insert(big));
        let b = start_one("small", 2);
        // The small batch waits for the big one started before it.
        let b = b.await.expect("task").expect("second batch");
        assert_eq!(ids_of(&b), [3001]);
        let a = a.await.expect("task").expect("first batch");
        assert_eq!(ids_of(&a), (1..=3000).collect::<Vec<u64>>());
        assert_eq!(db.count("logs").await, 3001);

        let long = "s".repeat(300);
        let bad = vec![entry(&long, Level::Info, "too long a service", &[], 3)];
        let a = tokio::spawn(store.clone().start_insert(bad));
        let b = start_one("after", 4);
        a.await.expect("task").expect_err("stored a cut value");
        let e = b
            .await
            .expect("task")
            .expect_err("stored after a failed batch");
        assert!(matches!(e, StoreError::EarlierBatchFailed), "{e:?}");
        assert_eq!(db.count("logs").await, 3001);

        let c = store
            .insert(vec![entry("s", Level::Info, "again", &[], 5)])
            .await
            .expect("next batch");
        assert_eq!(ids_of(&c), [3002]);
    })
    .await
}

/// Another writer process's batch, storing from the same first id, meets
/// this store's first open batch before any later one: a later batch must
/// not block it while waiting for the earlier batch, which waits for it. That
/// cycle runs through the store's own process, where InnoDB cannot see it,
/// and held both until the lock wait timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_another_writer_never_waits_on_a_later_batch() {
    with_mysql(async |db| {
        let store: Arc<dyn Store> = Arc::new(db.open().await);
        let mut other = db.sql().await;
        // Fails the statement below in 5 s rather than 50 if it waits.
        other
            .batch_execute("SET SESSION innodb_lock_wait_timeout = 5; BEGIN")
            .await
            .expect("begin");
        let row = |id: u64| {
            format!(
                "INSERT INTO logs (id, service, level, message, tags, attributes, time_us, received_us) \
                 VALUES ({id}, 'other', 1, 'other {id}', '[]', '{{}}', 1, 1)"
            )
        };
        // The other process's batch, with ids guessed as this store's are,
        // holds the next id (1 in a new database)...
        other.batch_execute(&row(1)).await.expect("id 1");
        let batch = |name: &str| {
            (0..3)
                .map(|i| entry("s", Level::Info, &format!("{name} {i}"), &[], 1))
                .collect()
        };
        // ...so the first batch waits for it; the second (guessing its ids
        // from the first) must not store any of its rows meanwhile.
        let first = tokio::spawn(store.clone().start_insert(batch("first")));
        let second = tokio::spawn(store.clone().start_insert(batch("second")));
        tokio::time::sleep(Duration::from_millis(500)).await;
        // The other batch goes on past the ids of the first.
        let went_on = other.batch_execute(&row(4)).await;
        assert!(
            went_on.is_ok(),
            "the other writer waited on the second batch: {went_on:?}"
        );
        other.batch_execute("ROLLBACK").await.expect("rollback");
        let first = first.await.expect("task").expect("first batch");
        let second = second.await.expect("task").expect("second batch");
        assert_eq!(ids_of(&first), [1, 2, 3]);
        assert_eq!(ids_of(&second), [4, 5, 6]);
        assert_eq!(db.count("logs").await, 6);
    })
    .await
}

/// Row counts of a SQLite store, read behind its back.
mod sqlite_rows {
    use diesel::prelude::*;

    pub fn count(dir: &std::path::Path, table: &str) -> i64 {
        let url = dir.join("taillight.db");
        let mut c = SqliteConnection::establish(&url.to_string_lossy()).expect("open");
        diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(&format!(
            "(SELECT COUNT(*) FROM {table})"
        )))
        .get_result(&mut c)
        .expect("count")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_delete_removes_tags() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open_sqlite(dir.path()).await;
    store
        .insert(vec![
            entry("s", Level::Info, "m", &["t", "u"], 1),
            entry("s", Level::Info, "m", &["t"], 2),
        ])
        .await
        .expect("insert");
    assert_eq!(sqlite_rows::count(dir.path(), "log_tags"), 3);
    assert_eq!(store.delete_before(2, 10).await.expect("delete"), 1);
    assert_eq!(sqlite_rows::count(dir.path(), "log_tags"), 1);
    assert_eq!(sqlite_rows::count(dir.path(), "logs"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_reopen_continues_ids_and_delete_removes_tags() {
    with_mysql(async |db| {
        let store = db.open().await;
        let a = store
            .insert(vec![entry("s", Level::Info, "m", &["t", "u"], 1)])
            .await
            .expect("insert");
        drop(store);
        let store = db.open().await;
        let b = store
            .insert(vec![entry("s", Level::Info, "m", &["t"], 2)])
            .await
            .expect("insert after reopen");
        assert_eq!(b[0].id, a[0].id + 1);
        assert_eq!(db.count("log_tags").await, 3);
        assert_eq!(store.delete_before(2, 10).await.expect("delete"), 1);
        assert_eq!(db.count("log_tags").await, 1);
        assert_eq!(db.count("logs").await, 1);
    })
    .await
}

#[tokio::test]
async fn mysql_dead_server_fails_open_quickly() {
    let start = Instant::now();
    let r = MysqlStore::open(
        "mysql://root:hunter2@127.0.0.1:1/taillight_dead",
        2,
        BulkMode::Auto,
    )
    .await;
    let msg = match r {
        Err(StoreError::Connection(msg)) => msg,
        other => panic!("expected a connection error, got {:?}", other.err()),
    };
    assert!(msg.contains("127.0.0.1:1"), "{msg}");
    assert!(!msg.contains("hunter2"), "{msg}");
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn mysql_silent_server_times_out() {
    // Accepts TCP connections but never sends the handshake.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let start = Instant::now();
    let url = format!("mysql://root@127.0.0.1:{port}/taillight_silent");
    let r = tokio::time::timeout(
        Duration::from_secs(15),
        MysqlStore::open(&url, 2, BulkMode::Auto),
    )
    .await
    .expect("open must give up by itself");
    assert!(matches!(r, Err(StoreError::Connection(_))), "{:?}", r.err());
    assert!(
        start.elapsed() < Duration::from_secs(8),
        "{:?}",
        start.elapsed()
    );
    hold.abort();
}

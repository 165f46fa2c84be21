//! The embedded store: SQLite through diesel, in WAL mode.
//!
//! One writer (the writer task is the only caller of `insert`, and it assigns
//! ids in commit order) with two connections behind one mutex: diesel's for
//! migrations and retention, and [`bulk`]'s prepared statements for batches.
//! A small pool reads, so history queries and tail backfills never wait
//! behind a write batch.

use std::collections::BTreeMap;
use std::fs::File;
use std::ops::Range;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use diesel::connection::DefaultLoadingMode;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool};
use diesel::sqlite::Sqlite;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use super::codec::{
    BatchRows, LogRow, dedup_keys, drop_stored_keys, history_queries, query_result, split_expired,
    stored_record, tag_keys,
};
use super::contract::{
    Document, Order, Position, Query, QueryResult, Store, StoreError, resolve_within,
};
use super::histogram::{Counted, count_row, counted};
use super::rollup::rollup_queries;
use super::schema::{self, log_tags, logs, service_tags, services};
use crate::model::{Filter, QueuedEntry};
use crate::proto::LogRecord;

pub mod bulk;
mod documents;
mod indexer;
mod ledger;
mod text;

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

pub struct SqliteStore {
    /// Connections for queries.
    readers: Pool<ConnectionManager<SqliteConnection>>,
    /// The connection that writes, and the id the next entry gets.
    writer: Arc<Mutex<WriterConn>>,
    /// An exclusive lock on the data directory: two servers assigning ids in
    /// one database would break the commit-order guarantee.
    _lock: File,
}

struct WriterConn {
    /// diesel's writing connection: migrations and retention's deletes.
    conn: SqliteConnection,
    /// The connection that inserts batches, without diesel's overhead.
    bulk: bulk::BulkWriter,
    /// The id the next entry gets.
    next_id: i64,
    /// The trigrams of the blocks the text index does not hold yet.
    pending: indexer::Pending,
}

/// The embedded store's flags.
#[derive(Debug, Clone, clap::Args)]
pub struct SqliteArgs {
    /// Directory of the embedded SQLite store.
    #[arg(long, env = "TAILLIGHT_DATA_DIR", default_value = "./data")]
    pub data_dir: std::path::PathBuf,
    /// SQLite durability: `full` fsyncs each batch commit (survives power
    /// loss), `normal` survives a process crash only.
    #[arg(
        long,
        env = "TAILLIGHT_SQLITE_SYNCHRONOUS",
        value_enum,
        default_value = "full"
    )]
    pub sqlite_synchronous: Synchronous,
}

/// How hard SQLite works to keep a commit through a power loss. `Full`
/// (the default) fsyncs every commit; `Normal` survives a process crash but
/// may lose the last commits on power loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Synchronous {
    Full,
    Normal,
}

#[derive(Debug)]
struct ReaderSetup;

impl CustomizeConnection<SqliteConnection, diesel::r2d2::Error> for ReaderSetup {
    fn on_acquire(&self, conn: &mut SqliteConnection) -> Result<(), diesel::r2d2::Error> {
        conn.batch_execute("PRAGMA busy_timeout = 5000; PRAGMA query_only = ON;")
            .map_err(diesel::r2d2::Error::QueryError)
    }
}

impl SqliteStore {
    /// Opens (creating if needed) `taillight.db` in the data directory and
    /// applies migrations. Blocking: call it from `spawn_blocking` or before
    /// the runtime is busy.
    pub fn open(args: &SqliteArgs) -> Result<Self, StoreError> {
        let (dir, synchronous) = (args.data_dir.as_path(), args.sqlite_synchronous);
        std::fs::create_dir_all(dir)?;
        let lock = File::create(dir.join("LOCK"))?;
        lock.try_lock().map_err(|_| {
            StoreError::Connection(format!(
                "{} is in use by another taillight process",
                dir.display()
            ))
        })?;
        let path = dir.join("taillight.db");
        let url = path.to_string_lossy().into_owned();

        let mut conn = SqliteConnection::establish(&url)
            .map_err(|e| StoreError::Connection(format!("{url}: {e}")))?;
        let sync = match synchronous {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
        };
        // 16 KiB pages for a new database (an existing one keeps its own):
        // rows of a few hundred bytes waste less of a larger page, about 15
        // bytes an entry, what the text index takes (docs/benchmarks/text-search.md).
        // The WAL is checkpointed every 4 MiB as with SQLite's default 4 KiB
        // pages (its default counts 1000 pages): at 16 MiB, the WAL file kept
        // 21 MB on disk after 1M entries.
        let pragmas = format!(
            "PRAGMA page_size = 16384; PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 256; \
             PRAGMA synchronous = {sync}; PRAGMA busy_timeout = 5000;"
        );
        conn.batch_execute(&pragmas)?;
        conn.run_pending_migrations(MIGRATIONS)
            .map_err(|e| StoreError::Migration(e.to_string()))?;
        let max: Option<i64> = logs::table
            .select(diesel::dsl::max(logs::id))
            .first(&mut conn)?;
        let mut bulk = bulk::BulkWriter::open(&path, &pragmas)?;
        let pending = indexer::Pending::catch_up(&mut conn, |f| bulk.index(f))?;

        let readers = Pool::builder()
            .max_size(4)
            .connection_customizer(Box::new(ReaderSetup))
            .build(ConnectionManager::new(url))
            .map_err(|e| StoreError::Connection(e.to_string()))?;
        Ok(SqliteStore {
            readers,
            writer: Arc::new(Mutex::new(WriterConn {
                conn,
                bulk,
                next_id: (max.unwrap_or(0) + 1).max(pending.first_free_id()),
                pending,
            })),
            _lock: lock,
        })
    }

    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut SqliteConnection) -> Result<T, StoreError> + Send + 'static,
    {
        let pool = self.readers.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = pool
                .get()
                .map_err(|e| StoreError::Connection(e.to_string()))?;
            f(&mut conn)
        })
        .await
        .map_err(|e| StoreError::Connection(format!("reader task failed: {e}")))?
    }

    /// Runs `f` with the writing connections, on a blocking thread.
    async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut WriterConn) -> Result<T, StoreError> + Send + 'static,
    {
        let writer = self.writer.clone();
        tokio::task::spawn_blocking(move || {
            let mut w = writer
                .lock()
                .map_err(|_| StoreError::Connection("writer connection poisoned".into()))?;
            f(&mut w)
        })
        .await
        .map_err(|e| StoreError::Connection(format!("writer task failed: {e}")))?
    }
}

fn insert_blocking(
    w: &mut WriterConn,
    mut entries: Vec<QueuedEntry>,
) -> Result<Vec<LogRecord>, StoreError> {
    let keys = dedup_keys(&entries);
    if !keys.is_empty() {
        // Only this connection's writer writes keys, so what it reads here
        // stays true until its transaction commits.
        let stored = ledger::stored_keys(&mut w.conn, &keys)?;
        drop_stored_keys(&mut entries, &stored);
    }
    let first = w.next_id;
    let rows = BatchRows::new(first, &entries);
    for r in &rows.logs {
        w.pending.add(r.id, &r.message);
    }
    let next = first + rows.logs.len() as i64;
    let flush = w.pending.due(next);
    w.bulk.insert(&rows, flush.as_ref())?;
    if let Some(f) = &flush {
        w.pending.written(f);
    }
    w.next_id = next;
    drop(rows);
    Ok(entries
        .into_iter()
        .enumerate()
        .map(|(i, q)| stored_record(first + i as i64, q))
        .collect())
}

history_queries!(Sqlite);
rollup_queries!(SqliteConnection, "SUM(n)", diesel::RunQueryDsl, [], []);

/// The rows `q` chooses, counted as they stream by: one pass on the time
/// index, holding only the counts.
fn bucket_counts_in(
    c: &mut SqliteConnection,
    q: &Query,
    origin: i64,
    width: i64,
) -> Result<Vec<Counted>, StoreError> {
    if let Some(terms) = text::terms(&q.filter.text) {
        let reach = text::reach(c)?;
        return Ok(text::bucket_counts(c, q, &terms, reach, origin, width)?);
    }
    let mut by = BTreeMap::new();
    let rows = filtered(q)
        .select((logs::time_us, logs::level))
        .load_iter::<(i64, i32), DefaultLoadingMode>(c)?;
    for row in rows {
        count_row(row?, origin, width, &mut by);
    }
    Ok(counted(by))
}

/// A history query; through the text index when it has a text the index
/// can look up.
fn query_blocking(c: &mut SqliteConnection, q: &Query) -> Result<QueryResult, StoreError> {
    if let Some(terms) = text::terms(&q.filter.text) {
        // Read once, so the count and the page split alike.
        let reach = text::reach(c)?;
        let total = match q.count_total {
            true => Some(text::count(c, q, &terms, reach)?),
            false => None,
        };
        return query_result(text::page(c, q, &terms, reach)?, total);
    }
    let total = if q.count_total {
        Some(filtered(q).count().get_result::<i64>(c)?)
    } else {
        None
    };
    let rows: Vec<LogRow> = page(q).select(LogRow::as_select()).load(c)?;
    query_result(rows, total)
}

#[async_trait]
impl Store for SqliteStore {
    async fn insert(&self, entries: Vec<QueuedEntry>) -> Result<Vec<LogRecord>, StoreError> {
        self.write(move |w| insert_blocking(w, entries)).await
    }

    async fn query(&self, query: Query) -> Result<QueryResult, StoreError> {
        let none = QueryResult::none(&query);
        let Some(query) = resolve_within(self, query).await? else {
            return Ok(none);
        };
        self.read(move |c| query_blocking(c, &query)).await
    }

    async fn minute_counts(
        &self,
        filter: Filter,
        minutes: Range<i64>,
    ) -> Result<Vec<Counted>, StoreError> {
        self.read(move |c| minute_counts_in(c, &filter, minutes))
            .await
    }

    async fn minute_span(&self, filter: Filter) -> Result<Option<(i64, i64)>, StoreError> {
        self.read(move |c| minute_span_in(c, &filter)).await
    }

    async fn bucket_counts(
        &self,
        q: Query,
        origin_us: i64,
        width_us: i64,
    ) -> Result<Vec<Counted>, StoreError> {
        self.read(move |c| bucket_counts_in(c, &q, origin_us, width_us))
            .await
    }

    async fn services(&self) -> Result<Vec<String>, StoreError> {
        self.read(|c| {
            Ok(services::table
                .select(services::name)
                .order(services::name)
                .load(c)?)
        })
        .await
    }

    async fn delete_before(&self, cutoff_us: i64, limit: u32) -> Result<u64, StoreError> {
        self.write(move |w| {
            w.conn.immediate_transaction::<_, StoreError, _>(|c| {
                let hold = ledger::lowest_hold(c)?;
                let mut expired = logs::table
                    .filter(logs::time_us.lt(cutoff_us))
                    .order(logs::time_us.asc())
                    .limit(i64::from(limit))
                    .select((
                        logs::id,
                        logs::tags,
                        logs::service,
                        logs::level,
                        logs::time_us,
                    ))
                    .into_boxed();
                if let Some(h) = hold {
                    expired = expired.filter(logs::id.le(h));
                }
                let expired: Vec<(i64, String, String, i32, i64)> = expired.load(c)?;
                let (expired, counted) = split_expired(expired);
                take_off_counts(c, &counted)?;
                for (tag, ids) in tag_keys(&expired)? {
                    diesel::delete(
                        log_tags::table
                            .filter(log_tags::tag.eq(&tag))
                            .filter(log_tags::log_id.eq_any(&ids)),
                    )
                    .execute(c)?;
                }
                let ids: Vec<i64> = expired.iter().map(|(id, _)| *id).collect();
                diesel::delete(
                    schema::dedup_keys::table.filter(schema::dedup_keys::log_id.eq_any(&ids)),
                )
                .execute(c)?;
                let deleted =
                    diesel::delete(logs::table.filter(logs::id.eq_any(&ids))).execute(c)?;
                diesel::sql_query(text::DROP_EMPTIED).execute(c)?;
                Ok(deleted as u64)
            })
        })
        .await
    }

    async fn text_index_reach(&self) -> Result<u64, StoreError> {
        self.read(|c| Ok(text::reach(c)?)).await
    }

    async fn put_document(&self, doc: Document) -> Result<(), StoreError> {
        self.write(move |w| documents::put(&mut w.conn, &doc)).await
    }

    async fn documents(
        &self,
        kind: &str,
        order: Order,
        limit: u32,
    ) -> Result<Vec<Document>, StoreError> {
        let kind = kind.to_string();
        self.read(move |c| documents::list(c, &kind, order, limit))
            .await
    }

    async fn delete_document(&self, kind: &str, name: &str) -> Result<bool, StoreError> {
        let (kind, name) = (kind.to_string(), name.to_string());
        self.write(move |w| documents::delete(&mut w.conn, &kind, &name))
            .await
    }

    async fn trim_documents(&self, kind: &str, keep: u32) -> Result<u64, StoreError> {
        let kind = kind.to_string();
        self.write(move |w| documents::trim(&mut w.conn, &kind, keep))
            .await
    }

    async fn position(&self, name: &str) -> Result<Option<Position>, StoreError> {
        let name = name.to_string();
        self.read(move |c| ledger::get(c, &name)).await
    }

    async fn swap_position(
        &self,
        name: &str,
        expected: Option<&Position>,
        new: &Position,
    ) -> Result<bool, StoreError> {
        let (name, expected, new) = (name.to_string(), expected.cloned(), new.clone());
        self.write(move |w| ledger::swap(&mut w.conn, &name, expected.as_ref(), &new))
            .await
    }

    async fn tags(&self, service: String) -> Result<Vec<String>, StoreError> {
        self.read(move |c| {
            Ok(service_tags::table
                .filter(service_tags::service.eq(&service))
                .select(service_tags::tag)
                .order(service_tags::tag)
                .load(c)?)
        })
        .await
    }
}

/// A store's flags for a directory of its own, removed when the returned
/// guard drops: what the embedded store's unit tests open.
#[cfg(test)]
fn temp_args() -> (tempfile::TempDir, SqliteArgs) {
    let dir = tempfile::tempdir().expect("temp dir");
    let args = SqliteArgs {
        data_dir: dir.path().into(),
        sqlite_synchronous: Synchronous::Normal,
    };
    (dir, args)
}

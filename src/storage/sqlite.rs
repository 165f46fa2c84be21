//! The embedded store: SQLite through diesel, in WAL mode.
//!
//! One connection writes (the writer task is the only caller of `insert`, and
//! it assigns ids in commit order); a small pool reads, so history queries and
//! tail backfills never wait behind a write batch.

use std::collections::BTreeSet;
use std::fs::File;
use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool};
use diesel::sqlite::Sqlite;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use super::codec::{LogRow, like_pattern};
use super::schema::{log_tags, logs, service_tags, services};
use super::{Order, Query, QueryResult, Store, StoreError};
use crate::proto::LogRecord;
use crate::queue::QueuedEntry;
use crate::time;

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// Rows per INSERT statement: 8 columns each stays under SQLite's limit of
/// 32766 bound parameters.
const ROWS_PER_INSERT: usize = 1000;

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
    conn: SqliteConnection,
    next_id: i64,
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
    /// Opens (creating if needed) `dir/taillight.db` and applies migrations.
    /// Blocking: call it from `spawn_blocking` or before the runtime is busy.
    pub fn open(dir: &Path, synchronous: Synchronous) -> Result<Self, StoreError> {
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
        conn.batch_execute(&format!(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = {sync}; PRAGMA busy_timeout = 5000;"
        ))?;
        conn.run_pending_migrations(MIGRATIONS)
            .map_err(|e| StoreError::Migration(e.to_string()))?;
        let max: Option<i64> = logs::table
            .select(diesel::dsl::max(logs::id))
            .first(&mut conn)?;

        let readers = Pool::builder()
            .max_size(4)
            .connection_customizer(Box::new(ReaderSetup))
            .build(ConnectionManager::new(url))
            .map_err(|e| StoreError::Connection(e.to_string()))?;
        Ok(SqliteStore {
            readers,
            writer: Arc::new(Mutex::new(WriterConn {
                conn,
                next_id: max.unwrap_or(0) + 1,
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
}

fn insert_blocking(
    w: &mut WriterConn,
    entries: Vec<QueuedEntry>,
) -> Result<Vec<LogRecord>, StoreError> {
    let first = w.next_id;
    let rows: Vec<LogRow> = entries
        .iter()
        .enumerate()
        .map(|(i, q)| LogRow::new(first + i as i64, q))
        .collect();
    let mut tag_rows = Vec::new();
    let mut service_set = BTreeSet::new();
    let mut service_tag_set = BTreeSet::new();
    for r in &rows {
        service_set.insert(r.service.as_str());
    }
    for (i, q) in entries.iter().enumerate() {
        for tag in &q.entry.tags {
            tag_rows.push((
                log_tags::tag.eq(tag.as_str()),
                log_tags::log_id.eq(first + i as i64),
            ));
            service_tag_set.insert((q.entry.service.as_str(), tag.as_str()));
        }
    }
    w.conn
        .immediate_transaction::<_, diesel::result::Error, _>(|c| {
            for chunk in rows.chunks(ROWS_PER_INSERT) {
                diesel::insert_into(logs::table).values(chunk).execute(c)?;
            }
            for chunk in tag_rows.chunks(ROWS_PER_INSERT * 4) {
                diesel::insert_into(log_tags::table)
                    .values(chunk)
                    .execute(c)?;
            }
            let names: Vec<_> = service_set.iter().map(|s| services::name.eq(*s)).collect();
            diesel::insert_or_ignore_into(services::table)
                .values(&names)
                .execute(c)?;
            let pairs: Vec<_> = service_tag_set
                .iter()
                .map(|(s, t)| (service_tags::service.eq(*s), service_tags::tag.eq(*t)))
                .collect();
            for chunk in pairs.chunks(ROWS_PER_INSERT) {
                diesel::insert_or_ignore_into(service_tags::table)
                    .values(chunk)
                    .execute(c)?;
            }
            Ok(())
        })?;
    w.next_id = first + rows.len() as i64;
    drop(rows);
    Ok(entries
        .into_iter()
        .enumerate()
        .map(|(i, q)| LogRecord {
            id: (first + i as i64) as u64,
            time: q.entry.time.or(Some(time::from_micros(q.received_us))),
            service: q.entry.service,
            level: q.entry.level,
            message: q.entry.message,
            tags: q.entry.tags,
            attributes: q.entry.attributes,
            received_time: Some(time::from_micros(q.received_us)),
        })
        .collect())
}

/// The rows matching a query's filter, time range and id bounds.
fn filtered(q: &Query) -> logs::BoxedQuery<'_, Sqlite> {
    let f = &q.filter;
    let mut b = logs::table.into_boxed();
    if !f.services.is_empty() {
        b = b.filter(logs::service.eq_any(&f.services));
    }
    if !f.levels.is_empty() {
        b = b.filter(logs::level.eq_any(&f.levels));
    }
    if f.min_level > 0 {
        b = b.filter(logs::level.ge(f.min_level));
    }
    if !f.tags.is_empty() {
        let tagged = log_tags::table
            .select(log_tags::log_id)
            .filter(log_tags::tag.eq_any(&f.tags));
        b = b.filter(logs::id.eq_any(tagged));
    }
    if !f.text.is_empty() {
        b = b.filter(logs::message.like(like_pattern(&f.text)).escape('\\'));
    }
    if let Some(s) = q.start_us {
        b = b.filter(logs::time_us.ge(s));
    }
    if let Some(e) = q.end_us {
        b = b.filter(logs::time_us.lt(e));
    }
    if let Some(a) = q.after_id {
        b = b.filter(logs::id.gt(a as i64));
    }
    if let Some(bid) = q.before_id {
        b = b.filter(logs::id.lt(bid as i64));
    }
    b
}

fn query_blocking(c: &mut SqliteConnection, q: &Query) -> Result<QueryResult, StoreError> {
    let total = if q.count_total {
        Some(filtered(q).count().get_result::<i64>(c)? as u64)
    } else {
        None
    };
    let mut b = filtered(q);
    b = match (q.order, q.cursor) {
        (Order::NewestFirst, Some(cur)) => b.filter(logs::id.lt(cur as i64)),
        (Order::OldestFirst, Some(cur)) => b.filter(logs::id.gt(cur as i64)),
        (_, None) => b,
    };
    b = match q.order {
        Order::NewestFirst => b.order(logs::id.desc()),
        Order::OldestFirst => b.order(logs::id.asc()),
    };
    let rows: Vec<LogRow> = b
        .limit(i64::from(q.limit))
        .offset(q.offset.min(i64::MAX as u64) as i64)
        .select(LogRow::as_select())
        .load(c)?;
    Ok(QueryResult {
        records: rows
            .into_iter()
            .map(LogRow::into_record)
            .collect::<Result<_, _>>()?,
        total,
    })
}

#[async_trait]
impl Store for SqliteStore {
    async fn insert(&self, entries: Vec<QueuedEntry>) -> Result<Vec<LogRecord>, StoreError> {
        let writer = self.writer.clone();
        tokio::task::spawn_blocking(move || {
            let mut w = writer
                .lock()
                .map_err(|_| StoreError::Connection("writer connection poisoned".into()))?;
            insert_blocking(&mut w, entries)
        })
        .await
        .map_err(|e| StoreError::Connection(format!("writer task failed: {e}")))?
    }

    async fn query(&self, query: Query) -> Result<QueryResult, StoreError> {
        self.read(move |c| query_blocking(c, &query)).await
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
        let writer = self.writer.clone();
        tokio::task::spawn_blocking(move || {
            let mut w = writer
                .lock()
                .map_err(|_| StoreError::Connection("writer connection poisoned".into()))?;
            w.conn.immediate_transaction::<_, StoreError, _>(|c| {
                let ids: Vec<i64> = logs::table
                    .filter(logs::time_us.lt(cutoff_us))
                    .order(logs::time_us.asc())
                    .limit(i64::from(limit))
                    .select(logs::id)
                    .load(c)?;
                diesel::delete(log_tags::table.filter(log_tags::log_id.eq_any(&ids))).execute(c)?;
                Ok(diesel::delete(logs::table.filter(logs::id.eq_any(&ids))).execute(c)? as u64)
            })
        })
        .await
        .map_err(|e| StoreError::Connection(format!("writer task failed: {e}")))?
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

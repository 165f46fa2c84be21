//! The embedded writer's inserts: statements prepared once on a connection
//! of their own, each row bound and stepped through SQLite's C API.
//!
//! diesel prepares a multi-row INSERT anew for every chunk (it caches only
//! statements whose SQL never changes) and spends about a microsecond of
//! its own around each execution of a cached single-row one. With SQLite's
//! own work near 5 µs per entry, diesel's inserts reached 60-65% of the
//! rate the same rows reach through prepared statements (see docs/benchmarks/ingest-embedded.md).
//! Everything else (migrations, queries, retention) stays with diesel; the
//! store's writer mutex keeps this connection and diesel's writer apart.

use std::ffi::{CStr, CString, c_int};
use std::path::Path;
use std::ptr::{self, NonNull};

use libsqlite3_sys as ffi;

use crate::storage::codec::BatchRows;
use crate::storage::contract::StoreError;
use crate::storage::sqlite::indexer::Flush;

const INSERT_LOG: &CStr = c"INSERT INTO logs \
    (id, service, level, message, tags, attributes, time_us, received_us, trace_id, span_id) \
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
const INSERT_TAG: &CStr = c"INSERT INTO log_tags (tag, log_id) VALUES (?, ?)";
const INSERT_SERVICE: &CStr = c"INSERT OR IGNORE INTO services (name) VALUES (?)";
const INSERT_SERVICE_TAG: &CStr =
    c"INSERT OR IGNORE INTO service_tags (service, tag) VALUES (?, ?)";
const INSERT_KEY: &CStr = c"INSERT INTO dedup_keys (k, log_id) VALUES (?, ?)";
const INDEX_BLOCK: &CStr = c"INSERT OR REPLACE INTO logs_text (rowid, grams) VALUES (?, ?)";
const SET_INDEXED: &CStr = c"UPDATE text_index SET blocks_below = ?";
const ADD_COUNT: &CStr = c"INSERT INTO log_counts (minute, service, level, n) VALUES (?, ?, ?, ?) \
    ON CONFLICT (minute, service, level) DO UPDATE SET n = n + excluded.n";

/// A value bound to one parameter. Text is bound without a copy and
/// unbound before [`Stmt::run`] returns, so it only has to outlive the call.
enum Value<'a> {
    Int(i64),
    Text(&'a str),
}

/// A prepared statement, finalized when dropped.
struct Stmt(NonNull<ffi::sqlite3_stmt>);

impl Drop for Stmt {
    fn drop(&mut self) {
        // SAFETY: prepared by `BulkWriter::open` and finalized only here.
        unsafe { ffi::sqlite3_finalize(self.0.as_ptr()) };
    }
}

/// A connection, closed when dropped (after its statements: SQLite refuses
/// to close a connection with statements left).
struct Db(NonNull<ffi::sqlite3>);

impl Drop for Db {
    fn drop(&mut self) {
        // SAFETY: opened by `BulkWriter::open`, closed only here.
        unsafe { ffi::sqlite3_close(self.0.as_ptr()) };
    }
}

/// A connection that writes whole batches, with its statements.
pub struct BulkWriter {
    /// One row of `logs`.
    insert_log: Stmt,
    /// One (tag, log id) pair of `log_tags`.
    insert_tag: Stmt,
    /// A service for ListServices, ignored when already listed.
    insert_service: Stmt,
    /// A (service, tag) pair for ListTags, ignored when already listed.
    insert_service_tag: Stmt,
    /// An entry's dedup key.
    insert_key: Stmt,
    /// Entries of a minute, service and level, added to the rollup.
    add_count: Stmt,
    /// One block's row of the text index.
    index_block: Stmt,
    /// How far the text index reaches.
    set_indexed: Stmt,
    /// The connection, opened without SQLite's own mutex: the store's writer
    /// mutex already keeps it to one thread at a time. Last, so that it is
    /// dropped after the statements.
    db: Db,
}

// SAFETY: the connection is opened in SQLite's multi-thread mode, in which a
// connection may move between threads as long as two never use it at once;
// `&mut self` on every method and no `Sync` make sure they do not.
unsafe impl Send for BulkWriter {}

impl BulkWriter {
    /// Opens `path` (an existing database, already migrated) for writing,
    /// with the writer's pragmas: `pragmas` must be statements that return
    /// no rows.
    pub fn open(path: &Path, pragmas: &str) -> Result<Self, StoreError> {
        let url = path.to_string_lossy();
        let c_path = CString::new(url.as_bytes())
            .map_err(|_| StoreError::Connection(format!("{url}: NUL in the path")))?;
        let mut raw = ptr::null_mut();
        // SAFETY: a valid C string and an out pointer.
        let rc = unsafe {
            ffi::sqlite3_open_v2(
                c_path.as_ptr(),
                &mut raw,
                ffi::SQLITE_OPEN_READWRITE | ffi::SQLITE_OPEN_NOMUTEX,
                ptr::null(),
            )
        };
        // SQLite hands out a handle even when opening fails; it must still
        // be closed, which `Db` does.
        let db = Db(NonNull::new(raw)
            .ok_or_else(|| StoreError::Connection(format!("{url}: out of memory")))?);
        if rc != ffi::SQLITE_OK {
            return Err(StoreError::Connection(format!(
                "{url}: {}",
                message(db.0, rc)
            )));
        }
        exec(db.0, pragmas)?;
        // On an error, the statements already prepared drop before `db`.
        let insert_log = prepare(db.0, INSERT_LOG)?;
        let insert_tag = prepare(db.0, INSERT_TAG)?;
        let insert_service = prepare(db.0, INSERT_SERVICE)?;
        let insert_service_tag = prepare(db.0, INSERT_SERVICE_TAG)?;
        let insert_key = prepare(db.0, INSERT_KEY)?;
        let add_count = prepare(db.0, ADD_COUNT)?;
        let index_block = prepare(db.0, INDEX_BLOCK)?;
        let set_indexed = prepare(db.0, SET_INDEXED)?;
        Ok(BulkWriter {
            insert_log,
            insert_tag,
            insert_service,
            insert_service_tag,
            insert_key,
            add_count,
            index_block,
            set_indexed,
            db,
        })
    }

    /// Writes `rows`, and the text index rows of `flush` if any, in one
    /// immediate transaction: all of it or, on any error, none of it.
    pub fn insert(
        &mut self,
        rows: &BatchRows<'_>,
        flush: Option<&Flush>,
    ) -> Result<(), StoreError> {
        self.transaction(|w| {
            w.insert_rows(rows)?;
            flush.map_or(Ok(()), |f| w.index_rows(f))
        })
    }

    /// Writes the text index rows of `flush` in a transaction of their own.
    pub fn index(&mut self, flush: &Flush) -> Result<(), StoreError> {
        self.transaction(|w| w.index_rows(flush))
    }

    fn transaction(
        &mut self,
        body: impl FnOnce(&mut Self) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        exec(self.db.0, "BEGIN IMMEDIATE")?;
        match body(self).and_then(|()| exec(self.db.0, "COMMIT")) {
            Ok(()) => Ok(()),
            Err(e) => {
                // SQLite may already have rolled back (a full disk, say).
                // SAFETY: a live connection.
                if unsafe { ffi::sqlite3_get_autocommit(self.db.0.as_ptr()) } == 0 {
                    let _ = exec(self.db.0, "ROLLBACK");
                }
                Err(e)
            }
        }
    }

    fn index_rows(&mut self, flush: &Flush) -> Result<(), StoreError> {
        let db = self.db.0;
        for (block, words) in &flush.rows {
            self.index_block
                .run(db, &[Value::Int(*block), Value::Text(words)])?;
        }
        self.set_indexed.run(db, &[Value::Int(flush.blocks_below)])
    }

    fn insert_rows(&mut self, rows: &BatchRows<'_>) -> Result<(), StoreError> {
        let db = self.db.0;
        for r in &rows.logs {
            self.insert_log.run(
                db,
                &[
                    Value::Int(r.id),
                    Value::Text(&r.service),
                    Value::Int(i64::from(r.level)),
                    Value::Text(&r.message),
                    Value::Text(&r.tags),
                    Value::Text(&r.attributes),
                    Value::Int(r.time_us),
                    Value::Int(r.received_us),
                    Value::Text(&r.trace_id),
                    Value::Text(&r.span_id),
                ],
            )?;
        }
        for (tag, id) in &rows.tags {
            self.insert_tag
                .run(db, &[Value::Text(tag), Value::Int(*id)])?;
        }
        for service in &rows.services {
            self.insert_service.run(db, &[Value::Text(service)])?;
        }
        for (service, tag) in &rows.service_tags {
            self.insert_service_tag
                .run(db, &[Value::Text(service), Value::Text(tag)])?;
        }
        for (key, id) in &rows.keys {
            self.insert_key
                .run(db, &[Value::Text(key), Value::Int(*id)])?;
        }
        for ((minute, service, level), n) in &rows.counts {
            let values = [
                Value::Int(*minute),
                Value::Text(service),
                Value::Int(i64::from(*level)),
                Value::Int(*n),
            ];
            self.add_count.run(db, &values)?;
        }
        Ok(())
    }
}

impl Stmt {
    /// Binds `values` to the parameters in order, steps once (an INSERT
    /// returns no rows), then resets and unbinds.
    fn run(&mut self, db: NonNull<ffi::sqlite3>, values: &[Value<'_>]) -> Result<(), StoreError> {
        let s = self.0.as_ptr();
        let mut rc = ffi::SQLITE_OK;
        for (i, v) in values.iter().enumerate() {
            let index = (i + 1) as c_int;
            // SAFETY: a prepared statement of this connection; text is bound
            // as SQLITE_STATIC and unbound below, before `values` can go.
            rc = unsafe {
                match v {
                    Value::Int(n) => ffi::sqlite3_bind_int64(s, index, *n),
                    Value::Text(t) => ffi::sqlite3_bind_text64(
                        s,
                        index,
                        t.as_ptr().cast(),
                        t.len() as u64,
                        ffi::SQLITE_STATIC(),
                        ffi::SQLITE_UTF8 as u8,
                    ),
                }
            };
            if rc != ffi::SQLITE_OK {
                break;
            }
        }
        if rc == ffi::SQLITE_OK {
            // SAFETY: as above.
            rc = match unsafe { ffi::sqlite3_step(s) } {
                ffi::SQLITE_DONE => ffi::SQLITE_OK,
                other => other,
            };
        }
        let result = if rc == ffi::SQLITE_OK {
            Ok(())
        } else {
            Err(StoreError::Sqlite(message(db, rc)))
        };
        // SAFETY: as above. Reset and clear_bindings only repeat the error
        // already taken, so their results are not needed.
        unsafe {
            ffi::sqlite3_reset(s);
            ffi::sqlite3_clear_bindings(s);
        }
        result
    }
}

fn prepare(db: NonNull<ffi::sqlite3>, sql: &CStr) -> Result<Stmt, StoreError> {
    let mut stmt = ptr::null_mut();
    // SAFETY: a live connection and a NUL-terminated statement.
    let rc = unsafe {
        ffi::sqlite3_prepare_v3(
            db.as_ptr(),
            sql.as_ptr(),
            -1,
            ffi::SQLITE_PREPARE_PERSISTENT,
            &mut stmt,
            ptr::null_mut(),
        )
    };
    match NonNull::new(stmt) {
        Some(s) if rc == ffi::SQLITE_OK => Ok(Stmt(s)),
        _ => Err(StoreError::Sqlite(message(db, rc))),
    }
}

/// Runs statements that return no rows.
fn exec(db: NonNull<ffi::sqlite3>, sql: &str) -> Result<(), StoreError> {
    let sql = CString::new(sql).map_err(|_| StoreError::Sqlite("NUL in a statement".into()))?;
    // SAFETY: a live connection and a NUL-terminated string; no callback.
    let rc = unsafe {
        ffi::sqlite3_exec(
            db.as_ptr(),
            sql.as_ptr(),
            None,
            ptr::null_mut(),
            ptr::null_mut(),
        )
    };
    if rc == ffi::SQLITE_OK {
        Ok(())
    } else {
        Err(StoreError::Sqlite(message(db, rc)))
    }
}

/// SQLite's message for the connection's last error, with its code.
fn message(db: NonNull<ffi::sqlite3>, rc: c_int) -> String {
    // SAFETY: a live connection; the message is copied before the next call.
    let text = unsafe { CStr::from_ptr(ffi::sqlite3_errmsg(db.as_ptr())) };
    format!("{} (code {rc})", text.to_string_lossy())
}

#[cfg(test)]
mod tests {
    use diesel::prelude::*;

    use super::*;
    use crate::model::QueuedEntry;
    use crate::proto::LogEntry;
    use crate::storage::schema::{log_tags, logs};
    use crate::storage::sqlite::{SqliteStore, temp_args};

    fn entries(n: usize) -> Vec<QueuedEntry> {
        (0..n)
            .map(|i| QueuedEntry {
                entry: LogEntry {
                    service: "svc".into(),
                    message: format!("m{i} with 'quotes', \0 and é"),
                    tags: vec!["a".into(), "b".into()],
                    ..Default::default()
                },
                received_us: 1,
                source: None,
                dedup_key: None,
            })
            .collect()
    }

    fn counts(path: &Path) -> (i64, i64) {
        let mut c = SqliteConnection::establish(&path.to_string_lossy()).expect("open");
        let rows = logs::table.count().get_result(&mut c).expect("count logs");
        let tags = log_tags::table
            .count()
            .get_result(&mut c)
            .expect("count tags");
        (rows, tags)
    }

    #[test]
    fn a_failed_row_rolls_the_whole_batch_back() {
        let (dir, args) = temp_args();
        drop(SqliteStore::open(&args).expect("schema"));
        let path = dir.path().join("taillight.db");
        let mut w = BulkWriter::open(&path, "PRAGMA busy_timeout = 5000;").expect("open");
        let es = entries(3);
        w.insert(&BatchRows::new(3, &es), None).expect("ids 3-5");
        // Ids 1 and 2 go in, then 3 is taken: none of the batch may stay.
        let e = w
            .insert(&BatchRows::new(1, &es), None)
            .expect_err("id 3 twice");
        assert!(
            e.to_string().contains("UNIQUE constraint failed: logs.id"),
            "{e}"
        );
        assert_eq!(counts(&path), (3, 6));
        // The connection is out of the failed transaction and writes again.
        w.insert(&BatchRows::new(6, &es), None).expect("ids 6-8");
        assert_eq!(counts(&path), (6, 12));
    }
}

//! The distributed store: MariaDB through diesel-async, shared by several
//! writer processes.
//!
//! Live tails resume with `id > last_id`, so ids must grow in commit order
//! even when processes insert concurrently. Every batch therefore locks the
//! single row of `id_sequence` before it commits and holds it until then:
//! batches commit one at a time, each with ids above all ids committed
//! before it. A writer keeps two batches in the database at once; the
//! second loads its rows under guessed ids while the first commits (see
//! [`chain`]), and the unique source key turns any redelivery that slips
//! past the check into a failed, retried batch rather than a second copy.

mod bulk;
mod chain;
mod infile;
mod known;
mod url;
mod write;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering::Relaxed};
use std::time::Duration;

use async_trait::async_trait;
use diesel::ConnectionResult;
use diesel::prelude::*;
use diesel::result::ConnectionError;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::pooled_connection::bb8::{Pool, PooledConnection};
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig};
use diesel_async::{AsyncConnection, AsyncMysqlConnection, RunQueryDsl, SimpleAsyncConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use futures::FutureExt;
use futures::future::BoxFuture;

use super::codec::{LogRow, history_queries, query_result, stored_record, tag_keys};
use super::schema::mysql::write_contention;
use super::schema::{log_tags, logs, service_tags, services};
use super::{Query, QueryResult, Store, StoreError};
use crate::proto::LogRecord;
use crate::queue::QueuedEntry;
use bulk::Bulk;
use chain::{Chain, Stage, Turn};
use infile::Infiles;
use known::Known;
use url::DbUrl;
use write::{Ids, Rollback, write_batch};

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/mysql");

/// How long connecting, or waiting for a pooled connection, may take: a dead
/// or unreachable server must be an error, not a hang.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Most ids or offsets in one `IN (...)` list.
const KEYS_PER_STATEMENT: usize = 10_000;

/// Batches a writer keeps in the database at once. MariaDB took about 1.5
/// times the rows per second on two connections as on one, here; a third
/// added nothing.
const PIPELINE_DEPTH: usize = 2;

/// How long ids are not guessed after another writer process was seen
/// writing at the same time.
const CONTENTION_QUIET: Duration = Duration::from_secs(10);

/// How often a process that saw no other writer reads `write_contention`
/// again: well within [`CONTENTION_QUIET`], so a writer that asked it to
/// stop guessing is heard within a second, while a batch does not pay a
/// round trip for the question.
const CONTENTION_RECHECK: Duration = Duration::from_secs(1);

/// How often a batch that lost a deadlock is tried again before it fails.
const DEADLOCK_RETRIES: u32 = 5;

pub struct MysqlStore {
    /// Connections for reads and writes alike: InnoDB's row locks, not a
    /// single writer connection, keep concurrent batches apart.
    pool: Pool<AsyncMysqlConnection>,
    /// How batches send their rows, settled when the store opens.
    bulk: Bulk,
    /// The URL with its password masked, for error messages.
    shown_url: String,
    /// Batches started and not yet committed, in the order they must commit.
    chain: Chain,
    /// Until when (µs) this process does not guess ids: it saw another
    /// writer process write at the same time.
    contended_until_us: AtomicI64,
    /// When (µs) `write_contention` was last read and said no other writer
    /// was seen: read at most every [`CONTENTION_RECHECK`], not per batch.
    uncontended_at_us: AtomicI64,
    /// Listing rows known to be stored, so batches skip inserting them.
    known: Known,
}

/// How the writer sends a batch's rows to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum BulkMode {
    /// `load-data` when the server's `local_infile` is on, else `insert`.
    #[default]
    Auto,
    /// `LOAD DATA LOCAL INFILE` from memory: about 1.5 times the rows per
    /// second of INSERTs. Opening fails if the server does not allow it.
    LoadData,
    /// Multi-row INSERT statements.
    Insert,
}

impl MysqlStore {
    /// Connects to the MariaDB server at `url`
    /// (`mysql://user:password@host:port/database`), creates the database if
    /// it does not exist, applies migrations and opens a pool of at most
    /// `pool_size` connections. Needs a multi-threaded Tokio runtime or a
    /// current-thread one with `spawn_blocking` available (migrations run on a
    /// blocking thread).
    pub async fn open(url: &str, pool_size: u32, mode: BulkMode) -> Result<MysqlStore, StoreError> {
        let target = DbUrl::parse(url).map_err(StoreError::Connection)?;
        let shown = target.shown.clone();
        let failed = |e: ConnectionError| StoreError::Connection(format!("{shown}: {e}"));
        let files = Arc::new(Infiles::default());

        // Connect without a database first: it may not exist yet.
        let mut server = establish(&target.server, &files).await.map_err(failed)?;
        create_database(&mut server, &target.database).await?;
        let bulk = choose_bulk(&mut server, mode, files.clone()).await?;
        drop(server);

        let conn = establish(url, &files).await.map_err(failed)?;
        migrate(conn).await?;

        let mut config = ManagerConfig::default();
        config.custom_setup = Box::new(move |url| {
            let files = files.clone();
            async move { establish(url, &files).await }.boxed()
        });
        let manager = AsyncDieselConnectionManager::new_with_config(url, config);
        let pool = Pool::builder()
            .max_size(pool_size.max(1))
            .connection_timeout(CONNECT_TIMEOUT)
            .build(manager)
            .await
            .map_err(|e| StoreError::Connection(format!("{shown}: {e}")))?;
        Ok(MysqlStore {
            pool,
            bulk,
            shown_url: shown,
            chain: Chain::default(),
            contended_until_us: AtomicI64::new(0),
            uncontended_at_us: AtomicI64::new(i64::MIN),
            known: Known::default(),
        })
    }

    /// Stores `entries` in their turn: after the batches started before,
    /// retrying with locked ids when guessed ones fail and after a lost
    /// deadlock.
    async fn store_in_turn(
        &self,
        mut entries: Vec<QueuedEntry>,
        mut turn: Turn,
    ) -> Result<Vec<LogRecord>, StoreError> {
        let mut ids = if turn.before.is_some() && self.may_guess().await {
            Ids::Guessed
        } else {
            Ids::Locked
        };
        let mut deadlocks = 0;
        loop {
            let attempt = async {
                let mut c = self.conn().await?;
                c.transaction(async |c| {
                    write_batch(c, &self.bulk, &mut entries, &mut turn, ids, &self.known).await
                })
                .await
            };
            let failure = match attempt.await {
                Ok((first, listed)) => {
                    let end = first + entries.len() as i64;
                    turn.link.set(Stage::Committed { end });
                    self.known.remember(listed);
                    return Ok(entries
                        .into_iter()
                        .enumerate()
                        .map(|(i, q)| stored_record(first + i as i64, q))
                        .collect());
                }
                Err(e) => e,
            };
            let deadlock = matches!(&failure, Rollback::Store(e) if is_deadlock(e));
            match failure {
                Rollback::Store(StoreError::EarlierBatchFailed) => {}
                // The guess may be what failed: try once more the sure way.
                _ if ids == Ids::Guessed => {
                    if deadlock || matches!(failure, Rollback::WrongGuess) {
                        self.contended(false).await;
                    }
                    ids = Ids::Locked;
                    turn.link.set(Stage::Choosing);
                    continue;
                }
                _ if deadlock && deadlocks < DEADLOCK_RETRIES => {
                    // Lost to another process's guessed ids: ask it to stop
                    // guessing while we both write.
                    deadlocks += 1;
                    self.contended(true).await;
                    turn.link.set(Stage::Choosing);
                    tokio::time::sleep(Duration::from_millis(10) * deadlocks).await;
                    continue;
                }
                _ => {}
            }
            turn.link.set(Stage::Failed);
            return Err(match failure {
                Rollback::Store(e) => e,
                Rollback::WrongGuess => StoreError::Refused(failure.to_string()),
            });
        }
    }

    /// Whether a batch may guess its ids: no other writer process has been
    /// seen writing lately, by this process or (through `write_contention`)
    /// by another.
    async fn may_guess(&self) -> bool {
        let now = crate::time::now_micros();
        // Spelled out: diesel's `RunQueryDsl::load` shadows the method.
        if AtomicI64::load(&self.contended_until_us, Relaxed) > now {
            return false;
        }
        let checked = AtomicI64::load(&self.uncontended_at_us, Relaxed);
        if now.saturating_sub(checked) < CONTENTION_RECHECK.as_micros() as i64 {
            return true;
        }
        let Ok(mut c) = self.conn().await else {
            return false;
        };
        let until: Result<i64, _> = write_contention::table
            .select(write_contention::until_us)
            .first(&mut c)
            .await;
        match until {
            Ok(until) if until <= now => {
                self.uncontended_at_us.store(now, Relaxed);
                true
            }
            Ok(until) => {
                self.contended_until_us.fetch_max(until, Relaxed);
                false
            }
            Err(_) => false,
        }
    }

    /// Records that another writer process writes at the same time; with
    /// `tell_others`, in the database too.
    async fn contended(&self, tell_others: bool) {
        let until = crate::time::now_micros() + CONTENTION_QUIET.as_micros() as i64;
        self.contended_until_us.fetch_max(until, Relaxed);
        if !tell_others {
            return;
        }
        let told = async {
            let mut c = self.conn().await?;
            diesel::update(write_contention::table)
                .filter(write_contention::until_us.lt(until))
                .set(write_contention::until_us.eq(until))
                .execute(&mut c)
                .await?;
            Ok::<_, StoreError>(())
        };
        if let Err(e) = told.await {
            tracing::debug!(error = %e, "could not record write contention");
        }
    }

    async fn conn(&self) -> Result<PooledConnection<'_, AsyncMysqlConnection>, StoreError> {
        self.pool
            .get()
            .await
            .map_err(|e| StoreError::Connection(format!("{}: {e}", self.shown_url)))
    }
}

/// Connects with [`CONNECT_TIMEOUT`] (a host that drops packets would
/// otherwise keep a TCP connect waiting for minutes) and with `files` as the
/// connection's only source of LOAD DATA LOCAL data.
async fn establish(url: &str, files: &Arc<Infiles>) -> ConnectionResult<AsyncMysqlConnection> {
    let bad = |e: mysql_async::Error| ConnectionError::BadConnection(e.to_string());
    let opts = mysql_async::Opts::from_url(url)
        .map_err(|e| ConnectionError::InvalidConnectionUrl(e.to_string()))?;
    // As diesel-async's own `establish`: it caches statements itself, and
    // counts matched rather than changed rows.
    let opts = mysql_async::OptsBuilder::from_opts(opts)
        .stmt_cache_size(0)
        .client_found_rows(true)
        .local_infile_handler(Some(files.handler()));
    let connect = async {
        let conn = mysql_async::Conn::new(opts).await.map_err(bad)?;
        AsyncMysqlConnection::try_from(conn).await
    };
    tokio::time::timeout(CONNECT_TIMEOUT, connect)
        .await
        .unwrap_or_else(|_| {
            Err(ConnectionError::BadConnection(format!(
                "no connection within {CONNECT_TIMEOUT:?}"
            )))
        })
}

/// Settles `mode` against the server's `local_infile` setting.
async fn choose_bulk(
    conn: &mut AsyncMysqlConnection,
    mode: BulkMode,
    files: Arc<Infiles>,
) -> Result<Bulk, StoreError> {
    if mode == BulkMode::Insert {
        return Ok(Bulk::Insert);
    }
    let allowed: i64 = diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
        "@@GLOBAL.local_infile + 0",
    ))
    .get_result(conn)
    .await?;
    match (allowed != 0, mode) {
        (true, _) => Ok(Bulk::LoadData(files)),
        (false, BulkMode::Auto) => {
            tracing::info!("the server's local_infile is off: batches are sent as INSERTs");
            Ok(Bulk::Insert)
        }
        (false, _) => Err(StoreError::Connection(
            "--database-bulk load-data needs the server's local_infile on".into(),
        )),
    }
}

/// Creates `name` unless it exists. Checks first, because an account
/// limited to its own database may not run CREATE DATABASE at all, not even
/// with IF NOT EXISTS.
async fn create_database(server: &mut AsyncMysqlConnection, name: &str) -> Result<(), StoreError> {
    use diesel::sql_types::{BigInt, Text};
    let exists: i64 = diesel::select(
        diesel::dsl::sql::<BigInt>(
            "(SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ",
        )
        .bind::<Text, _>(name)
        .sql(")"),
    )
    .get_result(server)
    .await?;
    if exists == 0 {
        // `name` is restricted to characters that are safe within backticks.
        server
            .batch_execute(&format!(
                "CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4"
            ))
            .await?;
    }
    Ok(())
}

/// Applies pending migrations, one process at a time: MariaDB's DDL is not
/// transactional, so two writers starting together would otherwise both try
/// to create the tables.
async fn migrate(mut conn: AsyncMysqlConnection) -> Result<(), StoreError> {
    let locked: Option<i32> = diesel::select(diesel::dsl::sql::<
        diesel::sql_types::Nullable<diesel::sql_types::Integer>,
    >(
        // Per database, so that databases sharing a server do not wait on
        // each other; names are limited to 64 characters.
        "GET_LOCK(LEFT(CONCAT('taillight_migrations.', DATABASE()), 64), 60)",
    ))
    .get_result(&mut conn)
    .await?;
    if locked != Some(1) {
        return Err(StoreError::Migration(
            "another process held the migration lock for 60 s".into(),
        ));
    }
    // The harness drives the async connection with `block_on`, which must not
    // run on a runtime worker.
    let mut sync_conn = AsyncConnectionWrapper::<AsyncMysqlConnection>::from(conn);
    tokio::task::spawn_blocking(move || {
        sync_conn
            .run_pending_migrations(MIGRATIONS)
            .map(|_| ())
            .map_err(|e| StoreError::Migration(e.to_string()))
        // Dropping the connection releases the lock.
    })
    .await
    .map_err(|e| StoreError::Migration(format!("migration task failed: {e}")))?
}

/// Whether the server rolled the transaction back to break a deadlock.
fn is_deadlock(e: &StoreError) -> bool {
    // diesel reports error 1213 with an unknown kind; its message is fixed.
    matches!(e, StoreError::Database(diesel::result::Error::DatabaseError(_, info))
        if info.message().starts_with("Deadlock found"))
}

history_queries!(diesel::mysql::Mysql);

#[async_trait]
impl Store for MysqlStore {
    async fn insert(&self, entries: Vec<QueuedEntry>) -> Result<Vec<LogRecord>, StoreError> {
        let turn = self.chain.join(&entries);
        self.store_in_turn(entries, turn).await
    }

    fn pipeline_depth(&self) -> usize {
        PIPELINE_DEPTH
    }

    fn start_insert(
        self: Arc<Self>,
        entries: Vec<QueuedEntry>,
    ) -> BoxFuture<'static, Result<Vec<LogRecord>, StoreError>> {
        let turn = self.chain.join(&entries);
        Box::pin(async move { self.store_in_turn(entries, turn).await })
    }

    async fn query(&self, query: Query) -> Result<QueryResult, StoreError> {
        let mut c = self.conn().await?;
        let total = if query.count_total {
            Some(filtered(&query).count().get_result::<i64>(&mut c).await?)
        } else {
            None
        };
        let rows: Vec<LogRow> = page(&query)
            .select(LogRow::as_select())
            .load(&mut c)
            .await?;
        query_result(rows, total)
    }

    async fn services(&self) -> Result<Vec<String>, StoreError> {
        let mut c = self.conn().await?;
        Ok(services::table
            .select(services::name)
            .order(services::name)
            .load(&mut c)
            .await?)
    }

    async fn tags(&self, service: String) -> Result<Vec<String>, StoreError> {
        let mut c = self.conn().await?;
        Ok(service_tags::table
            .filter(service_tags::service.eq(&service))
            .select(service_tags::tag)
            .order(service_tags::tag)
            .load(&mut c)
            .await?)
    }

    async fn delete_before(&self, cutoff_us: i64, limit: u32) -> Result<u64, StoreError> {
        let mut c = self.conn().await?;
        c.transaction(async |c| {
            let expired: Vec<(i64, String)> = logs::table
                .filter(logs::time_us.lt(cutoff_us))
                .order(logs::time_us.asc())
                .limit(i64::from(limit))
                .select((logs::id, logs::tags))
                .load(c)
                .await?;
            for (tag, ids) in tag_keys(&expired)? {
                for chunk in ids.chunks(KEYS_PER_STATEMENT) {
                    diesel::delete(
                        log_tags::table
                            .filter(log_tags::tag.eq(&tag))
                            .filter(log_tags::log_id.eq_any(chunk)),
                    )
                    .execute(c)
                    .await?;
                }
            }
            let ids: Vec<i64> = expired.iter().map(|(id, _)| *id).collect();
            let mut deleted = 0;
            for chunk in ids.chunks(KEYS_PER_STATEMENT) {
                deleted += diesel::delete(logs::table.filter(logs::id.eq_any(chunk)))
                    .execute(c)
                    .await? as u64;
            }
            Ok::<_, StoreError>(deleted)
        })
        .await
    }
}

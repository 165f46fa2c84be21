//! The distributed store: MariaDB through diesel-async, shared by several
//! writer processes.
//!
//! Live tails resume with `id > last_id`, so ids must grow in commit order
//! even when processes insert concurrently. Every batch therefore starts by
//! locking the single row of `id_sequence` and holds it until it commits:
//! batches commit one at a time, each with ids above all ids committed
//! before it. The lock also makes the redelivery check race-free, since no
//! other batch can store the same source position between check and insert.

mod bulk;
mod infile;
mod url;
mod write;

use std::sync::Arc;
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

use super::codec::{LogRow, history_queries, query_result, stored_record};
use super::schema::{log_tags, logs, service_tags, services};
use super::{Query, QueryResult, Store, StoreError};
use crate::proto::LogRecord;
use crate::queue::QueuedEntry;
use bulk::Bulk;
use infile::Infiles;
use url::DbUrl;
use write::write_batch;

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/mysql");

/// How long connecting, or waiting for a pooled connection, may take: a dead
/// or unreachable server must be an error, not a hang.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Most ids or offsets in one `IN (...)` list.
const KEYS_PER_STATEMENT: usize = 10_000;

pub struct MysqlStore {
    /// Connections for reads and writes alike: InnoDB's row locks, not a
    /// single writer connection, keep concurrent batches apart.
    pool: Pool<AsyncMysqlConnection>,
    /// How batches send their rows, settled when the store opens.
    bulk: Bulk,
    /// The URL with its password masked, for error messages.
    shown_url: String,
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
        })
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

history_queries!(diesel::mysql::Mysql);

#[async_trait]
impl Store for MysqlStore {
    async fn insert(&self, entries: Vec<QueuedEntry>) -> Result<Vec<LogRecord>, StoreError> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let mut c = self.conn().await?;
        let (first, stored) = c
            .transaction(async |c| write_batch(c, &self.bulk, entries).await)
            .await?;
        Ok(stored
            .into_iter()
            .enumerate()
            .map(|(i, q)| stored_record(first + i as i64, q))
            .collect())
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
            let ids: Vec<i64> = logs::table
                .filter(logs::time_us.lt(cutoff_us))
                .order(logs::time_us.asc())
                .limit(i64::from(limit))
                .select(logs::id)
                .load(c)
                .await?;
            let mut deleted = 0;
            for chunk in ids.chunks(KEYS_PER_STATEMENT) {
                diesel::delete(log_tags::table.filter(log_tags::log_id.eq_any(chunk)))
                    .execute(c)
                    .await?;
                deleted += diesel::delete(logs::table.filter(logs::id.eq_any(chunk)))
                    .execute(c)
                    .await? as u64;
            }
            Ok::<_, StoreError>(deleted)
        })
        .await
    }
}

//! Reaching the server: connections with a deadline and our LOAD DATA
//! source, the database created when missing, migrations applied once,
//! and the bulk mode settled against the server's settings.

use std::sync::Arc;
use std::time::Duration;

use diesel::ConnectionResult;
use diesel::result::ConnectionError;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::{AsyncMysqlConnection, RunQueryDsl, SimpleAsyncConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use super::bulk::{Bulk, BulkMode};
use super::infile::Infiles;
use crate::storage::contract::StoreError;

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/mysql");

/// How long connecting, or waiting for a pooled connection, may take: a dead
/// or unreachable server must be an error, not a hang.
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Connects with [`CONNECT_TIMEOUT`] (a host that drops packets would
/// otherwise keep a TCP connect waiting for minutes) and with `files` as the
/// connection's only source of LOAD DATA LOCAL data.
pub(super) async fn establish(
    url: &str,
    files: &Arc<Infiles>,
) -> ConnectionResult<AsyncMysqlConnection> {
    let bad = |e: mysql_async::Error| ConnectionError::BadConnection(e.to_string());
    let (url, ca) = super::url::ssl_ca(url);
    let opts = mysql_async::Opts::from_url(&url)
        .map_err(|e| ConnectionError::InvalidConnectionUrl(e.to_string()))?;
    let tls = match (opts.ssl_opts().cloned(), ca) {
        (tls, None) => tls,
        (tls, Some(ca)) => Some(tls.unwrap_or_default().with_root_certs(vec![ca.into()])),
    };
    // As diesel-async's own `establish`: it caches statements itself, and
    // counts matched rather than changed rows.
    let opts = mysql_async::OptsBuilder::from_opts(opts)
        .stmt_cache_size(0)
        .client_found_rows(true)
        .ssl_opts(tls)
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
pub(super) async fn choose_bulk(
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
pub(super) async fn create_database(
    server: &mut AsyncMysqlConnection,
    name: &str,
) -> Result<(), StoreError> {
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
pub(super) async fn migrate(mut conn: AsyncMysqlConnection) -> Result<(), StoreError> {
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

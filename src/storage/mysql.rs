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
mod chunks;
mod connect;
mod delivery;
mod documents;
mod indexer;
mod infile;
mod keyspace;
mod known;
mod ledger;
mod text;
mod url;
mod write;

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering::Relaxed};
use std::time::Duration;

use async_trait::async_trait;
use diesel::prelude::*;
use diesel::result::ConnectionError;
use diesel_async::pooled_connection::bb8::{Pool, PooledConnection};
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig};
use diesel_async::{AsyncConnection, AsyncMysqlConnection, RunQueryDsl};
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};

use super::codec::{LogRow, history_queries, query_result, stored_record};
use super::contract::{
    Document, Order, Position, Query, QueryResult, Store, StoreError, resolve_within,
};
use super::histogram::{Counted, count_row, counted};
use super::rollup::rollup_queries;
use super::schema::mysql::write_contention;
use super::schema::{logs, service_tags, services};
use crate::model::{Filter, QueuedEntry};
use crate::proto::LogRecord;
use bulk::Bulk;
pub use bulk::BulkMode;
use chain::{Chain, Stage, Turn};
use connect::{CONNECT_TIMEOUT, choose_bulk, create_database, establish, migrate};
use infile::Infiles;
use keyspace::KeySpaces;
use known::Known;
use url::DbUrl;
use write::{Ids, Rollback, write_batch};

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

/// How long a batch that keeps losing deadlocks is tried again before it
/// fails: longer than another process takes to hear, through
/// `write_contention`, that it must stop guessing ids (up to
/// [`CONTENTION_RECHECK`]), after which the deadlocks stop. Five quick
/// retries (150 ms in all) ran out before that on a busy machine.
const DEADLOCK_PATIENCE: Duration = Duration::from_secs(5);

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
    /// Key spaces numbered, so a stream entry's key costs no lookup of its
    /// space per batch.
    spaces: KeySpaces,
    /// Writes the text index behind the commits.
    indexer: Arc<indexer::Indexer>,
}

/// The MariaDB store's flags.
#[derive(Debug, Clone, clap::Args)]
pub struct MysqlArgs {
    /// MariaDB/MySQL URL (`mysql://USER[:PASSWORD]@HOST[:PORT]/DATABASE`);
    /// the database is created if missing. Without it: SQLite in --data-dir.
    #[arg(long, env = "TAILLIGHT_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Connections in the database pool.
    #[arg(long, env = "TAILLIGHT_DATABASE_POOL", default_value_t = 8)]
    pub database_pool: u32,
    /// How the writer sends rows to MariaDB: `load-data` (LOAD DATA LOCAL
    /// INFILE from memory, fastest; needs the server's `local_infile`),
    /// `insert` (multi-row INSERTs), or `auto` (load-data when allowed).
    #[arg(long, env = "TAILLIGHT_DATABASE_BULK", value_enum, default_value_t = BulkMode::Auto)]
    pub database_bulk: BulkMode,
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
        // What is stored already and not indexed (an older database).
        let indexer = Arc::new(indexer::Indexer::default());
        indexer.committed(&pool, i64::MAX);
        Ok(MysqlStore {
            pool,
            bulk,
            shown_url: shown,
            chain: Chain::default(),
            contended_until_us: AtomicI64::new(0),
            uncontended_at_us: AtomicI64::new(i64::MIN),
            known: Known::default(),
            spaces: KeySpaces::default(),
            indexer,
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
        let mut deadlocks = 0u32;
        let mut look_up_keys = self.spaces.look_up();
        let started = std::time::Instant::now();
        loop {
            let attempt = async {
                let mut c = self.conn().await?;
                self.spaces.place(&mut c, &mut entries).await?;
                c.transaction(async |c| {
                    let (bulk, known) = (&self.bulk, &self.known);
                    write_batch(c, bulk, &mut entries, &mut turn, ids, known, look_up_keys).await
                })
                .await
            };
            let failure = match attempt.await {
                Ok((first, listed)) => {
                    let end = first + entries.len() as i64;
                    turn.link.set(Stage::Committed { end });
                    self.known.remember(listed);
                    self.indexer.committed(&self.pool, end);
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
                // An entry stored already, not looked up: again, looking.
                _ if !look_up_keys && is_duplicate(&failure) => {
                    self.spaces.suspect();
                    look_up_keys = true;
                    turn.link.set(Stage::Choosing);
                    continue;
                }
                // The guess may be what failed: try once more the sure way.
                _ if ids == Ids::Guessed => {
                    if deadlock || matches!(failure, Rollback::WrongGuess) {
                        self.contended(false).await;
                    }
                    ids = Ids::Locked;
                    turn.link.set(Stage::Choosing);
                    continue;
                }
                _ if deadlock && started.elapsed() < DEADLOCK_PATIENCE => {
                    // Lost to another process's guessed ids: ask it to stop
                    // guessing while we both write.
                    deadlocks += 1;
                    self.contended(true).await;
                    turn.link.set(Stage::Choosing);
                    let pause = Duration::from_millis(10) * deadlocks.min(20);
                    tokio::time::sleep(pause).await;
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
        let now = crate::model::time::now_micros();
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
        let until = crate::model::time::now_micros() + CONTENTION_QUIET.as_micros() as i64;
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

/// Whether the server rolled the transaction back to break a deadlock.
fn is_deadlock(e: &StoreError) -> bool {
    // diesel reports error 1213 with an unknown kind; its message is fixed.
    matches!(e, StoreError::Database(diesel::result::Error::DatabaseError(_, info))
        if info.message().starts_with("Deadlock found"))
}

/// Whether the batch met a unique key it would have stored twice.
fn is_duplicate(failure: &Rollback) -> bool {
    // LOAD DATA reports it as a warning (`bulk`), INSERT as error 1062.
    const SAID: &str = "Duplicate entry";
    match failure {
        Rollback::Store(StoreError::Refused(m)) => m.contains(SAID),
        Rollback::Store(StoreError::Database(diesel::result::Error::DatabaseError(kind, info))) => {
            matches!(kind, diesel::result::DatabaseErrorKind::UniqueViolation)
                || info.message().starts_with(SAID)
        }
        _ => false,
    }
}

history_queries!(diesel::mysql::Mysql);
rollup_queries!(
    AsyncMysqlConnection,
    "CAST(SUM(n) AS SIGNED)",
    diesel_async::RunQueryDsl,
    [async],
    [.await]
);

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
        let none = QueryResult::none(&query);
        let Some(query) = resolve_within(self, query).await? else {
            return Ok(none);
        };
        let mut c = self.conn().await?;
        if let Some(grams) = text::trigrams(&query.filter.text) {
            let b = text::bounds(&mut c).await?;
            let total = match query.count_total {
                true => Some(text::count(&mut c, &query, &grams, b).await?),
                false => None,
            };
            return query_result(text::page(&mut c, &query, &grams, b).await?, total);
        }
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

    async fn minute_counts(
        &self,
        filter: Filter,
        minutes: Range<i64>,
    ) -> Result<Vec<Counted>, StoreError> {
        minute_counts_in(&mut *self.conn().await?, &filter, minutes).await
    }

    async fn minute_span(&self, filter: Filter) -> Result<Option<(i64, i64)>, StoreError> {
        minute_span_in(&mut *self.conn().await?, &filter).await
    }

    async fn bucket_counts(
        &self,
        q: Query,
        origin_us: i64,
        width_us: i64,
    ) -> Result<Vec<Counted>, StoreError> {
        // Counted as the rows stream by: one pass on the time index,
        // holding only the counts.
        let mut c = self.conn().await?;
        if let Some(grams) = text::trigrams(&q.filter.text) {
            let b = text::bounds(&mut c).await?;
            return text::bucket_counts(&mut c, &q, &grams, b, origin_us, width_us).await;
        }
        let mut rows = filtered(&q)
            .select((logs::time_us, logs::level))
            .load_stream::<(i64, i32)>(&mut c)
            .await?;
        let mut by = BTreeMap::new();
        while let Some(row) = rows.next().await {
            count_row(row?, origin_us, width_us, &mut by);
        }
        Ok(counted(by))
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

    async fn text_index_reach(&self) -> Result<u64, StoreError> {
        text::reach(&mut *self.conn().await?).await
    }

    async fn delete_before(&self, cutoff_us: i64, limit: u32) -> Result<u64, StoreError> {
        let mut c = self.conn().await?;
        c.transaction(async |c| ledger::delete_before(c, cutoff_us, limit).await)
            .await
    }

    async fn put_document(&self, doc: Document) -> Result<(), StoreError> {
        documents::put(&mut *self.conn().await?, &doc).await
    }

    async fn documents(
        &self,
        kind: &str,
        order: Order,
        limit: u32,
    ) -> Result<Vec<Document>, StoreError> {
        documents::list(&mut *self.conn().await?, kind, order, limit).await
    }

    async fn delete_document(&self, kind: &str, name: &str) -> Result<bool, StoreError> {
        documents::delete(&mut *self.conn().await?, kind, name).await
    }

    async fn trim_documents(&self, kind: &str, keep: u32) -> Result<u64, StoreError> {
        documents::trim(&mut *self.conn().await?, kind, keep).await
    }

    async fn position(&self, name: &str) -> Result<Option<Position>, StoreError> {
        ledger::get(&mut *self.conn().await?, name).await
    }

    async fn swap_position(
        &self,
        name: &str,
        expected: Option<&Position>,
        new: &Position,
    ) -> Result<bool, StoreError> {
        ledger::swap(&mut *self.conn().await?, name, expected, new).await
    }
}

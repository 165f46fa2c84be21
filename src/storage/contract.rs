//! What every store promises: batches stored in one transaction with ids in
//! commit order, redeliveries kept once, and history answered by one query
//! shape.

use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use futures::future::BoxFuture;

use crate::model::{Filter, QueuedEntry};
use crate::proto::LogRecord;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] diesel::result::Error),
    /// From the embedded writer's own SQLite connection (see `sqlite::bulk`).
    #[error("database error: {0}")]
    Sqlite(String),
    #[error("database connection: {0}")]
    Connection(String),
    #[error("migrations failed: {0}")]
    Migration(String),
    #[error("data directory: {0}")]
    Io(#[from] std::io::Error),
    #[error("the database did not store the batch as sent: {0}")]
    Refused(String),
    #[error("stored row is corrupt: {0}")]
    Corrupt(String),
    #[error("not stored: a batch started before it failed")]
    EarlierBatchFailed,
}

impl StoreError {
    /// Whether the database's disk (or table) is full: a client should be
    /// told so, and may retry once space returns.
    pub fn is_full(&self) -> bool {
        // SQLite: SQLITE_FULL; MariaDB: ER_RECORD_FILE_FULL ("The table is
        // full"), ER_DISK_FULL. Drivers pass them on only as text.
        const SAID: [&str; 3] = ["database or disk is full", "is full", "disk full"];
        let text = match self {
            StoreError::Io(e) => return e.kind() == std::io::ErrorKind::StorageFull,
            StoreError::Sqlite(m) if m.ends_with("(code 13)") => return true,
            other => other.to_string().to_ascii_lowercase(),
        };
        SAID.iter().any(|s| text.contains(s))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    #[default]
    NewestFirst,
    OldestFirst,
}

/// One history question, already validated by the API layer.
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub filter: Filter,
    /// Inclusive lower bound on the entry time (µs).
    pub start_us: Option<i64>,
    /// Exclusive upper bound on the entry time (µs).
    pub end_us: Option<i64>,
    /// Only ids greater than this.
    pub after_id: Option<u64>,
    /// Only ids smaller than this.
    pub before_id: Option<u64>,
    /// Where the previous page ended: ids beyond it in `order`'s direction.
    /// Unlike the bounds above it does not narrow the total count.
    pub cursor: Option<u64>,
    pub order: Order,
    pub limit: u32,
    /// Rows to skip (page-number mode).
    pub offset: u64,
    /// Also count every match, regardless of cursor, limit and offset.
    pub count_total: bool,
}

#[derive(Debug, Default)]
pub struct QueryResult {
    pub records: Vec<LogRecord>,
    pub total: Option<u64>,
}

/// `q` with its filter's service patterns turned into the stored services
/// they match (SQL has no glob both stores read alike); `None` when no
/// stored service matches, so there is nothing to find.
pub(super) async fn resolve_within<S: Store + ?Sized>(
    store: &S,
    q: Query,
) -> Result<Option<Query>, StoreError> {
    if q.filter.within.is_none() {
        return Ok(Some(q));
    }
    let known = store.services().await?;
    Ok(q.filter
        .resolved(&known)
        .map(|filter| Query { filter, ..q }))
}

impl QueryResult {
    /// The answer when nothing can match.
    pub(super) fn none(q: &Query) -> Self {
        QueryResult {
            records: Vec::new(),
            total: q.count_total.then_some(0),
        }
    }
}

/// Entries counted at one level, in the bucket or minute starting at
/// `start_us`: what the histogram's reads answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counted {
    pub start_us: i64,
    pub level: i32,
    pub n: u64,
}

/// Where a component that follows the store stands, kept in the store so
/// that another node can take over from there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    /// The component's own state, as it writes it.
    pub value: String,
    /// Every record up to this id is safe elsewhere (written to the
    /// archive, say): retention deletes nothing above the lowest hold.
    pub hold: Option<u64>,
}

/// A small named document the store keeps beside the records: a saved
/// view, say. The store does not read the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// What the document is (`view`): names are unique within a kind.
    pub kind: String,
    pub name: String,
    /// Its content, as the layer that owns the kind writes it (JSON).
    pub body: String,
    /// When it was last written (µs since the epoch).
    pub updated_us: i64,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Stores a batch in one transaction and returns the records with their
    /// ids, in id order. Entries stored before from the same source position
    /// with the same receipt time (a redelivery), or with a dedup key
    /// already stored, are not stored again and not returned.
    async fn insert(&self, entries: Vec<QueuedEntry>) -> Result<Vec<LogRecord>, StoreError>;

    /// How many batches the writer may have in [`Store::start_insert`] at
    /// once. More than one only where the store keeps their commits in the
    /// order they were started.
    fn pipeline_depth(&self) -> usize {
        1
    }

    /// Starts storing a batch behind every batch started before it: it
    /// commits after them, and fails with [`StoreError::EarlierBatchFailed`]
    /// if one of them fails. The order is fixed when this is called, not
    /// when the future is first polled. The default simply stores the batch
    /// when polled, which keeps the order only one batch at a time.
    fn start_insert(
        self: Arc<Self>,
        entries: Vec<QueuedEntry>,
    ) -> BoxFuture<'static, Result<Vec<LogRecord>, StoreError>> {
        Box::pin(async move { self.insert(entries).await })
    }

    async fn query(&self, query: Query) -> Result<QueryResult, StoreError>;

    async fn services(&self) -> Result<Vec<String>, StoreError>;

    /// Entries of `filter`'s services and levels in the whole minutes
    /// `minutes` (since the epoch), by minute and level, from the rollup.
    async fn minute_counts(
        &self,
        filter: Filter,
        minutes: Range<i64>,
    ) -> Result<Vec<Counted>, StoreError>;

    /// The first and last minute holding entries of `filter`'s services and
    /// levels, from the rollup; `None` when there are none.
    async fn minute_span(&self, filter: Filter) -> Result<Option<(i64, i64)>, StoreError>;

    /// The rows matching `q` (filter and time range), counted by level in
    /// buckets of `width_us` from `origin_us`.
    async fn bucket_counts(
        &self,
        q: Query,
        origin_us: i64,
        width_us: i64,
    ) -> Result<Vec<Counted>, StoreError>;

    async fn tags(&self, service: String) -> Result<Vec<String>, StoreError>;

    /// The first id the text index does not cover yet: a text search looks
    /// the rows below it up in the index and scans the rest.
    async fn text_index_reach(&self) -> Result<u64, StoreError>;

    /// Deletes at most `limit` records whose entry time is before
    /// `cutoff_us`, oldest first, and none above the lowest
    /// [`Position::hold`], in one short transaction so writers are never
    /// blocked for long; returns how many were deleted. Retention calls it
    /// in a loop until it returns less than `limit`.
    async fn delete_before(&self, cutoff_us: i64, limit: u32) -> Result<u64, StoreError>;

    /// Writes `doc`, replacing the document of the same kind and name.
    async fn put_document(&self, doc: Document) -> Result<(), StoreError>;

    /// The documents of `kind` by name, ascending for
    /// [`Order::OldestFirst`] and descending for [`Order::NewestFirst`]
    /// (names that start with a time sort by it), at most `limit`.
    async fn documents(
        &self,
        kind: &str,
        order: Order,
        limit: u32,
    ) -> Result<Vec<Document>, StoreError>;

    /// Deletes the document `kind`/`name`; whether there was one.
    async fn delete_document(&self, kind: &str, name: &str) -> Result<bool, StoreError>;

    /// Deletes every document of `kind` but the `keep` last by name (the
    /// newest, for names that start with a time); how many it deleted.
    async fn trim_documents(&self, kind: &str, keep: u32) -> Result<u64, StoreError>;

    /// The position named `name`, if one was kept.
    async fn position(&self, name: &str) -> Result<Option<Position>, StoreError>;

    /// Replaces the position `name` by `new` if it still is `expected`
    /// (`None`: there is none yet). False, changing nothing, when someone
    /// else moved it first: a second holder of the same role.
    async fn swap_position(
        &self,
        name: &str,
        expected: Option<&Position>,
        new: &Position,
    ) -> Result<bool, StoreError>;
}

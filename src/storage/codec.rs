//! Turning records into rows and back, and history queries into SQL, shared
//! by every SQL backend so they agree with each other and with the tail
//! [`Filter`](crate::model::Filter).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use diesel::{Insertable, Queryable, Selectable};

use super::contract::{QueryResult, StoreError};
use super::histogram::minute_of;
use super::schema::logs;
use crate::model::QueuedEntry;
use crate::model::time;
use crate::proto::LogRecord;

#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = logs)]
pub struct LogRow {
    pub id: i64,
    pub service: String,
    pub level: i32,
    pub message: String,
    pub tags: String,
    pub attributes: String,
    pub time_us: i64,
    pub received_us: i64,
    pub trace_id: String,
    pub span_id: String,
}

impl LogRow {
    pub fn new(id: i64, q: &QueuedEntry) -> Self {
        let e = &q.entry;
        LogRow {
            id,
            service: e.service.clone(),
            level: e.level,
            message: e.message.clone(),
            tags: serde_json::to_string(&e.tags).unwrap_or_else(|_| "[]".into()),
            attributes: serde_json::to_string(&e.attributes).unwrap_or_else(|_| "{}".into()),
            time_us: e.time.as_ref().map_or(q.received_us, time::to_micros),
            received_us: q.received_us,
            trace_id: e.trace_id.clone(),
            span_id: e.span_id.clone(),
        }
    }

    pub fn into_record(self) -> Result<LogRecord, StoreError> {
        let tags: Vec<String> = serde_json::from_str(&self.tags)
            .map_err(|e| StoreError::Corrupt(format!("tags of id {}: {e}", self.id)))?;
        let attributes: HashMap<String, String> = serde_json::from_str(&self.attributes)
            .map_err(|e| StoreError::Corrupt(format!("attributes of id {}: {e}", self.id)))?;
        Ok(LogRecord {
            id: self.id as u64,
            service: self.service,
            level: self.level,
            message: self.message,
            tags,
            attributes,
            time: Some(time::from_micros(self.time_us)),
            received_time: Some(time::from_micros(self.received_us)),
            trace_id: self.trace_id,
            span_id: self.span_id,
        })
    }
}

/// Everything one batch writes, derived from its entries.
pub struct BatchRows<'a> {
    /// One row per entry, numbered in entry order.
    pub logs: Vec<LogRow>,
    /// (tag, log id) pairs: tag filters look records up by tag here instead
    /// of parsing every row's JSON.
    pub tags: Vec<(&'a str, i64)>,
    /// The batch's services, once each: ListServices reads this table rather
    /// than scanning `logs`.
    pub services: BTreeSet<&'a str>,
    /// The batch's (service, tag) pairs, once each, for ListTags.
    pub service_tags: BTreeSet<(&'a str, &'a str)>,
    /// (dedup key, log id) of the entries that came with a key.
    pub keys: Vec<(&'a str, i64)>,
    /// Entries by (minute, service, level), added to `log_counts` for the
    /// volume histogram.
    pub counts: BTreeMap<(i64, &'a str, i32), i64>,
}

impl<'a> BatchRows<'a> {
    /// The rows for `entries`, whose ids are `first_id`, `first_id + 1`, ...
    pub fn new(first_id: i64, entries: &'a [QueuedEntry]) -> Self {
        let mut b = BatchRows {
            logs: Vec::with_capacity(entries.len()),
            tags: Vec::new(),
            services: BTreeSet::new(),
            service_tags: BTreeSet::new(),
            keys: Vec::new(),
            counts: BTreeMap::new(),
        };
        for (i, q) in entries.iter().enumerate() {
            let id = first_id + i as i64;
            let row = LogRow::new(id, q);
            let service = q.entry.service.as_str();
            *b.counts
                .entry((minute_of(row.time_us), service, row.level))
                .or_default() += 1;
            b.logs.push(row);
            b.services.insert(service);
            if let Some(k) = &q.dedup_key {
                b.keys.push((k.as_str(), id));
            }
            // Validation already removes repeated tags; a repeat here would
            // break the (tag, log_id) key and fail the whole batch.
            let mut seen = BTreeSet::new();
            for tag in &q.entry.tags {
                if seen.insert(tag.as_str()) {
                    b.tags.push((tag.as_str(), id));
                    b.service_tags.insert((service, tag.as_str()));
                }
            }
        }
        b
    }
}

/// Removes the entries whose dedup key is in `stored` or was seen earlier
/// in the batch: each key is stored once.
pub fn drop_stored_keys(entries: &mut Vec<QueuedEntry>, stored: &HashSet<String>) {
    let mut seen = HashSet::new();
    entries.retain(|q| {
        q.dedup_key
            .as_deref()
            .is_none_or(|k| !stored.contains(k) && seen.insert(k.to_string()))
    });
}

/// The dedup keys of `entries`, for asking the store which are stored.
pub fn dedup_keys(entries: &[QueuedEntry]) -> Vec<&str> {
    entries
        .iter()
        .filter_map(|q| q.dedup_key.as_deref())
        .collect()
}

/// The `log_tags` keys of stored records, grouped by tag: what deleting the
/// records must delete with them. `records` are (id, `tags` column) pairs.
/// Retention finds tags this way, by primary key, so that `log_tags` needs no
/// index by id, which cost every insert (see docs/benchmarks/ingest-embedded.md).
pub fn tag_keys(records: &[(i64, String)]) -> Result<BTreeMap<String, Vec<i64>>, StoreError> {
    let mut by_tag: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for (id, tags) in records {
        let tags: Vec<String> = serde_json::from_str(tags)
            .map_err(|e| StoreError::Corrupt(format!("tags of id {id}: {e}")))?;
        for tag in tags {
            by_tag.entry(tag).or_default().push(*id);
        }
    }
    Ok(by_tag)
}

/// Rows retention read to delete, `(id, tags, service, level, time_us)`, as
/// what [`tag_keys`] takes and what the rollup loses.
#[allow(clippy::type_complexity)]
pub fn split_expired(
    rows: Vec<(i64, String, String, i32, i64)>,
) -> (Vec<(i64, String)>, Vec<(String, i32, i64)>) {
    rows.into_iter()
        .map(|(id, tags, service, level, t)| ((id, tags), (service, level, t)))
        .unzip()
}

/// The record an entry became once stored with `id`: what `insert` returns,
/// without reading the rows back.
pub fn stored_record(id: i64, q: QueuedEntry) -> LogRecord {
    LogRecord {
        id: id as u64,
        time: q.entry.time.or(Some(time::from_micros(q.received_us))),
        service: q.entry.service,
        level: q.entry.level,
        message: q.entry.message,
        tags: q.entry.tags,
        attributes: q.entry.attributes,
        received_time: Some(time::from_micros(q.received_us)),
        trace_id: q.entry.trace_id,
        span_id: q.entry.span_id,
    }
}

/// Decodes a loaded page.
pub fn query_result(rows: Vec<LogRow>, total: Option<i64>) -> Result<QueryResult, StoreError> {
    Ok(QueryResult {
        records: rows
            .into_iter()
            .map(LogRow::into_record)
            .collect::<Result<_, _>>()?,
        total: total.map(|t| t.max(0) as u64),
    })
}

/// Defines, for one diesel backend, `filtered(&Query)` (the rows matching a
/// query's filter, time range and id bounds; what `count_total` counts) and
/// `page(&Query)` (those rows past the cursor, ordered, limited and offset).
///
/// A macro rather than a generic function: the same code type-checks for
/// every backend, but spelling out diesel's trait bounds for an arbitrary
/// one would be longer than the query itself.
macro_rules! history_queries {
    ($backend:ty) => {
        fn filtered(
            q: &$crate::storage::contract::Query,
        ) -> $crate::storage::schema::logs::BoxedQuery<'_, $backend> {
            $crate::storage::codec::narrowed!(
                $crate::storage::schema::logs::table.into_boxed(),
                q,
                $backend
            )
        }

        fn page(
            q: &$crate::storage::contract::Query,
        ) -> $crate::storage::schema::logs::BoxedQuery<'_, $backend> {
            use diesel::prelude::*;
            use $crate::storage::contract::Order;
            use $crate::storage::schema::logs;
            let mut b = filtered(q);
            b = match (q.order, q.cursor) {
                (Order::NewestFirst, Some(cur)) => {
                    b.filter(logs::id.lt($crate::storage::codec::id_bound(cur)))
                }
                (Order::OldestFirst, Some(cur)) => {
                    b.filter(logs::id.gt($crate::storage::codec::id_bound(cur)))
                }
                (_, None) => b,
            };
            b = match q.order {
                Order::NewestFirst => b.order(logs::id.desc()),
                Order::OldestFirst => b.order(logs::id.asc()),
            };
            b.limit(i64::from(q.limit))
                .offset(q.offset.min(i64::MAX as u64) as i64)
        }
    };
}
pub(crate) use history_queries;

/// `$b` (a boxed query whose rows include `logs`) narrowed to the rows
/// query `$q` chooses; every filter of the query but its order and paging.
/// Shared by the plain history query and SQLite's text-index join, so the
/// two choose rows alike.
macro_rules! narrowed {
    ($b:expr, $q:expr, $backend:ty) => {{
        use diesel::prelude::*;
        use $crate::storage::schema::logs;
        let q: &$crate::storage::contract::Query = $q;
        let f = &q.filter;
        let mut b = $b;
        if !f.services.is_empty() {
            b = b.filter(logs::service.eq_any(&f.services));
        }
        if !f.levels.is_empty() {
            b = b.filter(logs::level.eq_any(&f.levels));
        }
        if f.min_level > 0 {
            b = b.filter(logs::level.ge(f.min_level));
        }
        // Any of the tags: one correlated EXISTS per tag, probed row by
        // row while walking the (service, id) index newest first.
        // `id IN (SELECT log_id ...)` let SQLite materialise every id
        // carrying a common tag first (0.7 s for the newest page of a
        // store of 10M entries).
        let mut tagged: Option<
            Box<dyn BoxableExpression<_, $backend, SqlType = diesel::sql_types::Bool> + '_>,
        > = None;
        for tag in &f.tags {
            let one = diesel::dsl::sql::<diesel::sql_types::Bool>(
                "EXISTS (SELECT 1 FROM log_tags WHERE log_tags.log_id = logs.id AND log_tags.tag = ",
            )
            .bind::<diesel::sql_types::Text, _>(tag.as_str())
            .sql(")");
            tagged = Some(match tagged {
                None => Box::new(one),
                Some(t) => Box::new(t.or(one)),
            });
        }
        if let Some(t) = tagged {
            b = b.filter(t);
        }
        if !f.text.is_empty() {
            // Case-insensitive through the column's collation (SQLite's
            // LIKE folds ASCII case; see the MariaDB migration).
            let pattern = $crate::storage::codec::like_pattern(&f.text);
            b = b.filter(logs::message.like(pattern).escape('\\'));
        }
        if let Some(s) = q.start_us {
            b = b.filter(logs::time_us.ge(s));
        }
        if let Some(e) = q.end_us {
            b = b.filter(logs::time_us.lt(e));
        }
        if let Some(a) = q.after_id {
            b = b.filter(logs::id.gt($crate::storage::codec::id_bound(a)));
        }
        if let Some(bid) = q.before_id {
            b = b.filter(logs::id.lt($crate::storage::codec::id_bound(bid)));
        }
        b
    }};
}
pub(crate) use narrowed;

/// An id from a client (a u64) as a bound on the stored ids (positive
/// i64s): one past every stored id stays past them instead of wrapping
/// negative, so `after 2^64-1` finds nothing and `before 2^63` everything.
pub fn id_bound(id: u64) -> i64 {
    id.min(i64::MAX as u64) as i64
}

/// A LIKE pattern matching `text` anywhere, with `\\` as the escape character.
pub fn like_pattern(text: &str) -> String {
    let mut p = String::with_capacity(text.len() + 2);
    p.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

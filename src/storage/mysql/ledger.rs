//! The MariaDB store's bookkeeping beside the records: retention's deletes,
//! positions and dedup keys.

use std::collections::HashSet;

use diesel::prelude::*;
use diesel_async::{AsyncMysqlConnection, RunQueryDsl};

use super::bulk::{self, DEDUP_KEYS, text_id_fields, text_list};
use super::chunks::KEYS_PER_STATEMENT;
use crate::storage::codec::{split_expired, tag_keys};
use crate::storage::contract::{Position, StoreError};
use crate::storage::schema::{dedup_keys, log_tags, logs, positions};

/// Deletes up to `limit` of the oldest records before `cutoff_us`, none
/// above the lowest hold, with their tags and keys. Runs in the caller's
/// transaction.
pub(super) async fn delete_before(
    c: &mut AsyncMysqlConnection,
    cutoff_us: i64,
    limit: u32,
) -> Result<u64, StoreError> {
    let hold: Option<i64> = positions::table
        .select(diesel::dsl::min(positions::hold_id))
        .first(c)
        .await?;
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
    let expired: Vec<(i64, String, String, i32, i64)> = expired.load(c).await?;
    let (expired, counted) = split_expired(expired);
    super::take_off_counts(c, &counted).await?;
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
        diesel::delete(dedup_keys::table.filter(dedup_keys::log_id.eq_any(chunk)))
            .execute(c)
            .await?;
        deleted += diesel::delete(logs::table.filter(logs::id.eq_any(chunk)))
            .execute(c)
            .await? as u64;
    }
    super::indexer::drop_emptied(c).await?;
    Ok(deleted)
}

/// A stored dedup key.
#[derive(QueryableByName)]
struct StoredKey {
    #[diesel(sql_type = diesel::sql_types::Text)]
    k: String,
}

/// Which of `keys` are stored, as this transaction sees it. A key another
/// writer stores after its snapshot makes this batch's insert of it fail
/// on the primary key instead, and the batch is tried again.
///
/// Literal text, not `eq_any`: diesel prepares a statement with one
/// placeholder per key for every batch, which cost the Redis stream
/// source a third of its rate.
pub(super) async fn stored_keys(
    c: &mut AsyncMysqlConnection,
    keys: &[&str],
) -> Result<HashSet<String>, StoreError> {
    let mut stored = HashSet::new();
    for chunk in keys.chunks(KEYS_PER_STATEMENT) {
        let sql = format!("SELECT k FROM dedup_keys WHERE k IN ({})", text_list(chunk));
        let found: Vec<StoredKey> = diesel::sql_query(sql).load(c).await?;
        stored.extend(found.into_iter().map(|f| f.k));
    }
    Ok(stored)
}

/// Stores a batch's `(key, log id)` pairs; a key already stored fails it.
pub(super) async fn insert_keys(
    c: &mut AsyncMysqlConnection,
    keys: &[(&str, i64)],
) -> Result<(), StoreError> {
    bulk::insert(c, &DEDUP_KEYS, keys, text_id_fields).await
}

pub(super) async fn get(
    c: &mut AsyncMysqlConnection,
    name: &str,
) -> Result<Option<Position>, StoreError> {
    let row: Option<(String, Option<i64>)> = positions::table
        .find(name)
        .select((positions::value, positions::hold_id))
        .first(c)
        .await
        .optional()?;
    Ok(row.map(|(value, hold)| Position {
        value,
        hold: hold.map(|h| h.max(0) as u64),
    }))
}

pub(super) async fn swap(
    c: &mut AsyncMysqlConnection,
    name: &str,
    expected: Option<&Position>,
    new: &Position,
) -> Result<bool, StoreError> {
    let hold = new.hold.map(|h| h.min(i64::MAX as u64) as i64);
    let changed = match expected {
        None => {
            diesel::insert_or_ignore_into(positions::table)
                .values((
                    positions::name.eq(name),
                    positions::value.eq(&new.value),
                    positions::hold_id.eq(hold),
                ))
                .execute(c)
                .await?
        }
        // Rows matched, not changed, are counted (the connection's
        // CLIENT_FOUND_ROWS): writing the same position again succeeds.
        Some(old) => {
            diesel::update(
                positions::table
                    .filter(positions::name.eq(name))
                    .filter(positions::value.eq(&old.value)),
            )
            .set((positions::value.eq(&new.value), positions::hold_id.eq(hold)))
            .execute(c)
            .await?
        }
    };
    Ok(changed == 1)
}

//! The embedded store's bookkeeping beside the records: positions and dedup
//! keys, through diesel.

use std::collections::HashSet;

use diesel::prelude::*;

use crate::storage::contract::{Position, StoreError};
use crate::storage::schema::{dedup_keys, positions};

/// Keys per `IN (...)` list, well under SQLite's limit on parameters.
const KEYS_PER_QUERY: usize = 500;

/// Which of `keys` are stored.
pub(super) fn stored_keys(
    c: &mut SqliteConnection,
    keys: &[&str],
) -> Result<HashSet<String>, StoreError> {
    let mut stored = HashSet::new();
    for chunk in keys.chunks(KEYS_PER_QUERY) {
        let found: Vec<String> = dedup_keys::table
            .filter(dedup_keys::k.eq_any(chunk))
            .select(dedup_keys::k)
            .load(c)?;
        stored.extend(found);
    }
    Ok(stored)
}

/// The lowest hold of any position: retention keeps the records above it.
pub(super) fn lowest_hold(c: &mut SqliteConnection) -> Result<Option<i64>, StoreError> {
    Ok(positions::table
        .select(diesel::dsl::min(positions::hold_id))
        .first(c)?)
}

pub(super) fn get(c: &mut SqliteConnection, name: &str) -> Result<Option<Position>, StoreError> {
    let row: Option<(String, Option<i64>)> = positions::table
        .find(name)
        .select((positions::value, positions::hold_id))
        .first(c)
        .optional()?;
    Ok(row.map(|(value, hold)| Position {
        value,
        hold: hold.map(|h| h.max(0) as u64),
    }))
}

pub(super) fn swap(
    c: &mut SqliteConnection,
    name: &str,
    expected: Option<&Position>,
    new: &Position,
) -> Result<bool, StoreError> {
    let hold = new.hold.map(|h| h.min(i64::MAX as u64) as i64);
    let changed = match expected {
        None => diesel::insert_or_ignore_into(positions::table)
            .values((
                positions::name.eq(name),
                positions::value.eq(&new.value),
                positions::hold_id.eq(hold),
            ))
            .execute(c)?,
        Some(old) => diesel::update(
            positions::table
                .filter(positions::name.eq(name))
                .filter(positions::value.eq(&old.value)),
        )
        .set((positions::value.eq(&new.value), positions::hold_id.eq(hold)))
        .execute(c)?,
    };
    Ok(changed == 1)
}

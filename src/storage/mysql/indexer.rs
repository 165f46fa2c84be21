//! The writers' side of the MariaDB text index (`text_grams`, see its
//! migration): a group of blocks is indexed once a row past it is stored.
//! Ids grow in commit order (see the store), so by then no row can land in
//! the group any more, whichever process writes it.
//!
//! Indexing reads the group's messages back, about 8,000 rows, and writes
//! one row per trigram of the group. It runs as a task of its own, one per
//! process at a time, after the commit that completed a group, so no batch
//! waits for it; a search scans the rows it has not reached. The group's
//! rows and the new reach go in one transaction, under a lock on the reach,
//! so two processes never index a group twice.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering::Relaxed};

use diesel::prelude::*;
use diesel_async::pooled_connection::bb8::Pool;
use diesel_async::{AsyncConnection, AsyncMysqlConnection, RunQueryDsl};
use futures::StreamExt;

use crate::storage::blocks::{BLOCK, GROUP};
use crate::storage::contract::StoreError;
use crate::storage::grams::GramSet;
use crate::storage::schema::mysql::text_grams;
use crate::storage::schema::{logs, text_index};

/// Index rows per INSERT.
const ROWS_PER_INSERT: usize = 1_000;

/// Ids per bit of a group's sets: a quarter of the shared block. MariaDB
/// reads a candidate's rows whole through the primary key, so smaller
/// candidates read fewer rows for the few they return; a row per trigram
/// and group stays one row, only its set grows (32 bytes).
pub(super) const PIECE: i64 = 32;

/// Pieces per group: the bits of a set.
pub(super) const PIECES: usize = (GROUP * BLOCK / PIECE) as usize;

/// A set of a group's pieces, 64 to a word.
pub(super) type Pieces = [u64; PIECES / 64];

/// A set as stored: its words little-endian, in order.
pub(super) fn to_bytes(set: &Pieces) -> Vec<u8> {
    set.iter().flat_map(|w| w.to_le_bytes()).collect()
}

/// A stored set; a short or long value reads as the pieces it has.
pub(super) fn from_bytes(bytes: &[u8]) -> Pieces {
    let mut set = [0u64; PIECES / 64];
    for (w, chunk) in set.iter_mut().zip(bytes.chunks(8)) {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        *w = u64::from_le_bytes(word);
    }
    set
}

/// Starts indexing when a commit has completed a group, at most one run at
/// a time in this process.
#[derive(Debug, Default)]
pub(super) struct Indexer {
    /// A run is under way.
    running: AtomicBool,
    /// The first id the index did not cover when this process last looked,
    /// so a commit that completes no group costs nothing.
    reach: AtomicI64,
}

impl Indexer {
    /// Called after a batch ending before id `end` committed (and once on
    /// opening, with `i64::MAX`, for what is stored already): indexes every
    /// whole group past the reach, in the background.
    pub(super) fn committed(self: &Arc<Self>, pool: &Pool<AsyncMysqlConnection>, end: i64) {
        if end < AtomicI64::load(&self.reach, Relaxed).saturating_add(GROUP * BLOCK) {
            return;
        }
        if self.running.swap(true, Relaxed) {
            return;
        }
        let (this, pool) = (self.clone(), pool.clone());
        // Not tied to the server's shutdown: a run is a few short
        // transactions, and one cut off rolls back whole.
        tokio::spawn(async move {
            if let Err(e) = this.run(&pool).await {
                tracing::warn!(error = %e, "text index: could not index a group; searches scan it until a later commit retries");
            }
            this.running.store(false, Relaxed);
        });
    }

    async fn run(&self, pool: &Pool<AsyncMysqlConnection>) -> Result<(), StoreError> {
        let mut c = pool
            .get()
            .await
            .map_err(|e| StoreError::Connection(e.to_string()))?;
        loop {
            let (indexed, reach) = c.transaction(async |c| index_next_group(c).await).await?;
            self.reach.fetch_max(reach, Relaxed);
            if !indexed {
                return Ok(());
            }
        }
    }
}

/// Indexes the group at the reach if it is whole. Returns whether it did,
/// and the reach (first id not covered) after it.
async fn index_next_group(c: &mut AsyncMysqlConnection) -> Result<(bool, i64), StoreError> {
    let below: i64 = text_index::table
        .select(text_index::blocks_below)
        .for_update()
        .first(c)
        .await?;
    let (start, end) = (below * BLOCK, (below + GROUP) * BLOCK);
    let last: Option<i64> = logs::table
        .select(diesel::dsl::max(logs::id))
        .first(c)
        .await?;
    if last.is_none_or(|last| last < end) {
        return Ok((false, start));
    }
    let mut postings: Vec<(u32, Pieces)> =
        group_postings(c, start, end).await?.into_iter().collect();
    // In key order: the group's rows go to the end of the table, page by page.
    postings.sort_unstable();
    let group = below / GROUP;
    let rows: Vec<_> = postings
        .into_iter()
        .map(|(gram, pieces)| {
            (
                text_grams::grp.eq(group),
                text_grams::gram.eq(gram as i32),
                text_grams::pieces.eq(to_bytes(&pieces)),
            )
        })
        .collect();
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        diesel::insert_into(text_grams::table)
            .values(chunk)
            .execute(c)
            .await?;
    }
    diesel::update(text_index::table)
        .set(text_index::blocks_below.eq(below + GROUP))
        .execute(c)
        .await?;
    Ok((true, end))
}

/// Each trigram of the messages with ids in `start..end` (one group) and
/// the set of the group's pieces that hold it.
async fn group_postings(
    c: &mut AsyncMysqlConnection,
    start: i64,
    end: i64,
) -> Result<HashMap<u32, Pieces>, StoreError> {
    let mut pieces: Vec<GramSet> = vec![GramSet::default(); PIECES];
    let mut rows = logs::table
        .filter(logs::id.ge(start).and(logs::id.lt(end)))
        .select((logs::id, logs::message))
        .load_stream::<(i64, String)>(c)
        .await?;
    while let Some(row) = rows.next().await {
        let (id, message) = row?;
        pieces[((id - start) / PIECE) as usize].add_text(&message);
    }
    drop(rows);
    let mut postings: HashMap<u32, Pieces> = HashMap::new();
    for (p, grams) in pieces.iter().enumerate() {
        for gram in grams.iter() {
            postings.entry(gram).or_default()[p / 64] |= 1 << (p % 64);
        }
    }
    Ok(postings)
}

/// Drops the index rows of groups that retention has emptied (below the
/// group of the lowest id left; all of them when nothing is left). Runs in
/// retention's transaction.
pub(super) async fn drop_emptied(c: &mut AsyncMysqlConnection) -> Result<(), StoreError> {
    let lowest: Option<i64> = logs::table
        .select(diesel::dsl::min(logs::id))
        .first(c)
        .await?;
    let below = lowest.map_or(i64::MAX, |id| id / BLOCK / GROUP);
    diesel::delete(text_grams::table.filter(text_grams::grp.lt(below)))
        .execute(c)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_round_trip_through_their_bytes() {
        let mut set: Pieces = [0; PIECES / 64];
        set[0] = 1;
        set[3] = 1 << 63;
        let bytes = to_bytes(&set);
        assert_eq!(bytes.len(), 32);
        assert_eq!((bytes[0], bytes[31]), (1, 0x80));
        assert_eq!(from_bytes(&bytes), set);
        assert_eq!(from_bytes(&bytes[..9])[1], 0);
    }
}

//! Dedup keys that name a stream entry (`<stream>:<ms>-<seq>`, as the Redis
//! stream source gives them) stored in the `logs` row's unique source pair
//! instead of a `dedup_keys` row: the stream as a key space numbered in
//! `key_spaces` (a negative partition, so never a Kafka one), its id packed
//! into the offset. A key is then checked by the lookup that finds Kafka
//! redeliveries and made unique by the index every row already has (whose
//! receipt part is 0 for a key space's rows: the entry is the same whenever
//! it was received); its own row and indexes had cost a third of the time
//! such an entry took to store.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering::Relaxed};
use std::time::Duration;

use diesel::sql_types::{Integer, Text};
use diesel_async::{AsyncMysqlConnection, RunQueryDsl};

use crate::model::{QueuedEntry, SourcePosition};
use crate::storage::contract::StoreError;

/// Bits of the offset that hold the sequence number; the milliseconds take
/// the rest (up to the year 2248).
const SEQ_BITS: u32 = 20;
/// Most key spaces remembered; past it the memory starts again.
const MOST: usize = 10_000;
/// How long key spaces' entries are looked up after a batch met one stored
/// already (see [`KeySpaces::look_up`]).
const LOOK_UP_FOR: Duration = Duration::from_secs(60);

/// The key spaces this process has looked up, and whether their entries are
/// looked up before a batch stores them.
#[derive(Default)]
pub(super) struct KeySpaces {
    /// Space name -> id. Ids never change: rows of `key_spaces` are never
    /// deleted.
    ids: Mutex<HashMap<String, i32>>,
    /// Until when (µs) a batch looks its key spaces' entries up.
    look_up_until_us: AtomicI64,
}

/// A key's space and its id packed into one offset, when it has that shape.
fn split(key: &str) -> Option<(&str, i64)> {
    let (space, id) = key.rsplit_once(':')?;
    let (ms, seq) = id.split_once('-')?;
    let (ms, seq): (u64, u64) = (ms.parse().ok()?, seq.parse().ok()?);
    if space.is_empty() || seq >= 1 << SEQ_BITS || ms >= 1 << (63 - SEQ_BITS) {
        return None;
    }
    Some((space, ((ms << SEQ_BITS) | seq) as i64))
}

/// The source pair a space's entry is stored under.
fn position(space_id: i32, offset: i64) -> SourcePosition {
    SourcePosition {
        partition: -space_id,
        offset,
    }
}

#[derive(diesel::QueryableByName)]
struct Space {
    #[diesel(sql_type = Integer)]
    id: i32,
}

impl KeySpaces {
    /// Whether a batch looks up which of its key spaces' entries are stored.
    /// Usually not: a stream's ids spread over the Kafka partitions, so the
    /// highest-offset shortcut that spares Kafka positions the lookup rarely
    /// holds for them, and looking up every batch cost the stream source a
    /// tenth of its rate. The unique source pair refuses an entry stored
    /// already all the same; the batch is then tried again with the lookup
    /// (see [`suspect`](Self::suspect)), which drops it.
    pub fn look_up(&self) -> bool {
        // Spelled out: diesel's `RunQueryDsl::load` shadows the method.
        crate::model::time::now_micros() < AtomicI64::load(&self.look_up_until_us, Relaxed)
    }

    /// Looks entries up for a while: one came again, and more of a
    /// redelivery may follow.
    pub fn suspect(&self) {
        let until = crate::model::time::now_micros() + LOOK_UP_FOR.as_micros() as i64;
        self.look_up_until_us.fetch_max(until, Relaxed);
    }

    /// Moves every stream-shaped key of `entries` into its source pair.
    /// Outside the batch's transaction: a space numbered in a transaction
    /// that rolled back would leave this process an id nobody else knows.
    pub async fn place(
        &self,
        c: &mut AsyncMysqlConnection,
        entries: &mut [QueuedEntry],
    ) -> Result<(), StoreError> {
        for q in entries.iter_mut() {
            let Some((space, offset)) = q.dedup_key.as_deref().and_then(split) else {
                continue;
            };
            let id = match self.known(space) {
                Some(id) => id,
                None => self.number(c, space).await?,
            };
            q.source = Some(position(id, offset));
            q.dedup_key = None;
        }
        Ok(())
    }

    fn known(&self, space: &str) -> Option<i32> {
        let ids = self.ids.lock().unwrap_or_else(|p| p.into_inner());
        ids.get(space).copied()
    }

    /// The space's id, numbering it first if it is new.
    async fn number(&self, c: &mut AsyncMysqlConnection, space: &str) -> Result<i32, StoreError> {
        diesel::sql_query("INSERT IGNORE INTO key_spaces (name) VALUES (?)")
            .bind::<Text, _>(space)
            .execute(c)
            .await?;
        let found: Space = diesel::sql_query("SELECT id FROM key_spaces WHERE name = ?")
            .bind::<Text, _>(space)
            .get_result(c)
            .await?;
        let mut ids = self.ids.lock().unwrap_or_else(|p| p.into_inner());
        if ids.len() >= MOST {
            ids.clear();
        }
        ids.insert(space.to_string(), found.id);
        Ok(found.id)
    }
}

/// Whether `position` is a key space's (its entries are the same entry
/// whenever they were received).
pub(super) fn is_key(position: SourcePosition) -> bool {
    position.partition < 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_id_packs_into_one_offset_in_order() {
        let (space, a) = split("redis-stream:orders:1733560000000-0").expect("packs");
        assert_eq!(space, "redis-stream:orders");
        let (_, b) = split("redis-stream:orders:1733560000000-1").expect("packs");
        let (_, c) = split("redis-stream:orders:1733560000001-0").expect("packs");
        assert!(a < b && b < c);
        assert_eq!(split("s:0-0"), Some(("s", 0)));
    }

    #[test]
    fn other_keys_stay_as_they_are() {
        for key in [
            "restore:17:1733560000000000",
            "no-space-1-2",
            ":1-2",
            "s:1-x",
            "s:-1-2",
            "s:1-1048576",
            "s:9223372036854775807-0",
        ] {
            assert_eq!(split(key), None, "{key}");
        }
    }
}

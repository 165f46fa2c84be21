//! The writer's side of the text index (`logs_text`, see its migration):
//! the trigrams of the blocks not yet indexed, kept in memory and written
//! a group of blocks at a time.
//!
//! Writing a block's row in every batch that touches it made FTS5 flush a
//! segment per commit and cut embedded ingest by more than half (measured,
//! docs/benchmarks/text-search.md). Here a block's trigrams are gathered as
//! its rows are written and reach the index only when [`GROUP`] whole
//! blocks are ready (fewer, larger FTS5 commits: 1.7 µs an entry in groups
//! of 64 blocks against 3.4 µs in groups of 8, measured), in the transaction of the batch that completes them,
//! together with `text_index.blocks_below`. Until then a search scans those
//! rows, at most `GROUP` blocks plus one batch. Nothing kept here has to
//! survive a crash: on opening, [`Pending::catch_up`] rebuilds it from the
//! rows past `blocks_below` (and indexes an older database whole).

use std::collections::BTreeMap;

use diesel::connection::DefaultLoadingMode;
use diesel::prelude::*;

use crate::storage::blocks::{BLOCK, GROUP};
use crate::storage::contract::StoreError;
use crate::storage::grams::GramSet;
use crate::storage::schema::{logs, text_index};

/// Index rows to write and how far the index then reaches.
#[derive(Debug)]
pub struct Flush {
    /// (block, its trigrams as words), oldest first.
    pub rows: Vec<(i64, String)>,
    /// The new `text_index.blocks_below`.
    pub blocks_below: i64,
}

/// The trigrams of the blocks the index does not hold yet.
#[derive(Debug, Default)]
pub struct Pending {
    /// Every block below this one is in the index (as stored).
    blocks_below: i64,
    /// The trigrams of each block from `blocks_below` on that has rows.
    /// When a batch rolls back its trigrams stay: a superset only adds a
    /// candidate the recheck drops.
    blocks: BTreeMap<i64, GramSet>,
}

impl Pending {
    pub fn new(blocks_below: i64) -> Self {
        Pending {
            blocks_below,
            blocks: BTreeMap::new(),
        }
    }

    /// The first id a new entry may take without landing in an indexed
    /// block: ids restart from the highest stored one, and if retention
    /// deleted every row, that would be below what the index covers.
    pub fn first_free_id(&self) -> i64 {
        self.blocks_below.saturating_mul(BLOCK)
    }

    /// Notes the message of entry `id`.
    pub fn add(&mut self, id: i64, message: &str) {
        let block = id / BLOCK;
        if block >= self.blocks_below {
            self.blocks.entry(block).or_default().add_text(message);
        }
    }

    /// The blocks to write once [`GROUP`] of them are whole, with `next_id`
    /// the id the next entry will get.
    pub fn due(&self, next_id: i64) -> Option<Flush> {
        let whole = next_id / BLOCK;
        if whole - self.blocks_below < GROUP {
            return None;
        }
        Some(Flush {
            rows: self
                .blocks
                .range(..whole)
                .map(|(block, grams)| (*block, grams.words()))
                .collect(),
            blocks_below: whole,
        })
    }

    /// Forgets what `flush` wrote, once its transaction has committed.
    pub fn written(&mut self, flush: &Flush) {
        self.blocks = self.blocks.split_off(&flush.blocks_below);
        self.blocks_below = flush.blocks_below;
    }

    /// The pending trigrams as stored: reads `blocks_below` and every row
    /// past it, handing whole groups to `write` as it goes (all of an older
    /// database's rows, once). `conn` and the connection `write` uses are
    /// the writer's two, so nothing else writes meanwhile.
    pub fn catch_up(
        conn: &mut SqliteConnection,
        mut write: impl FnMut(&Flush) -> Result<(), StoreError>,
    ) -> Result<Self, StoreError> {
        let below: i64 = text_index::table
            .select(text_index::blocks_below)
            .first(conn)?;
        let mut pending = Pending::new(below);
        let rows = logs::table
            .filter(logs::id.ge(pending.first_free_id()))
            .order(logs::id.asc())
            .select((logs::id, logs::message))
            .load_iter::<(i64, String), DefaultLoadingMode>(conn)?;
        for row in rows {
            let (id, message) = row?;
            pending.add(id, &message);
            if let Some(flush) = pending.due(id + 1) {
                write(&flush)?;
                pending.written(&flush);
            }
        }
        Ok(pending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Filter, QueuedEntry};
    use crate::proto::LogEntry;
    use crate::storage::Store;
    use crate::storage::contract::Query;
    use crate::storage::schema::logs_text;
    use crate::storage::sqlite::{SqliteStore, temp_args};

    fn entries(range: std::ops::Range<u64>) -> Vec<QueuedEntry> {
        range
            .map(|n| QueuedEntry {
                entry: LogEntry {
                    service: "svc".into(),
                    message: format!(
                        "entry {n} {}",
                        if n.is_multiple_of(500) {
                            "needle"
                        } else {
                            "hay"
                        }
                    ),
                    ..Default::default()
                },
                received_us: 1,
                source: None,
                dedup_key: None,
            })
            .collect()
    }

    fn reach(store: &SqliteStore) -> (i64, i64) {
        let mut c = store.readers.get().expect("reader");
        let below = text_index::table
            .select(text_index::blocks_below)
            .first::<i64>(&mut c)
            .expect("reach");
        let rows = logs_text::table
            .count()
            .get_result::<i64>(&mut c)
            .expect("rows");
        (below, rows)
    }

    async fn needles(store: &SqliteStore) -> Vec<u64> {
        let q = Query {
            filter: Filter {
                text: "needle".into(),
                ..Default::default()
            },
            limit: 1000,
            ..Default::default()
        };
        store
            .query(q)
            .await
            .expect("query")
            .records
            .iter()
            .map(|r| r.id)
            .collect()
    }

    /// An older database (rows, no index) is indexed when it opens, a
    /// restart rebuilds what was pending, and ids never go back into
    /// indexed blocks, even after retention emptied the store.
    #[tokio::test]
    async fn opening_indexes_what_the_index_lacks() {
        let (dir, args) = temp_args();
        let store = SqliteStore::open(&args).expect("open");
        for first in (0..12_000).step_by(4_000) {
            store
                .insert(entries(first..first + 4_000))
                .await
                .expect("insert");
        }
        assert_eq!(
            reach(&store).0,
            12_000 / BLOCK,
            "flushed at the third batch"
        );
        let expected = needles(&store).await;
        assert_eq!(expected.len(), 24);
        drop(store);

        let mut c = SqliteConnection::establish(&dir.path().join("taillight.db").to_string_lossy())
            .expect("raw");
        diesel::sql_query("DELETE FROM logs_text")
            .execute(&mut c)
            .expect("no index");
        diesel::sql_query("UPDATE text_index SET blocks_below = 0")
            .execute(&mut c)
            .expect("reach 0");
        drop(c);
        let store = SqliteStore::open(&args).expect("reopen");
        assert_eq!(
            reach(&store),
            (GROUP, GROUP),
            "whole groups indexed on opening"
        );
        assert_eq!(needles(&store).await, expected);

        store.insert(entries(12_000..16_500)).await.expect("insert");
        assert_eq!(reach(&store).0, 16_500 / BLOCK, "what was pending went in");
        assert_eq!(needles(&store).await.len(), 33);

        assert_eq!(
            store
                .delete_before(i64::MAX, 100_000)
                .await
                .expect("retention"),
            16_500
        );
        assert_eq!(reach(&store), (16_500 / BLOCK, 0), "emptied blocks dropped");
        drop(store);
        let store = SqliteStore::open(&args).expect("reopen empty");
        let ids = store.insert(entries(0..1)).await.expect("insert");
        assert_eq!(ids[0].id, (16_500 / BLOCK * BLOCK) as u64, "past the index");
        assert_eq!(needles(&store).await, vec![ids[0].id]);
    }

    #[test]
    fn whole_groups_are_due_and_then_forgotten() {
        let mut p = Pending::new(2);
        p.add(5, "old block, already indexed");
        for id in 2 * BLOCK..(2 + GROUP) * BLOCK + 10 {
            p.add(id, &format!("m{id}"));
        }
        assert!(p.due((2 + GROUP) * BLOCK - 1).is_none(), "a block short");
        let flush = p.due((2 + GROUP) * BLOCK + 10).expect("a group");
        assert_eq!(flush.blocks_below, 2 + GROUP);
        assert_eq!(flush.rows.len() as i64, GROUP);
        assert_eq!(flush.rows[0].0, 2);
        assert!(!p.blocks.contains_key(&0));
        p.written(&flush);
        assert_eq!(
            p.blocks.keys().copied().collect::<Vec<_>>(),
            vec![2 + GROUP]
        );
        assert_eq!(p.first_free_id(), (2 + GROUP) * BLOCK);
        p.add(3, "below the index");
        assert_eq!(p.blocks.len(), 1);
    }
}

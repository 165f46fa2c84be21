//! Text search through the trigram index (`logs_text`, see its migration):
//! the index names the blocks of [`BLOCK`] ids whose messages hold every
//! trigram of the text, and the rows of those blocks go through the same
//! filter as a scan (`narrowed!`, LIKE included). So the index can only
//! make a search faster, never change its answer.

use std::collections::BTreeMap;
use std::ffi::CStr;

use diesel::connection::DefaultLoadingMode;
use diesel::prelude::*;
use diesel::sqlite::Sqlite;

use crate::storage::codec::{LogRow, id_bound, narrowed};
use crate::storage::contract::{Order, Query};
use crate::storage::histogram::{Counted, count_row, counted};
use crate::storage::schema::{logs, logs_text};

/// Ids per index row. Larger blocks make the index smaller (128: about 12
/// bytes an entry, 64: 20, 32: 26, one row per entry: 177) and each
/// candidate block longer to check; docs/benchmarks/text-search.md has the
/// figures. The migration that builds the index uses the same number.
pub const BLOCK: i64 = 128;

/// Re-indexes block `?1` from its rows. The writer runs it for every block
/// a batch wrote to; a block begun by an earlier batch is replaced whole,
/// with the rows that batch left in it.
pub const INDEX_BLOCK: &CStr = c"INSERT OR REPLACE INTO logs_text (rowid, messages) \
    SELECT ?1, group_concat(message, char(10)) FROM logs WHERE id >= ?1 * 128 AND id < (?1 + 1) * 128";

/// Drops the index rows of blocks that retention has emptied, all of them
/// when nothing is left. Retention deletes oldest first, so blocks below
/// the lowest id left are empty; a block still partly stored keeps its row
/// until it is emptied, which costs a few needless candidates, not a miss.
pub const DROP_EMPTIED: &str = "DELETE FROM logs_text \
    WHERE rowid < ifnull((SELECT min(id) FROM logs), 9223372036854775807) / 128";

/// At most this many trigrams of a long text go into the index query:
/// enough to make the candidates rare, and each one more costs a merge.
const MOST_TRIGRAMS: usize = 16;

/// The FTS5 query that finds the candidate blocks of `text`: all of its
/// distinct trigrams (spread over the text when there are many), each
/// quoted as a string. `None` when the text is shorter than a trigram:
/// the index cannot help, and the query scans.
pub fn candidates(text: &str) -> Option<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut grams: Vec<String> = chars.windows(3).map(|w| w.iter().collect()).collect();
    if grams.is_empty() {
        return None;
    }
    grams.sort();
    grams.dedup();
    let step = grams.len().div_ceil(MOST_TRIGRAMS);
    let terms: Vec<String> = grams
        .iter()
        .step_by(step)
        .map(|g| format!("\"{}\"", g.replace('"', "\"\"")))
        .collect();
    Some(terms.join(" AND "))
}

/// The rows `q` chooses whose block is a candidate, as a boxed join of the
/// index and `logs`, keeping to the blocks the query's id bounds allow.
macro_rules! indexed {
    ($q:expr, $fts:expr) => {{
        let q: &Query = $q;
        let join = logs_text::table.inner_join(
            logs::table.on(logs::id
                .ge(logs_text::rowid * BLOCK)
                .and(logs::id.lt((logs_text::rowid + 1) * BLOCK))),
        );
        let mut b = join
            .filter(
                diesel::dsl::sql::<diesel::sql_types::Bool>("logs_text MATCH ")
                    .bind::<diesel::sql_types::Text, _>($fts),
            )
            .into_boxed::<Sqlite>();
        let (lower, upper) = id_range(q);
        if let Some(l) = lower {
            b = b.filter(logs_text::rowid.ge(l / BLOCK));
        }
        if let Some(u) = upper {
            b = b.filter(logs_text::rowid.le(u / BLOCK));
        }
        narrowed!(b, q, Sqlite)
    }};
}

/// The lowest and highest id the query can return, from its bounds and
/// cursor, so the index skips the blocks outside them.
fn id_range(q: &Query) -> (Option<i64>, Option<i64>) {
    let after = q.after_id.into_iter().chain(match q.order {
        Order::OldestFirst => q.cursor,
        Order::NewestFirst => None,
    });
    let before = q.before_id.into_iter().chain(match q.order {
        Order::NewestFirst => q.cursor,
        Order::OldestFirst => None,
    });
    let lower = after.max().map(|a| id_bound(a).saturating_add(1));
    let upper = before.min().map(|b| id_bound(b) - 1);
    (lower, upper)
}

/// The page `q` asks for. Rows come block by block in the query's order,
/// in no order within a block; the page ends inside the last block it
/// needs, so reading `BLOCK - 1` rows past it and sorting by id gives the
/// same page as the scan's `ORDER BY id`.
pub fn page(c: &mut SqliteConnection, q: &Query, fts: &str) -> QueryResult<Vec<LogRow>> {
    let wanted = q.offset.saturating_add(u64::from(q.limit));
    let read = wanted.saturating_add(BLOCK as u64 - 1).min(i64::MAX as u64) as i64;
    let mut b = indexed!(q, fts);
    if let Some(cur) = q.cursor {
        let cur = id_bound(cur);
        b = match q.order {
            Order::NewestFirst => b.filter(logs::id.lt(cur)),
            Order::OldestFirst => b.filter(logs::id.gt(cur)),
        };
    }
    b = match q.order {
        Order::NewestFirst => b.order(logs_text::rowid.desc()),
        Order::OldestFirst => b.order(logs_text::rowid.asc()),
    };
    let mut rows: Vec<LogRow> = b.limit(read).select(LogRow::as_select()).load(c)?;
    match q.order {
        Order::NewestFirst => rows.sort_unstable_by_key(|r| std::cmp::Reverse(r.id)),
        Order::OldestFirst => rows.sort_unstable_by_key(|r| r.id),
    }
    Ok(rows
        .into_iter()
        .skip(q.offset.min(usize::MAX as u64) as usize)
        .take(q.limit as usize)
        .collect())
}

/// How many rows `q` chooses, regardless of cursor, limit and offset.
pub fn count(c: &mut SqliteConnection, q: &Query, fts: &str) -> QueryResult<i64> {
    let q = Query {
        cursor: None,
        ..q.clone()
    };
    indexed!(&q, fts).count().get_result(c)
}

/// The histogram's counts of the rows `q` chooses, in one streamed pass
/// over the candidate blocks.
pub fn bucket_counts(
    c: &mut SqliteConnection,
    q: &Query,
    fts: &str,
    origin: i64,
    width: i64,
) -> QueryResult<Vec<Counted>> {
    let mut by = BTreeMap::new();
    let rows = indexed!(q, fts)
        .select((logs::time_us, logs::level))
        .load_iter::<(i64, i32), DefaultLoadingMode>(c)?;
    for row in rows {
        count_row(row?, origin, width, &mut by);
    }
    Ok(counted(by))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Filter, QueuedEntry};
    use crate::proto::LogEntry;
    use crate::storage::Store;
    use crate::storage::sqlite::{SqliteArgs, SqliteStore, Synchronous};

    #[test]
    fn the_statements_and_the_migration_use_the_block_size() {
        let index = INDEX_BLOCK.to_str().expect("ASCII");
        assert!(index.contains(&format!("?1 * {BLOCK}")), "{index}");
        assert!(DROP_EMPTIED.contains(&format!(") / {BLOCK}")));
        let up = include_str!("../../../migrations/sqlite/2026-12-10-000000_text_index/up.sql");
        assert!(up.contains(&format!("GROUP BY id / {BLOCK}")));
    }

    /// The same pages and counts through the index as through the scan it
    /// replaces, for texts that are everywhere, rare, absent, or made of
    /// trigrams that are each common but never together.
    #[tokio::test]
    async fn the_index_answers_as_the_scan() {
        let dir = tempfile::tempdir().expect("temp dir");
        let args = SqliteArgs {
            data_dir: dir.path().into(),
            sqlite_synchronous: Synchronous::Normal,
        };
        let store = SqliteStore::open(&args).expect("open");
        let words = ["alpha", "beta", "GAMMA", "delta", "needle", "x%y", "q\"t"];
        for batch in 0..20u64 {
            let entries = (0..97u64)
                .map(|i| {
                    let n = batch * 97 + i;
                    let mut message = format!(
                        "{} {}",
                        words[(n % 6) as usize],
                        words[(n / 6 % 6) as usize]
                    );
                    if n % 301 == 0 {
                        message.push_str(" needle x%y q\"t");
                    }
                    QueuedEntry {
                        entry: LogEntry {
                            service: ["a", "b"][(n % 2) as usize].into(),
                            message,
                            ..Default::default()
                        },
                        received_us: 1,
                        source: None,
                        dedup_key: None,
                    }
                })
                .collect();
            store.insert(entries).await.expect("insert");
        }
        let mut c = store.readers.get().expect("reader");
        for text in [
            "alpha",
            "ALPHA beta",
            "needle",
            "x%y",
            "q\"t",
            "gamma alpha",
            "ta de",
            "zzz",
        ] {
            for order in [Order::NewestFirst, Order::OldestFirst] {
                for (offset, cursor) in [(0, None), (13, None), (0, Some(1000))] {
                    let q = Query {
                        filter: Filter {
                            text: text.into(),
                            services: if offset == 13 {
                                vec!["b".into()]
                            } else {
                                vec![]
                            },
                            ..Default::default()
                        },
                        order,
                        limit: 50,
                        offset,
                        cursor,
                        ..Default::default()
                    };
                    let fts = candidates(text).expect("trigrams");
                    let scan: Vec<i64> = super::super::page(&q)
                        .select(logs::id)
                        .load(&mut c)
                        .expect("scan");
                    let found: Vec<i64> = page(&mut c, &q, &fts)
                        .expect("index")
                        .iter()
                        .map(|r| r.id)
                        .collect();
                    assert_eq!(found, scan, "{text} {order:?} {offset} {cursor:?}");
                    let all: i64 = super::super::filtered(&Query {
                        cursor: None,
                        ..q.clone()
                    })
                    .count()
                    .get_result(&mut c)
                    .expect("scan count");
                    assert_eq!(count(&mut c, &q, &fts).expect("count"), all, "{text}");
                }
            }
        }
    }

    #[test]
    fn every_trigram_is_a_quoted_term() {
        assert_eq!(candidates("ab"), None);
        assert_eq!(candidates(""), None);
        assert_eq!(candidates("abc").as_deref(), Some("\"abc\""));
        assert_eq!(
            candidates("a\"bcb\"").as_deref(),
            Some("\"\"\"bc\" AND \"a\"\"b\" AND \"bcb\" AND \"cb\"\"\"")
        );
        // Characters, not bytes.
        assert_eq!(candidates("é日x").as_deref(), Some("\"é日x\""));
    }

    #[test]
    fn a_long_text_keeps_a_spread_of_its_trigrams() {
        let text: String = ('a'..='z').collect();
        let fts = candidates(&text).expect("trigrams");
        let terms: Vec<&str> = fts.split(" AND ").collect();
        assert!(terms.len() <= MOST_TRIGRAMS, "{fts}");
        assert!(terms.contains(&"\"abc\"") && terms.len() >= MOST_TRIGRAMS / 2);
    }

    #[test]
    fn the_bounds_and_cursor_narrow_the_blocks() {
        let q = Query {
            after_id: Some(10),
            before_id: Some(1000),
            cursor: Some(500),
            ..Query::default()
        };
        assert_eq!(id_range(&q), (Some(11), Some(499)));
        let q = Query {
            order: Order::OldestFirst,
            ..q
        };
        assert_eq!(id_range(&q), (Some(501), Some(999)));
        assert_eq!(id_range(&Query::default()), (None, None));
    }
}

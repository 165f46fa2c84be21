//! Text search through the trigram index (`logs_text`, see its migration).
//!
//! A search splits at the index's reach: the blocks the index holds are
//! looked up by the text's trigrams, and the rows of each candidate block
//! go through the same filter as a scan (`narrowed!`, LIKE included); the
//! few rows past the reach (see [`super::indexer`]) are scanned. So the
//! index can only make a search faster, never change its answer.

use std::collections::BTreeMap;

use diesel::connection::DefaultLoadingMode;
use diesel::prelude::*;
use diesel::sqlite::Sqlite;

use super::{filtered, page as scan_page};
use crate::storage::blocks::{BLOCK, Part, cursor_as_bound, split_at};
use crate::storage::codec::{LogRow, id_bound, narrowed};
use crate::storage::contract::{Order, Query};
use crate::storage::grams;
use crate::storage::histogram::{Counted, count_row, counted};
use crate::storage::schema::{logs, logs_text, text_index};

/// Drops the index rows of blocks that retention has emptied, all of them
/// when nothing is left. Retention deletes oldest first, so blocks below
/// the lowest id left are empty; a block still partly stored keeps its row
/// until it is emptied, which costs a few needless candidates, not a miss.
pub const DROP_EMPTIED: &str = "DELETE FROM logs_text \
    WHERE rowid < ifnull((SELECT min(id) FROM logs), 9223372036854775807) / 128";

/// The FTS5 query that finds the candidate blocks of `text`: its trigram
/// words, all required. `None` when the text is shorter than a trigram:
/// the index cannot help, and the query scans.
pub fn terms(text: &str) -> Option<String> {
    let words: Vec<String> = grams::looked_up(text)
        .into_iter()
        .map(grams::word)
        .collect();
    (!words.is_empty()).then(|| words.join(" "))
}

/// The rows `q` chooses inside the index whose block is a candidate, as a
/// boxed join of the index and `logs`, keeping to the blocks the query's id
/// bounds allow. `$filters` is `q` without its id bounds ([`without_ids`]):
/// they are applied here with a unary `+`, which keeps SQLite from taking
/// one of them as the range of the inner loop in place of the block's own
/// (with `id < ?` as its upper end, each candidate block read every row
/// above it: 1.5 s instead of 6 ms on 1M entries).
macro_rules! indexed {
    ($q:expr, $filters:expr, $terms:expr) => {{
        use diesel::dsl::sql;
        use diesel::sql_types::{BigInt, Bool, Text};
        let q: &Query = $q;
        let join = logs_text::table.inner_join(
            logs::table.on(logs::id
                .ge(logs_text::rowid * BLOCK)
                .and(logs::id.lt((logs_text::rowid + 1) * BLOCK))),
        );
        let mut b = join
            .filter(sql::<Bool>("logs_text MATCH ").bind::<Text, _>($terms))
            .into_boxed::<Sqlite>();
        if let Some(a) = q.after_id.map(id_bound) {
            b = b
                .filter(logs_text::rowid.ge(a.saturating_add(1) / BLOCK))
                .filter(sql::<Bool>("+logs.id > ").bind::<BigInt, _>(a));
        }
        if let Some(bid) = q.before_id.map(id_bound) {
            b = b
                .filter(logs_text::rowid.le((bid - 1) / BLOCK))
                .filter(sql::<Bool>("+logs.id < ").bind::<BigInt, _>(bid));
        }
        narrowed!(b, $filters, Sqlite)
    }};
}

/// `q` without its id bounds, for [`indexed!`].
fn without_ids(q: &Query) -> Query {
    Query {
        after_id: None,
        before_id: None,
        ..q.clone()
    }
}

/// The first id the index does not cover.
pub fn reach(c: &mut SqliteConnection) -> QueryResult<u64> {
    let blocks: i64 = text_index::table
        .select(text_index::blocks_below)
        .first(c)?;
    Ok(blocks.saturating_mul(BLOCK).max(0) as u64)
}

/// One half of a split query.
enum Half {
    /// The rows past the index's reach, scanned.
    Past(Query),
    /// The rows inside it, looked up.
    Inside(Query),
}

/// The page `q` asks for: the newer half first for newest first, the
/// older first otherwise, with what is left of the offset and the limit
/// carried from one to the next. `reach` is the index's, as [`reach`]
/// read it for this request.
pub fn page(
    c: &mut SqliteConnection,
    q: &Query,
    terms: &str,
    reach: u64,
) -> QueryResult<Vec<LogRow>> {
    let q = cursor_as_bound(q);
    let (past, inside) = split_at(&q, reach);
    let mut halves = vec![Half::Past(past)];
    if let Some(inside) = inside {
        halves.push(Half::Inside(inside));
    }
    if q.order == Order::OldestFirst {
        halves.reverse();
    }
    let limit = q.limit as usize;
    let (mut rows, mut offset) = (Vec::new(), q.offset);
    for half in halves {
        if rows.len() >= limit {
            break;
        }
        let part = match half {
            Half::Past(h) => scanned(c, &h, offset, limit - rows.len())?,
            Half::Inside(h) => looked_up(c, &h, terms, offset, limit - rows.len())?,
        };
        offset -= part.skipped;
        rows.extend(part.rows);
    }
    Ok(rows)
}

/// Up to `limit` rows past `offset` of the scanned half.
fn scanned(c: &mut SqliteConnection, q: &Query, offset: u64, limit: usize) -> QueryResult<Part> {
    let q = Query {
        offset,
        limit: limit as u32,
        ..q.clone()
    };
    let rows: Vec<LogRow> = scan_page(&q).select(LogRow::as_select()).load(c)?;
    // An empty page past a nonzero offset means the half had fewer rows
    // than the offset, all of them skipped.
    let skipped = match rows.is_empty() && offset > 0 {
        false => offset,
        true => (filtered(&q).count().get_result::<i64>(c)?.max(0) as u64).min(offset),
    };
    Ok(Part { rows, skipped })
}

/// Up to `limit` rows past `offset` of the half inside the index. Rows come
/// block by block in the query's order, unordered within a block, so each
/// block is sorted once it is whole; reading stops at the block that fills
/// the page, and no more than a block is held besides the page.
fn looked_up(
    c: &mut SqliteConnection,
    q: &Query,
    terms: &str,
    offset: u64,
    limit: usize,
) -> QueryResult<Part> {
    let filters = without_ids(q);
    let b = match q.order {
        Order::NewestFirst => indexed!(q, &filters, terms).order(logs_text::rowid.desc()),
        Order::OldestFirst => indexed!(q, &filters, terms).order(logs_text::rowid.asc()),
    };
    let rows = b
        .select(LogRow::as_select())
        .load_iter::<LogRow, DefaultLoadingMode>(c)?;
    let mut part = Part::default();
    let mut block: Vec<LogRow> = Vec::new();
    for row in rows {
        let row = row?;
        if block.last().is_some_and(|r| r.id / BLOCK != row.id / BLOCK)
            && take_block(&mut part, &mut block, q.order, offset, limit)
        {
            return Ok(part);
        }
        block.push(row);
    }
    take_block(&mut part, &mut block, q.order, offset, limit);
    Ok(part)
}

/// Sorts a whole block's rows into the page's order and hands them to
/// `part`. True once the page is full.
fn take_block(
    part: &mut Part,
    block: &mut Vec<LogRow>,
    order: Order,
    offset: u64,
    limit: usize,
) -> bool {
    match order {
        Order::NewestFirst => block.sort_unstable_by_key(|r| std::cmp::Reverse(r.id)),
        Order::OldestFirst => block.sort_unstable_by_key(|r| r.id),
    }
    part.take(block.drain(..), offset, limit)
}

/// How many rows `q` chooses, regardless of cursor, limit and offset.
pub fn count(c: &mut SqliteConnection, q: &Query, terms: &str, reach: u64) -> QueryResult<i64> {
    let q = Query {
        cursor: None,
        ..q.clone()
    };
    let (past, inside) = split_at(&q, reach);
    let mut n = filtered(&past).count().get_result::<i64>(c)?;
    if let Some(inside) = inside {
        let filters = without_ids(&inside);
        n += indexed!(&inside, &filters, terms)
            .count()
            .get_result::<i64>(c)?;
    }
    Ok(n)
}

/// The histogram's counts of the rows `q` chooses, in one streamed pass
/// over each half.
pub fn bucket_counts(
    c: &mut SqliteConnection,
    q: &Query,
    terms: &str,
    reach: u64,
    origin: i64,
    width: i64,
) -> QueryResult<Vec<Counted>> {
    let (past, inside) = split_at(q, reach);
    let mut by = BTreeMap::new();
    for row in filtered(&past)
        .select((logs::time_us, logs::level))
        .load_iter::<(i64, i32), DefaultLoadingMode>(c)?
    {
        count_row(row?, origin, width, &mut by);
    }
    if let Some(inside) = inside {
        let filters = without_ids(&inside);
        for row in indexed!(&inside, &filters, terms)
            .select((logs::time_us, logs::level))
            .load_iter::<(i64, i32), DefaultLoadingMode>(c)?
        {
            count_row(row?, origin, width, &mut by);
        }
    }
    Ok(counted(by))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Filter, QueuedEntry};
    use crate::proto::LogEntry;
    use crate::storage::Store;
    use crate::storage::blocks::GROUP;
    use crate::storage::sqlite::{SqliteStore, temp_args};

    #[test]
    fn the_statements_use_the_block_size() {
        assert!(
            DROP_EMPTIED.ends_with(&format!(") / {BLOCK}")),
            "{DROP_EMPTIED}"
        );
        let up = include_str!("../../../migrations/sqlite/2026-12-10-000000_text_index/up.sql");
        assert!(up.contains(&format!("block of {BLOCK} consecutive ids")));
    }

    fn entry(n: u64) -> QueuedEntry {
        let words = ["alpha", "beta", "GAMMA", "delta", "needle", "x%y", "q\"t"];
        let mut message = format!(
            "{} {}",
            words[(n % 6) as usize],
            words[(n / 6 % 6) as usize]
        );
        if n.is_multiple_of(301) {
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
    }

    /// The same pages and counts through the index as through the scan it
    /// replaces, for texts that are everywhere, rare, absent, or made of
    /// trigrams that are each common but never together; with pages that
    /// begin, end and cross the index's reach.
    #[tokio::test]
    async fn the_index_answers_as_the_scan() {
        let (_dir, args) = temp_args();
        let store = SqliteStore::open(&args).expect("open");
        let total = (GROUP * BLOCK) as u64 * 2 + 3_001;
        for first in (0..total).step_by(997) {
            let batch = (first..(first + 997).min(total)).map(entry).collect();
            store.insert(batch).await.expect("insert");
        }
        let mut c = store.readers.get().expect("reader");
        let reach = text_index::table
            .select(text_index::blocks_below)
            .first::<i64>(&mut c)
            .expect("reach")
            * BLOCK;
        assert!(
            reach >= 2 * GROUP * BLOCK && reach < total as i64 - 1_000,
            "indexed up to {reach} of {total}"
        );
        let near = reach as u64;
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
                let pages = [
                    (0, None, None),
                    (13, None, None),
                    (0, Some(near + 40), None),
                    (0, Some(near - 40), None),
                    (7, None, Some(near - 3)),
                    (5_000, None, None),
                ];
                for (offset, cursor, after) in pages {
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
                        after_id: after,
                        ..Default::default()
                    };
                    let terms = terms(text).expect("trigrams");
                    let scan: Vec<i64> = super::super::page(&q)
                        .select(logs::id)
                        .load(&mut c)
                        .expect("scan");
                    let found: Vec<i64> = page(&mut c, &q, &terms, near)
                        .expect("index")
                        .iter()
                        .map(|r| r.id)
                        .collect();
                    assert_eq!(
                        found, scan,
                        "{text} {order:?} {offset} {cursor:?} {after:?}"
                    );
                    let all: i64 = filtered(&Query {
                        cursor: None,
                        ..q.clone()
                    })
                    .count()
                    .get_result(&mut c)
                    .expect("scan count");
                    assert_eq!(
                        count(&mut c, &q, &terms, near).expect("count"),
                        all,
                        "{text}"
                    );
                }
            }
        }
    }

    #[test]
    fn only_texts_of_a_trigram_or_more_are_looked_up() {
        assert_eq!(terms("ab"), None);
        assert_eq!(terms("abcd").map(|t| t.split(' ').count()), Some(2));
    }
}

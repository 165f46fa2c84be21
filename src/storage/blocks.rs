//! What the two stores' text indexes share: both index the trigrams
//! ([`super::grams`]) of blocks of consecutive ids, written a group of
//! blocks at a time once no more rows can land in them, and a search
//! splits at the index's reach: the rows inside are looked up, the few
//! past it scanned. Either half checks its rows with the scan's own filter,
//! so the index can only make a search faster, never change its answer.

use super::codec::LogRow;
use super::contract::{Order, Query};

/// Ids per block, the unit the index names. Larger blocks make the index
/// smaller and cheaper to write and each candidate block longer to check
/// (docs/benchmarks/text-search.md).
pub const BLOCK: i64 = 128;

/// Blocks indexed at once: about 8,000 rows. Fewer, larger writes cost
/// less per entry, and a search scans at most about this many rows past
/// the index.
pub const GROUP: i64 = 64;

/// `q` with its cursor turned into the id bound it amounts to, so both
/// halves of a split keep to it.
pub fn cursor_as_bound(q: &Query) -> Query {
    let mut q = q.clone();
    match (q.cursor.take(), q.order) {
        (None, _) => {}
        (Some(c), Order::NewestFirst) => q.before_id = Some(q.before_id.map_or(c, |b| b.min(c))),
        (Some(c), Order::OldestFirst) => q.after_id = Some(q.after_id.map_or(c, |a| a.max(c))),
    }
    q
}

/// `q` split at `reach`, the first id the index does not cover: the query
/// for the rows past it (to scan) and, when the index covers anything, the
/// one for the rows inside (to look up).
pub fn split_at(q: &Query, reach: u64) -> (Query, Option<Query>) {
    if reach == 0 {
        return (q.clone(), None);
    }
    let past = Query {
        after_id: Some(q.after_id.map_or(reach - 1, |a| a.max(reach - 1))),
        ..q.clone()
    };
    let inside = Query {
        before_id: Some(q.before_id.map_or(reach, |b| b.min(reach))),
        ..q.clone()
    };
    (past, Some(inside))
}

/// The rows a page takes from one half of a split, and how many rows it
/// skipped there for the page's offset.
#[derive(Debug, Default)]
pub struct Part {
    pub rows: Vec<LogRow>,
    pub skipped: u64,
}

impl Part {
    /// Takes `rows` (in the page's order): skipped while `offset` lasts,
    /// kept up to `limit`. True once the page is full.
    pub fn take(
        &mut self,
        rows: impl IntoIterator<Item = LogRow>,
        offset: u64,
        limit: usize,
    ) -> bool {
        for row in rows {
            if self.skipped < offset {
                self.skipped += 1;
            } else if self.rows.len() < limit {
                self.rows.push(row);
            } else {
                break;
            }
        }
        self.rows.len() >= limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_becomes_the_bound_it_amounts_to() {
        let q = Query {
            after_id: Some(10),
            before_id: Some(1000),
            cursor: Some(500),
            ..Query::default()
        };
        let newest = cursor_as_bound(&q);
        assert_eq!(
            (newest.after_id, newest.before_id, newest.cursor),
            (Some(10), Some(500), None)
        );
        let oldest = cursor_as_bound(&Query {
            order: Order::OldestFirst,
            ..q
        });
        assert_eq!((oldest.after_id, oldest.before_id), (Some(500), Some(1000)));
    }

    #[test]
    fn the_split_keeps_the_query_bounds() {
        let (past, inside) = split_at(&Query::default(), 0);
        assert_eq!((past.after_id, inside.is_none()), (None, true));
        let (past, inside) = split_at(&Query::default(), 8192);
        let inside = inside.expect("inside");
        assert_eq!((past.after_id, inside.before_id), (Some(8191), Some(8192)));
        let q = Query {
            after_id: Some(9000),
            before_id: Some(100),
            ..Query::default()
        };
        let (past, inside) = split_at(&q, 8192);
        assert_eq!(
            (past.after_id, inside.expect("inside").before_id),
            (Some(9000), Some(100))
        );
    }
}

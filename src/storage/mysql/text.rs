//! Text search through the MariaDB trigram index (`text_grams`, see its
//! migration and [`crate::storage::blocks`]): the groups of the index are
//! read a window at a time in the query's order, the sets of the text's
//! trigrams ANDed into candidate pieces (32 ids), and the rows of those go
//! through the scan's own filter, LIKE included.

use std::collections::BTreeMap;

use diesel::mysql::Mysql;
use diesel::prelude::*;
use diesel::sql_types::Bool;
use diesel_async::{AsyncMysqlConnection, RunQueryDsl};
use futures::StreamExt;

use super::indexer::{PIECE, PIECES, Pieces, from_bytes};
use super::{filtered, page as scan_page};
use crate::storage::blocks::{BLOCK, GROUP, Part, cursor_as_bound, split_at};
use crate::storage::codec::{LogRow, id_bound};
use crate::storage::contract::{Order, Query, StoreError};
use crate::storage::grams;
use crate::storage::histogram::{Counted, count_row, counted};
use crate::storage::schema::mysql::text_grams;
use crate::storage::schema::{logs, text_index};

/// Groups read at first; each window after is four times the last, up to
/// [`MOST_GROUPS`]: a common text fills a page from the newest groups, a
/// rare one goes through all of them in a few statements.
const FIRST_GROUPS: i64 = 8;
const MOST_GROUPS: i64 = 512;

/// Candidate pieces per statement that reads rows: at most 2,048 rows.
const PIECES_PER_READ: usize = 64;

/// The trigrams to look up for `text`, `None` when it is too short for the
/// index to help.
pub(super) fn trigrams(text: &str) -> Option<Vec<i32>> {
    let grams: Vec<i32> = grams::looked_up(text)
        .into_iter()
        .map(|g| g as i32)
        .collect();
    (!grams.is_empty()).then_some(grams)
}

/// The first id the index does not cover.
pub(super) async fn reach(c: &mut AsyncMysqlConnection) -> Result<u64, StoreError> {
    let blocks: i64 = text_index::table
        .select(text_index::blocks_below)
        .first(c)
        .await?;
    Ok(blocks.saturating_mul(BLOCK).max(0) as u64)
}

/// What a search reads before it splits, once per request so that its
/// count and its page split alike.
#[derive(Debug, Clone, Copy)]
pub(super) struct Bounds {
    /// The first id the index does not cover.
    reach: u64,
    /// The oldest id stored: the groups below it were emptied by retention,
    /// and walking them would only look up nothing. `None`: nothing stored.
    oldest: Option<i64>,
}

pub(super) async fn bounds(c: &mut AsyncMysqlConnection) -> Result<Bounds, StoreError> {
    let reach = reach(c).await?;
    let oldest: Option<i64> = logs::table
        .select(diesel::dsl::min(logs::id))
        .first(c)
        .await?;
    Ok(Bounds { reach, oldest })
}

/// `q` split at the index's reach (see [`split_at`]), with the half inside
/// kept above the oldest row stored.
fn split(q: &Query, b: Bounds) -> (Query, Option<Query>) {
    let (past, inside) = split_at(q, b.reach);
    let (Some(mut inside), Some(oldest)) = (inside, b.oldest) else {
        return (past, None);
    };
    let below = oldest.saturating_sub(1).max(0) as u64;
    inside.after_id = Some(inside.after_id.map_or(below, |a| a.max(below)));
    (past, Some(inside))
}

/// The page `q` asks for: the newer half first for newest first, the
/// older first otherwise, with what is left of the offset and the limit
/// carried from one to the next.
pub(super) async fn page(
    c: &mut AsyncMysqlConnection,
    q: &Query,
    grams: &[i32],
    b: Bounds,
) -> Result<Vec<LogRow>, StoreError> {
    let q = cursor_as_bound(q);
    let (past, inside) = split(&q, b);
    let limit = q.limit as usize;
    let mut halves = vec![(past, false)];
    halves.extend(inside.map(|inside| (inside, true)));
    if q.order == Order::OldestFirst {
        halves.reverse();
    }
    let (mut rows, mut offset) = (Vec::new(), q.offset);
    for (half, is_inside) in halves {
        if rows.len() >= limit {
            break;
        }
        let part = match is_inside {
            false => scanned(c, &half, offset, limit - rows.len()).await?,
            true => looked_up(c, &half, grams, offset, limit - rows.len()).await?,
        };
        offset -= part.skipped;
        rows.extend(part.rows);
    }
    Ok(rows)
}

/// Up to `limit` rows past `offset` of the scanned half.
async fn scanned(
    c: &mut AsyncMysqlConnection,
    q: &Query,
    offset: u64,
    limit: usize,
) -> Result<Part, StoreError> {
    let q = Query {
        offset,
        limit: limit as u32,
        ..q.clone()
    };
    let rows: Vec<LogRow> = scan_page(&q).select(LogRow::as_select()).load(c).await?;
    // An empty page past a nonzero offset means the half had fewer rows
    // than the offset, all of them skipped.
    let skipped = match rows.is_empty() && offset > 0 {
        false => offset,
        true => (filtered(&q).count().get_result::<i64>(c).await?.max(0) as u64).min(offset),
    };
    Ok(Part { rows, skipped })
}

/// Up to `limit` rows past `offset` of the half inside the index, read a
/// few candidate pieces at a time until the page is full.
async fn looked_up(
    c: &mut AsyncMysqlConnection,
    q: &Query,
    grams: &[i32],
    offset: u64,
    limit: usize,
) -> Result<Part, StoreError> {
    let mut part = Part::default();
    let rest = without_lists(q);
    let mut candidates = Candidates::new(q, grams);
    while let Some(pieces) = candidates.next(c).await? {
        for chunk in pieces.chunks(PIECES_PER_READ) {
            let b = filtered(&rest)
                .filter(in_pieces(chunk))
                .filter(lists_unindexed(q));
            let b = match q.order {
                Order::NewestFirst => b.order(logs::id.desc()),
                Order::OldestFirst => b.order(logs::id.asc()),
            };
            let rows: Vec<LogRow> = b.select(LogRow::as_select()).load(c).await?;
            if part.take(rows, offset, limit) {
                return Ok(part);
            }
        }
    }
    Ok(part)
}

/// How many rows `q` chooses, regardless of cursor, limit and offset.
pub(super) async fn count(
    c: &mut AsyncMysqlConnection,
    q: &Query,
    grams: &[i32],
    b: Bounds,
) -> Result<i64, StoreError> {
    let q = Query {
        cursor: None,
        ..q.clone()
    };
    let (past, inside) = split(&q, b);
    let mut n = filtered(&past).count().get_result::<i64>(c).await?;
    if let Some(inside) = inside {
        let rest = without_lists(&inside);
        let mut candidates = Candidates::new(&inside, grams);
        while let Some(pieces) = candidates.next(c).await? {
            for chunk in pieces.chunks(PIECES_PER_READ) {
                let b = filtered(&rest)
                    .filter(in_pieces(chunk))
                    .filter(lists_unindexed(&inside));
                n += b.count().get_result::<i64>(c).await?;
            }
        }
    }
    Ok(n)
}

/// The histogram's counts of the rows `q` chooses, streamed.
pub(super) async fn bucket_counts(
    c: &mut AsyncMysqlConnection,
    q: &Query,
    grams: &[i32],
    b: Bounds,
    origin: i64,
    width: i64,
) -> Result<Vec<Counted>, StoreError> {
    let (past, inside) = split(q, b);
    let mut by = BTreeMap::new();
    let mut rows = filtered(&past)
        .select((logs::time_us, logs::level))
        .load_stream::<(i64, i32)>(c)
        .await?;
    while let Some(row) = rows.next().await {
        count_row(row?, origin, width, &mut by);
    }
    drop(rows);
    if let Some(inside) = inside {
        let rest = without_lists(&inside);
        let mut candidates = Candidates::new(&inside, grams);
        while let Some(pieces) = candidates.next(c).await? {
            for chunk in pieces.chunks(PIECES_PER_READ) {
                let mut rows = filtered(&rest)
                    .filter(in_pieces(chunk))
                    .filter(lists_unindexed(&inside))
                    .select((logs::time_us, logs::level))
                    .load_stream::<(i64, i32)>(c)
                    .await?;
                while let Some(row) = rows.next().await {
                    count_row(row?, origin, width, &mut by);
                }
            }
        }
    }
    Ok(counted(by))
}

/// The rows of `blocks` (pieces, ascending or descending), as a filter on
/// `logs`: one id range per run of consecutive pieces.
fn in_pieces(pieces: &[i64]) -> Box<dyn BoxableExpression<logs::table, Mysql, SqlType = Bool>> {
    let mut runs: Vec<(i64, i64)> = Vec::new();
    for &b in pieces {
        match runs.last_mut() {
            Some((_, hi)) if b == *hi + 1 => *hi = b,
            Some((lo, _)) if b + 1 == *lo => *lo = b,
            _ => runs.push((b, b)),
        }
    }
    let range = |(lo, hi): (i64, i64)| logs::id.ge(lo * PIECE).and(logs::id.lt((hi + 1) * PIECE));
    let mut runs = runs.into_iter();
    // No pieces: a range with no ids.
    let first: Box<dyn BoxableExpression<logs::table, Mysql, SqlType = Bool>> =
        Box::new(range(runs.next().unwrap_or((0, -1))));
    runs.fold(first, |any, r| Box::new(any.or(range(r))))
}

/// `q` without its lists of services and levels, which the reads of
/// candidate pieces apply through [`lists_unindexed`] instead.
fn without_lists(q: &Query) -> Query {
    let mut rest = q.clone();
    rest.filter.services.clear();
    rest.filter.levels.clear();
    rest
}

/// `q`'s services and levels, compared through an expression no index can
/// serve. With a plain `IN` (and even with `BETWEEN x AND x`), MariaDB may
/// read the candidate pieces through `ref` on the service (or level)
/// index, every row of the service in turn: 0.8-28 s a search on 3M
/// entries. Kept off those indexes, it reads the pieces' own id ranges.
fn lists_unindexed(q: &Query) -> Box<dyn BoxableExpression<logs::table, Mysql, SqlType = Bool>> {
    use diesel::dsl::sql;
    use diesel::sql_types::{Integer, Text};
    type Expr = Box<dyn BoxableExpression<logs::table, Mysql, SqlType = Bool>>;
    let any = |parts: Vec<Expr>| -> Expr {
        parts
            .into_iter()
            .reduce(|a, b| Box::new(a.or(b)))
            .unwrap_or_else(|| Box::new(sql::<Bool>("TRUE")))
    };
    let services = q
        .filter
        .services
        .iter()
        .map(|s| {
            Box::new(sql::<Bool>("CONCAT(logs.service) = ").bind::<Text, _>(s.clone())) as Expr
        })
        .collect();
    let levels = q
        .filter
        .levels
        .iter()
        .map(|&l| Box::new(sql::<Bool>("(logs.level + 0) = ").bind::<Integer, _>(l)) as Expr)
        .collect();
    Box::new(any(services).and(any(levels)))
}

/// The candidate pieces of the half inside the index, a window of groups
/// at a time, in the query's order.
struct Candidates<'a> {
    /// The text's trigrams, all of which a candidate block holds.
    grams: &'a [i32],
    /// Groups not read yet, both ends included.
    lowest: i64,
    highest: i64,
    order: Order,
    /// Groups the next window reads.
    window: i64,
}

impl<'a> Candidates<'a> {
    fn new(q: &Query, grams: &'a [i32]) -> Self {
        let lowest = q
            .after_id
            .map_or(0, |a| id_bound(a).saturating_add(1) / BLOCK / GROUP);
        let highest = q
            .before_id
            .map_or(i64::MAX, |b| (id_bound(b) - 1).max(0) / BLOCK / GROUP);
        Candidates {
            grams,
            lowest,
            highest,
            order: q.order,
            window: FIRST_GROUPS,
        }
    }

    /// The next window's candidate pieces, `None` once every group is read.
    async fn next(&mut self, c: &mut AsyncMysqlConnection) -> Result<Option<Vec<i64>>, StoreError> {
        if self.lowest > self.highest {
            return Ok(None);
        }
        let span = self.window - 1;
        let (lo, hi) = match self.order {
            Order::NewestFirst => (
                self.highest.saturating_sub(span).max(self.lowest),
                self.highest,
            ),
            Order::OldestFirst => (
                self.lowest,
                self.lowest.saturating_add(span).min(self.highest),
            ),
        };
        match self.order {
            Order::NewestFirst => self.highest = lo - 1,
            Order::OldestFirst => self.lowest = hi + 1,
        }
        self.window = (self.window * 4).min(MOST_GROUPS);
        // Every (group, trigram) pair of the window: MariaDB looks each up in
        // the key, which begins with the group.
        let groups: Vec<i64> = (lo..=hi).collect();
        let rows: Vec<(i64, Vec<u8>)> = text_grams::table
            .filter(text_grams::grp.eq_any(groups))
            .filter(text_grams::gram.eq_any(self.grams))
            .select((text_grams::grp, text_grams::pieces))
            .load(c)
            .await?;
        Ok(Some(self.pieces_of(rows)))
    }

    /// The pieces every trigram's set names, group by group, in order.
    fn pieces_of(&self, rows: Vec<(i64, Vec<u8>)>) -> Vec<i64> {
        let mut groups: BTreeMap<i64, (usize, Pieces)> = BTreeMap::new();
        for (grp, bytes) in rows {
            let (seen, all) = groups.entry(grp).or_insert((0, [u64::MAX; PIECES / 64]));
            *seen += 1;
            for (a, w) in all.iter_mut().zip(from_bytes(&bytes)) {
                *a &= w;
            }
        }
        let mut found: Vec<i64> = groups
            .into_iter()
            .filter(|(_, (seen, _))| *seen == self.grams.len())
            .flat_map(|(grp, (_, all))| {
                (0..PIECES)
                    .filter(move |&p| all[p / 64] & (1 << (p % 64)) != 0)
                    .map(move |p| grp * PIECES as i64 + p as i64)
            })
            .collect();
        if self.order == Order::NewestFirst {
            found.reverse();
        }
        found
    }
}

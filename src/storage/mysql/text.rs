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
use crate::proto::Level;
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

/// Candidate pieces per statement when an index narrows them (see
/// [`narrowing`]): the ids are looked up in the index alone, and the rows
/// chosen are a fraction of the pieces' rows, so a read takes more pieces. Not
/// many more: MariaDB checks every row found against the whole list of
/// ranges, so a statement's cost grows faster than its ranges (measured on
/// 1M entries: 0.55 ms for 64 ranges, 2.6 ms for 256, 8 ms for 512).
const NARROWED_PIECES_PER_READ: usize = 128;

/// Most services, or levels, looked up through their index; past it the
/// pieces are read whole.
const MOST_INDEXED_SERVICES: usize = 4;
const MOST_INDEXED_LEVELS: usize = 3;

/// The index that narrows a read of candidate pieces to the ids `q` may
/// choose: its services', or its levels' when they are few (`WARN` and
/// above, say); `None` when it is neither and pieces are read whole.
fn narrowing(q: &Query) -> Option<Expr> {
    let f = &q.filter;
    if (1..=MOST_INDEXED_SERVICES).contains(&f.services.len()) {
        return Some(Box::new(logs::service.eq_any(f.services.clone())));
    }
    let levels: Vec<i32> = (Level::Trace as i32..=Level::Fatal as i32)
        .filter(|l| (f.levels.is_empty() || f.levels.contains(l)) && *l >= f.min_level)
        .collect();
    (levels.len() <= MOST_INDEXED_LEVELS).then(|| Box::new(logs::level.eq_any(levels)) as Expr)
}

/// Candidate pieces per statement that reads rows for `q`.
fn per_read(q: &Query) -> usize {
    match narrowing(q) {
        Some(_) => NARROWED_PIECES_PER_READ,
        None => PIECES_PER_READ,
    }
}

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
        for chunk in pieces.chunks(per_read(q)) {
            let b = filtered(&rest).filter(candidate_rows(c, q, chunk).await?);
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
            for chunk in pieces.chunks(per_read(&inside)) {
                let b = filtered(&rest).filter(candidate_rows(c, &inside, chunk).await?);
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
            for chunk in pieces.chunks(per_read(&inside)) {
                let chosen = candidate_rows(c, &inside, chunk).await?;
                let mut rows = filtered(&rest)
                    .filter(chosen)
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

type Expr = Box<dyn BoxableExpression<logs::table, Mysql, SqlType = Bool>>;

/// The ids of `pieces` (ascending or descending) as a condition on
/// `logs.id`: one `BETWEEN` per run of consecutive pieces, written out as
/// numbers in one flat `OR`, which MariaDB plans faster than the same
/// ranges as nested, bound expressions. No pieces: no row.
fn in_pieces(pieces: &[i64]) -> Expr {
    let mut runs: Vec<(i64, i64)> = Vec::new();
    for &b in pieces {
        match runs.last_mut() {
            Some((_, hi)) if b == *hi + 1 => *hi = b,
            Some((lo, _)) if b + 1 == *lo => *lo = b,
            _ => runs.push((b, b)),
        }
    }
    if runs.is_empty() {
        return Box::new(diesel::dsl::sql::<Bool>("FALSE"));
    }
    let ranges: Vec<String> = (runs.iter())
        .map(|&(lo, hi)| {
            format!(
                "logs.id BETWEEN {} AND {}",
                lo * PIECE,
                (hi + 1) * PIECE - 1
            )
        })
        .collect();
    Box::new(diesel::dsl::sql::<Bool>(&format!(
        "({})",
        ranges.join(" OR ")
    )))
}

/// Any of `parts`; with none, any row.
fn any_or_all(parts: impl IntoIterator<Item = Expr>) -> Expr {
    (parts.into_iter())
        .reduce(|a, b| Box::new(a.or(b)))
        .unwrap_or_else(|| Box::new(diesel::dsl::sql::<Bool>("TRUE")))
}

/// The rows of candidate `pieces` that `q` may choose, as a filter on
/// `logs` for the reads that apply the rest of `q` ([`without_lists`]).
///
/// With a few services (or levels) asked for, their ids in the pieces are
/// found first in the `(service, id)` (or `(level, id)`) index alone, and
/// only those rows are read whole: a share of a piece rather than all 32
/// rows of it.
async fn candidate_rows(
    c: &mut AsyncMysqlConnection,
    q: &Query,
    pieces: &[i64],
) -> Result<Expr, StoreError> {
    let lists = services_unindexed(&q.filter.services).and(levels_unindexed(&q.filter.levels));
    let Some(narrow) = narrowing(q) else {
        return Ok(Box::new(in_pieces(pieces).and(lists)));
    };
    let ids: Vec<i64> = logs::table
        .filter(narrow)
        .filter(in_pieces(pieces))
        .select(logs::id)
        .load(c)
        .await?;
    Ok(Box::new(logs::id.eq_any(ids).and(lists)))
}

/// `q` without its lists of services and levels, which the reads of
/// candidate pieces apply through [`candidate_rows`] instead.
fn without_lists(q: &Query) -> Query {
    let mut rest = q.clone();
    rest.filter.services.clear();
    rest.filter.levels.clear();
    rest
}

/// Any of `services`, compared through an expression no index can serve.
/// With a plain `IN` (and even with `BETWEEN x AND x`), MariaDB may read
/// the candidate pieces through `ref` on the service (or level) index,
/// every row of the service in turn: 0.8-28 s a search on 3M entries. Kept
/// off those indexes, it reads the pieces' own id ranges. None: any row.
fn services_unindexed(services: &[String]) -> Expr {
    use diesel::sql_types::Text;
    let each = services.iter().map(|s| {
        Box::new(diesel::dsl::sql::<Bool>("CONCAT(logs.service) = ").bind::<Text, _>(s.clone()))
            as Expr
    });
    any_or_all(each)
}

/// Any of `levels`, as [`services_unindexed`] compares services.
fn levels_unindexed(levels: &[i32]) -> Expr {
    use diesel::sql_types::Integer;
    let each = levels.iter().map(|&l| {
        Box::new(diesel::dsl::sql::<Bool>("(logs.level + 0) = ").bind::<Integer, _>(l)) as Expr
    });
    any_or_all(each)
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

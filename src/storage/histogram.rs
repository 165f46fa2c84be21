//! The volume histogram: entries counted by level over time buckets. Whole
//! minutes come from `log_counts`, which every store keeps as it writes and
//! deletes (entries per minute, service and level), so a day of ten million
//! entries is a few thousand rows. The partial minutes at the ends of the
//! range, buckets narrower than a minute, and filters the rollup cannot
//! answer (tags, text) count the matching rows themselves.

use std::collections::BTreeMap;

pub use super::contract::Counted;
use super::contract::{Query, Store, StoreError, resolve_within};
use crate::model::Filter;

pub const MINUTE_US: i64 = 60_000_000;
/// About 73,000 years in µs: ranges are cut to within this of the epoch.
const FAR_US: i64 = 1 << 61;
/// Buckets asked for when the request does not say.
pub const DEFAULT_BUCKETS: u32 = 100;
/// Most buckets one answer may have.
pub const MAX_BUCKETS: u32 = 1_000;
/// Bucket widths, in seconds: the narrowest that gives no more buckets than
/// asked for is used, so that bucket edges fall on round times.
const WIDTHS_S: [i64; 22] = [
    1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1_800, 3_600, 7_200, 10_800, 21_600, 43_200,
    86_400, 172_800, 604_800, 2_592_000, 31_536_000,
];

/// One histogram question.
#[derive(Debug, Clone, Default)]
pub struct HistogramQuery {
    pub filter: Filter,
    /// Inclusive start of the range (µs); the oldest match when `None`.
    pub start_us: Option<i64>,
    /// Exclusive end of the range (µs); just after the newest match when `None`.
    pub end_us: Option<i64>,
    /// About how many buckets to cut the range into.
    pub buckets: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bucket {
    pub start_us: i64,
    pub end_us: i64,
    /// Entries by level; levels with none are left out.
    pub counts: BTreeMap<i32, u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Histogram {
    /// Every bucket of the range, in time order, empty ones included.
    pub buckets: Vec<Bucket>,
}

/// The minute `time_us` falls in, in minutes since the epoch.
pub fn minute_of(time_us: i64) -> i64 {
    time_us.div_euclid(MINUTE_US)
}

/// `a / b` rounded up, for a positive `b`.
fn ceil_div(a: i64, b: i64) -> i64 {
    -(-a).div_euclid(b)
}

/// The narrowest round width whose buckets, on edges that are multiples of
/// it, cut `start..end` into at most `buckets`.
pub fn width_for(start: i64, end: i64, buckets: u32) -> i64 {
    let buckets = i64::from(buckets.clamp(1, MAX_BUCKETS));
    let fits = |w: i64| ceil_div(end - start.div_euclid(w) * w, w) <= buckets;
    WIDTHS_S
        .iter()
        .map(|s| s * 1_000_000)
        .find(|w| fits(*w))
        // Past a year a bucket: widths in whole years.
        .unwrap_or_else(|| {
            let year = WIDTHS_S[WIDTHS_S.len() - 1] * 1_000_000;
            let mut w = year * ceil_div(ceil_div(end - start, buckets), year);
            while !fits(w) {
                w += year;
            }
            w
        })
}

/// Whether the rollup holds what `filter` asks for: it knows services and
/// levels, not tags or text.
fn rollup_answers(filter: &Filter) -> bool {
    filter.tags.is_empty() && filter.text.is_empty()
}

/// Counts the entries `q` asks for.
pub async fn histogram<S: Store + ?Sized>(
    store: &S,
    q: HistogramQuery,
) -> Result<Histogram, StoreError> {
    let scope = Query {
        filter: q.filter.clone(),
        ..Default::default()
    };
    let Some(scope) = resolve_within(store, scope).await? else {
        return Ok(Histogram::default());
    };
    let filter = scope.filter;
    let (start, end) = match (q.start_us, q.end_us) {
        (Some(s), Some(e)) => (s, e),
        (s, e) => match store.minute_span(filter.clone()).await? {
            Some((first, last)) => (
                s.unwrap_or(first * MINUTE_US),
                e.unwrap_or((last + 1) * MINUTE_US),
            ),
            None => return Ok(Histogram::default()),
        },
    };
    // Far past any stored time, and far enough from i64's ends that bucket
    // arithmetic cannot overflow whatever a client asks.
    let (start, end) = (start.clamp(-FAR_US, FAR_US), end.clamp(-FAR_US, FAR_US));
    if start >= end {
        return Ok(Histogram::default());
    }
    let width = width_for(start, end, q.buckets);
    let origin = start.div_euclid(width) * width;
    let mut counted = Vec::new();
    let whole = ceil_div(start, MINUTE_US)..end.div_euclid(MINUTE_US);
    let rows = |start_us, end_us| Query {
        filter: filter.clone(),
        start_us: Some(start_us),
        end_us: Some(end_us),
        ..Default::default()
    };
    if width % MINUTE_US == 0 && rollup_answers(&filter) && !whole.is_empty() {
        counted.extend(store.minute_counts(filter.clone(), whole.clone()).await?);
        let edges = [
            (start, whole.start * MINUTE_US),
            (whole.end * MINUTE_US, end),
        ];
        for (s, e) in edges.into_iter().filter(|(s, e)| s < e) {
            counted.extend(store.bucket_counts(rows(s, e), origin, width).await?);
        }
    } else {
        counted.extend(store.bucket_counts(rows(start, end), origin, width).await?);
    }
    Ok(placed(&counted, origin, width, end))
}

/// `counted` summed into the buckets of `width` from `origin` to `end`.
fn placed(counted: &[Counted], origin: i64, width: i64, end: i64) -> Histogram {
    let n = usize::try_from(ceil_div(end - origin, width)).unwrap_or(0);
    let mut buckets: Vec<Bucket> = (0..n as i64)
        .map(|i| Bucket {
            start_us: origin + i * width,
            end_us: origin + (i + 1) * width,
            counts: BTreeMap::new(),
        })
        .collect();
    for c in counted {
        let i = (c.start_us - origin).div_euclid(width);
        if let Some(b) = usize::try_from(i).ok().and_then(|i| buckets.get_mut(i)) {
            *b.counts.entry(c.level).or_default() += c.n;
        }
    }
    Histogram { buckets }
}

/// A row `(time_us, level)` counted into its bucket of `width` from `origin`.
pub(super) fn count_row(
    (t, level): (i64, i32),
    origin: i64,
    width: i64,
    into: &mut BTreeMap<(i64, i32), u64>,
) {
    let start = origin + (t - origin).div_euclid(width) * width;
    *into.entry((start, level)).or_default() += 1;
}

/// What [`count_row`] gathered, as counts.
pub(super) fn counted(by: BTreeMap<(i64, i32), u64>) -> Vec<Counted> {
    by.into_iter()
        .map(|((start_us, level), n)| Counted { start_us, level, n })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_are_round_and_give_at_most_the_buckets_asked() {
        let s = 1_000_000;
        assert_eq!(width_for(0, 100 * s, 100), s);
        assert_eq!(width_for(0, 101 * s, 100), 2 * s);
        // Not on an edge: 0.5 s .. 100.5 s is 101 one-second buckets.
        assert_eq!(width_for(s / 2, 100 * s + s / 2, 100), 2 * s);
        assert_eq!(width_for(0, 24 * 3_600 * s, 100), 900 * s);
        assert_eq!(width_for(0, 3_600 * s, 100), 60 * s);
        assert_eq!(width_for(0, 1, 100), s);
        let year = 31_536_000 * s;
        assert_eq!(width_for(0, 10 * year, 100), year);
        for (start, end) in [(-year, 1_000 * year), (7, 333 * year + 5)] {
            let w = width_for(start, end, 100);
            assert_eq!(w % year, 0);
            assert!(ceil_div(end - start.div_euclid(w) * w, w) <= 100);
        }
    }

    #[test]
    fn counts_land_in_their_buckets_and_empty_buckets_stay() {
        let c = |start_us, level, n| Counted { start_us, level, n };
        let h = placed(
            &[c(0, 1, 2), c(15, 1, 1), c(25, 3, 4), c(5, 3, 1)],
            0,
            10,
            30,
        );
        let counts: Vec<Vec<(i32, u64)>> = h
            .buckets
            .iter()
            .map(|b| b.counts.iter().map(|(l, n)| (*l, *n)).collect())
            .collect();
        assert_eq!(
            counts,
            vec![vec![(1, 2), (3, 1)], vec![(1, 1)], vec![(3, 4)]]
        );
        assert_eq!((h.buckets[2].start_us, h.buckets[2].end_us), (20, 30));
    }

    #[test]
    fn rows_before_the_epoch_count_in_the_bucket_they_fall_in() {
        let mut by = BTreeMap::new();
        for row in [(-1, 2), (-10, 2), (0, 2), (9, 2)] {
            count_row(row, -10, 10, &mut by);
        }
        assert_eq!(
            counted(by),
            vec![
                Counted {
                    start_us: -10,
                    level: 2,
                    n: 2
                },
                Counted {
                    start_us: 0,
                    level: 2,
                    n: 2
                },
            ]
        );
        assert_eq!(minute_of(-1), -1);
        assert_eq!(minute_of(MINUTE_US), 1);
    }
}

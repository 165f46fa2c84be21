//! Reading and trimming `log_counts`, the per-minute rollup behind the
//! volume histogram (see [`histogram`](super::histogram)). Writers add to it
//! in each batch's transaction (`BatchRows::counts`); retention takes off
//! what it deletes, in its own transaction, with [`expired_counts`].

use std::collections::BTreeMap;

use super::histogram::minute_of;

/// What deleting rows `(service, level, time_us)` takes off `log_counts`, by
/// (minute, service, level).
pub fn expired_counts(rows: &[(String, i32, i64)]) -> BTreeMap<(i64, &str, i32), i64> {
    let mut by: BTreeMap<(i64, &str, i32), i64> = BTreeMap::new();
    for (service, level, time_us) in rows {
        *by.entry((minute_of(*time_us), service.as_str(), *level))
            .or_default() += 1;
    }
    by
}

/// Narrows the boxed `log_counts` query `$b` to the services and levels of
/// the filter `$f`: all of it the rollup can answer.
macro_rules! rollup_filter {
    ($b:ident, $f:ident) => {
        if !$f.services.is_empty() {
            $b = $b.filter(lc::service.eq_any(&$f.services));
        }
        if !$f.levels.is_empty() {
            $b = $b.filter(lc::level.eq_any(&$f.levels));
        }
        if $f.min_level > 0 {
            $b = $b.filter(lc::level.ge($f.min_level));
        }
    };
}
pub(crate) use rollup_filter;

/// Defines, for one diesel backend and its connection, the histogram's
/// reads of the rollup (`minute_counts_in`, `minute_span_in`) and
/// retention's `take_off_counts`. `$sum` is the backend's SQL for `SUM(n)`
/// as a BIGINT (MariaDB's SUM is a DECIMAL); `$run` the `RunQueryDsl` of the
/// connection, and `[async]`, `[.await]` given for an async one.
macro_rules! rollup_queries {
    ($conn:ty, $sum:literal, $run:path, [$($async:tt)*], [$($aw:tt)*]) => {
        use $crate::storage::rollup::rollup_filter;

        $($async)* fn minute_counts_in(
            c: &mut $conn,
            f: &$crate::model::Filter,
            minutes: std::ops::Range<i64>,
        ) -> Result<
            Vec<$crate::storage::histogram::Counted>,
            $crate::storage::contract::StoreError,
        > {
            use diesel::{ExpressionMethods, QueryDsl};
            use $run;
            use $crate::storage::histogram::{Counted, MINUTE_US};
            use $crate::storage::schema::log_counts as lc;
            let mut b = lc::table
                .filter(lc::minute.ge(minutes.start))
                .filter(lc::minute.lt(minutes.end))
                .group_by((lc::minute, lc::level))
                .select((
                    lc::minute,
                    lc::level,
                    diesel::dsl::sql::<diesel::sql_types::BigInt>($sum),
                ))
                .into_boxed();
            rollup_filter!(b, f);
            let rows: Vec<(i64, i32, i64)> = b.load(c) $($aw)* ?;
            Ok(rows
                .into_iter()
                .map(|(minute, level, n)| Counted {
                    start_us: minute * MINUTE_US,
                    level,
                    n: n.max(0) as u64,
                })
                .collect())
        }

        $($async)* fn minute_span_in(
            c: &mut $conn,
            f: &$crate::model::Filter,
        ) -> Result<Option<(i64, i64)>, $crate::storage::contract::StoreError> {
            use diesel::dsl::{max, min};
            use diesel::{ExpressionMethods, QueryDsl};
            use $run;
            use $crate::storage::schema::log_counts as lc;
            let mut b = lc::table
                .select((min(lc::minute), max(lc::minute)))
                .into_boxed();
            rollup_filter!(b, f);
            let (first, last): (Option<i64>, Option<i64>) = b.first(c) $($aw)* ?;
            Ok(first.zip(last))
        }

        /// Takes what deleting `rows` (service, level, time_us) removes off
        /// `log_counts`, dropping counts that reach zero.
        $($async)* fn take_off_counts(
            c: &mut $conn,
            rows: &[(String, i32, i64)],
        ) -> Result<(), $crate::storage::contract::StoreError> {
            use diesel::{ExpressionMethods, QueryDsl};
            use $run;
            use $crate::storage::schema::log_counts as lc;
            for ((minute, service, level), n) in $crate::storage::rollup::expired_counts(rows) {
                let key = lc::table
                    .filter(lc::minute.eq(minute))
                    .filter(lc::service.eq(service))
                    .filter(lc::level.eq(level));
                diesel::update(key).set(lc::n.eq(lc::n - n)).execute(c) $($aw)* ?;
                diesel::delete(key.filter(lc::n.le(0))).execute(c) $($aw)* ?;
            }
            Ok(())
        }
    };
}
pub(crate) use rollup_queries;

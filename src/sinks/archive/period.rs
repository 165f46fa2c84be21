//! Archive periods: how long a file stays open. A period is a span of the
//! archive's own wall clock, aligned to UTC multiples of its length since
//! the epoch (a `1d` period starts at midnight UTC), and names the files
//! written during it. Entry times play no part: a period, once closed, is
//! never written again, however late or early the entries in it say they are.

use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};

/// How period starts are written in file names: RFC 3339 without colons,
/// which some filesystems and tools refuse in names.
const STEM_FORMAT: &str = "%Y-%m-%dT%H-%M-%SZ";

/// One period of the archive's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    /// Its start, in seconds since the epoch (a multiple of `len`).
    pub start: i64,
    /// Its length in seconds, at least 1.
    pub len: i64,
}

impl Period {
    /// The period of length `len` seconds that `now_us` falls in.
    pub fn containing(now_us: i64, len: i64) -> Period {
        let len = len.max(1);
        let secs = now_us.div_euclid(1_000_000);
        Period {
            start: secs - secs.rem_euclid(len),
            len,
        }
    }

    /// When it ends, in microseconds since the epoch.
    pub fn end_us(&self) -> i64 {
        self.start
            .saturating_add(self.len)
            .saturating_mul(1_000_000)
    }

    /// Whether the clock at `now_us` is past its end.
    pub fn ended(&self, now_us: i64) -> bool {
        now_us >= self.end_us()
    }

    /// The start as a file name stem, e.g. `2026-12-06T00-00-00Z`.
    pub fn stem(&self) -> String {
        stem_of(self.start)
    }
}

/// `start` (seconds since the epoch) as a file name stem.
pub fn stem_of(start: i64) -> String {
    DateTime::<Utc>::from_timestamp(start, 0)
        .unwrap_or_default()
        .format(STEM_FORMAT)
        .to_string()
}

/// The start (seconds since the epoch) a file name stem stands for.
pub fn parse_stem(stem: &str) -> Option<i64> {
    NaiveDateTime::parse_from_str(stem, STEM_FORMAT)
        .ok()
        .map(|t| t.and_utc().timestamp())
}

/// A period length from the flag: whole seconds, at least one, since file
/// names have a resolution of one second.
pub fn length(d: Duration) -> Result<i64, String> {
    if d.subsec_nanos() != 0 || d.as_secs() == 0 {
        return Err(format!(
            "--archive-period {d:?} must be a whole number of seconds, at least 1s"
        ));
    }
    i64::try_from(d.as_secs()).map_err(|_| format!("--archive-period {d:?} is too long"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_align_to_utc_multiples() {
        // 2026-12-06T13:45:07.5Z
        let now = 1_796_564_707_500_000;
        let day = Period::containing(now, 86_400);
        assert_eq!(day.stem(), "2026-12-06T00-00-00Z");
        assert_eq!(parse_stem(&day.stem()), Some(day.start));
        assert!(!day.ended(now));
        assert!(day.ended(day.end_us()));
        let hour = Period::containing(now, 3_600);
        assert_eq!(hour.stem(), "2026-12-06T13-00-00Z");
        let three = Period::containing(now, 3);
        assert_eq!(three.stem(), "2026-12-06T13-45-06Z");
        assert_eq!(parse_stem("2026-12-06T13:45:06Z"), None);
    }

    #[test]
    fn lengths_are_whole_seconds() {
        assert_eq!(length(Duration::from_secs(86_400)), Ok(86_400));
        assert!(length(Duration::from_millis(1500)).is_err());
        assert!(length(Duration::ZERO).is_err());
    }
}

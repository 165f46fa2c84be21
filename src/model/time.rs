//! Conversions between protobuf timestamps, the microseconds we store, and
//! RFC 3339 text; and the durations every flag is written in. Storage keeps
//! microseconds since the Unix epoch (UTC), the precision MariaDB's
//! DATETIME(6) also holds.

use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use prost_types::Timestamp;

/// Now, in microseconds since the epoch.
pub fn now_micros() -> i64 {
    Utc::now().timestamp_micros()
}

pub fn to_micros(ts: &Timestamp) -> i64 {
    ts.seconds
        .saturating_mul(1_000_000)
        .saturating_add(i64::from(ts.nanos) / 1_000)
}

pub fn from_micros(us: i64) -> Timestamp {
    Timestamp {
        seconds: us.div_euclid(1_000_000),
        nanos: (us.rem_euclid(1_000_000) * 1_000) as i32,
    }
}

/// RFC 3339 in UTC with microseconds, e.g. `2026-11-23T03:04:05.123456Z`.
pub fn rfc3339(us: i64) -> String {
    DateTime::<Utc>::from_timestamp_micros(us)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Parses RFC 3339, or a date-time without offset (read as UTC, as the seed's
/// clients sent it), or a number of seconds since the epoch.
pub fn parse(text: &str) -> Option<i64> {
    let t = text.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return Some(dt.timestamp_micros());
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(t, fmt) {
            return Some(naive.and_utc().timestamp_micros());
        }
    }
    let secs: f64 = t.parse().ok()?;
    secs.is_finite().then_some((secs * 1e6) as i64)
}

/// Parses `250ms`, `15s`, `2m`, `1h`, `1d` or a plain number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 15s, 500ms or 2m"))?;
    let secs = match unit.trim() {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86400.0,
        u => {
            return Err(format!(
                "unknown unit {u:?} in {text:?}; use ms, s, m, h or d"
            ));
        }
    };
    Duration::try_from_secs_f64(secs).map_err(|e| format!("{text:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let us = 1_700_000_000_123_456;
        assert_eq!(to_micros(&from_micros(us)), us);
        assert_eq!(parse(&rfc3339(us)), Some(us));
        assert_eq!(parse("2024-03-24T13:01:00"), Some(1_711_285_260_000_000));
        assert_eq!(parse("1711285260.5"), Some(1_711_285_260_500_000));
        assert_eq!(parse("yesterday"), None);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("soon").is_err());
    }
}

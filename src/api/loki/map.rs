//! Loki streams to taillight entries. The mapping (README, "Logs from Loki
//! clients"):
//! - service: the first of the labels `service_name`, `service`, `app`,
//!   `job` (`unknown_service` without any, as Loki itself names it);
//! - level: `level`, else `detected_level`, else `severity`, from the line's structured
//!   metadata or the stream's labels; `unknown` is no level;
//! - attributes: the other labels, then the structured metadata (the later
//!   wins);
//! - message: the line; time: the entry's timestamp (the receipt time when
//!   it is zero).

use std::collections::HashMap;

use crate::api::UNKNOWN_SERVICE;
use crate::api::batch::Item;
use crate::model::{FieldViolation, level, time};
use crate::proto::LogEntry;

/// Labels that name the service, in the order they are looked at.
const SERVICE_LABELS: [&str; 4] = ["service_name", "service", "app", "job"];
/// Labels that carry the level, in the order they are looked at
/// (`severity` is python-logging-loki's).
const LEVEL_LABELS: [&str; 3] = ["level", "detected_level", "severity"];

/// One stream of a push, decoded from either body.
pub struct Stream {
    /// Its labels, or why they could not be read.
    pub labels: Result<Vec<(String, String)>, String>,
    pub lines: Vec<Line>,
}

/// One line of a stream.
pub struct Line {
    /// Unix time in nanoseconds; 0 when the sender gave none.
    pub nanos: i64,
    pub line: String,
    pub metadata: Vec<(String, String)>,
}

/// A push's lines as entries, with `(stream, line)` of each to name refused
/// ones.
pub fn entries(streams: Vec<Stream>) -> (Vec<Item>, Vec<(usize, usize)>) {
    let mut items = Vec::new();
    let mut coords = Vec::new();
    for (si, stream) in streams.into_iter().enumerate() {
        for (li, line) in stream.lines.into_iter().enumerate() {
            items.push(match &stream.labels {
                Ok(labels) => entry(labels, line),
                Err(why) => Err(FieldViolation::new("labels", why.clone())),
            });
            coords.push((si, li));
        }
    }
    (items, coords)
}

fn entry(labels: &[(String, String)], line: Line) -> Result<LogEntry, FieldViolation> {
    let mut attributes: HashMap<String, String> = labels.iter().cloned().collect();
    let service = SERVICE_LABELS
        .iter()
        .find_map(|k| attributes.remove_entry(*k).filter(|(_, v)| !v.is_empty()))
        .map_or_else(|| UNKNOWN_SERVICE.to_string(), |(_, v)| v);
    attributes.extend(line.metadata);
    let level = match LEVEL_LABELS
        .iter()
        .find_map(|k| attributes.remove_entry(*k))
    {
        None => 0,
        Some((_, v)) if v.is_empty() || v.eq_ignore_ascii_case("unknown") => 0,
        Some((k, v)) => level::parse(&v).map(|l| l as i32).ok_or_else(|| {
            FieldViolation::new(
                k,
                format!("{v:?} is not a level; use debug, info, warn, error..."),
            )
        })?,
    };
    Ok(LogEntry {
        service,
        level,
        message: line.line,
        attributes,
        time: (line.nanos != 0).then(|| time::from_micros(line.nanos.div_euclid(1000))),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Level;

    fn labels(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    fn line(metadata: &[(&str, &str)]) -> Line {
        Line {
            nanos: 1_700_000_000_123_456_789,
            line: "hello".into(),
            metadata: labels(metadata),
        }
    }

    #[test]
    fn service_level_and_attributes_come_from_labels_in_order() {
        let l = labels(&[
            ("job", "batch"),
            ("app", "api"),
            ("level", "warn"),
            ("env", "prod"),
        ]);
        let e = entry(&l, line(&[("user", "7")])).expect("valid");
        assert_eq!(e.service, "api");
        assert_eq!(e.level, Level::Warn as i32);
        assert_eq!(e.attributes.get("job").map(String::as_str), Some("batch"));
        assert_eq!(e.attributes.get("env").map(String::as_str), Some("prod"));
        assert_eq!(e.attributes.get("user").map(String::as_str), Some("7"));
        assert!(!e.attributes.contains_key("level") && !e.attributes.contains_key("app"));
        assert_eq!(
            e.time.map(|t| time::to_micros(&t)),
            Some(1_700_000_000_123_456)
        );
    }

    #[test]
    fn metadata_level_wins_and_unknown_is_no_level() {
        let e = entry(&labels(&[("level", "info")]), line(&[("level", "error")])).expect("valid");
        assert_eq!(e.level, Level::Error as i32);
        assert_eq!(e.service, UNKNOWN_SERVICE);
        let e = entry(&labels(&[("detected_level", "unknown")]), line(&[])).expect("valid");
        assert_eq!(e.level, 0);
        let bad = entry(&labels(&[("level", "loud")]), line(&[])).expect_err("refused");
        assert_eq!(bad.field, "level");
    }
}

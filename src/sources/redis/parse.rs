//! What a Redis message may be, turned into an entry: taillight's own JSON
//! entry, the seed system's JSON, a common logger's JSON object, or a plain
//! line of text. A stream entry is either fields named as a JSON entry's
//! keys or one field holding a message in any of those forms.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::model::json::{EntryIn, SeedEntry, level_from_json, time_from_json};
use crate::model::{FieldViolation, level, time};
use crate::proto::LogEntry;

/// Why a message could not become an entry; `reason` labels the metric.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reject {
    TooLarge {
        bytes: usize,
        limit: usize,
    },
    NotUtf8,
    /// JSON of the wrong shape, naming the field.
    Shape(FieldViolation),
    /// An entry that breaks a limit (found by the intake).
    Invalid(FieldViolation),
}

impl Reject {
    pub fn reason(&self) -> &'static str {
        match self {
            Reject::TooLarge { .. } => "too_large",
            Reject::NotUtf8 => "not_utf8",
            Reject::Shape(_) => "bad_shape",
            Reject::Invalid(_) => "invalid",
        }
    }
}

impl std::fmt::Display for Reject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reject::TooLarge { bytes, limit } => {
                write!(f, "message is {bytes} bytes, the limit is {limit}")
            }
            Reject::NotUtf8 => f.write_str("message is not UTF-8"),
            Reject::Shape(v) | Reject::Invalid(v) => write!(f, "{}: {}", v.field, v.description),
        }
    }
}

/// Keys of a logger's JSON object, in the order they are looked for.
const SERVICE_KEYS: [&str; 5] = ["service", "service_name", "app", "logger", "progname"];
const LEVEL_KEYS: [&str; 4] = ["level", "severity", "levelname", "lvl"];
const MESSAGE_KEYS: [&str; 2] = ["message", "msg"];
const TIME_KEYS: [&str; 4] = ["time", "timestamp", "ts", "@timestamp"];

/// One message's payload as an entry; a payload without a service of its
/// own belongs to `default_service`.
pub fn message(payload: &[u8], default_service: &str, limit: usize) -> Result<LogEntry, Reject> {
    if payload.len() > limit {
        return Err(Reject::TooLarge {
            bytes: payload.len(),
            limit,
        });
    }
    let text = std::str::from_utf8(payload).map_err(|_| Reject::NotUtf8)?;
    let trimmed = text.trim_start();
    if !trimmed.starts_with('{') {
        return Ok(plain_line(text, default_service));
    }
    // taillight's own entries straight from the text: the usual case, and
    // the one a busy channel should pay least for.
    if let Ok(entry) = serde_json::from_str::<EntryIn>(trimmed) {
        return own_entry(entry, default_service).map_err(Reject::Shape);
    }
    match serde_json::from_str::<Value>(trimmed) {
        Ok(Value::Object(object)) => {
            json_object(object, text, default_service).map_err(Reject::Shape)
        }
        _ => Ok(plain_line(text, default_service)),
    }
}

/// A stream entry's fields as an entry.
pub fn fields(
    fields: &[(String, Vec<u8>)],
    default_service: &str,
    limit: usize,
) -> Result<LogEntry, Reject> {
    let bytes: usize = fields.iter().map(|(k, v)| k.len() + v.len()).sum();
    if bytes > limit {
        return Err(Reject::TooLarge { bytes, limit });
    }
    if let [(name, value)] = fields
        && !is_entry_key(name)
    {
        return message(value, default_service, limit);
    }
    let mut object = Map::new();
    for (k, v) in fields {
        let v = std::str::from_utf8(v).map_err(|_| Reject::NotUtf8)?;
        // `tags` and `attributes` may hold JSON, as an entry's would.
        let value = match k.as_str() {
            "tags" | "attributes" => serde_json::from_str(v).unwrap_or(Value::String(v.into())),
            _ => Value::String(v.into()),
        };
        object.insert(k.clone(), value);
    }
    let raw = Value::Object(object.clone()).to_string();
    json_object(object, &raw, default_service).map_err(Reject::Shape)
}

fn is_entry_key(k: &str) -> bool {
    [
        &SERVICE_KEYS[..],
        &LEVEL_KEYS,
        &MESSAGE_KEYS,
        &TIME_KEYS,
        &["tags", "tag", "attributes"],
    ]
    .iter()
    .any(|keys| keys.contains(&k))
}

/// A JSON object: taillight's entry when it is exactly one, the seed's when
/// it names `service_name`, otherwise a logger's object.
fn json_object(
    object: Map<String, Value>,
    raw: &str,
    default_service: &str,
) -> Result<LogEntry, FieldViolation> {
    let value = Value::Object(object);
    if let Ok(entry) = EntryIn::deserialize(&value) {
        return own_entry(entry, default_service);
    }
    let Value::Object(object) = value else {
        return Err(FieldViolation::new("", "is not a JSON object"));
    };
    if object.contains_key("service_name") && object.keys().all(|k| is_seed_key(k)) {
        let seed: SeedEntry = serde_json::from_value(Value::Object(object))
            .map_err(|e| FieldViolation::new("", e.to_string()))?;
        return seed.into_proto();
    }
    logger_object(object, raw, default_service)
}

/// taillight's own entry, in the channel's service when it names none.
fn own_entry(entry: EntryIn, default_service: &str) -> Result<LogEntry, FieldViolation> {
    let mut e = entry.into_proto()?;
    if e.service.is_empty() {
        e.service = default_service.to_string();
    }
    Ok(e)
}

fn is_seed_key(k: &str) -> bool {
    ["service_name", "level", "message", "tag", "timestamp"].contains(&k)
}

/// A logger's object: the usual names for service, level, message and time,
/// every other key an attribute (nested objects flattened with dotted keys).
fn logger_object(
    mut object: Map<String, Value>,
    raw: &str,
    default_service: &str,
) -> Result<LogEntry, FieldViolation> {
    let service = match take(&mut object, &SERVICE_KEYS) {
        Some((_, Value::String(s))) => s,
        Some((k, v)) => return Err(FieldViolation::new(k, format!("{v} is not a string"))),
        None => default_service.to_string(),
    };
    let level = match take(&mut object, &LEVEL_KEYS) {
        Some((k, v)) => logger_level(&v).map_err(|mut e| {
            e.field = k.to_string();
            e
        })?,
        None => 0,
    };
    let message = match take(&mut object, &MESSAGE_KEYS) {
        Some((_, Value::String(s))) => s,
        Some((_, v)) => v.to_string(),
        // No message of its own: the line itself is what was logged.
        None => raw.trim_end().to_string(),
    };
    let time = match take(&mut object, &TIME_KEYS) {
        Some((k, v)) => Some(logger_time(k, &v)?),
        None => None,
    };
    let tags = tags(&mut object)?;
    let mut attributes = HashMap::new();
    if let Some(Value::Object(attrs)) = object.remove("attributes") {
        flatten("", Value::Object(attrs), &mut attributes);
    }
    flatten("", Value::Object(object), &mut attributes);
    let trace_id = id_field(&mut attributes, &["trace_id", "traceId", "trace.id"]);
    let span_id = id_field(&mut attributes, &["span_id", "spanId", "span.id"]);
    Ok(LogEntry {
        service,
        level,
        message,
        tags,
        attributes,
        time,
        trace_id,
        span_id,
    })
}

/// A logger's trace or span id, taken out of the attributes it was read into.
fn id_field(attributes: &mut HashMap<String, String>, keys: &[&str]) -> String {
    keys.iter()
        .find_map(|k| attributes.remove(*k))
        .unwrap_or_default()
}

/// The first of `keys` present, removed.
fn take(object: &mut Map<String, Value>, keys: &[&'static str]) -> Option<(&'static str, Value)> {
    keys.iter().find_map(|k| object.remove(*k).map(|v| (*k, v)))
}

/// `tags` as an array of strings or a comma list, or one `tag`.
fn tags(object: &mut Map<String, Value>) -> Result<Vec<String>, FieldViolation> {
    let mut out = Vec::new();
    match object.remove("tags") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => out.extend(s.split(',').map(str::trim).map(String::from)),
        Some(Value::Array(items)) => {
            for (i, t) in items.into_iter().enumerate() {
                match t {
                    Value::String(s) => out.push(s),
                    other => {
                        return Err(FieldViolation::new(
                            format!("tags[{i}]"),
                            format!("{other} is not a string"),
                        ));
                    }
                }
            }
        }
        Some(other) => {
            return Err(FieldViolation::new(
                "tags",
                format!("{other} is neither a list of strings nor a string"),
            ));
        }
    }
    if let Some(Value::String(t)) = object.remove("tag") {
        out.push(t);
    }
    out.retain(|t| !t.is_empty());
    Ok(out)
}

/// A level name, a taillight level number (1-6), or pino's and bunyan's
/// numbers (10 trace .. 60 fatal).
fn logger_level(v: &Value) -> Result<i32, FieldViolation> {
    if let Some(n) = v.as_i64()
        && (10..=60).contains(&n)
    {
        return Ok((n / 10) as i32);
    }
    level_from_json(v)
}

/// RFC 3339 text, or a number of seconds, milliseconds, microseconds or
/// nanoseconds since the epoch, told apart by size.
fn logger_time(field: &str, v: &Value) -> Result<prost_types::Timestamp, FieldViolation> {
    match v {
        Value::String(s) => time_from_json(s, field),
        Value::Number(n) => {
            let x = n.as_f64().unwrap_or(f64::NAN);
            let us = match x.abs() {
                a if a < 1e11 => x * 1e6,
                a if a < 1e14 => x * 1e3,
                a if a < 1e17 => x,
                _ => x / 1e3,
            };
            if us.is_finite() && us >= 0.0 && us < i64::MAX as f64 {
                Ok(time::from_micros(us as i64))
            } else {
                Err(FieldViolation::new(field, format!("{n} is not a time")))
            }
        }
        other => Err(FieldViolation::new(field, format!("{other} is not a time"))),
    }
}

/// `value`'s scalars as attributes named by their path (`http.status`);
/// arrays are kept as JSON text, nulls are left out.
fn flatten(prefix: &str, value: Value, out: &mut HashMap<String, String>) {
    match value {
        Value::Null => {}
        Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        Value::String(s) => {
            out.insert(prefix.to_string(), s);
        }
        other => {
            out.insert(prefix.to_string(), other.to_string());
        }
    }
}

/// A plain line: its level from a leading `ERROR`, `[warn]`, `error:` or
/// Ruby Logger's `W, [...]` where there is one, else INFO (left unset).
fn plain_line(text: &str, default_service: &str) -> LogEntry {
    let line = text.trim_end_matches(['\r', '\n']);
    LogEntry {
        service: default_service.to_string(),
        level: leading_level(line).unwrap_or(0),
        message: line.to_string(),
        ..Default::default()
    }
}

fn leading_level(line: &str) -> Option<i32> {
    let t = line.trim_start();
    // Ruby's Logger: "W, [2024-01-02T03:04:05.678901 #123]  WARN -- app: ..."
    let b = t.as_bytes();
    if b.len() > 3 && b[1] == b',' && b[2] == b' ' && b[3] == b'[' {
        let level = match b[0] {
            b'D' => level::parse("debug"),
            b'I' => level::parse("info"),
            b'W' => level::parse("warn"),
            b'E' => level::parse("error"),
            b'F' => level::parse("fatal"),
            _ => None,
        };
        return level.map(|l| l as i32);
    }
    let word = t.trim_start_matches(['[', '<', '(']);
    let end = word
        .find(|c: char| !c.is_ascii_alphabetic())
        .unwrap_or(word.len());
    let rest = &word[end..];
    // A level word alone, or one followed by a separator: not "Errorless
    // run" read as ERROR because it starts with a level's letters.
    let separated = rest.is_empty() || rest.starts_with([']', '>', ')', ':', ' ', '|', '\t', '-']);
    (end > 0 && separated)
        .then(|| level::parse(&word[..end]))
        .flatten()
        .map(|l| l as i32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Level;

    const LIMIT: usize = 1 << 20;

    fn parse(text: &str) -> LogEntry {
        message(text.as_bytes(), "logger", LIMIT).expect("parses")
    }

    #[test]
    fn taillight_and_seed_entries() {
        let e = parse(
            r#"{"service":"api","level":"warn","message":"m","tags":["a"],"attributes":{"n":1}}"#,
        );
        assert_eq!(
            (e.service.as_str(), e.level, e.message.as_str()),
            ("api", Level::Warn as i32, "m")
        );
        assert_eq!(e.tags, ["a"]);
        assert_eq!(e.attributes["n"], "1");
        let e = parse(
            r#"{"service_name":"shop","level":"ERROR","message":"x","tag":"pay","timestamp":"2024-03-24T13:01:00"}"#,
        );
        assert_eq!(
            (e.service.as_str(), e.level, e.tags.clone()),
            ("shop", Level::Error as i32, vec!["pay".to_string()])
        );
        assert_eq!(
            e.time.map(|t| time::to_micros(&t)),
            Some(1_711_285_260_000_000)
        );
        // No service: the channel's.
        assert_eq!(parse(r#"{"message":"m"}"#).service, "logger");
    }

    #[test]
    fn logger_objects() {
        let e = parse(
            r#"{"msg":"db slow","levelname":"WARNING","ts":1700000000.5,"app":"worker","req":{"id":7,"ok":true},"list":[1,2],"none":null}"#,
        );
        assert_eq!(
            (e.service.as_str(), e.level, e.message.as_str()),
            ("worker", Level::Warn as i32, "db slow")
        );
        assert_eq!(
            e.time.map(|t| time::to_micros(&t)),
            Some(1_700_000_000_500_000)
        );
        assert_eq!(e.attributes["req.id"], "7");
        assert_eq!(e.attributes["req.ok"], "true");
        assert_eq!(e.attributes["list"], "[1,2]");
        assert!(!e.attributes.contains_key("none"));
        // pino's numeric levels, millisecond times.
        let e = parse(r#"{"level":50,"time":1700000000123,"msg":"boom","service":"api"}"#);
        assert_eq!(e.level, Level::Error as i32);
        assert_eq!(
            e.time.map(|t| time::to_micros(&t)),
            Some(1_700_000_000_123_000)
        );
        // No message key: the line itself.
        let e = parse(r#"{"event":"login","user":"ann"}"#);
        assert_eq!(e.message, r#"{"event":"login","user":"ann"}"#);
        assert_eq!(e.attributes["user"], "ann");
    }

    #[test]
    fn wrong_shapes_name_the_field() {
        let bad = |t: &str| match message(t.as_bytes(), "logger", LIMIT) {
            Err(Reject::Shape(v)) => v.field,
            other => panic!("{t}: {other:?}"),
        };
        assert_eq!(bad(r#"{"msg":"m","service":5}"#), "service");
        assert_eq!(bad(r#"{"msg":"m","tags":[1]}"#), "tags[0]");
        assert_eq!(bad(r#"{"msg":"m","level":"loud"}"#), "level");
        assert_eq!(bad(r#"{"msg":"m","time":"yesterday"}"#), "time");
        assert_eq!(message(&[0xff, 0xfe], "l", LIMIT), Err(Reject::NotUtf8));
        assert_eq!(
            message(&[b'x'; 11], "l", 10).map_err(|e| e.reason()),
            Err("too_large")
        );
    }

    #[test]
    fn plain_lines_and_their_levels() {
        let level = |t: &str| parse(t).level;
        assert_eq!(level("ERROR something broke"), Level::Error as i32);
        assert_eq!(level("[warn] disk 91%"), Level::Warn as i32);
        assert_eq!(level("error: no such file"), Level::Error as i32);
        assert_eq!(
            level("W, [2024-01-02T03:04:05.678901 #12]  WARN -- app: slow"),
            Level::Warn as i32
        );
        assert_eq!(
            level("E, [2024-01-02T03:04:05 #12] ERROR -- : x"),
            Level::Error as i32
        );
        assert_eq!(level("Errorless run completed"), 0);
        assert_eq!(level("started in 3 s"), 0);
        let e = parse("hello world\n");
        assert_eq!(
            (e.service.as_str(), e.message.as_str()),
            ("logger", "hello world")
        );
        // JSON that is not an object is a line like any other.
        assert_eq!(parse("[1,2]").message, "[1,2]");
    }

    #[test]
    fn stream_fields() {
        let f = |pairs: &[(&str, &str)]| -> Vec<(String, Vec<u8>)> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
                .collect()
        };
        let e = fields(
            &f(&[
                ("service", "api"),
                ("level", "error"),
                ("message", "m"),
                ("tags", r#"["a","b"]"#),
                ("host", "h1"),
            ]),
            "s",
            LIMIT,
        )
        .expect("fields");
        assert_eq!(
            (e.service.as_str(), e.level, e.tags.clone()),
            ("api", Level::Error as i32, vec!["a".into(), "b".into()])
        );
        assert_eq!(e.attributes["host"], "h1");
        // One field holding a message in any form.
        let e = fields(&f(&[("line", r#"{"msg":"x","level":"warn"}"#)]), "s", LIMIT)
            .expect("one field");
        assert_eq!(
            (e.service.as_str(), e.message.as_str(), e.level),
            ("s", "x", Level::Warn as i32)
        );
        let e = fields(&f(&[("data", "[error] plain")]), "s", LIMIT).expect("plain");
        assert_eq!(e.level, Level::Error as i32);
    }
}

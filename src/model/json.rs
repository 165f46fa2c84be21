//! JSON shapes of entries and records, following the proto3 JSON mapping for
//! field names (lowerCamelCase; the proto names are accepted too). Levels are
//! written as their short names (`"WARN"`) and read case-insensitively with
//! aliases; 64-bit integers are written as numbers (ids stay far below 2^53)
//! and read from numbers or strings.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::violation::FieldViolation;
use super::{level, time};
use crate::proto::{LogEntry, LogRecord};

/// An entry as clients send it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "an entry (a JSON object)")]
pub struct EntryIn {
    #[serde(default)]
    pub service: String,
    #[serde(default)]
    pub level: Option<Value>,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub attributes: HashMap<String, Value>,
    #[serde(default)]
    pub time: Option<String>,
    /// Hex; `traceId` (the gateway's records, OTLP's JSON) is read too.
    #[serde(default, alias = "traceId")]
    pub trace_id: String,
    #[serde(default, alias = "spanId")]
    pub span_id: String,
}

/// Whether `n` was an integer too large for 64 bits (read as a float, it
/// has lost digits).
fn beyond_64_bits(n: &serde_json::Number) -> bool {
    n.as_f64()
        .is_some_and(|f| !n.is_i64() && !n.is_u64() && f.fract() == 0.0 && f.abs() >= 2f64.powi(63))
}

/// Reads a level from a name or an enum number.
pub fn level_from_json(v: &Value) -> Result<i32, FieldViolation> {
    let parsed = match v {
        Value::String(s) => level::parse(s),
        Value::Number(n) => n.as_i64().and_then(|n| level::parse(&n.to_string())),
        Value::Null => return Ok(0),
        _ => None,
    };
    parsed.map(|l| l as i32).ok_or_else(|| {
        FieldViolation::new(
            "level",
            format!("{v} is not a level; use TRACE, DEBUG, INFO, WARN, ERROR or FATAL"),
        )
    })
}

pub fn time_from_json(text: &str, field: &str) -> Result<prost_types::Timestamp, FieldViolation> {
    time::parse(text)
        .map(time::from_micros)
        .ok_or_else(|| FieldViolation::new(field, format!("{text:?} is not an RFC 3339 time")))
}

impl EntryIn {
    pub fn into_proto(self) -> Result<LogEntry, FieldViolation> {
        let level = match &self.level {
            Some(v) => level_from_json(v)?,
            None => 0,
        };
        let mut attributes = HashMap::with_capacity(self.attributes.len());
        for (k, v) in self.attributes {
            let bad = |why: &str| Err(FieldViolation::new(format!("attributes.{k}"), why));
            let s = match v {
                Value::String(s) => s,
                Value::Number(n) if beyond_64_bits(&n) => {
                    return bad(
                        "is an integer beyond 64 bits, which would lose digits; send it as a string",
                    );
                }
                Value::Number(_) | Value::Bool(_) => v.to_string(),
                // Stored as "" it would read as an empty value that was sent.
                Value::Null => return bad("is null; leave the attribute out or send a string"),
                _ => return bad("must be a string, number or boolean"),
            };
            attributes.insert(k, s);
        }
        Ok(LogEntry {
            service: self.service,
            level,
            message: self.message,
            tags: self.tags,
            attributes,
            time: self
                .time
                .as_deref()
                .map(|t| time_from_json(t, "time"))
                .transpose()?,
            trace_id: self.trace_id,
            span_id: self.span_id,
        })
    }
}

/// The seed system's entry (`POST /log/set`, and what its publishers send):
/// one tag, and a timestamp without zone (read as UTC).
#[derive(Debug, Deserialize)]
pub struct SeedEntry {
    #[serde(default)]
    pub service_name: String,
    #[serde(default)]
    pub level: Option<Value>,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub tag: Option<String>,
    #[serde(default)]
    pub timestamp: Option<String>,
}

impl SeedEntry {
    /// The entry, with violations named by the seed's field names.
    pub fn into_proto(self) -> Result<LogEntry, FieldViolation> {
        Ok(LogEntry {
            service: self.service_name,
            level: match &self.level {
                Some(v) => level_from_json(v).map_err(|mut v| {
                    v.field = "level".into();
                    v
                })?,
                None => 0,
            },
            message: self.message,
            tags: self.tag.into_iter().filter(|t| !t.is_empty()).collect(),
            attributes: HashMap::new(),
            time: self
                .timestamp
                .as_deref()
                .map(|t| time_from_json(t, "timestamp"))
                .transpose()?,
            ..Default::default()
        })
    }
}

/// A stored record as the seed system's readers take it (its page and its
/// WebSocket): the first tag as `tag`, all of them as `tags`.
#[derive(Debug, Serialize)]
pub struct SeedRecordOut<'a> {
    pub id: u64,
    pub service_name: &'a str,
    pub level: &'static str,
    pub message: &'a str,
    pub tag: &'a str,
    pub tags: &'a [String],
    pub timestamp: String,
}

impl<'a> From<&'a LogRecord> for SeedRecordOut<'a> {
    fn from(r: &'a LogRecord) -> Self {
        SeedRecordOut {
            id: r.id,
            service_name: &r.service,
            level: level::name(r.level),
            message: &r.message,
            tag: r.tags.first().map_or("", String::as_str),
            tags: &r.tags,
            timestamp: r
                .time
                .as_ref()
                .map(|t| time::rfc3339(time::to_micros(t)))
                .unwrap_or_default(),
        }
    }
}

/// Splits a request body into entries: one JSON object, an array of them,
/// or newline-delimited objects. Each element is parsed on its own, so one
/// malformed entry does not hide the others; a body that is not JSON at all
/// is one violation of `body`.
pub fn parse_entries<T: serde::de::DeserializeOwned>(
    body: &[u8],
) -> Result<Vec<Result<T, FieldViolation>>, FieldViolation> {
    let mut values = Vec::new();
    for v in serde_json::Deserializer::from_slice(body).into_iter::<Value>() {
        match v {
            Ok(v) => values.push(v),
            Err(e) => {
                return Err(FieldViolation::new(
                    "body",
                    format!("is not valid JSON: {e}"),
                ));
            }
        }
    }
    if values.len() == 1
        && values[0].is_array()
        && let Some(Value::Array(items)) = values.pop()
    {
        values = items;
    }
    Ok(values
        .into_iter()
        .map(|v| {
            serde_path_to_error::deserialize(v).map_err(|e| {
                let path = e.path().to_string();
                let field = if path == "." { String::new() } else { path };
                FieldViolation::new(field, e.into_inner().to_string())
            })
        })
        .collect())
}

/// A stored record as the gateway returns it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordOut<'a> {
    pub id: u64,
    pub service: &'a str,
    pub level: &'static str,
    pub message: &'a str,
    pub tags: &'a [String],
    /// Written with sorted keys, so the same record is always the same
    /// bytes (exports and archives compare and compress the better for it).
    #[serde(serialize_with = "sorted")]
    pub attributes: &'a HashMap<String, String>,
    pub time: String,
    pub received_time: String,
    /// Left out when the record has none, as most do.
    #[serde(skip_serializing_if = "str::is_empty")]
    pub trace_id: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub span_id: &'a str,
}

fn sorted<S: serde::Serializer>(map: &&HashMap<String, String>, s: S) -> Result<S::Ok, S::Error> {
    s.collect_map(map.iter().collect::<std::collections::BTreeMap<_, _>>())
}

impl<'a> From<&'a LogRecord> for RecordOut<'a> {
    fn from(r: &'a LogRecord) -> Self {
        RecordOut {
            id: r.id,
            service: &r.service,
            level: level::name(r.level),
            message: &r.message,
            tags: &r.tags,
            attributes: &r.attributes,
            time: r
                .time
                .as_ref()
                .map(|t| time::rfc3339(time::to_micros(t)))
                .unwrap_or_default(),
            received_time: r
                .received_time
                .as_ref()
                .map(|t| time::rfc3339(time::to_micros(t)))
                .unwrap_or_default(),
            trace_id: &r.trace_id,
            span_id: &r.span_id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// Any body parses to entries or to violations that name a field;
        /// never a panic.
        #[test]
        fn any_body_parses_or_names_a_field(body in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            if let Ok(items) = parse_entries::<EntryIn>(&body) {
                for item in items {
                    if let Err(v) = item.and_then(EntryIn::into_proto) {
                        proptest::prop_assert!(!v.description.is_empty());
                    }
                }
            }
        }

        /// An entry sent as JSON decodes to what it says.
        #[test]
        fn an_entry_decodes_to_what_it_says(
            service in "[a-z0-9._:/-]{1,20}",
            message in ".{0,60}",
            tags in proptest::collection::vec(".{1,10}", 0..5),
            attrs in proptest::collection::hash_map("[a-m]{1,8}", ".{0,8}", 0..5),
            n in proptest::num::i64::ANY,
        ) {
            let mut attributes: HashMap<String, Value> =
                attrs.iter().map(|(k, v)| (k.clone(), Value::from(v.clone()))).collect();
            attributes.insert("zz".into(), Value::from(n));
            let body = serde_json::json!({
                "service": service, "level": "warn", "message": message,
                "tags": tags, "attributes": attributes,
            });
            let items = parse_entries::<EntryIn>(body.to_string().as_bytes()).expect("parses");
            let e = items.into_iter().next().expect("one").and_then(EntryIn::into_proto).expect("valid");
            proptest::prop_assert_eq!(&e.service, &service);
            proptest::prop_assert_eq!(&e.message, &message);
            proptest::prop_assert_eq!(&e.tags, &tags);
            proptest::prop_assert_eq!(e.level, crate::proto::Level::Warn as i32);
            proptest::prop_assert_eq!(e.attributes.get("zz"), Some(&n.to_string()));
            for (k, v) in &attrs {
                proptest::prop_assert_eq!(e.attributes.get(k), Some(v));
            }
        }
    }
}

//! OTLP log records to taillight entries. The mapping (README, "Logs from
//! OpenTelemetry"):
//! - service: the resource's `service.name` (`unknown_service` without one,
//!   as OpenTelemetry's own default);
//! - level: the severity number's range (1-4 TRACE ... 21-24 FATAL), else the
//!   severity text read as a level name, else unspecified (INFO);
//! - message: a string body as it is, any other body as JSON text;
//! - attributes: resource, then scope, then the record's own (the later wins),
//!   nested maps flattened with dotted keys, arrays as JSON text, bytes as
//!   base64; the scope's name as `otel.scope.name`, an event's name as
//!   `event.name`;
//! - tags: the attribute named by `--otlp-tags-attribute` (an array of
//!   strings, or one comma-separated string), from any of the three levels;
//! - time: the record's time, else its observed time, else the receipt time;
//! - trace and span ids as lower-case hex when valid (16 and 8 bytes, not
//!   all zero), as OTLP tells receivers to treat anything else as absent.

use std::collections::HashMap;

use base64::Engine;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use serde_json::json;

use crate::api::UNKNOWN_SERVICE;
use crate::api::batch::Item;
use crate::model::{FieldViolation, level, time};
use crate::proto::{Level, LogEntry};

/// A request's records as entries.
pub struct Mapped {
    /// Each record as an entry, or why it cannot be one.
    pub items: Vec<Item>,
    /// Where each item came from, to name refused ones.
    pub paths: Paths,
}

/// The (resource, scope, record) index of each item.
#[derive(Default)]
pub struct Paths(Vec<(usize, usize, usize)>);

impl Paths {
    /// The OTLP path of item `i`, as OTLP/JSON spells it.
    pub fn path(&self, i: usize) -> String {
        let (r, s, l) = self.0.get(i).copied().unwrap_or_default();
        format!("resourceLogs[{r}].scopeLogs[{s}].logRecords[{l}]")
    }
}

/// Attributes and tags gathered from one level (resource, scope, record).
#[derive(Default, Clone)]
struct Context {
    attributes: HashMap<String, String>,
    tags: Vec<String>,
}

impl Context {
    /// Adds `kvs`, later keys winning; the tags attribute goes to tags.
    fn add(&mut self, kvs: Vec<KeyValue>, tags_key: &str) {
        for kv in kvs {
            let value = kv.value.and_then(|v| v.value);
            if kv.key == tags_key {
                self.add_tags(value);
            } else {
                flatten(kv.key, value, &mut self.attributes);
            }
        }
    }

    fn add_tags(&mut self, value: Option<Value>) {
        let found: Vec<String> = match value {
            Some(Value::ArrayValue(a)) => {
                a.values.into_iter().map(|v| scalar_text(v.value)).collect()
            }
            Some(Value::StringValue(s)) => s.split(',').map(|t| t.trim().to_string()).collect(),
            other => vec![scalar_text(other)],
        };
        for t in found {
            if !t.is_empty() && !self.tags.contains(&t) {
                self.tags.push(t);
            }
        }
    }
}

/// Every record of `req`, mapped. `tags_key` is the tags attribute.
pub fn request(req: ExportLogsServiceRequest, tags_key: &str) -> Mapped {
    let mut out = Mapped {
        items: Vec::new(),
        paths: Paths::default(),
    };
    for (ri, rl) in req.resource_logs.into_iter().enumerate() {
        let mut resource = Context::default();
        resource.add(
            rl.resource.map(|r| r.attributes).unwrap_or_default(),
            tags_key,
        );
        let service = resource
            .attributes
            .remove("service.name")
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| UNKNOWN_SERVICE.to_string());
        for (si, sl) in rl.scope_logs.into_iter().enumerate() {
            let mut scope = resource.clone();
            if let Some(s) = sl.scope {
                scope.add(s.attributes, tags_key);
                if !s.name.is_empty() {
                    scope.attributes.insert("otel.scope.name".into(), s.name);
                }
            }
            for (li, record) in sl.log_records.into_iter().enumerate() {
                out.items
                    .push(entry(record, &service, scope.clone(), tags_key));
                out.paths.0.push((ri, si, li));
            }
        }
    }
    out
}

fn entry(
    r: LogRecord,
    service: &str,
    mut cx: Context,
    tags_key: &str,
) -> Result<LogEntry, FieldViolation> {
    let level = severity(r.severity_number, &r.severity_text)?;
    cx.add(r.attributes, tags_key);
    if !r.event_name.is_empty() {
        cx.attributes.insert("event.name".into(), r.event_name);
    }
    let nanos = if r.time_unix_nano != 0 {
        r.time_unix_nano
    } else {
        r.observed_time_unix_nano
    };
    Ok(LogEntry {
        service: service.to_string(),
        level,
        message: match r.body.and_then(|b| b.value) {
            Some(Value::StringValue(s)) => s,
            None => String::new(),
            other => to_json(other).to_string(),
        },
        tags: cx.tags,
        attributes: cx.attributes,
        time: (nanos != 0).then(|| time::from_micros((nanos / 1000) as i64)),
        trace_id: id_hex(&r.trace_id, 16),
        span_id: id_hex(&r.span_id, 8),
    })
}

/// The level of a severity number, or of the text when the number is unset.
fn severity(number: i32, text: &str) -> Result<i32, FieldViolation> {
    let level = match number {
        0 if text.is_empty() => Level::Unspecified,
        0 => level::parse(text).ok_or_else(|| {
            FieldViolation::new(
                "severityText",
                format!("{text:?} is not a level; send a severityNumber or a name such as WARN"),
            )
        })?,
        1..=4 => Level::Trace,
        5..=8 => Level::Debug,
        9..=12 => Level::Info,
        13..=16 => Level::Warn,
        17..=20 => Level::Error,
        21..=24 => Level::Fatal,
        n => {
            return Err(FieldViolation::new(
                "severityNumber",
                format!("{n} is not a severity; OTLP's run from 1 to 24"),
            ));
        }
    };
    Ok(level as i32)
}

/// A valid id as lower-case hex; anything else is no id.
fn id_hex(bytes: &[u8], len: usize) -> String {
    if bytes.len() != len || bytes.iter().all(|b| *b == 0) {
        return String::new();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes `value` under `key`, a map's entries under `key.entry`.
fn flatten(key: String, value: Option<Value>, out: &mut HashMap<String, String>) {
    match value {
        Some(Value::KvlistValue(list)) if !list.values.is_empty() => {
            for kv in list.values {
                flatten(
                    format!("{key}.{}", kv.key),
                    kv.value.and_then(|v| v.value),
                    out,
                );
            }
        }
        Some(v @ (Value::ArrayValue(_) | Value::KvlistValue(_))) => {
            out.insert(key, to_json(Some(v)).to_string());
        }
        other => {
            out.insert(key, scalar_text(other));
        }
    }
}

/// A scalar as text: strings as they are, numbers and booleans printed,
/// bytes as base64; a map or array as JSON text.
fn scalar_text(value: Option<Value>) -> String {
    match value {
        Some(Value::StringValue(s)) => s,
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::DoubleValue(d)) => d.to_string(),
        Some(Value::BytesValue(b)) => base64::engine::general_purpose::STANDARD.encode(b),
        None => String::new(),
        other => to_json(other).to_string(),
    }
}

fn to_json(value: Option<Value>) -> serde_json::Value {
    let any = |v: AnyValue| to_json(v.value);
    match value {
        None => serde_json::Value::Null,
        Some(Value::StringValue(s)) => json!(s),
        Some(Value::BoolValue(b)) => json!(b),
        Some(Value::IntValue(i)) => json!(i),
        Some(Value::DoubleValue(d)) => json!(d),
        Some(Value::BytesValue(b)) => json!(base64::engine::general_purpose::STANDARD.encode(b)),
        Some(Value::ArrayValue(a)) => a.values.into_iter().map(any).collect(),
        // An index into a string table only profiles carry; logs have none
        // to look it up in, so the index is all there is to show.
        Some(Value::StringValueStrindex(i)) => json!(i),
        Some(Value::KvlistValue(l)) => l
            .values
            .into_iter()
            .map(|kv| (kv.key, kv.value.map(any).unwrap_or_default()))
            .collect::<serde_json::Map<_, _>>()
            .into(),
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::common::v1::{ArrayValue, KeyValueList};

    use super::*;

    fn kv(key: &str, value: Value) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(value) }),
            ..Default::default()
        }
    }

    fn s(text: &str) -> Value {
        Value::StringValue(text.into())
    }

    #[test]
    fn nested_maps_flatten_and_arrays_become_json() {
        let mut out = HashMap::new();
        let nested = Value::KvlistValue(KeyValueList {
            values: vec![
                kv("method", s("GET")),
                kv("status", Value::IntValue(200)),
                kv(
                    "deep",
                    Value::KvlistValue(KeyValueList {
                        values: vec![kv("ok", Value::BoolValue(true))],
                    }),
                ),
            ],
        });
        flatten("http".into(), Some(nested), &mut out);
        let list = Value::ArrayValue(ArrayValue {
            values: vec![
                AnyValue {
                    value: Some(s("a")),
                },
                AnyValue {
                    value: Some(Value::IntValue(1)),
                },
            ],
        });
        flatten("list".into(), Some(list), &mut out);
        assert_eq!(out["http.method"], "GET");
        assert_eq!(out["http.status"], "200");
        assert_eq!(out["http.deep.ok"], "true");
        assert_eq!(out["list"], r#"["a",1]"#);
    }

    #[test]
    fn severities_map_by_range_then_text() {
        assert_eq!(severity(9, "whatever"), Ok(Level::Info as i32));
        assert_eq!(severity(17, ""), Ok(Level::Error as i32));
        assert_eq!(severity(24, ""), Ok(Level::Fatal as i32));
        assert_eq!(severity(0, "warning"), Ok(Level::Warn as i32));
        assert_eq!(severity(0, ""), Ok(Level::Unspecified as i32));
        assert_eq!(
            severity(25, "").map_err(|v| v.field),
            Err("severityNumber".into())
        );
        assert_eq!(
            severity(0, "loud").map_err(|v| v.field),
            Err("severityText".into())
        );
    }

    #[test]
    fn ids_are_kept_only_when_valid() {
        assert_eq!(id_hex(&[0xab; 8], 8), "abababababababab");
        assert_eq!(id_hex(&[0; 8], 8), "");
        assert_eq!(id_hex(&[1; 7], 8), "");
    }
}

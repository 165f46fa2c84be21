//! The envelope an entry travels in on the topic: the fields of a
//! `LogRecord` (without an id) and, beside them, what only the writer needs.
//! Messages produced before a field was added decode with it unset, and a
//! writer that does not know a field skips it, so nodes of different
//! versions can share a topic.

use std::collections::HashMap;

use prost::Message as _;
use prost_types::Timestamp;

use crate::model::time;
use crate::model::{QueuedEntry, SourcePosition};
use crate::proto::LogEntry;

/// `LogRecord`'s fields 2 to 8 (id 1 is never set on the topic), then ours.
#[derive(Clone, PartialEq, prost::Message)]
struct Envelope {
    #[prost(string, tag = "2")]
    service: String,
    #[prost(int32, tag = "3")]
    level: i32,
    #[prost(string, tag = "4")]
    message: String,
    #[prost(string, repeated, tag = "5")]
    tags: Vec<String>,
    #[prost(map = "string, string", tag = "6")]
    attributes: HashMap<String, String>,
    #[prost(message, optional, tag = "7")]
    time: Option<Timestamp>,
    #[prost(message, optional, tag = "8")]
    received_time: Option<Timestamp>,
    #[prost(string, tag = "9")]
    trace_id: String,
    #[prost(string, tag = "10")]
    span_id: String,
    /// The entry's [`QueuedEntry::dedup_key`].
    #[prost(string, optional, tag = "15")]
    dedup_key: Option<String>,
}

pub(super) fn encode(q: &QueuedEntry) -> Vec<u8> {
    Envelope {
        service: q.entry.service.clone(),
        level: q.entry.level,
        message: q.entry.message.clone(),
        tags: q.entry.tags.clone(),
        attributes: q.entry.attributes.clone(),
        time: q.entry.time,
        received_time: Some(time::from_micros(q.received_us)),
        trace_id: q.entry.trace_id.clone(),
        span_id: q.entry.span_id.clone(),
        dedup_key: q.dedup_key.clone(),
    }
    .encode_to_vec()
}

pub(super) fn decode(payload: &[u8], source: SourcePosition) -> Option<QueuedEntry> {
    let e = Envelope::decode(payload).ok()?;
    Some(QueuedEntry {
        received_us: e.received_time.as_ref().map_or(0, time::to_micros),
        entry: LogEntry {
            service: e.service,
            level: e.level,
            message: e.message,
            tags: e.tags,
            attributes: e.attributes,
            time: e.time,
            trace_id: e.trace_id,
            span_id: e.span_id,
        },
        source: Some(source),
        dedup_key: e.dedup_key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::LogRecord;

    fn queued(dedup_key: Option<&str>) -> QueuedEntry {
        QueuedEntry {
            entry: LogEntry {
                service: "api".into(),
                level: 4,
                message: "m".into(),
                tags: vec!["t".into()],
                attributes: HashMap::from([("k".into(), "v".into())]),
                time: Some(time::from_micros(5)),
                trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
                span_id: "00f067aa0ba902b7".into(),
            },
            received_us: 9,
            source: None,
            dedup_key: dedup_key.map(String::from),
        }
    }

    #[test]
    fn round_trips_and_reads_what_older_nodes_produced() {
        let at = SourcePosition {
            partition: 1,
            offset: 2,
        };
        let q = queued(Some("stream:1-0"));
        let back = decode(&encode(&q), at).expect("decodes");
        assert_eq!(back.dedup_key.as_deref(), Some("stream:1-0"));
        assert_eq!((back.entry, back.received_us), (q.entry.clone(), 9));

        // What nodes before the dedup key produced: a plain LogRecord.
        let old = LogRecord {
            id: 0,
            service: "api".into(),
            level: 4,
            message: "m".into(),
            tags: vec!["t".into()],
            attributes: HashMap::from([("k".into(), "v".into())]),
            time: Some(time::from_micros(5)),
            received_time: Some(time::from_micros(9)),
            trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
            span_id: "00f067aa0ba902b7".into(),
        }
        .encode_to_vec();
        let back = decode(&old, at).expect("decodes");
        assert_eq!(back.dedup_key, None);
        assert_eq!(back.entry, q.entry);
        // And what it produces reads as a LogRecord there.
        let seen = LogRecord::decode(&encode(&q)[..]).expect("a LogRecord");
        assert_eq!(seen.service, "api");
    }
}

//! The envelope an entry travels in on the topic.

use prost::Message as _;

use crate::model::time;
use crate::model::{QueuedEntry, SourcePosition};
use crate::proto::{LogEntry, LogRecord};

/// The envelope on the topic: the entry and its receive time (a LogRecord
/// without an id, so no second message type is needed).
pub(super) fn encode(q: &QueuedEntry) -> Vec<u8> {
    LogRecord {
        id: 0,
        service: q.entry.service.clone(),
        level: q.entry.level,
        message: q.entry.message.clone(),
        tags: q.entry.tags.clone(),
        attributes: q.entry.attributes.clone(),
        time: q.entry.time,
        received_time: Some(time::from_micros(q.received_us)),
    }
    .encode_to_vec()
}

pub(super) fn decode(payload: &[u8], source: SourcePosition) -> Option<QueuedEntry> {
    let r = LogRecord::decode(payload).ok()?;
    Some(QueuedEntry {
        received_us: r.received_time.as_ref().map_or(0, time::to_micros),
        entry: LogEntry {
            service: r.service,
            level: r.level,
            message: r.message,
            tags: r.tags,
            attributes: r.attributes,
            time: r.time,
        },
        source: Some(source),
    })
}

//! Turning records into rows and back, shared by every SQL backend.

use std::collections::HashMap;

use diesel::{Insertable, Queryable, Selectable};

use super::StoreError;
use super::schema::logs;
use crate::proto::LogRecord;
use crate::queue::QueuedEntry;
use crate::time;

#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = logs)]
pub struct LogRow {
    pub id: i64,
    pub service: String,
    pub level: i32,
    pub message: String,
    pub tags: String,
    pub attributes: String,
    pub time_us: i64,
    pub received_us: i64,
}

impl LogRow {
    pub fn new(id: i64, q: &QueuedEntry) -> Self {
        let e = &q.entry;
        LogRow {
            id,
            service: e.service.clone(),
            level: e.level,
            message: e.message.clone(),
            tags: serde_json::to_string(&e.tags).unwrap_or_else(|_| "[]".into()),
            attributes: serde_json::to_string(&e.attributes).unwrap_or_else(|_| "{}".into()),
            time_us: e.time.as_ref().map_or(q.received_us, time::to_micros),
            received_us: q.received_us,
        }
    }

    pub fn into_record(self) -> Result<LogRecord, StoreError> {
        let tags: Vec<String> = serde_json::from_str(&self.tags)
            .map_err(|e| StoreError::Corrupt(format!("tags of id {}: {e}", self.id)))?;
        let attributes: HashMap<String, String> = serde_json::from_str(&self.attributes)
            .map_err(|e| StoreError::Corrupt(format!("attributes of id {}: {e}", self.id)))?;
        Ok(LogRecord {
            id: self.id as u64,
            service: self.service,
            level: self.level,
            message: self.message,
            tags,
            attributes,
            time: Some(time::from_micros(self.time_us)),
            received_time: Some(time::from_micros(self.received_us)),
        })
    }
}

/// A LIKE pattern matching `text` anywhere, with `\\` as the escape character.
pub fn like_pattern(text: &str) -> String {
    let mut p = String::with_capacity(text.len() + 2);
    p.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

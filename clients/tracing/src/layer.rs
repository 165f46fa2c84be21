//! Turning `tracing` events into log entries, without ever waiting: an
//! entry that does not fit in the shipper's buffer is dropped and counted.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::SystemTime;

use tokio::sync::mpsc;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

use crate::proto::LogEntry;

/// Targets whose events are never shipped: the crates the shipper sends
/// with, whose own events would otherwise be shipped by sending them.
const QUIET: [&str; 5] = ["h2", "hyper", "tonic", "tower", "taillight_tracing"];

/// The layer: hands each event to the [`Shipper`](crate::Shipper) as an entry.
pub struct TaillightLayer {
    /// The shipper's buffer; full means dropped.
    pub(crate) tx: mpsc::Sender<LogEntry>,
    /// The service every entry belongs to.
    pub(crate) service: String,
    /// Entries dropped because the buffer was full.
    pub(crate) dropped: Arc<AtomicU64>,
}

impl<S: Subscriber> Layer<S> for TaillightLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        if QUIET.iter().any(|q| meta.target().starts_with(q)) {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        let mut attributes = fields.attributes;
        attributes.insert("target".into(), meta.target().to_string());
        let entry = LogEntry {
            service: self.service.clone(),
            level: level(*meta.level()),
            message: fields.message,
            tags: fields.tags,
            attributes,
            time: Some(prost_types::Timestamp::from(SystemTime::now())),
            ..Default::default()
        };
        if self.tx.try_send(entry).is_err() {
            self.dropped.fetch_add(1, Relaxed);
        }
    }
}

/// taillight's level for a `tracing` level.
fn level(l: Level) -> i32 {
    match l {
        Level::TRACE => 1,
        Level::DEBUG => 2,
        Level::INFO => 3,
        Level::WARN => 4,
        Level::ERROR => 5,
    }
}

/// An event's fields, sorted into the entry's parts.
#[derive(Default)]
struct Fields {
    message: String,
    tags: Vec<String>,
    attributes: HashMap<String, String>,
}

impl Fields {
    fn put(&mut self, field: &Field, value: String) {
        match field.name() {
            "message" => self.message = value,
            "tags" => self.tags.extend(
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(String::from),
            ),
            name => {
                self.attributes.insert(name.to_string(), value);
            }
        }
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value.to_string());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        self.put(field, format!("{value:?}"));
    }
}

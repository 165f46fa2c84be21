//! What tells a redelivered entry from another at the same source position.

use super::keyspace::is_key;
use crate::model::{QueuedEntry, SourcePosition};

/// What tells a redelivery from another entry at the same source position.
/// A redelivery is the same Kafka message, so it carries the same receipt
/// time. A new topic (the topic setting changed, or a broker that lost its
/// data created it again) starts its offsets at 0 again, and its entries at
/// positions already stored were received at other times. A key space's
/// position (see [`keyspace`](super::keyspace)) names the entry itself: a
/// source that hands it over again receives it again, at another time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct Delivery {
    pub position: SourcePosition,
    received_us: i64,
}

impl Delivery {
    pub fn new(position: SourcePosition, received_us: i64) -> Self {
        let received_us = if is_key(position) { 0 } else { received_us };
        Delivery {
            position,
            received_us,
        }
    }

    pub fn of(q: &QueuedEntry) -> Option<Self> {
        q.source
            .map(|position| Delivery::new(position, q.received_us))
    }
}

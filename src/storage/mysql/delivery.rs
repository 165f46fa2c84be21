//! What tells a redelivered entry from another at the same source position.

use crate::model::{QueuedEntry, SourcePosition};

/// What tells a redelivery from another entry at the same source position.
/// A redelivery is the same Kafka message, so it carries the same receipt
/// time. A new topic (the topic setting changed, or a broker that lost its
/// data created it again) starts its offsets at 0 again, and its entries at
/// positions already stored were received at other times.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct Delivery {
    pub position: SourcePosition,
    pub received_us: i64,
}

impl Delivery {
    pub fn of(q: &QueuedEntry) -> Option<Self> {
        q.source.map(|position| Delivery {
            position,
            received_us: q.received_us,
        })
    }
}

//! The writer's publisher: stored batches go out on the bus in commit
//! order, and their services and tags into the catalogue, in a task of their
//! own so that a Redis round trip never delays the next transaction.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;

use super::metrics::{Point, Stage, WriterMetrics, received_us};
use crate::bus::{Bus, Catalog};
use crate::proto::LogRecord;

/// Publishes stored batches in commit order and updates the catalogue.
pub(super) async fn run(
    mut backlog: mpsc::Receiver<Vec<LogRecord>>,
    bus: Arc<dyn Bus>,
    catalog: Option<Arc<dyn Catalog>>,
    metrics: WriterMetrics,
) {
    while let Some(records) = backlog.recv().await {
        let t = Instant::now();
        if let Some(cat) = &catalog
            && let Err(e) = cat.remember(&records).await
        {
            // The store stays the source of truth for listings.
            tracing::debug!(error = %e, "catalogue update failed");
        }
        let records = Arc::new(records);
        match bus.publish(records.clone()).await {
            Ok(()) => metrics.observe_delays(Point::Published, records.iter().map(received_us)),
            Err(e) => {
                // Tails repair the hole from the store.
                tracing::warn!(error = %e, "publish failed");
                metrics.bus_errors.inc();
            }
        }
        metrics.time(Stage::Publish, t);
    }
}

//! The bus carries committed records from the writer to every node's tail
//! hub. It may lose messages (a lagging receiver, a Redis outage); it says so
//! with [`BusEvent::Gap`] and the tails repair the hole from the store, which
//! is why only committed records, with their ids, are ever published.
//! [`RedisArgs::open`] picks Redis or the in-process bus.

mod contract;
pub mod memory;
pub mod redis;

use std::sync::Arc;

pub use contract::{Bus, BusError, BusEvent, Catalog, RecordBatch};
use memory::MemoryBus;
pub use redis::RedisArgs;

/// Batches the in-process bus keeps for a lagging receiver.
const MEMORY_CAPACITY: usize = 1024;

/// The bus of this process, and the catalogue when it has one.
pub struct BusParts {
    pub bus: Arc<dyn Bus>,
    pub catalog: Option<Arc<dyn Catalog>>,
}

impl RedisArgs {
    /// Redis when a URL is given, otherwise the in-process bus (one node,
    /// no catalogue: the store answers listings).
    pub async fn open(&self) -> Result<BusParts, BusError> {
        Ok(match &self.redis_url {
            Some(url) => {
                let redis =
                    Arc::new(redis::connect(url, &self.redis_channel, &self.redis_prefix).await?);
                BusParts {
                    bus: redis.clone(),
                    catalog: Some(redis),
                }
            }
            None => BusParts {
                bus: Arc::new(MemoryBus::new(MEMORY_CAPACITY)),
                catalog: None,
            },
        })
    }
}

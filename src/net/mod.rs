//! Connections to the services taillight talks to, shared by whichever
//! components need them: the bus and the Redis ways in share one Redis link
//! and one way of subscribing.

pub mod backoff;
pub mod redis;

/// What parts that must run once per cluster need to know of the process:
/// whether several nodes share the store, and the bus's Redis, where their
/// leases are kept.
#[derive(Debug, Clone, Default)]
pub struct Cluster {
    /// Several nodes share the store (the Kafka mode): a part every node
    /// would otherwise run in full (a pub/sub subscription, the archive)
    /// runs on one node at a time, holding a lease.
    pub shared: bool,
    /// The bus's Redis URL, when there is one.
    pub redis_url: Option<String>,
    /// Prefix of taillight's Redis keys.
    pub redis_prefix: String,
}

/// This host's name, for naming this process to others (a lease holder, a
/// stream consumer).
pub fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "taillight".into())
}

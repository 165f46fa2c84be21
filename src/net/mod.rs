//! Connections to the services taillight talks to, shared by whichever
//! components need them: the bus and the Redis ways in share one Redis link
//! and one way of subscribing.

pub mod backoff;
pub mod redis;

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

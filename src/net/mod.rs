//! Connections to the services taillight talks to, shared by whichever
//! components need them: the bus and the Redis ways in share one Redis link
//! and one way of subscribing.

pub mod backoff;
pub mod redis;

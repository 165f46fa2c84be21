//! Redis: a command [`link`] that reconnects by itself, [`subscriber`], a
//! pub/sub subscription that does the same, and a [`lease`] one process
//! holds at a time.

pub mod lease;
pub mod link;
pub mod subscriber;

pub use link::Link;

//! Redis: a command [`link`] that reconnects by itself, and [`subscriber`],
//! a pub/sub subscription that does the same.

pub mod link;
pub mod subscriber;

pub use link::Link;

//! A [`tracing_subscriber::Layer`] that ships an application's events to a
//! taillight server over `PushLogs`: batched, retried with backoff while the
//! server is away, in bounded memory, and never blocking the application
//! (what does not fit is dropped and counted).
//!
//! ```no_run
//! use tracing_subscriber::prelude::*;
//!
//! #[tokio::main]
//! async fn main() {
//!     let (layer, shipper) = taillight_tracing::Builder::new("http://127.0.0.1:50051", "checkout")
//!         .build()
//!         .expect("a valid server URL");
//!     let handle = shipper.spawn();
//!     tracing_subscriber::registry().with(layer).init();
//!
//!     tracing::warn!(order = 42, tags = "payments,retry", "card declined");
//!
//!     // Before exiting: ship what is still buffered.
//!     handle.shutdown(std::time::Duration::from_secs(5)).await;
//! }
//! ```
//!
//! Each event becomes one entry: the service given to the [`Builder`], the
//! event's level, its `message`, its other fields as attributes (a field
//! named `tags` is split at commas into tags), its target as the attribute
//! `target`, and the time it happened. Events of the transport stack
//! (`h2`, `hyper`, `tonic`, `tower`) are never shipped, so sending them
//! cannot feed on itself.

mod layer;
mod shipper;

#[allow(clippy::all, missing_docs)]
mod proto {
    tonic::include_proto!("taillight.v1");
}

pub use layer::TaillightLayer;
pub use shipper::{Builder, Handle, Shipper, Stats};

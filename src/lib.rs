//! taillight: a log collection service.
//!
//! Entries arrive through [`api`] (gRPC, gRPC-web and an HTTP/JSON gateway),
//! are handed to a [`queue`], written in batches to [`storage`] by the
//! [`pipeline`] writer, and published after commit on a [`bus`] that feeds
//! every live tail. The embedded mode backs these with SQLite and in-process
//! channels; the distributed mode with Kafka, MariaDB and Redis. The API layer
//! only ever sees the traits.

pub mod api;
pub mod bus;
pub mod cli;
pub mod config;
pub mod level;
pub mod metrics;
pub mod pipeline;
pub mod proto;
pub mod queue;
pub mod server;
pub mod storage;
pub mod time;
pub mod viewer;

//! taillight: a log collection service.
//!
//! Layers, each importing only from those before it:
//! - [`model`] (with the generated [`proto`]): entries, records, the filter.
//! - [`access`] (API keys, scopes, the services a key covers).
//! - [`intake`], [`queue`], [`storage`], [`bus`], [`net`], [`metrics`],
//!   [`health`], [`listen`]: the door every way in uses, the port they
//!   share, and the backends behind traits.
//! - [`pipeline`]: the writer (queue → store → bus), the fan-out of the live
//!   feed, following the store, retention.
//! - [`api`], [`sources`], [`sinks`], [`viewer`]: the ways in and out.
//! - [`server`] (with [`config`] and [`shutdown`]): wires one process.
//! - [`cli`]: the client commands.

pub mod access;
pub mod api;
pub mod bus;
pub mod cli;
pub mod config;
pub mod health;
pub mod intake;
pub mod listen;
pub mod metrics;
pub mod model;
pub mod net;
pub mod pipeline;
pub mod proto;
pub mod queue;
pub mod server;
pub mod shutdown;
pub mod sinks;
pub mod sources;
pub mod storage;
pub mod viewer;

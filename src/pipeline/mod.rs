//! The pipeline between queue, store and bus: the batching [`writer`], the
//! [`tail`] fan-out, and the [`filter`] both share with history queries.

pub mod filter;
pub mod tail;
pub mod writer;

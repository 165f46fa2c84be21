//! The pipeline between queue, store and bus: the batching [`writer`], the
//! [`tail`] fan-out, the [`filter`] both share with history queries, and
//! [`retention`].

pub mod filter;
pub mod retention;
pub mod tail;
pub mod writer;

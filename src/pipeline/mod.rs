//! The pipeline between queue, store and bus: the batching [`writer`], the
//! [`hub`] that fans the bus out in process, [`follow`], the one way to
//! follow the store that every live reader and sink uses, and
//! [`retention`].

pub mod follow;
pub mod hub;
pub mod retention;
pub mod writer;

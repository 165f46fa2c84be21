//! The base every other module builds on: what an entry is on its way to the
//! store ([`entry`]), the one record [`filter`] shared by live tails and
//! history, levels, times, service [`pattern`]s, the JSON shapes of entries and records, the
//! [`export`] formats of records, an alert's kept [`firing`], and the field violation every layer
//! reports bad input with. It imports nothing of ours but the generated
//! protocol types.

pub mod entry;
pub mod export;
pub mod filter;
pub mod firing;
pub mod json;
pub mod level;
pub mod pattern;
pub mod time;
pub mod violation;

pub use entry::{QueuedEntry, SourcePosition};
pub use filter::Filter;
pub use pattern::Pattern;
pub use violation::FieldViolation;

//! The protocol: code generated from `proto/taillight/v1/logs.proto`, and
//! the tail's `Records` message, written by hand (see `records`).

mod records;

pub use generated::*;
pub use records::{EncodedBatch, Records, Selection};

#[allow(clippy::all, missing_docs)]
mod generated {
    tonic::include_proto!("taillight.v1");
}

/// Encoded descriptors of our protos and their imports, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("taillight_descriptor");

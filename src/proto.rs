//! Code generated from `proto/taillight/v1/logs.proto`.

#![allow(clippy::all, missing_docs)]

tonic::include_proto!("taillight.v1");

/// Encoded descriptors of our protos and their imports, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("taillight_descriptor");

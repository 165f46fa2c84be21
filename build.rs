//! Generates the gRPC code from proto/ with protox, a pure-Rust protobuf
//! compiler, so building taillight never needs a system `protoc`.

use std::{env, path::PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "proto/taillight/v1/logs.proto";
    println!("cargo:rerun-if-changed=proto");
    // Migrations are embedded by `embed_migrations!`, which cargo does not
    // watch by itself.
    println!("cargo:rerun-if-changed=migrations");

    let mut compiler = protox::Compiler::new(["proto"])?;
    // Reflection must be able to describe the well-known types we import.
    compiler.include_imports(true).include_source_info(true);
    compiler.open_file(proto)?;
    let out = PathBuf::from(env::var("OUT_DIR")?);
    std::fs::write(
        out.join("taillight_descriptor.bin"),
        compiler.encode_file_descriptor_set(),
    )?;
    tonic_prost_build::configure()
        // Hand-written (src/proto/records.rs) so a tail batch is encoded
        // once per node, not once per stream; the wire format is the same.
        .extern_path(".taillight.v1.Records", "crate::proto::Records")
        .compile_fds(compiler.file_descriptor_set())?;
    Ok(())
}

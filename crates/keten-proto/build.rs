//! Compiles `proto/keten/v1/*.proto` without a system `protoc`: protox parses the files into a
//! FileDescriptorSet (with source info, so the doc comments reach server reflection), which is
//! written to OUT_DIR for `FILE_DESCRIPTOR_SET` and handed to tonic-prost-build for the code.

use std::path::PathBuf;

use prost::Message;

const FILES: &[&str] = &[
    "keten/v1/common.proto",
    "keten/v1/events.proto",
    "keten/v1/plan.proto",
    "keten/v1/gateway.proto",
    "keten/v1/coordination.proto",
    "keten/v1/audit.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let root = manifest.join("../../proto");
    println!("cargo:rerun-if-changed={}", root.join("keten/v1").display());
    for f in FILES {
        println!("cargo:rerun-if-changed={}", root.join(f).display());
    }

    let fds = protox::compile(FILES, [&root])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("keten_v1_descriptor.bin"), fds.encode_to_vec())?;

    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .emit_rerun_if_changed(false)
        .compile_fds(fds)?;
    Ok(())
}

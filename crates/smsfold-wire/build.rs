//! Compiles the .proto files under proto/ with protox, a protobuf compiler
//! written in Rust, so building needs no `protoc` on the machine.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let files = [
        "smsfold/v1/message_events.proto",
        "smsfold/v1/campaign_events.proto",
        "smsfold/v1/status_changes.proto",
        "smsfold/v1/internal.proto",
    ];
    for file in &files {
        println!("cargo:rerun-if-changed={}", root.join(file).display());
    }
    let descriptors = protox::compile(files, [&root])?;
    prost_build::Config::new().compile_fds(descriptors)?;
    Ok(())
}

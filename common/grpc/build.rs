//! Generates the gRPC code from `proto/nis/v1/nis.proto` with protox (no system `protoc`),
//! and writes the file descriptor set that gRPC server reflection serves.

use std::{env, fs, path::PathBuf};

use prost::Message as _;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "proto/nis/v1/nis.proto";
    println!("cargo:rerun-if-changed={proto}");
    let descriptors = protox::compile([proto], ["proto"])?;
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").ok_or("OUT_DIR is not set")?);
    fs::write(
        out_dir.join("nis_descriptor.bin"),
        descriptors.encode_to_vec(),
    )?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // The cross queries return the other service's entities as JSON, field names as in proto.
        .type_attribute("nis.v1.Student", "#[derive(serde::Serialize)]")
        .type_attribute("nis.v1.Course", "#[derive(serde::Serialize)]")
        // The HTTP JSON of an entity has no version (HTTP shows it as the ETag).
        .field_attribute("nis.v1.Student.version", "#[serde(skip)]")
        .field_attribute("nis.v1.Course.version", "#[serde(skip)]")
        .compile_fds(descriptors)?;
    Ok(())
}

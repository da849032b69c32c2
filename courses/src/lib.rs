//! The courses service: courses in MongoDB, served over HTTP and gRPC.
//!
//! `domain` holds the entity and its rules, `outbound` the MongoDB store, `inbound` the HTTP
//! and gRPC adapters; [`app`] wires them together with the shared core and decorators.

pub mod app;
pub mod config;
pub mod domain;
pub mod inbound;
pub mod outbound;

//! The students service: students in PostgreSQL, served over HTTP and gRPC.
//!
//! `domain` holds the entity and its rules, `outbound` the PostgreSQL store, `inbound` the HTTP
//! and gRPC adapters; [`app::start`] wires them together with the shared core and decorators.

pub mod app;
pub mod config;
pub mod domain;
pub mod inbound;
pub mod outbound;

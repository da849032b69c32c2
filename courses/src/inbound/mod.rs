//! Adapters from the outside in: HTTP and gRPC.

pub mod grpc;
pub mod http;

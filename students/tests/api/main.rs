//! Black-box tests of the students service against real PostgreSQL and Redis: each test starts
//! the service on free ports with its own database and Redis key prefix.

mod cache;
mod config;
mod grpc;
mod helpers;
mod http;
mod metrics;

//! Cross-service tests: both services in the test process against real NATS, PostgreSQL, Redis
//! and the MongoDB(-compatible) server (see `e2e::System`). One test binary; each module is
//! one concern.

mod cache_links;
mod convergence;
mod edits;
mod edits_grpc;
mod failures;
mod fuzz;
mod grpc_parity;
mod messages;
mod monitoring;
mod reconcile;
mod replicas;
mod sync;
mod traces;

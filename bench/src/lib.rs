//! The benchmark's tools, one binary each (`src/bin/`), orchestrated by `scripts/bench.sh`:
//!
//! - `bench-baseline` ([`baseline`]): a bare actix-web server doing one Redis GET, one
//!   PostgreSQL select or nothing per request — the ceiling the services are compared with;
//! - `bench-grpc` ([`grpc_load`]): a tonic load client driving unary `Get` calls;
//! - `bench-propagation` ([`propagation`]): how long a link change takes to show on the other
//!   service;
//! - `bench-report` ([`report`]): the Markdown report and PNG chart of a results file.
//!
//! Every tool parses its command line with clap ([`cli`]), writes its result as one JSON line on
//! stdout ([`output`]) and its diagnostics on stderr; every outbound call has a timeout.

pub mod baseline;
pub mod cli;
pub mod error;
pub mod grpc_load;
pub mod latency;
pub mod output;
pub mod propagation;
pub mod report;
pub mod signals;

pub use error::BoxError;

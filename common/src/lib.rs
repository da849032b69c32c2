//! What the nis services share.
//!
//! Each service crate holds only what is specific to its entity and its store: the entity and
//! its validated newtypes, the repository adapter, and the mapping of its gRPC messages. Everything
//! else — configuration, telemetry, the error type and its HTTP/gRPC mappings, validation rules,
//! the generic core service and its caching/metrics/logging decorators, the Redis cache, the HTTP
//! routes, readiness, and shutdown — lives here, once.

pub mod cache;
pub mod cli;
pub mod config;
pub mod decorators;
pub mod entity;
pub mod error;
pub mod grpc;
pub mod http;
pub mod ids;
pub mod links;
pub mod paging;
pub mod peers;
pub mod proto;
pub mod queue;
pub mod readiness;
pub mod secret;
pub mod server;
pub mod service;
pub mod telemetry;
pub mod validation;

pub use entity::{Entity, EntityId};
pub use error::{Error, FieldError};
pub use paging::Page;
pub use service::{Context, EntityService, Repository, Transport};

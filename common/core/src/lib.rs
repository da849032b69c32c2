//! The core of nis: what a service *is*, with no transport or storage technology in it.
//!
//! - the entity model: [`entity`], [`ids`], [`validation`], [`paging`], typed [`error`]s;
//! - the relation sync: the pure rules ([`links`]), the message ([`message`]), the outbox
//!   ([`outbox`]);
//! - the ports: the service every transport calls ([`service`]), the store ([`store`]), the
//!   cache ([`cache`]), the peer service ([`peer`]);
//! - the use cases over those ports ([`core`], and the anti-entropy repair of the relation,
//!   [`reconcile`]) and the decorators around them ([`decorators`]).
//!
//! Adapters live in the sibling crates (`nis-http`, `nis-grpc`, `nis-queue`, `nis-cache`) and
//! in each service's `outbound/` store; they depend on this crate, never the other way round.
//! The behaviour all of it implements is written down in `docs/behaviour.md`.

pub mod cache;
pub mod conditions;
pub mod core;
pub mod decorators;
pub mod entity;
pub mod error;
#[cfg(any(test, feature = "fakes"))]
pub mod fakes;
pub mod idempotency;
pub mod ids;
pub mod links;
pub mod message;
pub mod metric_names;
pub mod outbox;
pub mod paging;
pub mod peer;
pub mod reconcile;
pub mod request_id;
pub mod service;
pub mod store;
pub mod trace;
pub mod validation;

pub use crate::core::Core;
pub use entity::{Entity, EntityId};
pub use error::{Error, FieldError};
pub use paging::Page;
pub use service::{Context, EntityService, IncomingLink, Transport, Written};
pub use store::EntityStore;

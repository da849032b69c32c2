//! The NATS JetStream adapter of the relation sync (docs/behaviour.md §5): the names of streams
//! and subjects ([`topology`]), the publisher the outbox relay sends through ([`publisher`]) and
//! the consumer loop that applies the other side's changes ([`consumer`]). The message itself
//! and the relay's rounds are the core's (`nis_core::message`, `nis_core::outbox`).

pub mod consumer;
pub mod publisher;
pub mod topology;

pub use publisher::JetStreamPublisher;
pub use topology::{StreamSettings, Topology};

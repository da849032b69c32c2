//! The NATS JetStream side of the relation sync: the names of streams and subjects
//! ([`topology`]), the message ([`message`]), the relay that publishes the outbox
//! ([`relay`]) and the consumer loop that applies the other side's changes ([`consumer`]).

pub mod consumer;
pub mod message;
pub mod relay;
pub mod topology;

pub use message::LinkEvent;
pub use relay::{Outbox, OutboxEntry};
pub use topology::{StreamSettings, Topology};

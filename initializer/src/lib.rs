//! Creates or updates the JetStream streams and durable consumers of nis, as listed once in
//! [`Topology`], then exits.
//!
//! Idempotent: a second run changes nothing. Settings the initializer owns (see
//! [`apply`]) are brought back in line when they differ on the server; anything else is left
//! as found, and nothing is ever deleted — not a stream, not a consumer, not a message.

mod config;
mod connection;
mod consumers;
mod report;
mod streams;

use std::time::Duration;

use async_nats::jetstream;
use nis_queue::{StreamSettings, Topology};

pub use config::Config;
pub use connection::connect;
pub use report::{Entry, Outcome, Report, Resource};

/// Why the initializer could not finish.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// NATS (or its JetStream) did not answer before the deadline.
    #[error("cannot reach NATS JetStream at {url} within {timeout:?}: {reason}")]
    Unreachable {
        /// The URL tried, without credentials.
        url: String,
        /// How long it was tried.
        timeout: Duration,
        /// The last failure.
        reason: String,
    },
    /// JetStream refused to read, create or update a stream.
    #[error("cannot {action} stream {stream}: {source}")]
    Stream {
        /// The stream.
        stream: String,
        /// `read`, `create` or `update`.
        action: &'static str,
        /// What JetStream said.
        source: async_nats::Error,
    },
    /// JetStream refused to read, create or update a durable consumer.
    #[error("cannot {action} consumer {consumer} on stream {stream}: {source}")]
    Consumer {
        /// The stream the consumer reads.
        stream: String,
        /// The consumer's durable name.
        consumer: String,
        /// `read`, `create` or `update`.
        action: &'static str,
        /// What JetStream said.
        source: async_nats::Error,
    },
}

/// Makes every stream of `topology.streams(settings)`, then every durable consumer of
/// `topology.consumers()`, exist with the wanted settings.
///
/// Owned settings — of a stream: subjects, description, retention, storage, discard,
/// replicas, max age and duplicate window; of a consumer: durable name, description, ack and
/// deliver policy, ack wait, max deliver and max ack pending — are compared with the server's
/// and updated only when they differ; all other settings are kept as the server has them.
/// Stops at the first refusal; what was done before it stays done, and a rerun continues.
pub async fn apply(
    jetstream: &jetstream::Context,
    topology: &Topology,
    settings: &StreamSettings,
) -> Result<Report, InitError> {
    let mut report = Report::default();
    for stream in topology.streams(settings) {
        report
            .entries
            .push(streams::reconcile(jetstream, &stream).await?);
    }
    for (stream, consumer) in topology.consumers() {
        report
            .entries
            .push(consumers::reconcile(jetstream, &stream, &consumer).await?);
    }
    Ok(report)
}

//! The JetStream adapter of the core's [`Publisher`] port. Each message carries its event id as
//! `Nats-Msg-Id`, so a publish repeated after a crash (or by two replicas) is dropped by
//! JetStream's duplicate window.

use std::time::Duration;

use async_nats::{HeaderMap, jetstream};
use nis_core::{
    Error,
    outbox::{OutboxEntry, Publisher},
    request_id,
};

/// The longest wait for JetStream to acknowledge one publish.
const ACK_TIMEOUT: Duration = Duration::from_secs(5);

/// Publishes outbox entries to JetStream.
#[derive(Debug, Clone)]
pub struct JetStreamPublisher {
    jetstream: jetstream::Context,
}

impl JetStreamPublisher {
    /// A publisher on `jetstream`.
    pub fn new(jetstream: jetstream::Context) -> Self {
        Self { jetstream }
    }
}

impl Publisher for JetStreamPublisher {
    async fn publish(&self, entry: &OutboxEntry) -> Result<(), Error> {
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", entry.id.as_str());
        headers.insert(request_id::HEADER, entry.request_id.as_str());
        let ack = async {
            self.jetstream
                .publish_with_headers(entry.subject.clone(), headers, entry.payload.clone().into())
                .await?
                .await
        };
        match tokio::time::timeout(ACK_TIMEOUT, ack).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(Error::unavailable_because(
                format!("publishing to {} failed", entry.subject),
                e,
            )),
            Err(_) => Err(Error::unavailable(format!(
                "no acknowledgement from JetStream for {} within {ACK_TIMEOUT:?}",
                entry.subject
            ))),
        }
    }
}

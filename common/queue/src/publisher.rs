//! The JetStream adapter of the core's [`Publisher`] port. Each message carries its event id as
//! `Nats-Msg-Id`, so a publish repeated after a crash (or by a relay whose lease ran out) is
//! dropped by JetStream's duplicate window: the safety net under the relays' claims.

use std::time::Duration;

use async_nats::{HeaderMap, jetstream};
use nis_core::{
    Error,
    outbox::{OutboxEntry, Publisher},
    request_id,
};
use tracing::Instrument as _;

/// The longest wait for sending a batch, and again for its acknowledgements.
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
    async fn publish_all(&self, entries: &[OutboxEntry]) -> Vec<Result<(), Error>> {
        // Send everything first (the client buffers and pipelines), then await the
        // acknowledgements together: one round trip per batch, not per entry. Each phase has
        // one deadline, so a NATS that is away costs at most two of them.
        let sending = tokio::time::Instant::now() + ACK_TIMEOUT;
        let mut pending = Vec::with_capacity(entries.len());
        for entry in entries {
            let mut headers = HeaderMap::new();
            headers.insert("Nats-Msg-Id", entry.id.as_str());
            headers.insert(request_id::HEADER, entry.request_id.as_str());
            // The publish, a producer span in the trace of the write that recorded the entry
            // (when that is sampled); the message carries its context to the consumer.
            let (span, traceparent) = nis_runtime::traces::messaging(
                "producer",
                "publish",
                &entry.subject,
                entry.trace_context.as_deref(),
            )
            .into_parts();
            if let Some(traceparent) = traceparent {
                headers.insert("traceparent", traceparent.as_str());
            }
            let send = self.jetstream.publish_with_headers(
                entry.subject.clone(),
                headers,
                entry.payload.clone().into(),
            );
            let sent = match tokio::time::timeout_at(sending, send)
                .instrument(span.unwrap_or_else(tracing::Span::none))
                .await
            {
                Ok(Ok(ack)) => Ok(ack),
                Ok(Err(e)) => Err(failed(entry, e)),
                Err(_) => Err(no_ack(entry)),
            };
            let stop = sent.is_err();
            pending.push(sent);
            if stop {
                break;
            }
        }
        let acking = tokio::time::Instant::now() + ACK_TIMEOUT;
        let acks = pending
            .into_iter()
            .zip(entries)
            .map(|(sent, entry)| async move {
                match tokio::time::timeout_at(acking, sent?).await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(e)) => Err(failed(entry, e)),
                    Err(_) => Err(no_ack(entry)),
                }
            });
        let mut answers = futures::future::join_all(acks).await;
        // What was never sent after the first failure fails too.
        while answers.len() < entries.len() {
            answers.push(Err(no_ack(&entries[answers.len()])));
        }
        answers
    }
}

fn failed(entry: &OutboxEntry, e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::unavailable_because(format!("publishing to {} failed", entry.subject), e)
}

fn no_ack(entry: &OutboxEntry) -> Error {
    Error::unavailable(format!(
        "no acknowledgement from JetStream for {} within {ACK_TIMEOUT:?}",
        entry.subject
    ))
}

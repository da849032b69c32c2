//! The consumer loop: applies the other side's link changes through the service port (so the
//! caching, metrics and logging decorators see them, with `transport="queue"`), acknowledges
//! what was applied, redelivers with back-off what failed, and dead-letters what can never be
//! applied — undecodable or unknown-version messages at once, others after the last delivery.

use std::time::Duration;

use async_nats::jetstream::{self, AckKind, consumer::pull};
use futures::StreamExt as _;
use tokio::sync::watch;

use super::{
    message::{DEAD_LETTER_REASON_HEADER, LinkEvent, ORIGINAL_SUBJECT_HEADER, REQUEST_ID_HEADER},
    topology::{MAX_DELIVER, Topology},
};
use crate::{
    Context, Entity, EntityService, Transport, service::IncomingLink,
    telemetry::EVENTS_CONSUMED_TOTAL,
};

/// How many messages are applied at once (order does not matter: see `links`).
const CONCURRENCY: usize = 8;
/// The longest pause before a failed message is delivered again.
const MAX_REDELIVERY_DELAY: Duration = Duration::from_secs(30);

/// Consumes the peer's link changes into `service` until `shutdown` turns true. Waits (and
/// says so in the logs) while the stream or the durable consumer is missing.
pub async fn run<E: Entity, S: EntityService<E>>(
    jetstream: jetstream::Context,
    topology: Topology,
    service: S,
    mut shutdown: watch::Receiver<bool>,
) {
    let (stream_name, _) = topology.consumer(E::KIND);
    let dead_subject = topology.dead_letter_subject(E::KIND);
    let mut waiting_since_logged = false;
    loop {
        let messages = async {
            let stream = jetstream
                .get_stream(&stream_name)
                .await
                .map_err(|e| e.to_string())?;
            let consumer: jetstream::consumer::Consumer<pull::Config> = stream
                .get_consumer(E::KIND)
                .await
                .map_err(|e| e.to_string())?;
            consumer.messages().await.map_err(|e| e.to_string())
        };
        let messages = tokio::select! {
            _ = shutdown.changed() => return,
            messages = messages => messages,
        };
        let messages = match messages {
            Ok(messages) => {
                tracing::info!(stream = %stream_name, consumer = E::KIND, "consuming link changes");
                waiting_since_logged = false;
                messages
            }
            Err(e) => {
                if !waiting_since_logged {
                    tracing::warn!(stream = %stream_name, consumer = E::KIND, error = %e,
                        "cannot consume link changes yet (is NATS up and the initializer run?); retrying");
                    waiting_since_logged = true;
                }
                tokio::select! {
                    _ = shutdown.changed() => return,
                    () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                }
            }
        };
        let work = messages.for_each_concurrent(CONCURRENCY, |message| {
            let service = service.clone();
            let jetstream = jetstream.clone();
            let dead_subject = dead_subject.clone();
            async move {
                match message {
                    Ok(message) => {
                        handle::<E, S>(&jetstream, &service, &dead_subject, message).await
                    }
                    Err(e) => tracing::warn!(error = %e, "receiving link changes failed"),
                }
            }
        });
        tokio::select! {
            _ = shutdown.changed() => return,
            () = work => tracing::warn!(stream = %stream_name, "the message stream ended; reconnecting"),
        }
    }
}

fn count(service: &'static str, subject: &str, outcome: &'static str) {
    metrics::counter!(EVENTS_CONSUMED_TOTAL, "service" => service, "subject" => subject.to_owned(), "outcome" => outcome)
        .increment(1);
}

async fn handle<E: Entity, S: EntityService<E>>(
    jetstream: &jetstream::Context,
    service: &S,
    dead_subject: &str,
    message: jetstream::Message,
) {
    let subject = message.subject.to_string();
    let change = LinkEvent::decode(&message.payload)
        .map_err(|e| e.to_string())
        .and_then(|event| incoming::<E>(&event).map(|change| (event, change)));
    let (event, change) = match change {
        Ok(parsed) => parsed,
        Err(reason) => {
            dead_letter(jetstream, dead_subject, &message, &reason, E::KIND).await;
            return;
        }
    };
    let request_id = message
        .headers
        .as_ref()
        .and_then(|h| h.get(REQUEST_ID_HEADER))
        .map_or_else(|| event.id.clone(), |v| v.as_str().to_owned());
    let ctx = Context::new(Transport::Queue, request_id);
    match service.apply_link(&ctx, change).await {
        Ok(written) => {
            count(E::KIND, &subject, written.value.label());
            if let Err(e) = message.ack().await {
                tracing::warn!(error = %e, event = %event.id, "ack failed; the change will be redelivered (harmless)");
            }
        }
        Err(e) => {
            let delivered = message.info().map_or(1, |info| info.delivered);
            if delivered >= MAX_DELIVER {
                let reason = format!("not applied after {delivered} deliveries: {e}");
                dead_letter(jetstream, dead_subject, &message, &reason, E::KIND).await;
                return;
            }
            count(E::KIND, &subject, "failed");
            let exponent = u32::try_from(delivered.clamp(1, 16)).unwrap_or(16);
            let delay = (Duration::from_millis(250) * 2u32.saturating_pow(exponent - 1))
                .min(MAX_REDELIVERY_DELAY);
            tracing::warn!(event = %event.id, delivered, retry_in = ?delay, error = %e, "applying a link change failed");
            if let Err(e) = message.ack_with(AckKind::Nak(Some(delay))).await {
                tracing::warn!(error = %e, "nak failed; the change will be redelivered after the ack wait");
            }
        }
    }
}

/// The change for this side: the event's `other` is our entity, its `entity` our other id.
fn incoming<E: Entity>(event: &LinkEvent) -> Result<IncomingLink<E>, String> {
    if event.origin != Topology::peer_of(E::KIND) {
        return Err(format!("unexpected origin {:?}", event.origin));
    }
    Ok(IncomingLink {
        entity: event.other.parse::<E::Id>()?,
        other: event.entity.parse::<E::OtherId>()?,
        linked: event.linked,
        clock: event.clock,
    })
}

/// Moves a message that can never be applied to the dead letters, then acknowledges it.
async fn dead_letter(
    jetstream: &jetstream::Context,
    dead_subject: &str,
    message: &jetstream::Message,
    reason: &str,
    service: &'static str,
) {
    let subject = message.subject.to_string();
    let mut headers = message.headers.clone().unwrap_or_default();
    headers.insert(DEAD_LETTER_REASON_HEADER, reason);
    headers.insert(ORIGINAL_SUBJECT_HEADER, subject.as_str());
    let published = async {
        jetstream
            .publish_with_headers(dead_subject.to_owned(), headers, message.payload.clone())
            .await?
            .await
    };
    match tokio::time::timeout(Duration::from_secs(5), published).await {
        Ok(Ok(_)) => {
            count(service, &subject, "dead_lettered");
            tracing::error!(%subject, reason, dead_letter_subject = dead_subject, "dead-lettered a message");
            if let Err(e) = message.ack_with(AckKind::Term).await {
                tracing::warn!(error = %e, "terminating a dead-lettered message failed");
            }
        }
        _ => {
            count(service, &subject, "failed");
            tracing::warn!(%subject, reason, "could not dead-letter a message yet; it will be redelivered");
            let _ = message
                .ack_with(AckKind::Nak(Some(Duration::from_secs(5))))
                .await;
        }
    }
}

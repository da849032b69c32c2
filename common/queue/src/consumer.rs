//! The consumer loop: applies the other side's link changes through the service port (so the
//! caching, metrics and logging decorators see them, with `transport="queue"`), acknowledges
//! what was applied, redelivers with back-off what failed, and dead-letters what can never be
//! applied — undecodable or unknown-version messages at once, others after the last delivery.

use nis_runtime::traces::Entry;
use std::time::Duration;

use async_nats::jetstream::{self, AckKind, consumer::pull};
use futures::StreamExt as _;
use tokio::sync::watch;
use tracing::Instrument as _;

use nis_core::{
    Context, Entity, EntityService, Error, IncomingLink, Transport,
    links::Outcome,
    message::{DEAD_LETTER_REASON_HEADER, LinkEvent, ORIGINAL_SUBJECT_HEADER, REQUEST_ID_HEADER},
    metric_names::{EVENTS_CONSUMED_TOTAL, LINK_PROPAGATION},
};

use crate::topology::Topology;

/// How many messages are applied at once (order does not matter: see `nis_core::links`).
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
            // The last delivery is the consumer's own limit (the initializer sets MAX_DELIVER).
            let max_deliver = match consumer.cached_info().config.max_deliver {
                n if n > 0 => n,
                _ => i64::MAX,
            };
            let messages = consumer.messages().await.map_err(|e| e.to_string())?;
            Ok::<_, String>((messages, max_deliver))
        };
        let messages = tokio::select! {
            _ = shutdown.changed() => return,
            messages = messages => messages,
        };
        let (messages, max_deliver) = match messages {
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
                        // For a traced message, its log lines name the trace.
                        let (trace, logs, traceparent) = process_entry(&message).into_spans();
                        let queue = (&jetstream, dead_subject.as_str(), max_deliver);
                        handle::<E, S>(queue, &service, traceparent, message)
                            .instrument(logs)
                            .instrument(trace)
                            .await
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

/// Whether applying one message is traced: a consumer span in the trace of the publish that
/// sent it (from its `traceparent` header), so the apply on this side is part of the request
/// that made the change on the other.
fn process_entry(message: &jetstream::Message) -> Entry {
    let traceparent = message
        .headers
        .as_ref()
        .and_then(|h| h.get("traceparent"))
        .map(|v| v.as_str());
    nis_runtime::traces::messaging("consumer", "process", message.subject.as_str(), traceparent)
}

/// What to do with a message after trying to apply it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    /// Applied (or a duplicate, or compensated): acknowledge, counted with this outcome.
    Ack(Outcome),
    /// Failed for now: deliver again after this pause.
    Retry(Duration),
    /// Can never be applied: move to the dead letters with this reason.
    DeadLetter(String),
}

/// The change a message carries for this side, or why it can never be applied (undecodable,
/// unknown version, not from the peer, malformed ids).
pub fn incoming<E: Entity>(payload: &[u8]) -> Result<(LinkEvent, IncomingLink<E>), String> {
    let event = LinkEvent::decode(payload).map_err(|e| e.to_string())?;
    if event.origin != E::OTHER_KIND {
        return Err(format!("unexpected origin {:?}", event.origin));
    }
    // The event's `other` is our entity, its `entity` our other id.
    let change = IncomingLink {
        entity: event.other.parse::<E::Id>()?,
        other: event.entity.parse::<E::OtherId>()?,
        linked: event.linked,
        clock: event.clock,
    };
    Ok((event, change))
}

/// The pause before delivery number `delivered + 1` of a failed message: 250 ms doubling per
/// delivery, at most [`MAX_REDELIVERY_DELAY`].
pub fn redelivery_delay(delivered: i64) -> Duration {
    let exponent = u32::try_from(delivered.clamp(1, 16)).unwrap_or(16);
    (Duration::from_millis(250) * 2u32.saturating_pow(exponent - 1)).min(MAX_REDELIVERY_DELAY)
}

/// Decides what becomes of a message whose `delivered`-th application ended with `applied`,
/// when the consumer delivers a message at most `max_deliver` times.
pub fn disposition(
    applied: Result<Outcome, &Error>,
    delivered: i64,
    max_deliver: i64,
) -> Disposition {
    match applied {
        Ok(outcome) => Disposition::Ack(outcome),
        Err(e) if delivered >= max_deliver => Disposition::DeadLetter(format!(
            "not applied after {delivered} deliveries: {}",
            e.chain()
        )),
        Err(_) => Disposition::Retry(redelivery_delay(delivered)),
    }
}

/// Applies one message (`traceparent`: the trace context of its apply) and acknowledges,
/// retries or dead-letters it, on the `queue` (its JetStream context, the dead-letter subject,
/// and how often a message is delivered at most).
async fn handle<E: Entity, S: EntityService<E>>(
    (jetstream, dead_subject, max_deliver): (&jetstream::Context, &str, i64),
    service: &S,
    traceparent: Option<String>,
    message: jetstream::Message,
) {
    let subject = message.subject.to_string();
    let (event, change) = match incoming::<E>(&message.payload) {
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
    let ctx = Context::new(Transport::Queue, request_id).with_trace_context(traceparent);
    let delivered = message.info().map_or(1, |info| info.delivered);
    let applied = service.apply_link(&ctx, change).await;
    match disposition(applied.as_ref().map(|w| w.value), delivered, max_deliver) {
        Disposition::Ack(outcome) => {
            count(E::KIND, &subject, outcome.label());
            if outcome == Outcome::Applied
                && let Some(lag) = event.age()
            {
                metrics::histogram!(LINK_PROPAGATION, "service" => E::KIND)
                    .record(lag.as_secs_f64());
                tracing::debug!(event = %event.id, lag_ms = lag.as_millis(), "link change applied");
            }
            if let Err(e) = message.ack().await {
                tracing::warn!(error = %e, event = %event.id, "ack failed; the change will be redelivered (harmless)");
            }
        }
        Disposition::Retry(delay) => {
            count(E::KIND, &subject, "failed");
            if let Err(e) = &applied {
                tracing::warn!(event = %event.id, delivered, retry_in = ?delay, error = %e.chain(), "applying a link change failed");
            }
            if let Err(e) = message.ack_with(AckKind::Nak(Some(delay))).await {
                tracing::warn!(error = %e, "nak failed; the change will be redelivered after the ack wait");
            }
        }
        Disposition::DeadLetter(reason) => {
            dead_letter(jetstream, dead_subject, &message, &reason, E::KIND).await;
        }
    }
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

#[cfg(test)]
mod tests {
    use nis_core::{fakes::entities::Pupil, message::VERSION};

    use super::*;
    use crate::topology::MAX_DELIVER;

    fn event(origin: &str, linked: bool) -> LinkEvent {
        LinkEvent {
            v: VERSION,
            id: "e1".into(),
            origin: origin.into(),
            entity: "c1".into(),
            other: "s1".into(),
            linked,
            clock: 7,
        }
    }

    #[test]
    fn a_message_from_the_peer_becomes_a_change_of_our_entity() {
        let (_, change) =
            incoming::<Pupil>(&event("courses", true).encode()).expect("readable message");
        assert_eq!(change.entity.to_string(), "s1");
        assert_eq!(change.other.to_string(), "c1");
        assert!(change.linked);
        assert_eq!(change.clock, 7);
    }

    #[test]
    fn unreadable_or_foreign_messages_are_dead_letters() {
        assert!(incoming::<Pupil>(b"garbage").is_err());
        let unknown = incoming::<Pupil>(br#"{"v":9}"#).expect_err("unknown version");
        assert!(unknown.contains("version 9"), "{unknown}");
        let echo = incoming::<Pupil>(&event("students", true).encode()).expect_err("echo");
        assert!(echo.contains("origin"), "{echo}");
        let mut bad_id = event("courses", true);
        bad_id.other = "not an id".into();
        assert!(incoming::<Pupil>(&bad_id.encode()).is_err());
    }

    #[test]
    fn applied_duplicate_and_compensated_are_acknowledged() {
        for outcome in [Outcome::Applied, Outcome::Duplicate, Outcome::Compensated] {
            assert_eq!(
                disposition(Ok(outcome), 1, MAX_DELIVER),
                Disposition::Ack(outcome)
            );
            assert_eq!(
                disposition(Ok(outcome), MAX_DELIVER, MAX_DELIVER),
                Disposition::Ack(outcome)
            );
        }
    }

    #[test]
    fn failures_are_retried_with_growing_pauses_then_dead_lettered() {
        let down = Error::unavailable("the database is unavailable");
        let retry = |delivered| disposition(Err(&down), delivered, MAX_DELIVER);
        assert_eq!(retry(1), Disposition::Retry(Duration::from_millis(250)));
        assert_eq!(retry(3), Disposition::Retry(Duration::from_secs(1)));
        assert_eq!(retry(20), Disposition::Retry(MAX_REDELIVERY_DELAY));
        match retry(MAX_DELIVER) {
            Disposition::DeadLetter(reason) => assert!(
                reason.contains("50 deliveries") && reason.contains("unavailable"),
                "{reason}"
            ),
            other => panic!("expected a dead letter, got {other:?}"),
        }
        assert!(
            matches!(disposition(Err(&down), 2, 2), Disposition::DeadLetter(_)),
            "a consumer's own lower limit counts"
        );
    }
}

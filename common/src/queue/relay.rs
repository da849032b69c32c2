//! The outbox relay: publishes what the store's writes recorded, in order, until JetStream
//! acknowledges it, then forgets it. It survives restarts because the outbox is in the store:
//! a process killed between a commit and its publish publishes after it comes back.
//! Each message carries its event id as `Nats-Msg-Id`, so a publish repeated after a crash (or
//! by two replicas) is dropped by JetStream's duplicate window.

use std::{future::Future, sync::Arc, time::Duration};

use async_nats::{HeaderMap, jetstream};
use tokio::sync::{Notify, watch};

use super::message::REQUEST_ID_HEADER;
use crate::{
    Error,
    telemetry::{EVENTS_PUBLISHED_TOTAL, OUTBOX_PENDING},
};

/// One recorded change waiting to be published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    /// The event id (`Nats-Msg-Id`).
    pub id: String,
    /// Where to publish it.
    pub subject: String,
    /// The encoded message.
    pub payload: Vec<u8>,
    /// The request id of the write that recorded it.
    pub request_id: String,
}

impl OutboxEntry {
    /// The entry that publishes `change` of entity `entity` of service `origin` on `subject`.
    pub fn link_change(
        subject: &str,
        origin: &str,
        entity: &str,
        change: &crate::links::Outgoing,
        request_id: &str,
    ) -> Self {
        let event = super::LinkEvent {
            v: super::message::VERSION,
            id: uuid::Uuid::now_v7().to_string(),
            origin: origin.to_owned(),
            entity: entity.to_owned(),
            other: change.other.clone(),
            linked: change.linked,
            clock: change.clock,
        };
        Self {
            id: event.id.clone(),
            subject: subject.to_owned(),
            payload: event.encode(),
            request_id: request_id.to_owned(),
        }
    }
}

/// A store's outbox, as the relay sees it.
pub trait Outbox: Clone + Send + Sync + 'static {
    /// The oldest unpublished entries, at most `limit`.
    fn pending(&self, limit: usize)
    -> impl Future<Output = Result<Vec<OutboxEntry>, Error>> + Send;
    /// Forgets entries JetStream has acknowledged.
    fn published(&self, ids: &[String]) -> impl Future<Output = Result<(), Error>> + Send;
    /// How many entries wait.
    fn backlog(&self) -> impl Future<Output = Result<u64, Error>> + Send;
    /// Notified after every write that recorded entries, so the relay does not wait for its tick.
    fn notifier(&self) -> Arc<Notify>;
}

/// Entries published per round.
const BATCH: usize = 100;
/// How often the relay looks even when not notified (entries left by a crash, other replicas).
const TICK: Duration = Duration::from_millis(500);
/// The longest wait for JetStream to acknowledge one publish.
const ACK_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest pause after failures.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The test-only failpoint: with `NIS_FAILPOINT=crash_before_publish`, the process aborts
/// (like SIGKILL) the first time it is about to publish committed entries.
const FAILPOINT: &str = "crash_before_publish";

/// Publishes `outbox` to JetStream until `shutdown` turns true.
pub async fn run<O: Outbox>(
    jetstream: jetstream::Context,
    outbox: O,
    service: &'static str,
    mut shutdown: watch::Receiver<bool>,
) {
    let crash_before_publish = std::env::var("NIS_FAILPOINT").is_ok_and(|f| f == FAILPOINT);
    let notify = outbox.notifier();
    let mut backoff = Duration::ZERO;
    loop {
        let pause = if backoff.is_zero() { TICK } else { backoff };
        tokio::select! {
            _ = shutdown.changed() => return,
            () = notify.notified() => {},
            () = tokio::time::sleep(pause) => {},
        }
        if *shutdown.borrow() {
            return;
        }
        let pending = metrics::gauge!(OUTBOX_PENDING, "service" => service);
        match publish_round(&jetstream, &outbox, service, crash_before_publish).await {
            // Nothing waits: the idle relay costs one cheap query per tick, not a count.
            Ok(Round::Empty) => {
                backoff = Duration::ZERO;
                pending.set(0.0);
                continue;
            }
            Ok(Round::Published { more }) => {
                backoff = Duration::ZERO;
                if more {
                    notify.notify_one();
                }
            }
            Err(e) => {
                backoff = (backoff * 2).clamp(Duration::from_millis(200), MAX_BACKOFF);
                tracing::warn!(service, error = %e, retry_in = ?backoff, "outbox relay: publishing failed; will retry");
            }
        }
        if let Ok(backlog) = outbox.backlog().await {
            pending.set(backlog as f64);
        }
    }
}

/// What one round of the relay found.
enum Round {
    /// The outbox was empty.
    Empty,
    /// A batch went out; `more` when it was full, so more may wait.
    Published { more: bool },
}

/// Publishes one batch.
async fn publish_round<O: Outbox>(
    jetstream: &jetstream::Context,
    outbox: &O,
    service: &'static str,
    crash_before_publish: bool,
) -> Result<Round, Error> {
    let entries = outbox.pending(BATCH).await?;
    if entries.is_empty() {
        return Ok(Round::Empty);
    }
    if crash_before_publish {
        tracing::error!(
            service,
            pending = entries.len(),
            "failpoint {FAILPOINT}: aborting"
        );
        std::process::abort();
    }
    let mut done = Vec::with_capacity(entries.len());
    let mut failure = None;
    for entry in &entries {
        match publish(jetstream, entry).await {
            Ok(()) => {
                metrics::counter!(EVENTS_PUBLISHED_TOTAL, "service" => service, "subject" => entry.subject.clone())
                    .increment(1);
                done.push(entry.id.clone());
            }
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    if !done.is_empty() {
        outbox.published(&done).await?;
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(Round::Published {
            more: entries.len() == BATCH,
        }),
    }
}

async fn publish(jetstream: &jetstream::Context, entry: &OutboxEntry) -> Result<(), Error> {
    let mut headers = HeaderMap::new();
    headers.insert("Nats-Msg-Id", entry.id.as_str());
    headers.insert(REQUEST_ID_HEADER, entry.request_id.as_str());
    let ack = async {
        jetstream
            .publish_with_headers(entry.subject.clone(), headers, entry.payload.clone().into())
            .await?
            .await
    };
    match tokio::time::timeout(ACK_TIMEOUT, ack).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(Error::Unavailable(format!(
            "publishing to {}: {e}",
            entry.subject
        ))),
        Err(_) => Err(Error::Unavailable(format!(
            "no acknowledgement from JetStream for {} within {ACK_TIMEOUT:?}",
            entry.subject
        ))),
    }
}

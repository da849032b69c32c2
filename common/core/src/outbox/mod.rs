//! The transactional outbox: every write that changes links records the messages to send in the
//! same atomic step as the write ([`crate::store::Commit`]); the [`relay`] publishes them until
//! the queue acknowledges them, then forgets them. Because the outbox is in the store, a process
//! killed between a commit and its publish publishes after it comes back (docs/behaviour.md §5.4).
//! Each relay claims the entries it publishes for a lease, so the relays of several replicas
//! share the outbox instead of publishing everything twice (§5.9).

pub mod relay;

use std::{future::Future, sync::Arc, time::Duration};

use tokio::sync::Notify;

use crate::{
    error::Error,
    links::Outgoing,
    message::{LinkEvent, VERSION},
};

/// One recorded change waiting to be published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    /// The event id (the queue's de-duplication id).
    pub id: String,
    /// Where to publish it.
    pub subject: String,
    /// The encoded message.
    pub payload: Vec<u8>,
    /// The request id of the write that recorded it.
    pub request_id: String,
    /// The W3C `traceparent` of the write that recorded it (traces on).
    pub trace_context: Option<String>,
}

impl OutboxEntry {
    /// The entry that publishes `change` of entity `entity` of service `origin` on `subject`.
    pub fn link_change(
        subject: &str,
        origin: &str,
        entity: &str,
        change: &Outgoing,
        ctx: &crate::service::Context,
    ) -> Self {
        let event = LinkEvent {
            v: VERSION,
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
            request_id: ctx.request_id.clone(),
            trace_context: ctx.trace_context.clone(),
        }
    }
}

/// A store's outbox, as the relays see it.
pub trait Outbox: Clone + Send + Sync + 'static {
    /// Claims for relay `relay`, until `lease` has passed, at most `limit` of the oldest
    /// entries no other relay holds — never claimed, or whose lease ran out; `relay`'s own claims
    /// are claimed again — and returns them in recording order. Two relays claiming at once get
    /// disjoint entries; a relay that dies leaves its claims to the others when the lease ends.
    fn claim(
        &self,
        relay: &str,
        limit: usize,
        lease: Duration,
    ) -> impl Future<Output = Result<Vec<OutboxEntry>, Error>> + Send;
    /// Forgets entries the queue has acknowledged.
    fn published(&self, ids: &[String]) -> impl Future<Output = Result<(), Error>> + Send;
    /// How many entries wait.
    fn backlog(&self) -> impl Future<Output = Result<u64, Error>> + Send;
}

/// Where the relay sends entries: the queue port.
pub trait Publisher: Clone + Send + Sync + 'static {
    /// Publishes `entries` pipelined — all sent in order, then the acknowledgements awaited
    /// together, the whole bounded in time — and answers, for each entry in order, whether the
    /// queue acknowledged it.
    fn publish_all(
        &self,
        entries: &[OutboxEntry],
    ) -> impl Future<Output = Vec<Result<(), Error>>> + Send;
}

/// Wakes the relay after a commit that recorded entries, so it need not wait for its tick.
#[derive(Debug, Clone, Default)]
pub struct OutboxSignal(Arc<Notify>);

impl OutboxSignal {
    /// Something was recorded.
    pub fn notify(&self) {
        self.0.notify_one();
    }

    /// Resolves once something was recorded since the last wake-up.
    pub async fn recorded(&self) {
        self.0.notified().await;
    }
}

//! The service port every transport calls. The core ([`crate::core`]) implements it over a
//! store; caching, metrics and logging wrap it as decorators ([`crate::decorators`]), so HTTP,
//! gRPC and queue consumers share them.

use std::{fmt, future::Future};

use crate::{
    conditions::Expected, entity::Entity, error::Error, idempotency::IdempotencyKey,
    links::Outcome, paging::Page,
};

/// Which inbound adapter a request came through (the `transport` metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// The HTTP API.
    Http,
    /// The gRPC API.
    Grpc,
    /// A message from the queue.
    Queue,
    /// A repair made by a reconciliation run ([`crate::reconcile`]).
    Reconcile,
}

impl Transport {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Grpc => "grpc",
            Self::Queue => "queue",
            Self::Reconcile => "reconcile",
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who asks, for logs, metrics and propagation: the request id and the transport.
#[derive(Debug, Clone)]
pub struct Context {
    /// The caller's `x-request-id` (or a new one).
    pub request_id: String,
    /// The inbound adapter.
    pub transport: Transport,
    /// The W3C `traceparent` of the span the call runs in, when traces are on: recorded with
    /// the outbox entries a write makes, so the trace goes on where they are applied.
    pub trace_context: Option<String>,
}

impl Context {
    /// A context with a given request id.
    pub fn new(transport: Transport, request_id: impl Into<String>) -> Self {
        Self {
            request_id: request_id.into(),
            transport,
            trace_context: None,
        }
    }

    /// This context, in the trace whose `traceparent` is `trace_context`.
    #[must_use]
    pub fn with_trace_context(mut self, trace_context: Option<String>) -> Self {
        self.trace_context = trace_context;
        self
    }
}

/// The result of a write, with the ids of the entities of the other kind whose link with the
/// written entity changed (the cross queries that became stale).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written<T> {
    /// What the write returns.
    pub value: T,
    /// Other-kind ids whose link changed.
    pub relinked: Vec<String>,
    /// True when nothing was written because an idempotency key found the first answer.
    pub replayed: bool,
    /// False when the store was left as it was (a duplicate or stale change, a replay): the
    /// entity's version did not change either.
    pub wrote: bool,
}

impl<T> Written<T> {
    /// The result of a commit, and the links it changed.
    pub fn new(value: T, relinked: Vec<String>) -> Self {
        Self {
            value,
            relinked,
            replayed: false,
            wrote: true,
        }
    }

    /// A result for which nothing was written.
    pub fn unchanged(value: T) -> Self {
        Self {
            wrote: false,
            ..Self::new(value, vec![])
        }
    }

    /// The first answer of a request made again with its idempotency key.
    pub fn replayed(value: T) -> Self {
        Self {
            replayed: true,
            ..Self::unchanged(value)
        }
    }
}

/// One link of an entity set or removed on its own (the one-link endpoints).
#[derive(Debug, Clone)]
pub struct LinkEdit<E: Entity> {
    /// The entity of the other kind.
    pub other: E::OtherId,
    /// Link it (`true`) or unlink it.
    pub linked: bool,
}

/// A change of the relation received from the other side: `other` now does (`linked`) or does
/// not link `entity`, as of the pair's logical `clock` (see [`crate::links`]).
#[derive(Debug, Clone)]
pub struct IncomingLink<E: Entity> {
    /// The entity of this side.
    pub entity: E::Id,
    /// The entity of the other side.
    pub other: E::OtherId,
    /// Whether the other side links the pair.
    pub linked: bool,
    /// The pair's clock at the change.
    pub clock: i64,
}

impl<E: Entity> IncomingLink<E> {
    /// The change as the pure rules of [`crate::links`] see it.
    pub fn received(&self) -> crate::links::Received {
        crate::links::Received {
            other: self.other.to_string(),
            linked: self.linked,
            clock: self.clock,
        }
    }
}

/// The operations a service offers on its entity: the port every inbound adapter calls.
pub trait EntityService<E: Entity>: Clone + Send + Sync + 'static {
    /// A page of entities, oldest first.
    fn list(&self, ctx: &Context, page: Page)
    -> impl Future<Output = Result<Vec<E>, Error>> + Send;
    /// One entity.
    fn get(&self, ctx: &Context, id: &E::Id) -> impl Future<Output = Result<E, Error>> + Send;
    /// Stores a new entity and returns it with its new id. With a `key`, a request made
    /// again with the same key and fields gets the first answer (`replayed`) instead of a
    /// second entity; the same key with other fields is [`Error::KeyReused`].
    fn create_keyed(
        &self,
        ctx: &Context,
        draft: E::Draft,
        key: Option<IdempotencyKey>,
    ) -> impl Future<Output = Result<Written<E>, Error>> + Send;
    /// Replaces an entity's fields if it is as `expected`.
    fn update_if(
        &self,
        ctx: &Context,
        id: &E::Id,
        draft: E::Draft,
        expected: Expected,
    ) -> impl Future<Output = Result<Written<E>, Error>> + Send;
    /// Removes an entity if it is as `expected`.
    fn delete_if(
        &self,
        ctx: &Context,
        id: &E::Id,
        expected: Expected,
    ) -> impl Future<Output = Result<Written<()>, Error>> + Send;
    /// Sets or removes one link of an entity (if it is as `expected`), leaving its other links
    /// as they are; returns the entity's version after it. Idempotent: a link already as asked
    /// changes nothing.
    fn set_link(
        &self,
        ctx: &Context,
        id: &E::Id,
        edit: LinkEdit<E>,
        expected: Expected,
    ) -> impl Future<Output = Result<Written<i64>, Error>> + Send;

    /// [`create_keyed`](Self::create_keyed) without a key.
    fn create(
        &self,
        ctx: &Context,
        draft: E::Draft,
    ) -> impl Future<Output = Result<Written<E>, Error>> + Send {
        self.create_keyed(ctx, draft, None)
    }
    /// [`update_if`](Self::update_if) without a condition.
    fn update(
        &self,
        ctx: &Context,
        id: &E::Id,
        draft: E::Draft,
    ) -> impl Future<Output = Result<Written<E>, Error>> + Send {
        self.update_if(ctx, id, draft, Expected::Unconditional)
    }
    /// [`delete_if`](Self::delete_if) without a condition.
    fn delete(
        &self,
        ctx: &Context,
        id: &E::Id,
    ) -> impl Future<Output = Result<Written<()>, Error>> + Send {
        self.delete_if(ctx, id, Expected::Unconditional)
    }
    /// A page of the entities that link `other` (the cross query this service answers).
    fn list_linked(
        &self,
        ctx: &Context,
        other: &E::OtherId,
        page: Page,
    ) -> impl Future<Output = Result<Vec<E>, Error>> + Send;
    /// Applies a change of the relation made by the other side.
    fn apply_link(
        &self,
        ctx: &Context,
        change: IncomingLink<E>,
    ) -> impl Future<Output = Result<Written<Outcome>, Error>> + Send;
}

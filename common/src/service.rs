//! The service port every transport calls, the repository port every store implements, and the
//! core service that joins them. Caching, metrics and logging wrap the port as decorators
//! (see [`crate::decorators`]), so HTTP, gRPC and queue consumers share them.

use std::{fmt, future::Future};

use crate::{entity::Entity, error::Error, links::Outcome, paging::Page};

/// Which inbound adapter a request came through (the `transport` metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// The HTTP API.
    Http,
    /// The gRPC API.
    Grpc,
    /// A message from the queue.
    Queue,
}

impl Transport {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Grpc => "grpc",
            Self::Queue => "queue",
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
}

impl Context {
    /// A context with a given request id.
    pub fn new(transport: Transport, request_id: impl Into<String>) -> Self {
        Self {
            request_id: request_id.into(),
            transport,
        }
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
}

impl<T> Written<T> {
    /// A result and the links it changed.
    pub fn new(value: T, relinked: Vec<String>) -> Self {
        Self { value, relinked }
    }
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
    /// Stores a new entity and returns it with its new id.
    fn create(
        &self,
        ctx: &Context,
        draft: E::Draft,
    ) -> impl Future<Output = Result<Written<E>, Error>> + Send;
    /// Replaces an entity's fields.
    fn update(
        &self,
        ctx: &Context,
        id: &E::Id,
        draft: E::Draft,
    ) -> impl Future<Output = Result<Written<E>, Error>> + Send;
    /// Removes an entity.
    fn delete(
        &self,
        ctx: &Context,
        id: &E::Id,
    ) -> impl Future<Output = Result<Written<()>, Error>> + Send;
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

/// Where entities are kept: the port every store adapter implements. Every write that changes
/// links records the outgoing changes in the store's outbox in the same atomic step (see
/// [`crate::queue::relay::Outbox`]), following [`crate::links`].
pub trait Repository<E: Entity>: Clone + Send + Sync + 'static {
    /// A page of entities in creation order.
    fn list(&self, page: Page) -> impl Future<Output = Result<Vec<E>, Error>> + Send;
    /// The entity with this id, if any.
    fn get(&self, id: &E::Id) -> impl Future<Output = Result<Option<E>, Error>> + Send;
    /// Stores a new entity (`Conflict` when a unique rule is broken).
    fn insert(
        &self,
        ctx: &Context,
        draft: E::Draft,
    ) -> impl Future<Output = Result<Written<E>, Error>> + Send;
    /// Replaces the fields of an existing entity; `None` when there is none.
    fn replace(
        &self,
        ctx: &Context,
        id: &E::Id,
        draft: E::Draft,
    ) -> impl Future<Output = Result<Option<Written<E>>, Error>> + Send;
    /// Removes an entity; `None` when there was none.
    fn delete(
        &self,
        ctx: &Context,
        id: &E::Id,
    ) -> impl Future<Output = Result<Option<Written<()>>, Error>> + Send;
    /// A page of the entities that link `other`, in creation order.
    fn list_linked(
        &self,
        other: &E::OtherId,
        page: Page,
    ) -> impl Future<Output = Result<Vec<E>, Error>> + Send;
    /// Applies a change received from the other side (see [`crate::links::plan_apply`]).
    fn apply_link(
        &self,
        ctx: &Context,
        change: &IncomingLink<E>,
    ) -> impl Future<Output = Result<Written<Outcome>, Error>> + Send;
    /// Checks that the store answers (readiness).
    fn ping(&self) -> impl Future<Output = Result<(), Error>> + Send;
}

/// The core service: business rules over a repository, with no transport or technology in it.
#[derive(Debug, Clone)]
pub struct Core<R> {
    repository: R,
}

impl<R> Core<R> {
    /// A core service over `repository`.
    pub fn new(repository: R) -> Self {
        Self { repository }
    }
}

impl<E: Entity, R: Repository<E>> EntityService<E> for Core<R> {
    async fn list(&self, _ctx: &Context, page: Page) -> Result<Vec<E>, Error> {
        self.repository.list(page).await
    }

    async fn get(&self, _ctx: &Context, id: &E::Id) -> Result<E, Error> {
        self.repository
            .get(id)
            .await?
            .ok_or_else(|| E::not_found(id))
    }

    async fn create(&self, ctx: &Context, draft: E::Draft) -> Result<Written<E>, Error> {
        self.repository.insert(ctx, draft).await
    }

    async fn update(
        &self,
        ctx: &Context,
        id: &E::Id,
        draft: E::Draft,
    ) -> Result<Written<E>, Error> {
        self.repository
            .replace(ctx, id, draft)
            .await?
            .ok_or_else(|| E::not_found(id))
    }

    async fn delete(&self, ctx: &Context, id: &E::Id) -> Result<Written<()>, Error> {
        self.repository
            .delete(ctx, id)
            .await?
            .ok_or_else(|| E::not_found(id))
    }

    async fn list_linked(
        &self,
        _ctx: &Context,
        other: &E::OtherId,
        page: Page,
    ) -> Result<Vec<E>, Error> {
        self.repository.list_linked(other, page).await
    }

    async fn apply_link(
        &self,
        ctx: &Context,
        change: IncomingLink<E>,
    ) -> Result<Written<Outcome>, Error> {
        self.repository.apply_link(ctx, &change).await
    }
}

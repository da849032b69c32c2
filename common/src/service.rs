//! The service port every transport calls, the repository port every store implements, and the
//! core service that joins them. Caching, metrics and logging wrap the port as decorators
//! (see [`crate::decorators`]), so HTTP, gRPC and queue consumers share them.

use std::{fmt, future::Future};

use crate::{entity::Entity, error::Error, paging::Page};

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
    ) -> impl Future<Output = Result<E, Error>> + Send;
    /// Replaces an entity's fields.
    fn update(
        &self,
        ctx: &Context,
        id: &E::Id,
        draft: E::Draft,
    ) -> impl Future<Output = Result<E, Error>> + Send;
    /// Removes an entity.
    fn delete(&self, ctx: &Context, id: &E::Id) -> impl Future<Output = Result<(), Error>> + Send;
}

/// Where entities are kept: the port every store adapter implements.
pub trait Repository<E: Entity>: Clone + Send + Sync + 'static {
    /// A page of entities in creation order.
    fn list(&self, page: Page) -> impl Future<Output = Result<Vec<E>, Error>> + Send;
    /// The entity with this id, if any.
    fn get(&self, id: &E::Id) -> impl Future<Output = Result<Option<E>, Error>> + Send;
    /// Stores a new entity (`Conflict` when a unique rule is broken).
    fn insert(&self, draft: E::Draft) -> impl Future<Output = Result<E, Error>> + Send;
    /// Replaces the fields of an existing entity; `None` when there is none.
    fn replace(
        &self,
        id: &E::Id,
        draft: E::Draft,
    ) -> impl Future<Output = Result<Option<E>, Error>> + Send;
    /// Removes an entity; `false` when there was none.
    fn delete(&self, id: &E::Id) -> impl Future<Output = Result<bool, Error>> + Send;
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

    async fn create(&self, _ctx: &Context, draft: E::Draft) -> Result<E, Error> {
        self.repository.insert(draft).await
    }

    async fn update(&self, _ctx: &Context, id: &E::Id, draft: E::Draft) -> Result<E, Error> {
        self.repository
            .replace(id, draft)
            .await?
            .ok_or_else(|| E::not_found(id))
    }

    async fn delete(&self, _ctx: &Context, id: &E::Id) -> Result<(), Error> {
        if self.repository.delete(id).await? {
            Ok(())
        } else {
            Err(E::not_found(id))
        }
    }
}

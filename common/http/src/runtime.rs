//! Service calls on the application's runtime, not on actix's.
//!
//! actix-web runs each HTTP worker on a runtime of its own, while the stores' connection pools
//! are shared by the whole process. A connection belongs to the runtime that opened it: one
//! opened by a worker dies with that worker's runtime, which a graceful stop shuts down while
//! other workers still drain their requests — and a request that then draws that connection
//! from the pool fails with "the Tokio context is being shut down" (found by `make chaos`,
//! docs/chaos.md). [`OnRuntime`] hands every call of the service to the runtime the service was
//! built on, so every connection is opened, and lives, there.

use std::future::Future;

use nis_core::{
    Context, Entity, EntityService, Error, IncomingLink, Page, Written, links::Outcome,
};
use tokio::runtime::Handle;

/// The service `S`, each call run on `runtime`.
#[derive(Debug, Clone)]
pub struct OnRuntime<S> {
    inner: S,
    runtime: Handle,
}

impl<S> OnRuntime<S> {
    /// `inner`, its calls run on `runtime` (the application's, e.g. `Handle::current()` at start).
    pub fn new(inner: S, runtime: Handle) -> Self {
        Self { inner, runtime }
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl Future<Output = Result<T, Error>> + Send + 'static,
    ) -> Result<T, Error> {
        self.runtime
            .spawn(work)
            .await
            .unwrap_or_else(|e| Err(Error::internal_because("a service call did not finish", e)))
    }
}

impl<E: Entity, S: EntityService<E>> EntityService<E> for OnRuntime<S> {
    async fn list(&self, ctx: &Context, page: Page) -> Result<Vec<E>, Error> {
        let (inner, ctx) = (self.inner.clone(), ctx.clone());
        self.run(async move { inner.list(&ctx, page).await }).await
    }

    async fn get(&self, ctx: &Context, id: &E::Id) -> Result<E, Error> {
        let (inner, ctx, id) = (self.inner.clone(), ctx.clone(), id.clone());
        self.run(async move { inner.get(&ctx, &id).await }).await
    }

    async fn create(&self, ctx: &Context, draft: E::Draft) -> Result<Written<E>, Error> {
        let (inner, ctx) = (self.inner.clone(), ctx.clone());
        self.run(async move { inner.create(&ctx, draft).await })
            .await
    }

    async fn update(
        &self,
        ctx: &Context,
        id: &E::Id,
        draft: E::Draft,
    ) -> Result<Written<E>, Error> {
        let (inner, ctx, id) = (self.inner.clone(), ctx.clone(), id.clone());
        self.run(async move { inner.update(&ctx, &id, draft).await })
            .await
    }

    async fn delete(&self, ctx: &Context, id: &E::Id) -> Result<Written<()>, Error> {
        let (inner, ctx, id) = (self.inner.clone(), ctx.clone(), id.clone());
        self.run(async move { inner.delete(&ctx, &id).await }).await
    }

    async fn list_linked(
        &self,
        ctx: &Context,
        other: &E::OtherId,
        page: Page,
    ) -> Result<Vec<E>, Error> {
        let (inner, ctx, other) = (self.inner.clone(), ctx.clone(), other.clone());
        self.run(async move { inner.list_linked(&ctx, &other, page).await })
            .await
    }

    async fn apply_link(
        &self,
        ctx: &Context,
        change: IncomingLink<E>,
    ) -> Result<Written<Outcome>, Error> {
        let (inner, ctx) = (self.inner.clone(), ctx.clone());
        self.run(async move { inner.apply_link(&ctx, change).await })
            .await
    }
}

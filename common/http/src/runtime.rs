//! Service calls of the HTTP API polled on the actix worker that received them, in the
//! application runtime's context ([`nis_runtime::context`] says why).

use std::future::Future;

use nis_core::{
    Context, Entity, EntityService, Error, IncomingLink, Page, Written, conditions::Expected,
    idempotency::IdempotencyKey, links::Outcome, service::LinkEdit,
};
use tokio::runtime::Handle;

/// The service `S`, each call polled in the context of `runtime`.
#[derive(Debug, Clone)]
pub struct OnRuntime<S> {
    inner: S,
    runtime: Handle,
}

impl<S> OnRuntime<S> {
    /// `inner`, its calls run in `runtime`'s context (the application's, e.g.
    /// `Handle::current()` at start).
    pub fn new(inner: S, runtime: Handle) -> Self {
        Self { inner, runtime }
    }

    async fn run<T>(&self, work: impl Future<Output = T>) -> T {
        nis_runtime::context::within(&self.runtime, work).await
    }
}

impl<E: Entity, S: EntityService<E>> EntityService<E> for OnRuntime<S> {
    async fn list(&self, ctx: &Context, page: Page) -> Result<Vec<E>, Error> {
        self.run(self.inner.list(ctx, page)).await
    }

    async fn get(&self, ctx: &Context, id: &E::Id) -> Result<E, Error> {
        self.run(self.inner.get(ctx, id)).await
    }

    async fn create_keyed(
        &self,
        ctx: &Context,
        draft: E::Draft,
        key: Option<IdempotencyKey>,
    ) -> Result<Written<E>, Error> {
        self.run(self.inner.create_keyed(ctx, draft, key)).await
    }

    async fn update_if(
        &self,
        ctx: &Context,
        id: &E::Id,
        draft: E::Draft,
        expected: Expected,
    ) -> Result<Written<E>, Error> {
        self.run(self.inner.update_if(ctx, id, draft, expected))
            .await
    }

    async fn delete_if(
        &self,
        ctx: &Context,
        id: &E::Id,
        expected: Expected,
    ) -> Result<Written<()>, Error> {
        self.run(self.inner.delete_if(ctx, id, expected)).await
    }

    async fn set_link(
        &self,
        ctx: &Context,
        id: &E::Id,
        edit: LinkEdit<E>,
        expected: Expected,
    ) -> Result<Written<i64>, Error> {
        self.run(self.inner.set_link(ctx, id, edit, expected)).await
    }

    async fn list_linked(
        &self,
        ctx: &Context,
        other: &E::OtherId,
        page: Page,
    ) -> Result<Vec<E>, Error> {
        self.run(self.inner.list_linked(ctx, other, page)).await
    }

    async fn apply_link(
        &self,
        ctx: &Context,
        change: IncomingLink<E>,
    ) -> Result<Written<Outcome>, Error> {
        self.run(self.inner.apply_link(ctx, change)).await
    }
}

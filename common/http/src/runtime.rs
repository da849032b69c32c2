//! Service calls in the application's runtime context, polled right on actix's workers.
//!
//! actix-web runs each HTTP worker on a runtime of its own, while the stores' connection pools
//! are shared by the whole process. A connection belongs to the runtime whose context it was
//! opened in: one opened by a worker dies with that worker's runtime, which a graceful stop
//! shuts down while other workers still drain their requests — and a request that then uses
//! that connection fails with "the Tokio context is being shut down" (found by `make chaos`,
//! docs/chaos.md).
//!
//! [`OnRuntime`] polls each call of the service on the worker that received the request, but
//! inside the application runtime's context: every socket, timer and background task a call
//! creates (a pool's new connection, Redis' reconnection, a driver task) is registered with the
//! application's runtime, which lives as long as the process. Handing the whole call to that
//! runtime instead would do the same at the price of two thread hand-offs per request, which
//! `make bench` measured as the largest single cost of a cached read (docs/benchmarks.md).

use std::{future::Future, pin::pin, task::Poll};

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

    /// Polls `work` to completion, entering the runtime's context for each poll (the guard is
    /// never held across a suspension, so the worker's own runtime is untouched in between).
    async fn run<T>(&self, work: impl Future<Output = T>) -> T {
        let mut work = pin!(work);
        std::future::poll_fn(|cx| -> Poll<T> {
            let _entered = self.runtime.enter();
            work.as_mut().poll(cx)
        })
        .await
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

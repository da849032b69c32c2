//! A decorator that runs an [`Aspect`] around every operation of a service, so each
//! cross-cutting concern is written once instead of once per operation.

use crate::{
    Context, Entity, EntityService, Error, Page,
    conditions::Expected,
    idempotency::IdempotencyKey,
    links::Outcome,
    service::{IncomingLink, LinkEdit, Written},
};

/// Behaviour around one call: measure it, log it, ...
pub trait Aspect: Clone + Send + Sync + 'static {
    /// Runs `call` (operation `operation` of service `service`) and returns its outcome.
    fn around<T: Send>(
        &self,
        service: &'static str,
        ctx: &Context,
        operation: &'static str,
        call: impl Future<Output = Result<T, Error>> + Send,
    ) -> impl Future<Output = Result<T, Error>> + Send;
}

/// Service `S` with aspect `A` around each operation.
#[derive(Debug, Clone)]
pub struct Around<S, A> {
    inner: S,
    aspect: A,
}

impl<S, A> Around<S, A> {
    /// Wraps `inner`.
    pub fn new(inner: S, aspect: A) -> Self {
        Self { inner, aspect }
    }
}

impl<E: Entity, S: EntityService<E>, A: Aspect> EntityService<E> for Around<S, A> {
    async fn list(&self, ctx: &Context, page: Page) -> Result<Vec<E>, Error> {
        let call = self.inner.list(ctx, page);
        self.aspect.around(E::KIND, ctx, "list", call).await
    }

    async fn get(&self, ctx: &Context, id: &E::Id) -> Result<E, Error> {
        let call = self.inner.get(ctx, id);
        self.aspect.around(E::KIND, ctx, "get", call).await
    }

    async fn create_keyed(
        &self,
        ctx: &Context,
        draft: E::Draft,
        key: Option<IdempotencyKey>,
    ) -> Result<Written<E>, Error> {
        let call = self.inner.create_keyed(ctx, draft, key);
        self.aspect.around(E::KIND, ctx, "create", call).await
    }

    async fn update_if(
        &self,
        ctx: &Context,
        id: &E::Id,
        draft: E::Draft,
        expected: Expected,
    ) -> Result<Written<E>, Error> {
        let call = self.inner.update_if(ctx, id, draft, expected);
        self.aspect.around(E::KIND, ctx, "update", call).await
    }

    async fn delete_if(
        &self,
        ctx: &Context,
        id: &E::Id,
        expected: Expected,
    ) -> Result<Written<()>, Error> {
        let call = self.inner.delete_if(ctx, id, expected);
        self.aspect.around(E::KIND, ctx, "delete", call).await
    }

    async fn set_link(
        &self,
        ctx: &Context,
        id: &E::Id,
        edit: LinkEdit<E>,
        expected: Expected,
    ) -> Result<Written<i64>, Error> {
        let call = self.inner.set_link(ctx, id, edit, expected);
        self.aspect.around(E::KIND, ctx, "set_link", call).await
    }

    async fn list_linked(
        &self,
        ctx: &Context,
        other: &E::OtherId,
        page: Page,
    ) -> Result<Vec<E>, Error> {
        let call = self.inner.list_linked(ctx, other, page);
        self.aspect.around(E::KIND, ctx, "list_linked", call).await
    }

    async fn apply_link(
        &self,
        ctx: &Context,
        change: IncomingLink<E>,
    ) -> Result<Written<Outcome>, Error> {
        let call = self.inner.apply_link(ctx, change);
        self.aspect.around(E::KIND, ctx, "apply_link", call).await
    }
}

//! Read-through caching of list and get, with exact invalidation on writes.

use serde::{Serialize, de::DeserializeOwned};

use crate::{
    Context, Entity, EntityService, Error, Page,
    cache::{Cache, Lookup},
    links::Outcome,
    metric_names::CACHE_LOOKUPS_TOTAL,
    service::{IncomingLink, Written},
};

/// Caches the reads of `S` in `C`; writes invalidate what they made stale.
#[derive(Debug, Clone)]
pub struct Cached<S, C> {
    inner: S,
    cache: C,
}

impl<S, C> Cached<S, C> {
    /// Wraps `inner`.
    pub fn new(inner: S, cache: C) -> Self {
        Self { inner, cache }
    }
}

/// The scope holding every list page of a kind.
const LIST_SCOPE: &str = "list";

fn entity_scope(id: &impl std::fmt::Display) -> String {
    format!("id:{id}")
}

/// The scope of the cross query "which entities link `other`".
fn linked_scope(other: &impl std::fmt::Display) -> String {
    format!("by:{other}")
}

/// The scopes a write made stale: the entity (if it existed before), every list page, and the
/// cross queries of every other-kind id whose link changed.
fn stale_scopes(entity: Option<String>, relinked: &[String]) -> Vec<String> {
    entity
        .into_iter()
        .chain([LIST_SCOPE.to_owned()])
        .chain(relinked.iter().map(linked_scope))
        .collect()
}

impl<S, C: Cache> Cached<S, C> {
    /// Returns the cached value of `key` in `scope`, or loads it and caches it. A cache that
    /// fails is counted and passed over: the request never fails because of it.
    async fn read_through<T, F>(
        &self,
        service: &'static str,
        operation: &'static str,
        scope: &str,
        key: &str,
        load: F,
    ) -> Result<T, Error>
    where
        T: Serialize + DeserializeOwned,
        F: Future<Output = Result<T, Error>>,
    {
        let count = |result: &'static str| {
            metrics::counter!(CACHE_LOOKUPS_TOTAL, "service" => service, "operation" => operation, "result" => result)
                .increment(1);
        };
        let generation = match self.cache.lookup(scope, key).await {
            Ok(Lookup {
                value: Some(bytes),
                generation,
            }) => match serde_json::from_slice(&bytes) {
                Ok(value) => {
                    count("hit");
                    return Ok(value);
                }
                Err(e) => {
                    // Written by an older version, or corrupt: treat as a miss and overwrite.
                    tracing::warn!(scope, error = %e, "unreadable cache entry");
                    count("miss");
                    Some(generation)
                }
            },
            Ok(Lookup {
                value: None,
                generation,
            }) => {
                count("miss");
                Some(generation)
            }
            Err(e) => {
                count("error");
                tracing::debug!(scope, error = %e, "cache lookup failed; reading the store");
                None
            }
        };
        let value = load.await?;
        if let Some(generation) = generation {
            match serde_json::to_vec(&value) {
                Ok(bytes) => {
                    if let Err(e) = self.cache.fill(scope, generation, key, bytes).await {
                        tracing::debug!(scope, error = %e, "cache fill failed");
                    }
                }
                Err(e) => tracing::warn!(scope, error = %e, "cannot serialize for the cache"),
            }
        }
        Ok(value)
    }

    /// Invalidates what a write made stale, unless it certainly changed nothing. A store that
    /// failed may still have committed what it was asked: then the entity and the lists are
    /// invalidated (its links are unknown; they expire with the TTL).
    async fn after_write<T>(
        &self,
        outcome: Result<Written<T>, Error>,
        entity: Option<String>,
    ) -> Result<Written<T>, Error> {
        let scopes = match &outcome {
            Ok(written) => stale_scopes(entity, &written.relinked),
            Err(e) if e.is_server_fault() => stale_scopes(entity, &[]),
            Err(_) => return outcome,
        };
        if let Err(e) = self.cache.invalidate(&scopes).await {
            tracing::warn!(?scopes, error = %e, "cache invalidation failed; entries may be stale until their TTL");
        }
        outcome
    }
}

impl<E, S, C> EntityService<E> for Cached<S, C>
where
    E: Entity,
    S: EntityService<E>,
    C: Cache,
{
    async fn list(&self, ctx: &Context, page: Page) -> Result<Vec<E>, Error> {
        let key = format!("{}:{}", page.limit, page.offset);
        self.read_through(
            E::KIND,
            "list",
            LIST_SCOPE,
            &key,
            self.inner.list(ctx, page),
        )
        .await
    }

    async fn get(&self, ctx: &Context, id: &E::Id) -> Result<E, Error> {
        self.read_through(
            E::KIND,
            "get",
            &entity_scope(id),
            "",
            self.inner.get(ctx, id),
        )
        .await
    }

    async fn create(&self, ctx: &Context, draft: E::Draft) -> Result<Written<E>, Error> {
        let outcome = self.inner.create(ctx, draft).await;
        self.after_write(outcome, None).await
    }

    async fn update(
        &self,
        ctx: &Context,
        id: &E::Id,
        draft: E::Draft,
    ) -> Result<Written<E>, Error> {
        let outcome = self.inner.update(ctx, id, draft).await;
        self.after_write(outcome, Some(entity_scope(id))).await
    }

    async fn delete(&self, ctx: &Context, id: &E::Id) -> Result<Written<()>, Error> {
        let outcome = self.inner.delete(ctx, id).await;
        self.after_write(outcome, Some(entity_scope(id))).await
    }

    async fn list_linked(
        &self,
        ctx: &Context,
        other: &E::OtherId,
        page: Page,
    ) -> Result<Vec<E>, Error> {
        let key = format!("{}:{}", page.limit, page.offset);
        let load = self.inner.list_linked(ctx, other, page);
        self.read_through(E::KIND, "list_linked", &linked_scope(other), &key, load)
            .await
    }

    async fn apply_link(
        &self,
        ctx: &Context,
        change: IncomingLink<E>,
    ) -> Result<Written<Outcome>, Error> {
        let entity = entity_scope(&change.entity);
        let outcome = self.inner.apply_link(ctx, change).await;
        // Only a change of the entity's list is visible to readers.
        match &outcome {
            Ok(written) if written.relinked.is_empty() => outcome,
            _ => self.after_write(outcome, Some(entity)).await,
        }
    }
}

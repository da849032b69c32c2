//! Fence before commit, settle after: the write side of the cache (docs/behaviour.md §6).
//!
//! A decorator of the *store*, not of the service, because only the core knows, between its
//! plan and its commit, which cross queries a write makes stale (a removed link is found in the
//! loaded state). Every commit the core makes — a caller's write, an applied message, a repair
//! of reconciliation — goes through [`Fenced::commit`], so none can skip the protocol.

use crate::{
    Entity, EntityStore, Error, Page,
    cache::{Cache, Fence, LIST_SCOPE, entity_scope, linked_scope},
    idempotency::KeyRecord,
    metric_names::{CACHE_FENCE_REFUSALS_TOTAL, CACHE_SETTLE_FAILURES_TOTAL},
    store::{Change, Commit, Committed, LinkState},
};

/// `S`, its commits fenced in the cache `C`.
#[derive(Debug, Clone)]
pub struct Fenced<S, C> {
    store: S,
    cache: C,
}

impl<S, C> Fenced<S, C> {
    /// Wraps `store`, the store of `E`. Its counters are exported at 0 from the start, so an
    /// alert sees their first increase.
    pub fn new<E: Entity>(store: S, cache: C) -> Self
    where
        S: EntityStore<E>,
    {
        for counter in [CACHE_FENCE_REFUSALS_TOTAL, CACHE_SETTLE_FAILURES_TOTAL] {
            metrics::counter!(counter, "service" => E::KIND).increment(0);
        }
        Self { store, cache }
    }
}

/// The scopes a commit makes stale: the entity (unless it is new), every list page, and the
/// cross queries of every other-kind id whose link changes. An outbox-only commit changes
/// nothing a reader sees.
fn stale_scopes<E: Entity>(commit: &Commit<E>) -> Vec<String> {
    let entity = match &commit.change {
        Change::Nothing => return vec![],
        Change::Insert { .. } => None,
        Change::Replace { id, .. } | Change::Delete { id } | Change::Relink { id, .. } => {
            Some(entity_scope(id))
        }
    };
    entity
        .into_iter()
        .chain([LIST_SCOPE.to_owned()])
        .chain(commit.relinked.iter().map(linked_scope))
        .collect()
}

impl<E, S, C> EntityStore<E> for Fenced<S, C>
where
    E: Entity,
    S: EntityStore<E>,
    C: Cache,
{
    // Reads and the rest hand back the store's own future: an `async` wrapper would hold it
    // (MongoDB's are large in a debug build) once more on a worker's stack.
    fn list(&self, page: Page) -> impl Future<Output = Result<Vec<E>, Error>> + Send {
        self.store.list(page)
    }

    fn get(&self, id: &E::Id) -> impl Future<Output = Result<Option<E>, Error>> + Send {
        self.store.get(id)
    }

    fn list_linked(
        &self,
        other: &E::OtherId,
        page: Page,
    ) -> impl Future<Output = Result<Vec<E>, Error>> + Send {
        self.store.list_linked(other, page)
    }

    fn next_id(&self) -> E::Id {
        self.store.next_id()
    }

    fn load_links(
        &self,
        id: &E::Id,
    ) -> impl Future<Output = Result<Option<LinkState>, Error>> + Send {
        self.store.load_links(id)
    }

    /// Fences the stale scopes, commits, settles. A fence that cannot be set refuses the write
    /// (`unavailable`, nothing committed, so a retry is safe); a settle that fails is counted
    /// and left to expire. The settle runs whatever the commit answered: a commit that failed
    /// may still have committed.
    async fn commit(&self, commit: Commit<E>) -> Result<Committed, Error> {
        let scopes = stale_scopes(&commit);
        if scopes.is_empty() {
            return Box::pin(self.store.commit(commit)).await;
        }
        let fence = match self.cache.fence(&scopes).await {
            Ok(fence) => fence,
            Err(e) => {
                metrics::counter!(CACHE_FENCE_REFUSALS_TOTAL, "service" => E::KIND).increment(1);
                tracing::warn!(?scopes, error = %e, "write refused: the cache could not be fenced");
                return Err(Error::unavailable_because(
                    "the cache could not be made safe for this write; nothing was written; try again",
                    e,
                ));
            }
        };
        // Boxed where it is made: held inline, a store's commit (MongoDB's is large in a debug
        // build) would sit in this future and in every one around it, past what a worker's
        // stack holds. The store's own deadline (`REQUEST_TIMEOUT_MS`) ends it well before the
        // fence expires.
        let outcome = Box::pin(self.store.commit(commit)).await;
        if tokio::time::Instant::now() >= fence.expires {
            tracing::warn!(
                ?scopes,
                "a commit outlasted its cache fence; REQUEST_TIMEOUT_MS is too long for it"
            );
        }
        self.settle(E::KIND, fence).await;
        outcome
    }

    fn find_key(&self, key: &str) -> impl Future<Output = Result<Option<KeyRecord>, Error>> + Send {
        self.store.find_key(key)
    }

    fn purge_keys(&self) -> impl Future<Output = Result<u64, Error>> + Send {
        self.store.purge_keys()
    }

    fn ping(&self) -> impl Future<Output = Result<(), Error>> + Send {
        self.store.ping()
    }
}

impl<S, C: Cache> Fenced<S, C> {
    /// Settles `fence` for a write of `service`; a failure is counted and left to expire.
    async fn settle(&self, service: &'static str, fence: Fence) {
        if let Err(e) = self.cache.settle(&fence).await {
            metrics::counter!(CACHE_SETTLE_FAILURES_TOTAL, "service" => service).increment(1);
            tracing::warn!(
                scopes = ?fence.scopes,
                error = %e,
                "cache settle failed; these scopes are read from the database until their fence expires"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::{
        Core, EntityService, Error,
        decorators::{Cached, Fenced},
        fakes::{
            MemoryCache, MemoryStore, Step,
            cache::FENCE_TTL,
            entities::{Key, MemberDraft, Pupil},
        },
        service::{Context, Transport},
    };

    type Service = Cached<Core<Fenced<MemoryStore<Pupil>, MemoryCache>>, MemoryCache>;

    fn service() -> (Service, MemoryStore<Pupil>, MemoryCache) {
        let store = MemoryStore::<Pupil>::new(|n| Key(format!("s{n}")));
        let cache = MemoryCache::default();
        let fenced = Fenced::new(store.clone(), cache.clone());
        let service = Cached::new(Core::new(fenced, "t.links.students"), cache.clone());
        (service, store, cache)
    }

    fn ctx() -> Context {
        Context::new(Transport::Http, "r")
    }

    fn named(name: &str) -> MemberDraft {
        MemberDraft {
            name: name.into(),
            links: vec![],
        }
    }

    /// Creates an entity named "a" and caches its read; returns its id.
    async fn cached_entity(service: &Service) -> Key {
        let created = service.create(&ctx(), named("a")).await;
        let id = created.expect("created").value.id;
        service.get(&ctx(), &id).await.expect("cached");
        id
    }

    #[tokio::test]
    async fn a_write_that_cannot_fence_is_refused_with_nothing_committed() {
        let (service, _, cache) = service();
        let id = cached_entity(&service).await;
        cache.set_failing(Step::Fence, true);
        let refused = service.update(&ctx(), &id, named("b")).await;
        assert!(
            matches!(refused, Err(Error::Unavailable { .. })),
            "{refused:?}"
        );
        let created = service.create(&ctx(), named("c")).await;
        assert!(
            matches!(created, Err(Error::Unavailable { .. })),
            "{created:?}"
        );
        cache.set_failing(Step::Fence, false);
        assert_eq!(service.get(&ctx(), &id).await.expect("read").name, "a");
        let listed = service
            .list(&ctx(), crate::Page::default())
            .await
            .expect("list");
        assert_eq!(listed.len(), 1, "the refused create committed nothing");
    }

    #[tokio::test(start_paused = true)]
    async fn after_a_failed_settle_the_scope_is_read_from_the_store_until_its_fence_expires() {
        let (service, store, cache) = service();
        let id = cached_entity(&service).await;
        cache.set_failing(Step::Settle, true);
        service
            .update(&ctx(), &id, named("b"))
            .await
            .expect("acknowledged");
        cache.set_failing(Step::Settle, false);
        // Pending: every read goes to the store, and none fills.
        assert_eq!(service.get(&ctx(), &id).await.expect("read").name, "b");
        store.set_down(true);
        assert!(
            service.get(&ctx(), &id).await.is_err(),
            "served from a pending scope"
        );
        store.set_down(false);
        // Expired: a fresh generation, cached again.
        tokio::time::sleep(FENCE_TTL).await;
        assert_eq!(service.get(&ctx(), &id).await.expect("read").name, "b");
        store.set_down(true);
        assert_eq!(service.get(&ctx(), &id).await.expect("cached").name, "b");
    }

    #[tokio::test]
    async fn an_evicted_generation_never_brings_back_an_older_entry() {
        let (service, _, cache) = service();
        let id = cached_entity(&service).await;
        service
            .update(&ctx(), &id, named("b"))
            .await
            .expect("acknowledged");
        cache.evict_generation(&crate::cache::entity_scope(&id));
        cache.evict_generation(crate::cache::LIST_SCOPE);
        assert_eq!(service.get(&ctx(), &id).await.expect("read").name, "b");
        let listed = service
            .list(&ctx(), crate::Page::default())
            .await
            .expect("list");
        assert_eq!(listed[0].name, "b");
    }
}

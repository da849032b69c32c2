//! Read-through caching of list, get and the cross query. Writes pass through: the store they
//! commit to is [`Fenced`](super::Fenced), which makes what they change stale before they commit.

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::{
    Context, Entity, EntityService, Error, Page,
    cache::{Cache, LIST_SCOPE, Lookup, entity_scope, linked_scope},
    conditions::Expected,
    idempotency::IdempotencyKey,
    links::Outcome,
    metric_names::CACHE_LOOKUPS_TOTAL,
    service::{IncomingLink, LinkEdit, Written},
};

/// An entity as cached: its JSON leaves the version out, so the entry carries it beside.
#[derive(Serialize, Deserialize)]
struct Stamped<E> {
    version: i64,
    entity: E,
}

impl<E: Entity> Stamped<E> {
    fn new(entity: E) -> Self {
        Self {
            version: entity.version(),
            entity,
        }
    }

    fn entity(self) -> E {
        self.entity.with_version(self.version)
    }
}

fn stamped<E: Entity>(entities: Vec<E>) -> Vec<Stamped<E>> {
    entities.into_iter().map(Stamped::new).collect()
}

fn unstamped<E: Entity>(entries: Vec<Stamped<E>>) -> Vec<E> {
    entries.into_iter().map(Stamped::entity).collect()
}

/// Caches the reads of `S` in `C`.
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
        // `None`: do not fill (the cache failed, or a write holds a fence on the scope).
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
                    generation
                }
            },
            Ok(Lookup {
                value: None,
                generation,
            }) => {
                count("miss");
                generation
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
}

impl<E, S, C> EntityService<E> for Cached<S, C>
where
    E: Entity,
    S: EntityService<E>,
    C: Cache,
{
    async fn list(&self, ctx: &Context, page: Page) -> Result<Vec<E>, Error> {
        let key = format!("{}:{}", page.limit, page.offset);
        let load = async { self.inner.list(ctx, page).await.map(stamped) };
        let entries = self
            .read_through(E::KIND, "list", LIST_SCOPE, &key, load)
            .await?;
        Ok(unstamped(entries))
    }

    async fn get(&self, ctx: &Context, id: &E::Id) -> Result<E, Error> {
        let load = async { self.inner.get(ctx, id).await.map(Stamped::new) };
        let entry = self
            .read_through(E::KIND, "get", &entity_scope(id), "", load)
            .await?;
        Ok(entry.entity())
    }

    async fn create_keyed(
        &self,
        ctx: &Context,
        draft: E::Draft,
        key: Option<IdempotencyKey>,
    ) -> Result<Written<E>, Error> {
        self.inner.create_keyed(ctx, draft, key).await
    }

    async fn update_if(
        &self,
        ctx: &Context,
        id: &E::Id,
        draft: E::Draft,
        expected: Expected,
    ) -> Result<Written<E>, Error> {
        self.inner.update_if(ctx, id, draft, expected).await
    }

    async fn delete_if(
        &self,
        ctx: &Context,
        id: &E::Id,
        expected: Expected,
    ) -> Result<Written<()>, Error> {
        self.inner.delete_if(ctx, id, expected).await
    }

    async fn set_link(
        &self,
        ctx: &Context,
        id: &E::Id,
        edit: LinkEdit<E>,
        expected: Expected,
    ) -> Result<Written<i64>, Error> {
        self.inner.set_link(ctx, id, edit, expected).await
    }

    async fn list_linked(
        &self,
        ctx: &Context,
        other: &E::OtherId,
        page: Page,
    ) -> Result<Vec<E>, Error> {
        let key = format!("{}:{}", page.limit, page.offset);
        let load = async { self.inner.list_linked(ctx, other, page).await.map(stamped) };
        let entries = self
            .read_through(E::KIND, "list_linked", &linked_scope(other), &key, load)
            .await?;
        Ok(unstamped(entries))
    }

    async fn apply_link(
        &self,
        ctx: &Context,
        change: IncomingLink<E>,
    ) -> Result<Written<Outcome>, Error> {
        self.inner.apply_link(ctx, change).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        Core,
        cache::{CacheError, Fence},
        decorators::Fenced,
        fakes::{
            MemoryCache, MemoryStore,
            entities::{Key, MemberDraft, Pupil},
        },
        service::Transport,
    };

    type Service<C = MemoryCache> = Cached<Core<Fenced<MemoryStore<Pupil>, C>>, C>;

    /// The core over a store fenced in `cache`, cached in it.
    fn cached<C: Cache>(cache: C) -> (Service<C>, MemoryStore<Pupil>) {
        let store = MemoryStore::<Pupil>::new(|n| Key(format!("s{n}")));
        let fenced = Fenced::new(store.clone(), cache.clone());
        let service = Cached::new(Core::new(fenced, "t.links.students"), cache);
        (service, store)
    }

    fn service() -> (Service, MemoryStore<Pupil>, MemoryCache) {
        let cache = MemoryCache::default();
        let (service, store) = cached(cache.clone());
        (service, store, cache)
    }

    fn ctx() -> Context {
        Context::new(Transport::Http, "r")
    }

    fn draft(name: &str, links: &[&str]) -> MemberDraft {
        MemberDraft {
            name: name.into(),
            links: links.iter().map(|l| Key((*l).into())).collect(),
        }
    }

    /// Creates an entity through `service` and returns its id.
    async fn create<S: EntityService<Pupil>>(service: &S, name: &str, links: &[&str]) -> Key {
        let created = service.create(&ctx(), draft(name, links)).await;
        created.expect("created").value.id
    }

    #[tokio::test]
    async fn a_repeated_read_is_served_from_the_cache() {
        let (service, store, _) = service();
        let id = create(&service, "a", &[]).await;
        let first = service.get(&ctx(), &id).await.expect("read");
        store.set_down(true);
        assert_eq!(service.get(&ctx(), &id).await.expect("cached"), first);
        assert_eq!(
            service
                .list(&ctx(), Page::default())
                .await
                .map(|l| l.len())
                .ok(),
            None
        );
    }

    #[tokio::test]
    async fn every_read_after_a_write_sees_it() {
        let (service, _, _) = service();
        let id = create(&service, "a", &["c1"]).await;
        let c1 = Key("c1".into());
        let c2 = Key("c2".into());
        // Fill the entity, the list and both cross queries.
        service.get(&ctx(), &id).await.expect("read");
        service.list(&ctx(), Page::default()).await.expect("list");
        assert_eq!(
            service
                .list_linked(&ctx(), &c1, Page::default())
                .await
                .expect("by c1")
                .len(),
            1
        );
        assert!(
            service
                .list_linked(&ctx(), &c2, Page::default())
                .await
                .expect("by c2")
                .is_empty()
        );

        service
            .update(&ctx(), &id, draft("b", &["c2"]))
            .await
            .expect("updated");
        assert_eq!(service.get(&ctx(), &id).await.expect("read").name, "b");
        assert_eq!(
            service.list(&ctx(), Page::default()).await.expect("list")[0].name,
            "b"
        );
        assert!(
            service
                .list_linked(&ctx(), &c1, Page::default())
                .await
                .expect("by c1")
                .is_empty()
        );
        assert_eq!(
            service
                .list_linked(&ctx(), &c2, Page::default())
                .await
                .expect("by c2")
                .len(),
            1
        );

        service.delete(&ctx(), &id).await.expect("deleted");
        assert!(matches!(
            service.get(&ctx(), &id).await,
            Err(Error::NotFound(_))
        ));
        assert!(
            service
                .list(&ctx(), Page::default())
                .await
                .expect("list")
                .is_empty()
        );
    }

    #[tokio::test]
    async fn an_applied_change_invalidates_the_entity_and_the_cross_query() {
        let (service, _, _) = service();
        let id = create(&service, "a", &[]).await;
        let c7 = Key("c7".into());
        assert!(
            service
                .get(&ctx(), &id)
                .await
                .expect("read")
                .links
                .is_empty()
        );
        assert!(
            service
                .list_linked(&ctx(), &c7, Page::default())
                .await
                .expect("by c7")
                .is_empty()
        );
        let change = IncomingLink {
            entity: id.clone(),
            other: c7.clone(),
            linked: true,
            clock: 1_001,
        };
        service.apply_link(&ctx(), change).await.expect("applied");
        assert_eq!(
            service.get(&ctx(), &id).await.expect("read").links,
            std::slice::from_ref(&c7)
        );
        assert_eq!(
            service
                .list_linked(&ctx(), &c7, Page::default())
                .await
                .expect("by c7")
                .len(),
            1
        );
    }

    /// A cache in which a write lands between a reader's lookup and its fill, as it can when
    /// the reader is slow: the write invalidates the scope just before the fill arrives.
    #[derive(Clone, Default)]
    struct RacedCache(MemoryCache);

    impl Cache for RacedCache {
        async fn lookup(&self, scope: &str, key: &str) -> Result<Lookup, CacheError> {
            self.0.lookup(scope, key).await
        }
        async fn fill(
            &self,
            scope: &str,
            generation: u64,
            key: &str,
            value: Vec<u8>,
        ) -> Result<(), CacheError> {
            let write = self.0.fence(&[scope.to_owned()]).await?;
            self.0.settle(&write).await?;
            self.0.fill(scope, generation, key, value).await
        }
        async fn fence(&self, scopes: &[String]) -> Result<Fence, CacheError> {
            self.0.fence(scopes).await
        }
        async fn settle(&self, fence: &Fence) -> Result<(), CacheError> {
            self.0.settle(fence).await
        }
        async fn ping(&self) -> Result<(), CacheError> {
            self.0.ping().await
        }
    }

    #[tokio::test]
    async fn a_slow_reader_cannot_put_back_what_a_write_made_stale() {
        let cache = RacedCache::default();
        let (service, _) = cached(cache.clone());
        let id = create(&service, "a", &[]).await;
        service.get(&ctx(), &id).await.expect("read");
        assert_eq!(
            cache.0.live_entries(),
            0,
            "the fill went under the old generation"
        );
    }

    #[tokio::test]
    async fn a_cache_that_is_down_costs_reads_nothing_but_the_cache() {
        let (service, _, cache) = service();
        let id = create(&service, "a", &[]).await;
        cache.set_down(true);
        assert_eq!(
            service
                .get(&ctx(), &id)
                .await
                .expect("read from the store")
                .name,
            "a"
        );
    }
}

//! The store port: what the core needs from a database, and nothing more.
//!
//! Reads are plain queries. Every write goes through one narrow pair of calls: [`load`] an
//! entity's link state with its version, then [`commit`] a [`Change`] together with its outbox
//! entries, *on the condition* that the version is still the one loaded. The core
//! ([`crate::core`]) runs load → plan → commit and starts over when the condition fails, so the
//! relation-sync protocol is written once and every store only implements its queries, its
//! load and its conditional commit (docs/behaviour.md §5.7).
//!
//! [`load`]: EntityStore::load_links
//! [`commit`]: EntityStore::commit

use std::future::Future;

use crate::{
    entity::Entity,
    error::Error,
    idempotency::{KeyRecord, NewKey},
    links::Clocks,
    outbox::OutboxEntry,
    paging::Page,
};

/// An entity's side of the relation as stored, with the version the commit is conditional on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkState {
    /// The other-kind ids it links, in list order.
    pub links: Vec<String>,
    /// The clock of every pair it has, or had, a link with.
    pub clocks: Clocks,
    /// Changes with every commit of the entity: 0 when inserted, one more with each commit
    /// (the entity's [`Entity::version`]).
    pub version: i64,
}

/// What a commit writes to the entity.
#[derive(Debug, Clone)]
pub enum Change<E: Entity> {
    /// A new entity (fails with [`Error::Conflict`] when a unique rule is broken).
    Insert {
        /// Its id (from [`EntityStore::next_id`]).
        id: E::Id,
        /// Its fields.
        draft: E::Draft,
        /// Its pair clocks.
        clocks: Clocks,
    },
    /// New fields for an existing entity, its links as in the draft.
    Replace {
        /// Which one.
        id: E::Id,
        /// Its fields.
        draft: E::Draft,
        /// Its pair clocks.
        clocks: Clocks,
    },
    /// Removes an existing entity.
    Delete {
        /// Which one.
        id: E::Id,
    },
    /// New links and clocks for an existing entity, from a change the other side made.
    Relink {
        /// Which one.
        id: E::Id,
        /// The new list; `None` keeps the list as it is (only clocks changed).
        links: Option<Vec<String>>,
        /// Its pair clocks.
        clocks: Clocks,
    },
    /// No entity change: only outbox entries (a compensation for an entity that is not there).
    Nothing,
}

/// A [`Change`], the outbox entries recorded with it, and its condition.
#[derive(Debug, Clone)]
pub struct Commit<E: Entity> {
    /// Commit only if the entity is still at this version (`None`: no condition, as for an
    /// insert or an outbox-only commit).
    pub expected: Option<i64>,
    /// What to write.
    pub change: Change<E>,
    /// What to publish once committed, in order.
    pub outbox: Vec<OutboxEntry>,
    /// The other-kind ids whose link with the entity this commit changes: their cross queries
    /// go stale with it (the cache fences them; stores need not look at it).
    pub relinked: Vec<String>,
    /// The idempotency key of the create that makes this commit, stored with it. A key the
    /// store already holds (unexpired) makes the commit a [`Committed::Conflict`]; an expired
    /// one is replaced.
    pub key: Option<NewKey>,
}

/// Whether a conditional commit took place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Committed {
    /// Written, with its outbox entries, atomically.
    Done,
    /// The entity changed (or vanished) since it was loaded, the idempotency key is taken, or
    /// the store saw a transient conflict: nothing was written; load again and start over.
    Conflict,
}

/// Where entities are kept: the port every store adapter implements.
pub trait EntityStore<E: Entity>: Clone + Send + Sync + 'static {
    /// A page of entities in creation order.
    fn list(&self, page: Page) -> impl Future<Output = Result<Vec<E>, Error>> + Send;
    /// The entity with this id, if any.
    fn get(&self, id: &E::Id) -> impl Future<Output = Result<Option<E>, Error>> + Send;
    /// A page of the entities that link `other`, in creation order.
    fn list_linked(
        &self,
        other: &E::OtherId,
        page: Page,
    ) -> impl Future<Output = Result<Vec<E>, Error>> + Send;
    /// A fresh id for a new entity (ids sort by creation time).
    fn next_id(&self) -> E::Id;
    /// The link state of entity `id`, if it exists.
    fn load_links(
        &self,
        id: &E::Id,
    ) -> impl Future<Output = Result<Option<LinkState>, Error>> + Send;
    /// Writes `commit` atomically — the change and its outbox entries, or nothing.
    fn commit(&self, commit: Commit<E>) -> impl Future<Output = Result<Committed, Error>> + Send;
    /// The unexpired idempotency key `key`, if the store holds it.
    fn find_key(&self, key: &str) -> impl Future<Output = Result<Option<KeyRecord>, Error>> + Send;
    /// Removes the expired idempotency keys; returns how many.
    fn purge_keys(&self) -> impl Future<Output = Result<u64, Error>> + Send;
    /// Checks that the store answers (readiness).
    fn ping(&self) -> impl Future<Output = Result<(), Error>> + Send;
}

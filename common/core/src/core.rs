//! The core service: the use cases of an entity over its store, with no transport or storage
//! technology in it.
//!
//! Reads go straight to the store. Every write — a create, update or delete from a caller, or a
//! change of the relation received from the other side — is one loop, written once here:
//!
//! 1. **load** the entity's link state and version from the store;
//! 2. **plan** with the pure rules of [`crate::links`]: stamp the changed pairs, decide what a
//!    received change does (apply, duplicate, stale, compensate);
//! 3. **commit** the entity change and its outbox entries atomically, on the condition that the
//!    version is unchanged; on a conflict, start over from 1 (bounded by [`MAX_ATTEMPTS`]).
//!
//! A received change that changes nothing (a duplicate, a stale change) writes nothing, in
//! every store alike (docs/behaviour.md §5.5).

use std::{sync::Arc, time::Duration};

use crate::{
    entity::Entity,
    error::Error,
    links::{self, Clocks, Outcome, Outgoing},
    outbox::{OutboxEntry, OutboxSignal},
    paging::Page,
    service::{Context, EntityService, IncomingLink, Written},
    store::{Change, Commit, Committed, EntityStore, LinkState},
};

/// How often a write starts over after losing a race before it gives up with
/// [`Error::Unavailable`].
pub const MAX_ATTEMPTS: usize = 50;
/// How long a write keeps starting over after losing races before it gives up with
/// [`Error::Unavailable`]: a caller gets a 503 within a few seconds instead of its own timeout
/// (a document held by a dead client's transaction loses every race until the server aborts
/// it; docs/behaviour.md §5.7).
pub const RETRY_BUDGET: Duration = Duration::from_secs(3);

/// Where new pair clocks take their wall-clock part (microseconds since the Unix epoch).
pub type WallClock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The core service of entity kind `E` over store `S`.
#[derive(Clone)]
pub struct Core<S> {
    store: S,
    /// The subject on which this side's link changes are published.
    subject: Arc<str>,
    signal: OutboxSignal,
    now: WallClock,
}

impl<S: std::fmt::Debug> std::fmt::Debug for Core<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("store", &self.store)
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

impl<S> Core<S> {
    /// A core over `store` whose link changes go out on `subject`.
    pub fn new(store: S, subject: impl Into<Arc<str>>) -> Self {
        Self {
            store,
            subject: subject.into(),
            signal: OutboxSignal::default(),
            now: Arc::new(links::now_micros),
        }
    }

    /// The same core with another wall clock (a deterministic one, for replayable tests).
    #[must_use]
    pub fn with_wall_clock(self, now: WallClock) -> Self {
        Self { now, ..self }
    }

    /// Signalled after every commit that recorded outbox entries (the relay listens to it).
    pub fn outbox_signal(&self) -> OutboxSignal {
        self.signal.clone()
    }
}

/// What one attempt of a write decided.
enum Attempt<E: Entity, T> {
    /// The write has its answer without committing anything.
    Done(T),
    /// Commit this, then answer with `T` and the relinked ids.
    Commit(Commit<E>, T, Vec<String>),
}

impl<S> Core<S> {
    fn entries<E: Entity>(
        &self,
        ctx: &Context,
        entity: &E::Id,
        changes: &[Outgoing],
    ) -> Vec<OutboxEntry> {
        let entity = entity.to_string();
        changes
            .iter()
            .map(|change| {
                OutboxEntry::link_change(&self.subject, E::KIND, &entity, change, &ctx.request_id)
            })
            .collect()
    }

    /// Runs `attempt` (load and plan) and commits what it planned, starting over on conflict.
    async fn write<E, T, F, Fut>(&self, mut attempt: F) -> Result<Written<T>, Error>
    where
        E: Entity,
        S: EntityStore<E>,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Attempt<E, T>, Error>>,
    {
        let give_up = tokio::time::Instant::now() + RETRY_BUDGET;
        for _ in 0..MAX_ATTEMPTS {
            match attempt().await? {
                Attempt::Done(value) => return Ok(Written::new(value, vec![])),
                Attempt::Commit(commit, value, relinked) => {
                    let recorded = !commit.outbox.is_empty();
                    match self.store.commit(commit).await? {
                        Committed::Done => {
                            if recorded {
                                self.signal.notify();
                            }
                            return Ok(Written::new(value, relinked));
                        }
                        Committed::Conflict if tokio::time::Instant::now() >= give_up => break,
                        Committed::Conflict => continue,
                    }
                }
            }
        }
        Err(Error::unavailable(format!(
            "the {} changed too often to be written; try again",
            E::SINGULAR
        )))
    }
}

/// Plans a local write of an entity of kind `E` whose list goes from what is stored to `new`,
/// at wall-clock time `now`.
fn plan_write<E: Entity>(state: &LinkState, new: &[String], now: i64) -> (Clocks, Vec<Outgoing>) {
    let mut clocks = state.clocks.clone();
    let changes = links::plan_write(E::SIDE, &state.links, new, &mut clocks, now);
    (clocks, changes)
}

fn strings<I: ToString>(ids: &[I]) -> Vec<String> {
    ids.iter().map(ToString::to_string).collect()
}

impl<E: Entity, S: EntityStore<E>> EntityService<E> for Core<S> {
    async fn list(&self, _ctx: &Context, page: Page) -> Result<Vec<E>, Error> {
        self.store.list(page).await
    }

    async fn get(&self, _ctx: &Context, id: &E::Id) -> Result<E, Error> {
        self.store.get(id).await?.ok_or_else(|| E::not_found(id))
    }

    async fn create(&self, ctx: &Context, draft: E::Draft) -> Result<Written<E>, Error> {
        let id = self.store.next_id();
        let new = strings(E::draft_links(&draft));
        let fresh = LinkState {
            links: vec![],
            clocks: Clocks::new(),
            version: 0,
        };
        let (clocks, changes) = plan_write::<E>(&fresh, &new, (self.now)());
        let outbox = self.entries::<E>(ctx, &id, &changes);
        // The id and the entries are made once: a retried insert is the same insert.
        self.write(move || {
            let commit = Commit {
                expected: None,
                change: Change::Insert {
                    id: id.clone(),
                    draft: draft.clone(),
                    clocks: clocks.clone(),
                },
                outbox: outbox.clone(),
            };
            let created = E::assemble(id.clone(), draft.clone());
            let relinked = new.clone();
            async move { Ok(Attempt::Commit(commit, created, relinked)) }
        })
        .await
    }

    async fn update(
        &self,
        ctx: &Context,
        id: &E::Id,
        draft: E::Draft,
    ) -> Result<Written<E>, Error> {
        let new = &strings(E::draft_links(&draft));
        let draft = &draft;
        self.write(move || async move {
            let new = new.as_slice();
            let state = self
                .store
                .load_links(id)
                .await?
                .ok_or_else(|| E::not_found(id))?;
            let (clocks, changes) = plan_write::<E>(&state, new, (self.now)());
            let commit = Commit {
                expected: Some(state.version),
                change: Change::Replace {
                    id: id.clone(),
                    draft: draft.clone(),
                    clocks,
                },
                outbox: self.entries::<E>(ctx, id, &changes),
            };
            let relinked = changes.into_iter().map(|c| c.other).collect();
            Ok(Attempt::Commit(
                commit,
                E::assemble(id.clone(), draft.clone()),
                relinked,
            ))
        })
        .await
    }

    async fn delete(&self, ctx: &Context, id: &E::Id) -> Result<Written<()>, Error> {
        self.write(move || async move {
            let state = self
                .store
                .load_links(id)
                .await?
                .ok_or_else(|| E::not_found(id))?;
            let (_, changes) = plan_write::<E>(&state, &[], (self.now)());
            let commit = Commit {
                expected: Some(state.version),
                change: Change::Delete { id: id.clone() },
                outbox: self.entries::<E>(ctx, id, &changes),
            };
            Ok(Attempt::Commit(commit, (), state.links))
        })
        .await
    }

    async fn list_linked(
        &self,
        _ctx: &Context,
        other: &E::OtherId,
        page: Page,
    ) -> Result<Vec<E>, Error> {
        self.store.list_linked(other, page).await
    }

    async fn apply_link(
        &self,
        ctx: &Context,
        change: IncomingLink<E>,
    ) -> Result<Written<Outcome>, Error> {
        let received = &change.received();
        let change = &change;
        self.write(move || async move {
            let state = self.store.load_links(&change.entity).await?;
            let mut clocks = state.as_ref().map(|s| s.clocks.clone()).unwrap_or_default();
            let plan = links::plan_apply(
                E::SIDE,
                state.as_ref().map(|s| s.links.as_slice()),
                &mut clocks,
                received,
                E::LINK_LIMIT,
                (self.now)(),
            );
            let outbox = match &plan.compensation {
                Some(unlink) => {
                    self.entries::<E>(ctx, &change.entity, std::slice::from_ref(unlink))
                }
                None => vec![],
            };
            let (expected, entity_change) = match state {
                Some(state) if plan.new_links.is_some() || clocks != state.clocks => (
                    Some(state.version),
                    Change::Relink {
                        id: change.entity.clone(),
                        links: plan.new_links.clone(),
                        clocks,
                    },
                ),
                // A compensation for an entity that is not there is recorded on its own.
                None if !outbox.is_empty() => (None, Change::Nothing),
                // A duplicate or stale change: nothing to write.
                _ => return Ok(Attempt::Done(plan.outcome)),
            };
            let relinked = if plan.new_links.is_some() {
                vec![received.other.clone()]
            } else {
                vec![]
            };
            let commit = Commit {
                expected,
                change: entity_change,
                outbox,
            };
            Ok(Attempt::Commit(commit, plan.outcome, relinked))
        })
        .await
    }
}

#[cfg(test)]
mod convergence;
#[cfg(test)]
mod tests;

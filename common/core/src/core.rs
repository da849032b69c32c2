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
//! every store alike (docs/behaviour.md §5.5). A commit that loses a race starts over at once
//! the first time, then after a short random pause that grows with each loss, so writers that
//! keep colliding spread out: MongoDB's transactions never wait for each other, so without the
//! pauses many writers of one document would mostly make each other start over.
//!
//! Every write a caller makes can be conditional on the version it read
//! ([`Expected`](crate::conditions::Expected), checked against the version it loads, and
//! enforced by the conditional commit); a create can carry an idempotency key, stored in the
//! same commit ([`crate::idempotency`]).

use std::{sync::Arc, time::Duration};

use crate::{
    conditions::Expected,
    entity::Entity,
    error::Error,
    idempotency::{self, IdempotencyKey, NewKey},
    links::{self, Clocks, Outcome, Outgoing},
    outbox::{OutboxEntry, OutboxSignal},
    paging::Page,
    service::{Context, EntityService, IncomingLink, LinkEdit, Written},
    store::{Change, Commit, Committed, EntityStore, LinkState},
};

/// How often a write starts over after losing a race before it gives up with
/// [`Error::Unavailable`].
pub const MAX_ATTEMPTS: usize = 200;
/// How long a write keeps starting over after losing races before it gives up with
/// [`Error::Unavailable`]: a caller gets a 503 within a few seconds instead of its own timeout
/// (a document held by a dead client's transaction loses every race until the server aborts
/// it; docs/behaviour.md §5.7).
pub const RETRY_BUDGET: Duration = Duration::from_secs(3);
/// The longest pause between two attempts of a write that keeps losing races.
const MAX_PAUSE_MS: u64 = 256;

/// A random pause before attempt `attempt` (from 0) of a write: none before the second, then
/// up to 2, 4, … [`MAX_PAUSE_MS`] milliseconds.
async fn pause_before(attempt: usize) {
    if attempt < 2 {
        return;
    }
    let ceiling = (1u64 << attempt.min(16).saturating_sub(1)).min(MAX_PAUSE_MS);
    // The low bits of a random UUID are as good a jitter as any.
    let jitter = (uuid::Uuid::new_v4().as_u128() as u64) % (ceiling * 1000 + 1);
    tokio::time::sleep(Duration::from_micros(jitter)).await;
}

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
    /// How long idempotency keys are kept.
    key_retention: Duration,
    turns: Turns,
}

/// Writes of one entity in one process take turns instead of racing. Each write of an entity
/// holds its turn from load to commit, so the writers of a busy entity in a replica queue up,
/// and only writers in *other* replicas can make a commit lose its race. MongoDB's
/// transactions never wait for each other: without turns, forty concurrent writers of one
/// course in one replica mostly made each other start over, until some ran out of time (503).
/// Ids share [`TURN_STRIPES`] locks by hash; a write holds one entity's turn at a time, so no
/// two writes can wait on each other.
#[derive(Clone)]
struct Turns(Arc<[tokio::sync::Mutex<()>]>);

/// How many locks the ids share.
const TURN_STRIPES: usize = 64;

impl Default for Turns {
    fn default() -> Self {
        Self(
            (0..TURN_STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
        )
    }
}

impl Turns {
    async fn take(&self, id: &impl std::hash::Hash) -> tokio::sync::MutexGuard<'_, ()> {
        use std::hash::{BuildHasher as _, BuildHasherDefault, DefaultHasher};
        let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one(id);
        self.0[(hash % TURN_STRIPES as u64) as usize].lock().await
    }
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
            key_retention: idempotency::DEFAULT_RETENTION,
            turns: Turns::default(),
        }
    }

    /// The same core keeping idempotency keys for `retention`.
    #[must_use]
    pub fn with_key_retention(self, retention: Duration) -> Self {
        Self {
            key_retention: retention,
            ..self
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
    /// The answer a request with the same idempotency key got: nothing to write.
    Replayed(T),
    /// Commit this, then answer with `T`.
    Commit(Commit<E>, T),
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
            .map(|change| OutboxEntry::link_change(&self.subject, E::KIND, &entity, change, ctx))
            .collect()
    }

    /// Runs `attempt` (load and plan) and commits what it planned, starting over on conflict.
    /// Writes of one entity (`entity`: its id) in this process take turns (see [`Turns`]).
    async fn write<E, T, F, Fut>(
        &self,
        entity: Option<&E::Id>,
        mut attempt: F,
    ) -> Result<Written<T>, Error>
    where
        E: Entity,
        S: EntityStore<E>,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Attempt<E, T>, Error>>,
    {
        let _turn = match entity {
            Some(id) => Some(self.turns.take(id).await),
            None => None,
        };
        let give_up = tokio::time::Instant::now() + RETRY_BUDGET;
        for n in 0..MAX_ATTEMPTS {
            pause_before(n).await;
            match attempt().await? {
                Attempt::Done(value) => return Ok(Written::unchanged(value)),
                Attempt::Replayed(value) => return Ok(Written::replayed(value)),
                Attempt::Commit(commit, value) => {
                    let recorded = !commit.outbox.is_empty();
                    let relinked = commit.relinked.clone();
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

impl<S> Core<S> {
    /// The link state of entity `id`, if it is as `expected`.
    async fn load_expected<E: Entity>(
        &self,
        id: &E::Id,
        expected: &Expected,
    ) -> Result<LinkState, Error>
    where
        S: EntityStore<E>,
    {
        let state = self.store.load_links(id).await?;
        expected.check::<E>(id, state.as_ref().map(|s| s.version))?;
        state.ok_or_else(|| E::not_found(id))
    }
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

    async fn create_keyed(
        &self,
        ctx: &Context,
        draft: E::Draft,
        key: Option<IdempotencyKey>,
    ) -> Result<Written<E>, Error> {
        let id = self.store.next_id();
        let new = strings(E::draft_links(&draft));
        let fresh = LinkState {
            links: vec![],
            clocks: Clocks::new(),
            version: 0,
        };
        let (clocks, changes) = plan_write::<E>(&fresh, &new, (self.now)());
        let outbox = self.entries::<E>(ctx, &id, &changes);
        let key = match key {
            Some(key) => Some(NewKey {
                fingerprint: idempotency::fingerprint(&draft)?,
                key,
                entity: id.to_string(),
                retention: self.key_retention,
            }),
            None => None,
        };
        let (draft, key) = (&draft, &key);
        // The id and the entries are made once: a retried insert is the same insert.
        self.write(None, move || {
            let commit = Commit {
                expected: None,
                change: Change::Insert {
                    id: id.clone(),
                    draft: draft.clone(),
                    clocks: clocks.clone(),
                },
                outbox: outbox.clone(),
                key: key.clone(),
                relinked: new.clone(),
            };
            let created = E::assemble(id.clone(), draft.clone());
            async move {
                // A request made again finds its key: the first answer, rebuilt from the id
                // it stored and these fields (the same, as the fingerprint shows).
                if let Some(key) = key
                    && let Some(first) = self.store.find_key(key.key.as_str()).await?
                {
                    if first.fingerprint != key.fingerprint {
                        return Err(Error::KeyReused(format!(
                            "the idempotency key {} was used for another request",
                            key.key
                        )));
                    }
                    let id = E::parse_id(&first.entity).map_err(|e| {
                        Error::internal(format!("a stored key names {}: {e}", first.entity))
                    })?;
                    return Ok(Attempt::Replayed(E::assemble(id, draft.clone())));
                }
                Ok(Attempt::Commit(commit, created))
            }
        })
        .await
    }

    async fn update_if(
        &self,
        ctx: &Context,
        id: &E::Id,
        draft: E::Draft,
        expected: Expected,
    ) -> Result<Written<E>, Error> {
        let new = &strings(E::draft_links(&draft));
        let (draft, expected) = (&draft, &expected);
        self.write(Some(id), move || async move {
            let new = new.as_slice();
            let state = self.load_expected(id, expected).await?;
            let (clocks, changes) = plan_write::<E>(&state, new, (self.now)());
            let commit = Commit {
                expected: Some(state.version),
                change: Change::Replace {
                    id: id.clone(),
                    draft: draft.clone(),
                    clocks,
                },
                outbox: self.entries::<E>(ctx, id, &changes),
                key: None,
                relinked: changes.into_iter().map(|c| c.other).collect(),
            };
            let updated = E::assemble(id.clone(), draft.clone()).with_version(state.version + 1);
            Ok(Attempt::Commit(commit, updated))
        })
        .await
    }

    async fn delete_if(
        &self,
        ctx: &Context,
        id: &E::Id,
        expected: Expected,
    ) -> Result<Written<()>, Error> {
        let expected = &expected;
        self.write(Some(id), move || async move {
            let state = self.load_expected(id, expected).await?;
            let (_, changes) = plan_write::<E>(&state, &[], (self.now)());
            let commit = Commit {
                expected: Some(state.version),
                change: Change::Delete { id: id.clone() },
                outbox: self.entries::<E>(ctx, id, &changes),
                key: None,
                relinked: state.links,
            };
            Ok(Attempt::Commit(commit, ()))
        })
        .await
    }

    async fn set_link(
        &self,
        ctx: &Context,
        id: &E::Id,
        edit: LinkEdit<E>,
        expected: Expected,
    ) -> Result<Written<i64>, Error> {
        let other = &edit.other.to_string();
        let expected = &expected;
        self.write(Some(id), move || async move {
            let state = self.load_expected(id, expected).await?;
            let present = state.links.contains(other);
            let links: Option<Vec<String>> = match (present, edit.linked) {
                (true, true) | (false, false) => None,
                (false, true) if state.links.len() >= E::LINK_LIMIT => {
                    return Err(Error::invalid_field(
                        E::LINKS_FIELD,
                        crate::ids::too_many(E::LINK_LIMIT, state.links.len() + 1),
                    ));
                }
                (false, true) => Some(state.links.iter().chain([other]).cloned().collect()),
                (true, false) => Some(
                    state
                        .links
                        .iter()
                        .filter(|l| *l != other)
                        .cloned()
                        .collect(),
                ),
            };
            // Stamped and sent even when this side already agrees (see `links::plan_one`).
            let mut clocks = state.clocks.clone();
            let change = links::plan_one(E::SIDE, other, edit.linked, &mut clocks, (self.now)());
            let relinked = if links.is_some() {
                vec![other.clone()]
            } else {
                vec![]
            };
            let commit = Commit {
                expected: Some(state.version),
                change: Change::Relink {
                    id: id.clone(),
                    links,
                    clocks,
                },
                outbox: self.entries::<E>(ctx, id, std::slice::from_ref(&change)),
                key: None,
                relinked,
            };
            Ok(Attempt::Commit(commit, state.version + 1))
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
        self.write(Some(&change.entity), move || async move {
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
                key: None,
                relinked,
            };
            Ok(Attempt::Commit(commit, plan.outcome))
        })
        .await
    }
}

#[cfg(test)]
mod convergence;
#[cfg(test)]
mod tests;

//! An in-memory [`EntityStore`] and [`Outbox`].

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant},
};

use crate::{
    entity::Entity,
    error::Error,
    idempotency::KeyRecord,
    links::Clocks,
    outbox::{Outbox, OutboxEntry},
    paging::Page,
    reconcile::{RelationRow, RelationStore},
    store::{Change, Commit, Committed, EntityStore, LinkState},
};

struct Row<E> {
    entity: E,
    clocks: Clocks,
    version: i64,
    seq: u64,
}

impl<E: Entity> Row<E> {
    /// The entity as a read returns it, with its version.
    fn read(&self) -> E {
        self.entity.clone().with_version(self.version)
    }
}

struct State<E: Entity> {
    rows: HashMap<E::Id, Row<E>>,
    next_seq: u64,
    outbox: Vec<OutboxEntry>,
    /// Idempotency keys and when they expire.
    keys: HashMap<String, (KeyRecord, Instant)>,
    /// Claimed entries: the relay and when its lease ends.
    claims: HashMap<String, (String, Instant)>,
    commits: u64,
    conflicts: u64,
    down: bool,
    /// When set, every conditional commit takes this long and then loses its race.
    losing: Option<Duration>,
    /// Leases: their holder and when they end.
    leases: HashMap<&'static str, (String, Instant)>,
}

/// Entities and their outbox in memory. Clones share the data. Every load and commit yields to
/// the scheduler first, so concurrent writes joined in one task interleave between their load
/// and their commit, as they would against a database.
#[derive(Clone)]
pub struct MemoryStore<E: Entity> {
    state: Arc<Mutex<State<E>>>,
    make_id: Arc<dyn Fn(u64) -> E::Id + Send + Sync>,
}

impl<E: Entity> std::fmt::Debug for MemoryStore<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("kind", &E::KIND)
            .finish()
    }
}

impl<E: Entity> MemoryStore<E> {
    /// An empty store whose `n`-th new entity gets id `make_id(n)`.
    pub fn new(make_id: impl Fn(u64) -> E::Id + Send + Sync + 'static) -> Self {
        Self {
            state: Arc::new(Mutex::new(State {
                rows: HashMap::new(),
                next_seq: 0,
                outbox: Vec::new(),
                keys: HashMap::new(),
                claims: HashMap::new(),
                commits: 0,
                conflicts: 0,
                down: false,
                losing: None,
                leases: HashMap::new(),
            })),
            make_id: Arc::new(make_id),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<E>> {
        // A test that panicked while holding the lock has failed already.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn available(state: &State<E>) -> Result<(), Error> {
        if state.down {
            Err(Error::unavailable("the database is unavailable: down"))
        } else {
            Ok(())
        }
    }

    /// Makes every call fail with [`Error::Unavailable`] (`true`) or work again (`false`).
    pub fn set_down(&self, down: bool) {
        self.lock().down = down;
    }

    /// From now on every conditional commit takes `delay` and then reports a conflict, as a
    /// document locked by another transaction would (`None`: commits as usual).
    pub fn lose_every_race(&self, delay: Option<Duration>) {
        self.lock().losing = delay;
    }

    /// Every entity, in creation order.
    pub fn all(&self) -> Vec<E> {
        let state = self.lock();
        let mut rows: Vec<_> = state.rows.values().collect();
        rows.sort_by_key(|r| r.seq);
        rows.into_iter().map(Row::read).collect()
    }

    /// The ids of every entity, in creation order.
    pub fn ids(&self) -> Vec<E::Id> {
        let state = self.lock();
        let mut rows: Vec<_> = state.rows.iter().collect();
        rows.sort_by_key(|(_, r)| r.seq);
        rows.into_iter().map(|(id, _)| id.clone()).collect()
    }

    /// The stored clocks of entity `id`.
    pub fn clocks(&self, id: &E::Id) -> Option<Clocks> {
        self.lock().rows.get(id).map(|r| r.clocks.clone())
    }

    /// The ids of the entries in the outbox, oldest first.
    pub fn outbox_ids(&self) -> Vec<String> {
        self.lock().outbox.iter().map(|e| e.id.clone()).collect()
    }

    /// Removes and returns everything in the outbox, oldest first.
    pub fn drain_outbox(&self) -> Vec<OutboxEntry> {
        std::mem::take(&mut self.lock().outbox)
    }

    /// How many commits took place, and how many were refused for a changed version.
    pub fn commit_counts(&self) -> (u64, u64) {
        let state = self.lock();
        (state.commits, state.conflicts)
    }

    fn page(rows: Vec<&Row<E>>, page: Page) -> Vec<E> {
        let mut rows = rows;
        rows.sort_by_key(|r| r.seq);
        let skip = usize::try_from(page.offset).unwrap_or(usize::MAX);
        rows.into_iter()
            .skip(skip)
            .take(page.limit as usize)
            .map(Row::read)
            .collect()
    }

    fn apply(state: &mut State<E>, change: Change<E>) -> Result<(), Error> {
        match change {
            Change::Insert { id, draft, clocks } => {
                let seq = state.next_seq;
                state.next_seq += 1;
                let entity = E::assemble(id.clone(), draft);
                state.rows.insert(
                    id,
                    Row {
                        entity,
                        clocks,
                        version: 0,
                        seq,
                    },
                );
            }
            Change::Replace { id, draft, clocks } => {
                if let Some(row) = state.rows.get_mut(&id) {
                    row.entity = E::assemble(id, draft);
                    row.clocks = clocks;
                    row.version += 1;
                }
            }
            Change::Delete { id } => {
                state.rows.remove(&id);
            }
            Change::Relink { id, links, clocks } => {
                if let Some(row) = state.rows.get_mut(&id) {
                    if let Some(links) = links {
                        let parsed = links
                            .iter()
                            .map(|l| l.parse::<E::OtherId>().map_err(Error::internal))
                            .collect::<Result<Vec<_>, _>>()?;
                        row.entity = row.entity.clone().with_links(parsed)?;
                    }
                    row.clocks = clocks;
                    row.version += 1;
                }
            }
            Change::Nothing => {}
        }
        Ok(())
    }
}

impl<E: Entity> EntityStore<E> for MemoryStore<E> {
    async fn list(&self, page: Page) -> Result<Vec<E>, Error> {
        let state = self.lock();
        Self::available(&state)?;
        Ok(Self::page(state.rows.values().collect(), page))
    }

    async fn get(&self, id: &E::Id) -> Result<Option<E>, Error> {
        let state = self.lock();
        Self::available(&state)?;
        Ok(state.rows.get(id).map(Row::read))
    }

    async fn list_linked(&self, other: &E::OtherId, page: Page) -> Result<Vec<E>, Error> {
        let state = self.lock();
        Self::available(&state)?;
        let rows = state
            .rows
            .values()
            .filter(|r| r.entity.links().contains(other))
            .collect();
        Ok(Self::page(rows, page))
    }

    fn next_id(&self) -> E::Id {
        let mut state = self.lock();
        let n = state.next_seq;
        state.next_seq += 1;
        (self.make_id)(n)
    }

    async fn load_links(&self, id: &E::Id) -> Result<Option<crate::store::LinkState>, Error> {
        tokio::task::yield_now().await;
        let state = self.lock();
        Self::available(&state)?;
        Ok(state.rows.get(id).map(|row| LinkState {
            links: row.entity.links().iter().map(ToString::to_string).collect(),
            clocks: row.clocks.clone(),
            version: row.version,
        }))
    }

    async fn commit(&self, commit: Commit<E>) -> Result<Committed, Error> {
        tokio::task::yield_now().await;
        let losing = self.lock().losing;
        if let (Some(delay), Some(_)) = (losing, commit.expected) {
            tokio::time::sleep(delay).await;
            self.lock().conflicts += 1;
            return Ok(Committed::Conflict);
        }
        let mut state = self.lock();
        Self::available(&state)?;
        let target = match &commit.change {
            Change::Replace { id, .. } | Change::Delete { id } | Change::Relink { id, .. } => {
                Some(id.clone())
            }
            Change::Insert { .. } | Change::Nothing => None,
        };
        if let (Some(expected), Some(id)) = (commit.expected, target)
            && state.rows.get(&id).map(|r| r.version) != Some(expected)
        {
            state.conflicts += 1;
            return Ok(Committed::Conflict);
        }
        if let Some(key) = commit.key {
            let now = Instant::now();
            if state
                .keys
                .get(key.key.as_str())
                .is_some_and(|(_, expires)| *expires > now)
            {
                state.conflicts += 1;
                return Ok(Committed::Conflict);
            }
            let record = KeyRecord {
                fingerprint: key.fingerprint,
                entity: key.entity,
            };
            state
                .keys
                .insert(key.key.to_string(), (record, now + key.retention));
        }
        Self::apply(&mut state, commit.change)?;
        state.outbox.extend(commit.outbox);
        state.commits += 1;
        Ok(Committed::Done)
    }

    async fn find_key(&self, key: &str) -> Result<Option<KeyRecord>, Error> {
        let state = self.lock();
        Self::available(&state)?;
        Ok(state
            .keys
            .get(key)
            .filter(|(_, expires)| *expires > Instant::now())
            .map(|(record, _)| record.clone()))
    }

    async fn purge_keys(&self) -> Result<u64, Error> {
        let mut state = self.lock();
        Self::available(&state)?;
        let before = state.keys.len();
        let now = Instant::now();
        state.keys.retain(|_, (_, expires)| *expires > now);
        Ok((before - state.keys.len()) as u64)
    }

    async fn ping(&self) -> Result<(), Error> {
        Self::available(&self.lock())
    }
}

impl<E: Entity> Outbox for MemoryStore<E> {
    async fn claim(
        &self,
        relay: &str,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<OutboxEntry>, Error> {
        let mut guard = self.lock();
        Self::available(&guard)?;
        let state = &mut *guard;
        let now = Instant::now();
        let claimed: Vec<OutboxEntry> = state
            .outbox
            .iter()
            .filter(|e| match state.claims.get(&e.id) {
                Some((holder, until)) => holder == relay || *until <= now,
                None => true,
            })
            .take(limit)
            .cloned()
            .collect();
        for entry in &claimed {
            state
                .claims
                .insert(entry.id.clone(), (relay.to_owned(), now + lease));
        }
        Ok(claimed)
    }

    async fn published(&self, ids: &[String]) -> Result<(), Error> {
        let mut state = self.lock();
        Self::available(&state)?;
        state.outbox.retain(|e| !ids.contains(&e.id));
        for id in ids {
            state.claims.remove(id);
        }
        Ok(())
    }

    async fn backlog(&self) -> Result<u64, Error> {
        let state = self.lock();
        Self::available(&state)?;
        Ok(state.outbox.len() as u64)
    }
}

impl<E: Entity> RelationStore for MemoryStore<E> {
    async fn relation_scan<F>(&self, visit: F) -> Result<(), Error>
    where
        F: FnMut(RelationRow) + Send,
    {
        let mut rows: Vec<RelationRow> = {
            let state = self.lock();
            Self::available(&state)?;
            state
                .rows
                .iter()
                .map(|(id, row)| RelationRow {
                    id: id.to_string(),
                    links: row.entity.links().iter().map(ToString::to_string).collect(),
                    clocks: row.clocks.clone(),
                })
                .collect()
        };
        rows.sort_by(|a, b| a.id.cmp(&b.id));
        rows.into_iter().for_each(visit);
        Ok(())
    }

    async fn try_lease(
        &self,
        name: &'static str,
        holder: &str,
        ttl: Duration,
    ) -> Result<bool, Error> {
        let mut state = self.lock();
        Self::available(&state)?;
        let now = Instant::now();
        let free = state
            .leases
            .get(name)
            .is_none_or(|(h, until)| h == holder || *until <= now);
        if free {
            state.leases.insert(name, (holder.to_owned(), now + ttl));
        }
        Ok(free)
    }
}

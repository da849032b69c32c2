//! An in-memory [`Cache`] with the same generation, fence and expiry semantics as the Redis
//! adapter, and failures that can be switched on for each step of the protocol.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use tokio::time::Instant;

use crate::cache::{Cache, CacheError, Fence, Lookup};

/// A step of the cache protocol, to make fail on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Step {
    /// [`Cache::lookup`].
    Lookup,
    /// [`Cache::fill`].
    Fill,
    /// [`Cache::fence`].
    Fence,
    /// [`Cache::settle`].
    Settle,
}

/// How long a fence's pending marks last in the fake (as in the Redis adapter).
pub const FENCE_TTL: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Generation {
    Settled(u64),
    /// Pending until this instant, when the key expires (as the Redis key does).
    Pending(Instant),
}

#[derive(Default)]
struct State {
    generations: HashMap<String, Generation>,
    /// The open fences of each scope: token and expiry.
    fences: HashMap<String, Vec<(u64, Instant)>>,
    /// One entry per (scope, key), stamped with the generation it was stored under.
    values: HashMap<(String, String), (u64, Vec<u8>)>,
    failing: HashSet<Step>,
    /// Tokens and generations are drawn from one counter, so none is ever reused.
    issued: u64,
}

impl State {
    fn fresh(&mut self) -> u64 {
        self.issued += 1;
        self.issued
    }

    fn check(&self, step: Step) -> Result<(), CacheError> {
        if self.failing.contains(&step) {
            Err(CacheError(format!("{step:?} failed")))
        } else {
            Ok(())
        }
    }

    /// The scope's generation now, after expiring what expired; a missing one is claimed fresh
    /// unless a fence is still open (its generation was evicted).
    fn current(&mut self, scope: &str, now: Instant) -> Option<u64> {
        if let Some(fences) = self.fences.get_mut(scope) {
            fences.retain(|(_, expires)| *expires > now);
        }
        match self.generations.get(scope).copied() {
            Some(Generation::Settled(g)) => Some(g),
            Some(Generation::Pending(until)) if until > now => None,
            _ if self.fences.get(scope).is_some_and(|f| !f.is_empty()) => None,
            _ => {
                let g = self.fresh();
                self.generations
                    .insert(scope.to_owned(), Generation::Settled(g));
                Some(g)
            }
        }
    }

    fn last_expiry(&self, scope: &str) -> Option<Instant> {
        self.fences.get(scope)?.iter().map(|(_, e)| *e).max()
    }
}

/// A cache in memory. Clones share the data.
#[derive(Clone)]
pub struct MemoryCache {
    state: Arc<Mutex<State>>,
    fence_ttl: Duration,
}

impl Default for MemoryCache {
    fn default() -> Self {
        Self {
            state: Arc::default(),
            fence_ttl: FENCE_TTL,
        }
    }
}

impl std::fmt::Debug for MemoryCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MemoryCache")
    }
}

impl MemoryCache {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes every call fail (`true`) or work again (`false`); the data is kept.
    pub fn set_down(&self, down: bool) {
        for step in [Step::Lookup, Step::Fill, Step::Fence, Step::Settle] {
            self.set_failing(step, down);
        }
    }

    /// Makes `step` fail (`true`) or work again (`false`).
    pub fn set_failing(&self, step: Step, failing: bool) {
        let mut state = self.lock();
        if failing {
            state.failing.insert(step);
        } else {
            state.failing.remove(&step);
        }
    }

    /// Removes the generation of `scope`, as an eviction would.
    pub fn evict_generation(&self, scope: &str) {
        self.lock().generations.remove(scope);
    }

    /// How many entries are stored under the current, settled generation of their scope.
    pub fn live_entries(&self) -> usize {
        let state = self.lock();
        state
            .values
            .iter()
            .filter(|((scope, _), (stamp, _))| {
                state.generations.get(scope) == Some(&Generation::Settled(*stamp))
            })
            .count()
    }
}

impl Cache for MemoryCache {
    async fn lookup(&self, scope: &str, key: &str) -> Result<Lookup, CacheError> {
        let mut state = self.lock();
        state.check(Step::Lookup)?;
        let Some(generation) = state.current(scope, Instant::now()) else {
            return Ok(Lookup {
                generation: None,
                value: None,
            });
        };
        let value = state
            .values
            .get(&(scope.to_owned(), key.to_owned()))
            .filter(|(stamp, _)| *stamp == generation)
            .map(|(_, value)| value.clone());
        Ok(Lookup {
            generation: Some(generation),
            value,
        })
    }

    async fn fill(
        &self,
        scope: &str,
        generation: u64,
        key: &str,
        value: Vec<u8>,
    ) -> Result<(), CacheError> {
        let mut state = self.lock();
        state.check(Step::Fill)?;
        state
            .values
            .insert((scope.to_owned(), key.to_owned()), (generation, value));
        Ok(())
    }

    async fn fence(&self, scopes: &[String]) -> Result<Fence, CacheError> {
        let mut state = self.lock();
        state.check(Step::Fence)?;
        let token = state.fresh();
        let now = Instant::now();
        let expires = now + self.fence_ttl;
        for scope in scopes {
            let fences = state.fences.entry(scope.clone()).or_default();
            fences.retain(|(_, e)| *e > now);
            fences.push((token, expires));
            let until = state.last_expiry(scope).unwrap_or(expires);
            state
                .generations
                .insert(scope.clone(), Generation::Pending(until));
        }
        Ok(Fence {
            token,
            scopes: scopes.to_vec(),
            expires,
        })
    }

    async fn settle(&self, fence: &Fence) -> Result<(), CacheError> {
        let mut state = self.lock();
        state.check(Step::Settle)?;
        let now = Instant::now();
        for scope in &fence.scopes {
            if let Some(fences) = state.fences.get_mut(scope) {
                fences.retain(|(t, e)| *t != fence.token && *e > now);
            }
            let next = match state.last_expiry(scope) {
                Some(until) => Generation::Pending(until),
                None => Generation::Settled(state.fresh()),
            };
            state.generations.insert(scope.clone(), next);
        }
        Ok(())
    }

    async fn ping(&self) -> Result<(), CacheError> {
        self.lock().check(Step::Lookup)
    }
}

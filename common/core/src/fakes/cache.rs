//! An in-memory [`Cache`] with the same generation semantics as the Redis adapter.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
};

use crate::cache::{Cache, CacheError, Lookup};

#[derive(Default)]
struct State {
    generations: HashMap<String, u64>,
    values: HashMap<(String, u64, String), Vec<u8>>,
    down: bool,
}

/// A cache in memory. Clones share the data.
#[derive(Clone, Default)]
pub struct MemoryCache {
    state: Arc<Mutex<State>>,
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
        self.lock().down = down;
    }

    /// How many values are stored under the current generations.
    pub fn live_entries(&self) -> usize {
        let state = self.lock();
        state
            .values
            .keys()
            .filter(|(scope, generation, _)| {
                state.generations.get(scope).copied().unwrap_or(0) == *generation
            })
            .count()
    }

    fn check(state: &State) -> Result<(), CacheError> {
        if state.down {
            Err(CacheError("down".into()))
        } else {
            Ok(())
        }
    }
}

impl Cache for MemoryCache {
    async fn lookup(&self, scope: &str, key: &str) -> Result<Lookup, CacheError> {
        let state = self.lock();
        Self::check(&state)?;
        let generation = state.generations.get(scope).copied().unwrap_or(0);
        let value = state
            .values
            .get(&(scope.to_owned(), generation, key.to_owned()))
            .cloned();
        Ok(Lookup { generation, value })
    }

    async fn fill(
        &self,
        scope: &str,
        generation: u64,
        key: &str,
        value: Vec<u8>,
    ) -> Result<(), CacheError> {
        let mut state = self.lock();
        Self::check(&state)?;
        state
            .values
            .insert((scope.to_owned(), generation, key.to_owned()), value);
        Ok(())
    }

    async fn invalidate(&self, scopes: &[String]) -> Result<(), CacheError> {
        let mut state = self.lock();
        Self::check(&state)?;
        for scope in scopes {
            *state.generations.entry(scope.clone()).or_default() += 1;
        }
        Ok(())
    }

    async fn ping(&self) -> Result<(), CacheError> {
        Self::check(&self.lock())
    }
}

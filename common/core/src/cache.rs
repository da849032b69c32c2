//! The cache port (its Redis adapter is the `nis-cache` crate).
//!
//! Entries live in *scopes* (one entity, the list pages of a kind, a cross query), each with a
//! generation number. A reader notes the generation before it reads the database and stores what
//! it read under that generation; a writer bumps the generations of the scopes it made stale.
//! So a slow reader can never put an old value where a later reader would find it, and a read
//! after a write never returns the old value.

use std::future::Future;

/// The cache could not be used; the caller falls back to the store.
#[derive(Debug, Clone, thiserror::Error)]
#[error("cache unavailable: {0}")]
pub struct CacheError(pub String);

/// What a lookup found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    /// The scope's generation at the time of the lookup: fill under this one.
    pub generation: u64,
    /// The cached bytes, if any.
    pub value: Option<Vec<u8>>,
}

/// A shared cache of serialized reads.
pub trait Cache: Clone + Send + Sync + 'static {
    /// Looks up `key` in `scope`.
    fn lookup(
        &self,
        scope: &str,
        key: &str,
    ) -> impl Future<Output = Result<Lookup, CacheError>> + Send;
    /// Stores `value` for `key` in `scope`, valid only while the scope is at `generation`.
    fn fill(
        &self,
        scope: &str,
        generation: u64,
        key: &str,
        value: Vec<u8>,
    ) -> impl Future<Output = Result<(), CacheError>> + Send;
    /// Makes every entry of these scopes unreachable.
    fn invalidate(&self, scopes: &[String]) -> impl Future<Output = Result<(), CacheError>> + Send;
    /// Checks that the cache answers (readiness).
    fn ping(&self) -> impl Future<Output = Result<(), CacheError>> + Send;
}

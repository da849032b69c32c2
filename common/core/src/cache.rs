//! The cache port (its Redis adapter is the `nis-cache` crate; docs/behaviour.md §6).
//!
//! Entries live in *scopes* (one entity, the list pages of a kind, a cross query), each with a
//! *generation*: a value that is never reused. A reader notes the generation before it reads
//! the store and stores what it read stamped with it; an entry counts only while its scope is
//! still at that generation, so a slow reader can never put an old value where a later reader
//! would find it.
//!
//! A write **fences** the scopes it will make stale *before* it commits: each moves to a fresh
//! generation marked *pending*, under which readers neither serve nor fill (they read the
//! store), and which expires by itself. After the commit the write **settles** them: a fresh
//! generation, no longer pending (unless other writes still hold fences there). If the settle
//! fails, the pending mark expires and the scope comes back under a generation no entry was
//! ever stamped with. If the fence fails, the write is refused before anything is committed.
//! So no read, on any replica, returns what an acknowledged write replaced, whichever link to
//! the cache fails when ([`crate::decorators::Fenced`] runs the protocol around every commit).

use std::future::Future;

/// The cache could not be used; the caller falls back to the store (reads) or refuses (fences).
#[derive(Debug, Clone, thiserror::Error)]
#[error("cache unavailable: {0}")]
pub struct CacheError(pub String);

/// What a lookup found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    /// The scope's generation at the time of the lookup: fill under this one. `None` while a
    /// write holds a fence on the scope: read the store, and do not fill.
    pub generation: Option<u64>,
    /// The cached bytes stored under the current generation, if any.
    pub value: Option<Vec<u8>>,
}

/// The scopes a write fenced, to settle once it has committed (or failed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    /// This fence's own token (unique), which marks it among the fences of its scopes.
    pub token: u64,
    /// The fenced scopes.
    pub scopes: Vec<String>,
    /// Until when the pending marks certainly last: the write must have finished committing
    /// by then, or readers may fill what it is about to replace.
    pub expires: tokio::time::Instant,
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
    /// Marks `scopes` pending under fresh generations, before a write commits. An error means
    /// the marks may not be in place: the write must not commit.
    fn fence(&self, scopes: &[String]) -> impl Future<Output = Result<Fence, CacheError>> + Send;
    /// Ends `fence` after its write committed (or failed): each scope gets a fresh settled
    /// generation once no other fence holds it. An error leaves the marks to expire.
    fn settle(&self, fence: &Fence) -> impl Future<Output = Result<(), CacheError>> + Send;
    /// Checks that the cache answers (readiness).
    fn ping(&self) -> impl Future<Output = Result<(), CacheError>> + Send;
}

/// The scope holding every list page of a kind.
pub const LIST_SCOPE: &str = "list";

/// The scope of one entity.
pub fn entity_scope(id: &impl std::fmt::Display) -> String {
    format!("id:{id}")
}

/// The scope of the cross query "which entities link `other`".
pub fn linked_scope(other: &impl std::fmt::Display) -> String {
    format!("by:{other}")
}

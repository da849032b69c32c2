//! Anti-entropy repair of the relation (docs/behaviour.md §5.10): the two sides compare
//! digests of their views of the relation and repair the pairs where they differ, so the
//! relation converges even when the queue loses a change (dead-lettered, expired, purged, lost
//! by the broker) or a bug drops one.
//!
//! A run ([`Reconciler::run`]) compares the bucket hashes of both sides ([`digest`]) at
//! [`digest::TOP_BITS`], then the children of the buckets that differ, then lists the pairs of
//! the leaf buckets that still differ. Each differing pair is settled by its clocks, as a
//! delivered message would be: the newer state is applied to the side that is behind through
//! the normal apply path ([`EntityService::apply_link`]), which ignores anything older than
//! what it holds. So a repair never moves a clock backwards and never undoes a write
//! acknowledged while the run was comparing. When the sides agree a run costs one exchange of
//! 1,024 hashes.
//!
//! [`schedule`] runs it periodically under a lease; the services serve the peer's side of a
//! run over their internal gRPC API.

pub mod digest;
mod run;
pub mod schedule;
#[cfg(test)]
mod tests;

use std::{future::Future, time::Duration};

pub use digest::DigestQuery;
pub use run::{Reconciler, Report};

use crate::{error::Error, links::Clocks, service::Context};

/// One pair of the relation as one side holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairState {
    /// The student's id.
    pub student: String,
    /// The course's id.
    pub course: String,
    /// Whether this side links the pair.
    pub linked: bool,
    /// The clock of the newest change of the pair this side knows (0 for a link stored without
    /// a clock, from before clocks existed).
    pub clock: i64,
}

/// One entity's side of the relation, as a scan reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelationRow {
    /// The entity's id.
    pub id: String,
    /// The other-kind ids it links.
    pub links: Vec<String>,
    /// The clock of every pair it has, or had, a link with.
    pub clocks: Clocks,
}

/// What reconciliation needs of a store, beside the [`crate::EntityStore`] it already is.
pub trait RelationStore: Clone + Send + Sync + 'static {
    /// Reads every entity's side of the relation into `visit`, in id order, without holding
    /// them all (an adapter pages or streams; each round trip within the store's deadline).
    fn relation_scan<F>(&self, visit: F) -> impl Future<Output = Result<(), Error>> + Send
    where
        F: FnMut(RelationRow) + Send;

    /// Takes, or extends, the lease `name` for `holder` for `ttl`: `true` when `holder` holds
    /// it now, `false` when another holder's lease is still running.
    fn try_lease(
        &self,
        name: &'static str,
        holder: &str,
        ttl: Duration,
    ) -> impl Future<Output = Result<bool, Error>> + Send;
}

/// How many pairs one repair request of a run carries.
pub const REPAIR_BATCH: usize = 500;

/// What applying repairs did on the side that received them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Repaired {
    /// Applied (or superseded there by a newer change made meanwhile).
    pub applied: u64,
    /// Refused and answered with an unlink (a link to an entity that side does not have, or a
    /// full list), which travels back through the queue (§5.3).
    pub compensated: u64,
    /// Already as stated: nothing written.
    pub unchanged: u64,
}

impl std::ops::AddAssign for Repaired {
    fn add_assign(&mut self, other: Self) {
        self.applied += other.applied;
        self.compensated += other.compensated;
        self.unchanged += other.unchanged;
    }
}

/// The other side of a run: the peer's [`Reconciler`] behind its internal API.
pub trait RelationPeer: Send + Sync {
    /// The peer's bucket hashes for `query`.
    fn digest(
        &self,
        ctx: &Context,
        query: &DigestQuery,
    ) -> impl Future<Output = Result<Vec<u64>, Error>> + Send;
    /// The peer's pairs in the leaf buckets `buckets`, unlinked ones included.
    fn pairs(
        &self,
        ctx: &Context,
        buckets: &[u32],
    ) -> impl Future<Output = Result<Vec<PairState>, Error>> + Send;
    /// Applies `pairs` (the newer states this side holds) on the peer.
    fn repair(
        &self,
        ctx: &Context,
        pairs: Vec<PairState>,
    ) -> impl Future<Output = Result<Repaired, Error>> + Send;
    /// The bytes of the messages exchanged with the peer so far (0 where nothing is sent).
    fn exchanged(&self) -> u64 {
        0
    }
}

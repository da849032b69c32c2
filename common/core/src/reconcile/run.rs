//! One side of reconciliation: the digests and pair listings it serves to its peer, the repairs
//! it applies, and a run against the peer.

use std::{
    collections::{HashMap, HashSet},
    marker::PhantomData,
    time::{Duration, Instant},
};

use futures::{StreamExt as _, stream};

use super::{
    PairState, REPAIR_BATCH, RelationPeer, RelationRow, RelationStore, Repaired,
    digest::{Digest, DigestQuery, LEAF_BITS, MAX_HASHES, bucket_of, differing, from_leaves},
};
use crate::{
    entity::Entity,
    error::Error,
    links::{Outcome, Side, now_micros},
    service::{Context, EntityService, IncomingLink},
};

/// Repairs applied at once on one side.
const CONCURRENCY: usize = 8;
/// Repaired pairs logged one by one in a run; the rest are counted in one line.
const LOGGED_PAIRS: usize = 100;

/// What a run found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Pairs this side holds (linked or with a kept clock).
    pub pairs_checked: u64,
    /// Leaf buckets whose hashes differed.
    pub buckets_differed: u64,
    /// Pairs this side was behind on: repaired here (with `dry_run`, would have been).
    pub repaired_here: u64,
    /// Pairs the peer was behind on: repaired there.
    pub repaired_peer: u64,
    /// Of the repairs, those the receiving side answered with a compensation (§5.3).
    pub compensated: u64,
    /// Differing pairs left alone because their newest change is younger than the grace
    /// period: still on their way through the queue, most likely.
    pub in_flight: u64,
    /// The bytes of the messages exchanged with the peer (protobuf payloads over gRPC).
    pub bytes_exchanged: u64,
    /// Whether the run only reported.
    pub dry_run: bool,
    /// How long it took.
    pub duration: Duration,
}

/// This side of the relation: `store` scanned for digests, repairs applied through `service`
/// (the decorated service, so that caches learn of them).
pub struct Reconciler<E, St, Sv> {
    store: St,
    service: Sv,
    grace: Duration,
    _entity: PhantomData<fn() -> E>,
}

impl<E, St: Clone, Sv: Clone> Clone for Reconciler<E, St, Sv> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
            service: self.service.clone(),
            grace: self.grace,
            _entity: PhantomData,
        }
    }
}

impl<E, St, Sv> std::fmt::Debug for Reconciler<E, St, Sv> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reconciler")
            .field("grace", &self.grace)
            .finish_non_exhaustive()
    }
}

/// The pairs of one entity's row, as (student, course) whatever the side.
fn pairs_of<E: Entity>(row: RelationRow) -> impl Iterator<Item = PairState> {
    let RelationRow { id, links, clocks } = row;
    let unclocked: Vec<String> = links
        .iter()
        .filter(|l| !clocks.contains_key(*l))
        .cloned()
        .collect();
    let clocked = clocks.into_iter().map(move |(other, clock)| {
        let linked = links.contains(&other);
        (other, linked, clock)
    });
    let all = clocked.chain(unclocked.into_iter().map(|other| (other, true, 0)));
    all.map(move |(other, linked, clock)| {
        let (student, course) = match E::SIDE {
            Side::Students => (id.clone(), other),
            Side::Courses => (other, id.clone()),
        };
        PairState {
            student,
            course,
            linked,
            clock,
        }
    })
}

/// What a run does about the differing pairs it listed.
#[derive(Debug, Default)]
struct Settlement {
    /// Newer states of the peer, to apply here.
    here: Vec<(PairState, Option<PairState>)>,
    /// Newer states of this side, to apply on the peer.
    peer: Vec<(PairState, Option<PairState>)>,
    in_flight: u64,
}

/// Settles each pair listed by either side by its clocks. "Unlinked" and "unknown" agree; of
/// two states the one with the greater clock wins; a winner younger than `grace` (by the wall
/// clock its clock carries, §5.1) is left to the queue.
fn settle(ours: Vec<PairState>, theirs: Vec<PairState>, grace: Duration) -> Settlement {
    let key = |p: &PairState| (p.student.clone(), p.course.clone());
    let mut theirs: HashMap<_, _> = theirs.into_iter().map(|p| (key(&p), p)).collect();
    let mut sides: Vec<(Option<PairState>, Option<PairState>)> = ours
        .into_iter()
        .map(|o| {
            let t = theirs.remove(&key(&o));
            (Some(o), t)
        })
        .collect();
    sides.extend(theirs.into_values().map(|t| (None, Some(t))));

    let now = now_micros();
    let grace = i64::try_from(grace.as_micros()).unwrap_or(i64::MAX);
    let mut settlement = Settlement::default();
    for (ours, theirs) in sides {
        let ours_wins = match (&ours, &theirs) {
            (Some(o), Some(t)) if o == t => continue,
            (Some(o), Some(t)) if o.clock == t.clock => {
                // Two different states under one clock: no rule can pick; the sides stamp
                // clocks of different parities, so only corrupted data gets here.
                tracing::error!(student = %o.student, course = %o.course, clock = o.clock, "reconcile: the sides hold different states under the same clock; left alone");
                continue;
            }
            (Some(o), Some(t)) => o.clock > t.clock,
            (Some(o), None) if o.linked => true,
            (None, Some(t)) if t.linked => false,
            _ => continue,
        };
        let winner = if ours_wins { &ours } else { &theirs };
        let Some(winner) = winner.clone() else {
            continue;
        };
        if now.saturating_sub(winner.clock / 2) < grace {
            settlement.in_flight += 1;
        } else if ours_wins {
            settlement.peer.push((winner, theirs));
        } else {
            settlement.here.push((winner, ours));
        }
    }
    settlement
}

/// Logs the repairs of one direction: each pair with both clocks, up to [`LOGGED_PAIRS`].
fn log_repairs(direction: &str, repairs: &[(PairState, Option<PairState>)], dry_run: bool) {
    for (winner, loser) in repairs.iter().take(LOGGED_PAIRS) {
        tracing::warn!(
            direction,
            dry_run,
            student = %winner.student,
            course = %winner.course,
            linked = winner.linked,
            clock = winner.clock,
            behind_linked = loser.as_ref().map(|l| l.linked),
            behind_clock = loser.as_ref().map(|l| l.clock),
            "reconcile: a pair differed between the sides (a change was lost on its way)"
        );
    }
    if repairs.len() > LOGGED_PAIRS {
        tracing::warn!(
            direction,
            dry_run,
            more = repairs.len() - LOGGED_PAIRS,
            "reconcile: more pairs differed"
        );
    }
}

impl<E, St, Sv> Reconciler<E, St, Sv>
where
    E: Entity,
    St: RelationStore,
    Sv: EntityService<E>,
{
    /// A side reading `store` and applying repairs through `service`; differing pairs whose
    /// newest change is younger than `grace` are left to the queue (0 repairs everything).
    pub fn new(store: St, service: Sv, grace: Duration) -> Self {
        Self {
            store,
            service,
            grace,
            _entity: PhantomData,
        }
    }

    /// The store, for the lease.
    pub(super) fn store(&self) -> &St {
        &self.store
    }

    /// Reads every pair of this side into `visit`; returns how many there were.
    async fn scan(&self, mut visit: impl FnMut(PairState) + Send) -> Result<u64, Error> {
        let mut count = 0;
        self.store
            .relation_scan(|row| {
                for pair in pairs_of::<E>(row) {
                    count += 1;
                    visit(pair);
                }
            })
            .await?;
        Ok(count)
    }

    /// This side's bucket hashes for `query`, and how many pairs it holds.
    pub async fn digest(&self, query: &DigestQuery) -> Result<(Vec<u64>, u64), Error> {
        query.check()?;
        let mut digest = Digest::new(query.clone());
        let pairs = self.scan(|pair| digest.add(&pair)).await?;
        Ok((digest.into_hashes(), pairs))
    }

    /// This side's pairs in the leaf buckets `buckets`, unlinked ones included.
    pub async fn pairs(&self, buckets: &[u32]) -> Result<Vec<PairState>, Error> {
        if buckets.len() > MAX_HASHES || buckets.iter().any(|b| *b >> LEAF_BITS != 0) {
            return Err(Error::BadRequest(format!(
                "pairs query: at most {MAX_HASHES} buckets below 2^{LEAF_BITS}"
            )));
        }
        let wanted: HashSet<u32> = buckets.iter().copied().collect();
        let mut pairs = Vec::new();
        self.scan(|pair| {
            if wanted.contains(&bucket_of(&pair, LEAF_BITS)) {
                pairs.push(pair);
            }
        })
        .await?;
        Ok(pairs)
    }

    /// The change a repair of `pair` is for this side.
    fn incoming(pair: &PairState) -> Result<IncomingLink<E>, Error> {
        let (mine, other) = match E::SIDE {
            Side::Students => (&pair.student, &pair.course),
            Side::Courses => (&pair.course, &pair.student),
        };
        Ok(IncomingLink {
            entity: E::parse_id(mine)?,
            other: other.parse().map_err(Error::BadRequest)?,
            linked: pair.linked,
            clock: pair.clock,
        })
    }

    /// Applies the newer states `pairs` of the other side here, as delivered changes.
    pub async fn repair(&self, ctx: &Context, pairs: Vec<PairState>) -> Result<Repaired, Error> {
        let changes = pairs
            .iter()
            .map(Self::incoming)
            .collect::<Result<Vec<_>, _>>()?;
        let answers: Vec<_> = stream::iter(changes)
            .map(|change| self.service.apply_link(ctx, change))
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        let mut repaired = Repaired::default();
        for answer in answers {
            let written = answer?;
            match written.value {
                Outcome::Compensated => repaired.compensated += 1,
                Outcome::Applied if written.wrote => repaired.applied += 1,
                Outcome::Applied | Outcome::Duplicate => repaired.unchanged += 1,
            }
        }
        Ok(repaired)
    }

    /// Compares this side with `peer` and, unless `dry_run`, repairs every differing pair on
    /// the side that is behind.
    pub async fn run<P: RelationPeer>(
        &self,
        ctx: &Context,
        peer: &P,
        dry_run: bool,
    ) -> Result<Report, Error> {
        let started = Instant::now();
        let exchanged = peer.exchanged();
        let mut report = Report {
            dry_run,
            ..Report::default()
        };
        // This side scans once for every depth it compares, while the peer scans for the top.
        let (top, all) = (DigestQuery::top(), DigestQuery::all_leaves());
        let ((leaves, pairs), theirs) =
            futures::try_join!(self.digest(&all), peer.digest(ctx, &top))?;
        report.pairs_checked = pairs;
        let differ = differing(&top, &from_leaves(&leaves, &top), &theirs)?;
        if !differ.is_empty() {
            let children = DigestQuery::leaves(differ);
            let theirs = peer.digest(ctx, &children).await?;
            let differ = differing(&children, &from_leaves(&leaves, &children), &theirs)?;
            report.buckets_differed = differ.len() as u64;
            if !differ.is_empty() {
                let (ours, theirs) =
                    futures::try_join!(self.pairs(&differ), peer.pairs(ctx, &differ))?;
                let settlement = settle(ours, theirs, self.grace);
                report.in_flight = settlement.in_flight;
                report.repaired_here = settlement.here.len() as u64;
                report.repaired_peer = settlement.peer.len() as u64;
                log_repairs(E::KIND, &settlement.here, dry_run);
                log_repairs(E::OTHER_KIND, &settlement.peer, dry_run);
                if !dry_run {
                    report.compensated = self.apply(ctx, peer, settlement).await?;
                }
            }
        }
        report.duration = started.elapsed();
        report.bytes_exchanged = peer.exchanged() - exchanged;
        Ok(report)
    }

    /// Applies a settlement on both sides; returns how many repairs were compensated.
    async fn apply<P: RelationPeer>(
        &self,
        ctx: &Context,
        peer: &P,
        settlement: Settlement,
    ) -> Result<u64, Error> {
        let to_peer: Vec<PairState> = settlement.peer.into_iter().map(|(w, _)| w).collect();
        let there = async {
            let mut repaired = Repaired::default();
            for batch in to_peer.chunks(REPAIR_BATCH) {
                repaired += peer.repair(ctx, batch.to_vec()).await?;
            }
            Ok::<_, Error>(repaired)
        };
        let here = settlement.here.into_iter().map(|(w, _)| w).collect();
        let (there, here) = futures::try_join!(there, self.repair(ctx, here))?;
        Ok(there.compensated + here.compensated)
    }
}

/// A side serves as the peer of a run in the same process (tests, and the fakes).
impl<E, St, Sv> RelationPeer for Reconciler<E, St, Sv>
where
    E: Entity,
    St: RelationStore,
    Sv: EntityService<E>,
{
    async fn digest(&self, _ctx: &Context, query: &DigestQuery) -> Result<Vec<u64>, Error> {
        Ok(Reconciler::digest(self, query).await?.0)
    }

    async fn pairs(&self, _ctx: &Context, buckets: &[u32]) -> Result<Vec<PairState>, Error> {
        Reconciler::pairs(self, buckets).await
    }

    async fn repair(&self, ctx: &Context, pairs: Vec<PairState>) -> Result<Repaired, Error> {
        Reconciler::repair(self, ctx, pairs).await
    }
}

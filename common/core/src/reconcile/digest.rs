//! The digest of one side's view of the relation: its pairs placed in buckets by a hash of the
//! pair, each bucket summed into one hash (docs/behaviour.md §5.10).
//!
//! A pair's *place* is a 64-bit hash of (student, course); a bucket at depth `bits` holds the
//! pairs whose place starts with its `bits`-bit index, so the buckets of one depth split those of
//! a shallower one. A bucket's hash is the wrapping sum of the *fingerprints* (a hash of the
//! pair and its clock) of the **linked** pairs in it: the sum does not depend on the order of a
//! scan, and an empty bucket is 0.
//!
//! Unlinked pairs are left out of the bucket hashes on purpose. "Unlinked here, unknown there"
//! is agreement: a side that deleted an entity keeps no clocks for it, while the other side
//! keeps the clock of the unlink it applied, and hashing that clock would make agreeing sides
//! differ for ever. Unlinked pairs still count when a run compares pairs (an unlink newer than
//! the other side's link must win), so they are in [`PairState`] listings.

use std::collections::HashMap;

use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};

use super::PairState;
use crate::error::Error;

/// The depth of the first comparison: 1,024 bucket hashes (8 KiB) each way.
pub const TOP_BITS: u8 = 10;
/// The depth at which pairs are listed: 65,536 buckets, a few pairs each at 200,000 pairs.
pub const LEAF_BITS: u8 = 16;
/// The most bucket hashes one query may ask for (a 512 KiB answer).
pub const MAX_HASHES: usize = 1 << 16;

/// Which bucket hashes to compute: those at depth `bits` that lie within the given buckets of
/// depth `within_bits`, in the order of `within`, each parent's children in index order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestQuery {
    /// The depth of the buckets to hash.
    pub bits: u8,
    /// The depth of the buckets in `within`.
    pub within_bits: u8,
    /// The parents whose children are hashed.
    pub within: Vec<u32>,
}

impl DigestQuery {
    /// The first comparison: every bucket at [`TOP_BITS`].
    pub fn top() -> Self {
        Self {
            bits: TOP_BITS,
            within_bits: 0,
            within: vec![0],
        }
    }

    /// Every bucket at [`LEAF_BITS`]: what a side computes of itself once per run, to answer
    /// its own queries with [`from_leaves`].
    pub fn all_leaves() -> Self {
        Self {
            bits: LEAF_BITS,
            within_bits: 0,
            within: vec![0],
        }
    }

    /// The children at [`LEAF_BITS`] of the top buckets `within`.
    pub fn leaves(within: Vec<u32>) -> Self {
        Self {
            bits: LEAF_BITS,
            within_bits: TOP_BITS,
            within,
        }
    }

    /// How many children each parent has.
    fn fanout(&self) -> usize {
        1 << (self.bits - self.within_bits)
    }

    /// How many hashes the answer holds.
    pub fn len(&self) -> usize {
        self.within.len() * self.fanout()
    }

    /// Whether the answer holds no hash.
    pub fn is_empty(&self) -> bool {
        self.within.is_empty()
    }

    /// Refuses a query this side cannot answer within bounds (a peer's request is input).
    pub fn check(&self) -> Result<(), Error> {
        let bad = |why: String| Err(Error::BadRequest(format!("digest query: {why}")));
        if self.bits > LEAF_BITS || self.within_bits >= self.bits {
            return bad(format!(
                "depths {} within {} (at most {LEAF_BITS}, and deeper than the parents)",
                self.bits, self.within_bits
            ));
        }
        if self.len() > MAX_HASHES {
            return bad(format!("{} hashes (at most {MAX_HASHES})", self.len()));
        }
        match self
            .within
            .iter()
            .find(|p| u64::from(**p) >> self.within_bits != 0)
        {
            Some(p) => bad(format!(
                "bucket {p} does not exist at depth {}",
                self.within_bits
            )),
            None => Ok(()),
        }
    }
}

/// Where a pair lives in the bucket tree.
fn place(student: &str, course: &str) -> u64 {
    let mut key = Vec::with_capacity(student.len() + course.len() + 1);
    key.extend_from_slice(student.as_bytes());
    // Ids never hold 0xff (UTF-8 never does), so the split between them is unambiguous.
    key.push(0xff);
    key.extend_from_slice(course.as_bytes());
    xxh3_64(&key)
}

/// The index of the bucket at depth `bits` that holds `place`.
fn bucket(place: u64, bits: u8) -> u32 {
    if bits == 0 {
        0
    } else {
        // At most 16 bits remain after the shift.
        u32::try_from(place >> (64 - u32::from(bits))).unwrap_or(u32::MAX)
    }
}

/// The bucket at depth `bits` of a pair.
pub fn bucket_of(pair: &PairState, bits: u8) -> u32 {
    bucket(place(&pair.student, &pair.course), bits)
}

/// What a linked pair adds to its bucket's hash.
fn fingerprint(pair: &PairState, place: u64) -> u64 {
    xxh3_64_with_seed(&pair.clock.to_le_bytes(), place)
}

/// Sums the pairs of one scan into the buckets a [`DigestQuery`] asks for.
#[derive(Debug)]
pub struct Digest {
    query: DigestQuery,
    /// Where each parent's children start in `hashes`.
    offsets: HashMap<u32, usize>,
    hashes: Vec<u64>,
}

impl Digest {
    /// An empty digest for `query` (already [checked](DigestQuery::check)).
    pub fn new(query: DigestQuery) -> Self {
        let fanout = query.fanout();
        let offsets = query
            .within
            .iter()
            .enumerate()
            .map(|(i, parent)| (*parent, i * fanout))
            .collect();
        let hashes = vec![0; query.len()];
        Self {
            query,
            offsets,
            hashes,
        }
    }

    /// Adds one pair (unlinked pairs add nothing; see the module documentation).
    pub fn add(&mut self, pair: &PairState) {
        if !pair.linked {
            return;
        }
        let place = place(&pair.student, &pair.course);
        if let Some(offset) = self.offsets.get(&bucket(place, self.query.within_bits)) {
            let mask = self.query.fanout() - 1;
            let child = bucket(place, self.query.bits) as usize & mask;
            let slot = &mut self.hashes[offset + child];
            *slot = slot.wrapping_add(fingerprint(pair, place));
        }
    }

    /// The bucket hashes, in the query's order.
    pub fn into_hashes(self) -> Vec<u64> {
        self.hashes
    }
}

/// The answer to `query` from the hashes of every leaf bucket ([`DigestQuery::all_leaves`]): a
/// bucket's hash is the sum of its leaves' (sums are what bucket hashes are).
pub fn from_leaves(leaves: &[u64], query: &DigestQuery) -> Vec<u64> {
    let fanout = query.fanout();
    let shift = query.bits - query.within_bits;
    let span = 1_usize << (LEAF_BITS - query.bits);
    query
        .within
        .iter()
        .flat_map(|parent| (0..fanout).map(move |child| ((*parent as usize) << shift) | child))
        .map(|bucket| {
            leaves[bucket * span..(bucket + 1) * span]
                .iter()
                .fold(0_u64, |sum, h| sum.wrapping_add(*h))
        })
        .collect()
}

/// The buckets (at the query's depth) whose hashes differ between `ours` and `theirs`, both
/// answers to `query`; an answer of the wrong length is the peer's error.
pub fn differing(query: &DigestQuery, ours: &[u64], theirs: &[u64]) -> Result<Vec<u32>, Error> {
    if ours.len() != query.len() || theirs.len() != query.len() {
        return Err(Error::internal(format!(
            "digest answers of {} and {} hashes to a query of {}",
            ours.len(),
            theirs.len(),
            query.len()
        )));
    }
    let fanout = query.fanout();
    let shift = query.bits - query.within_bits;
    Ok(ours
        .iter()
        .zip(theirs)
        .enumerate()
        .filter(|(_, (a, b))| a != b)
        .map(|(i, _)| {
            let parent = query.within[i / fanout];
            // Below 2^16 by `check`.
            (parent << shift) | u32::try_from(i % fanout).unwrap_or(0)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(student: &str, course: &str, linked: bool, clock: i64) -> PairState {
        PairState {
            student: student.into(),
            course: course.into(),
            linked,
            clock,
        }
    }

    fn digest(query: &DigestQuery, pairs: &[PairState]) -> Vec<u64> {
        let mut digest = Digest::new(query.clone());
        pairs.iter().for_each(|p| digest.add(p));
        digest.into_hashes()
    }

    #[test]
    fn the_order_of_a_scan_does_not_matter() {
        let pairs: Vec<_> = (0..50)
            .map(|i| pair(&format!("s{i}"), &format!("c{}", i % 7), true, i))
            .collect();
        let mut reversed = pairs.clone();
        reversed.reverse();
        let top = DigestQuery::top();
        assert_eq!(digest(&top, &pairs), digest(&top, &reversed));
        assert_eq!(digest(&top, &[]), vec![0; 1024]);
    }

    #[test]
    fn a_changed_clock_or_link_shows_in_exactly_one_bucket_per_depth() {
        let pairs: Vec<_> = (0..500)
            .map(|i| pair(&format!("s{i}"), &format!("c{}", i % 13), true, i))
            .collect();
        let mut changed = pairs.clone();
        changed[42].clock += 2;
        let top = DigestQuery::top();
        let differ =
            differing(&top, &digest(&top, &pairs), &digest(&top, &changed)).expect("same length");
        assert_eq!(differ, vec![bucket_of(&pairs[42], TOP_BITS)]);
        let leaves = DigestQuery::leaves(differ);
        let differ = differing(
            &leaves,
            &digest(&leaves, &pairs),
            &digest(&leaves, &changed),
        )
        .expect("same length");
        assert_eq!(differ, vec![bucket_of(&pairs[42], LEAF_BITS)]);

        changed[42].clock -= 2;
        changed[42].linked = false;
        assert_ne!(digest(&top, &pairs), digest(&top, &changed));
    }

    #[test]
    fn every_depth_can_be_answered_from_the_leaves() {
        let pairs: Vec<_> = (0..300)
            .map(|i| pair(&format!("s{i}"), &format!("c{}", i % 11), i % 5 != 0, i))
            .collect();
        let leaves = digest(&DigestQuery::all_leaves(), &pairs);
        let top = DigestQuery::top();
        assert_eq!(from_leaves(&leaves, &top), digest(&top, &pairs));
        let some = DigestQuery::leaves(vec![3, 500, 1023]);
        assert_eq!(from_leaves(&leaves, &some), digest(&some, &pairs));
    }

    #[test]
    fn unlinked_and_absent_agree() {
        let top = DigestQuery::top();
        assert_eq!(digest(&top, &[pair("s", "c", false, 9)]), digest(&top, &[]));
    }

    #[test]
    fn queries_out_of_bounds_are_refused() {
        assert!(DigestQuery::top().check().is_ok());
        assert!(DigestQuery::leaves((0..1024).collect()).check().is_ok());
        assert!(DigestQuery::leaves(vec![1024]).check().is_err());
        let deep = DigestQuery {
            bits: 17,
            within_bits: 0,
            within: vec![0],
        };
        assert!(deep.check().is_err());
        let flat = DigestQuery {
            bits: 4,
            within_bits: 4,
            within: vec![0],
        };
        assert!(flat.check().is_err());
    }
}

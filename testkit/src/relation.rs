//! What reconciliation needs of every store, checked on the real stores alike
//! (docs/behaviour.md §5.10): a scan of every entity's side of the relation in id order, and a
//! lease one holder at a time.

use std::time::Duration;

use nis_core::{
    Entity,
    links::Clocks,
    reconcile::{RelationRow, RelationStore},
    store::{Change, Commit, Committed, EntityStore},
};

/// Stores seven entities, each linking `other(i)` with a clock and having unlinked
/// `other(i + 100)` with another, through `draft` (the `i`-th entity's fields with a list of
/// links); then scans them and checks every row; then checks the lease.
pub async fn assert_scan_and_lease<E, S>(
    store: S,
    draft: impl Fn(usize, Vec<E::OtherId>) -> E::Draft,
    other: impl Fn(usize) -> E::OtherId,
) where
    E: Entity,
    S: EntityStore<E> + RelationStore,
{
    let mut expected = Vec::new();
    for i in 0..7 {
        let id = store.next_id();
        let linked = other(i);
        let clocks: Clocks = [
            (linked.to_string(), 10 + i as i64),
            (other(i + 100).to_string(), 20 + i as i64),
        ]
        .into();
        let commit = Commit {
            expected: None,
            change: Change::Insert {
                id: id.clone(),
                draft: draft(i, vec![linked.clone()]),
                clocks: clocks.clone(),
            },
            outbox: vec![],
            key: None,
            relinked: vec![linked.to_string()],
        };
        assert_eq!(store.commit(commit).await.expect("insert"), Committed::Done);
        expected.push(RelationRow {
            id: id.to_string(),
            links: vec![linked.to_string()],
            clocks,
        });
    }
    expected.sort_by(|a, b| a.id.cmp(&b.id));

    let mut scanned = Vec::new();
    store
        .relation_scan(|row| scanned.push(row))
        .await
        .expect("scan");
    assert_eq!(
        scanned, expected,
        "every row once, in id order, with links and clocks"
    );

    let ttl = Duration::from_secs(60);
    assert!(
        store.try_lease("test", "a", ttl).await.expect("lease"),
        "a free lease is taken"
    );
    assert!(
        !store.try_lease("test", "b", ttl).await.expect("lease"),
        "a running lease is not"
    );
    assert!(
        store
            .try_lease("test", "a", Duration::ZERO)
            .await
            .expect("lease"),
        "its holder extends it"
    );
    assert!(
        store.try_lease("test", "b", ttl).await.expect("lease"),
        "an ended lease passes on"
    );
    assert!(!store.try_lease("test", "a", ttl).await.expect("lease"));
}

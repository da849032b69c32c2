//! The outbox claims every store must implement alike (docs/behaviour.md §5.9), checked on the
//! real stores: relays claiming at once get disjoint entries, a relay's own claims come back to
//! it, and claims whose lease ended pass to another relay.

use std::{collections::BTreeSet, time::Duration};

use nis_core::{
    Entity,
    outbox::{Outbox, OutboxEntry},
    store::{Change, Commit, Committed, EntityStore},
};

const LEASE: Duration = Duration::from_secs(15);

fn ids(entries: &[OutboxEntry]) -> BTreeSet<String> {
    entries.iter().map(|e| e.id.clone()).collect()
}

/// Relay ids as the relays make them (UUIDs; the PostgreSQL store keeps them as such).
fn relay() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Records `n` entries in `store`'s outbox (an outbox-only commit); returns their ids in order.
async fn record<E: Entity, S: EntityStore<E>>(store: &S, n: usize) -> Vec<String> {
    let outbox: Vec<OutboxEntry> = (0..n)
        .map(|i| OutboxEntry {
            id: uuid::Uuid::now_v7().to_string(),
            subject: "claims.test".into(),
            payload: format!("{{\"n\":{i}}}").into_bytes(),
            request_id: "claims".into(),
            trace_context: None,
        })
        .collect();
    let ids = outbox.iter().map(|e| e.id.clone()).collect();
    let commit = Commit {
        expected: None,
        change: Change::Nothing,
        outbox,
        key: None,
        relinked: vec![],
    };
    assert_eq!(store.commit(commit).await.expect("commit"), Committed::Done);
    ids
}

/// Two relays claiming at once take disjoint entries, in recording order, and between them all;
/// a third finds nothing free; a relay claims its own entries again; entries whose lease ended
/// go to another relay; what is published is gone.
pub async fn assert_relays_share_the_outbox<E: Entity, S: EntityStore<E> + Outbox>(store: S) {
    let recorded = record(&store, 30).await;
    let (a, b, c) = (relay(), relay(), relay());
    let (first, second) = tokio::join!(store.claim(&a, 20, LEASE), store.claim(&b, 20, LEASE));
    let (first, second) = (first.expect("claim a"), second.expect("claim b"));
    for claimed in [&first, &second] {
        let order: Vec<&String> = recorded
            .iter()
            .filter(|id| ids(claimed).contains(*id))
            .collect();
        let got: Vec<&String> = claimed.iter().map(|e| &e.id).collect();
        assert_eq!(got, order, "a claim comes in recording order");
    }
    assert!(ids(&first).is_disjoint(&ids(&second)), "claims overlap");
    let all: BTreeSet<String> = recorded.iter().cloned().collect();
    assert_eq!(
        &ids(&first) | &ids(&second),
        all,
        "between them, every entry"
    );

    let third = store.claim(&c, 50, LEASE).await.expect("claim c");
    assert!(third.is_empty(), "everything is held: {third:?}");
    let again = store.claim(&a, 50, LEASE).await.expect("claim a again");
    assert_eq!(
        ids(&again),
        ids(&first),
        "a relay's own claims come back to it"
    );

    // `a` stops, its lease ending now: `c` takes its entries over, not `b`'s.
    store
        .claim(&a, 50, Duration::ZERO)
        .await
        .expect("a's lease ends");
    let taken = store.claim(&c, 50, LEASE).await.expect("c takes over");
    assert_eq!(ids(&taken), ids(&first));

    let published: Vec<String> = taken.iter().map(|e| e.id.clone()).collect();
    store.published(&published).await.expect("published");
    assert_eq!(
        store.backlog().await.expect("backlog"),
        u64::try_from(second.len()).expect("count")
    );
}

//! The use cases of the core against the in-memory store: what each write commits and
//! records, and what it refuses.

use crate::{
    Error,
    core::Core,
    fakes::{
        MemoryStore,
        entities::{Key, MemberDraft, Pupil},
    },
    links::{Outcome, Side},
    message::LinkEvent,
    service::{Context, EntityService, IncomingLink, Transport},
};

fn core() -> (Core<MemoryStore<Pupil>>, MemoryStore<Pupil>) {
    let store = MemoryStore::<Pupil>::new(|n| Key(format!("s{n}")));
    (Core::new(store.clone(), "t.links.students"), store)
}

fn ctx() -> Context {
    Context::new(Transport::Http, "req-1")
}

fn draft(links: &[&str]) -> MemberDraft {
    MemberDraft {
        name: "Ada".into(),
        links: links.iter().map(|l| Key((*l).into())).collect(),
    }
}

fn events(store: &MemoryStore<Pupil>) -> Vec<LinkEvent> {
    store
        .drain_outbox()
        .iter()
        .map(|entry| {
            assert_eq!(entry.subject, "t.links.students");
            assert_eq!(entry.request_id, "req-1");
            LinkEvent::decode(&entry.payload).expect("readable")
        })
        .collect()
}

fn pairs(events: &[LinkEvent]) -> Vec<(String, bool)> {
    events.iter().map(|e| (e.other.clone(), e.linked)).collect()
}

fn change(entity: &Key, other: &str, linked: bool, clock: i64) -> IncomingLink<Pupil> {
    IncomingLink {
        entity: entity.clone(),
        other: Key(other.into()),
        linked,
        clock,
    }
}

#[tokio::test]
async fn a_create_records_one_change_per_link_with_the_write() {
    let (core, store) = core();
    let written = core
        .create(&ctx(), draft(&["c1", "c2"]))
        .await
        .expect("created");
    assert_eq!(written.relinked, ["c1", "c2"]);
    let events = events(&store);
    assert_eq!(pairs(&events), [("c1".into(), true), ("c2".into(), true)]);
    assert!(
        events
            .iter()
            .all(|e| e.origin == "students" && e.entity == written.value.id.0)
    );
    assert!(
        events.iter().all(|e| e.clock.rem_euclid(2) == 0),
        "students stamp even clocks"
    );
    assert_eq!(store.all(), [written.value]);
}

#[tokio::test]
async fn an_update_records_only_what_changed_and_a_delete_unlinks_everything() {
    let (core, store) = core();
    let id = core
        .create(&ctx(), draft(&["c1", "c2"]))
        .await
        .expect("created")
        .value
        .id;
    store.drain_outbox();
    let written = core
        .update(&ctx(), &id, draft(&["c2", "c3"]))
        .await
        .expect("updated");
    assert_eq!(written.relinked, ["c3", "c1"]);
    assert_eq!(
        pairs(&events(&store)),
        [("c3".into(), true), ("c1".into(), false)]
    );

    let deleted = core.delete(&ctx(), &id).await.expect("deleted");
    assert_eq!(deleted.relinked, ["c2", "c3"]);
    assert_eq!(
        pairs(&events(&store)),
        [("c2".into(), false), ("c3".into(), false)]
    );
    assert!(store.all().is_empty());
}

#[tokio::test]
async fn writes_of_an_unknown_entity_are_not_found_and_record_nothing() {
    let (core, store) = core();
    let ghost = Key("nobody".into());
    assert!(matches!(
        core.update(&ctx(), &ghost, draft(&["c1"])).await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        core.delete(&ctx(), &ghost).await,
        Err(Error::NotFound(_))
    ));
    assert!(store.drain_outbox().is_empty());
    assert_eq!(store.commit_counts(), (0, 0));
}

#[tokio::test]
async fn a_received_change_is_applied_once_and_a_duplicate_or_stale_one_writes_nothing() {
    let (core, store) = core();
    let id = core
        .create(&ctx(), draft(&[]))
        .await
        .expect("created")
        .value
        .id;
    let clock = Side::Courses.next_clock(None, 1);

    let applied = core
        .apply_link(&ctx(), change(&id, "c9", true, clock))
        .await
        .expect("applied");
    assert_eq!(
        (applied.value, applied.relinked.clone()),
        (Outcome::Applied, vec!["c9".into()])
    );
    assert_eq!(store.all()[0].links, [Key("c9".into())]);
    let commits = store.commit_counts();

    let again = core
        .apply_link(&ctx(), change(&id, "c9", true, clock))
        .await
        .expect("duplicate");
    assert_eq!((again.value, again.relinked.len()), (Outcome::Duplicate, 0));
    let stale = core
        .apply_link(&ctx(), change(&id, "c9", false, clock - 2))
        .await
        .expect("stale");
    assert_eq!((stale.value, stale.relinked.len()), (Outcome::Applied, 0));
    assert_eq!(store.commit_counts(), commits, "neither wrote anything");
    assert_eq!(store.all()[0].links, [Key("c9".into())]);
    assert!(store.drain_outbox().is_empty(), "no echo");
}

#[tokio::test]
async fn a_link_to_a_missing_entity_or_past_the_limit_is_compensated() {
    let (core, store) = core();
    let missing = Key("s-gone".into());
    let answered = core
        .apply_link(&ctx(), change(&missing, "c1", true, 11))
        .await
        .expect("compensated");
    assert_eq!(answered.value, Outcome::Compensated);
    let back = events(&store);
    assert_eq!(pairs(&back), [("c1".into(), false)]);
    assert!(back[0].clock > 11 && back[0].entity == "s-gone");

    let full: Vec<String> = (0..15).map(|i| format!("c{i}")).collect();
    let full: Vec<&str> = full.iter().map(String::as_str).collect();
    let id = core
        .create(&ctx(), draft(&full))
        .await
        .expect("created")
        .value
        .id;
    store.drain_outbox();
    let over = core
        .apply_link(&ctx(), change(&id, "c99", true, 13))
        .await
        .expect("compensated");
    assert_eq!(over.value, Outcome::Compensated);
    assert_eq!(pairs(&events(&store)), [("c99".into(), false)]);
    assert_eq!(store.all()[0].links.len(), 15);
    assert!(
        store.clocks(&id).expect("stored")["c99"] > 13,
        "the unlink's clock is kept"
    );
}

#[tokio::test]
async fn a_write_and_a_received_change_racing_on_one_entity_both_land() {
    let (core, store) = core();
    let id = core
        .create(&ctx(), draft(&["c1"]))
        .await
        .expect("created")
        .value
        .id;
    let clock = Side::Courses.next_clock(None, 1);
    // Both load version 0; whichever commits second finds the version moved and starts over.
    let (a, b) = (ctx(), ctx());
    let (update, apply) = tokio::join!(
        core.update(&a, &id, draft(&["c1", "c2"])),
        core.apply_link(&b, change(&id, "c3", true, clock)),
    );
    update.expect("update lands");
    assert_eq!(apply.expect("apply lands").value, Outcome::Applied);
    let links: Vec<String> = store.all()[0].links.iter().map(|k| k.0.clone()).collect();
    assert!(
        links.contains(&"c2".into()) && links.contains(&"c3".into()),
        "{links:?}"
    );
    assert!(
        store.commit_counts().1 >= 1,
        "one of them lost the race and retried"
    );
}

#[tokio::test]
async fn a_store_that_is_down_fails_the_write_as_unavailable() {
    let (core, store) = core();
    store.set_down(true);
    let failed = core.create(&ctx(), draft(&["c1"])).await.expect_err("down");
    assert!(matches!(failed, Error::Unavailable { .. }), "{failed:?}");
    store.set_down(false);
    assert!(store.drain_outbox().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_write_that_keeps_losing_races_gives_up_within_its_budget() {
    let (core, store) = core();
    let created = core.create(&ctx(), draft(&[])).await.expect("created");
    // Every commit takes a second and loses, as against a document a dead client still locks.
    store.lose_every_race(Some(std::time::Duration::from_secs(1)));
    let started = tokio::time::Instant::now();
    let answer = core.update(&ctx(), &created.value.id, draft(&["c1"])).await;
    assert!(
        matches!(answer, Err(Error::Unavailable { .. })),
        "{answer:?}"
    );
    let took = started.elapsed();
    assert!(
        took >= crate::core::RETRY_BUDGET
            && took < crate::core::RETRY_BUDGET + std::time::Duration::from_secs(2),
        "gave up after {took:?}"
    );
    let (_, conflicts) = store.commit_counts();
    assert!(
        conflicts < 10,
        "{conflicts} attempts, not {}",
        crate::core::MAX_ATTEMPTS
    );
}

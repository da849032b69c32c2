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
    // Through two replicas (one replica's writes of an entity take turns): both load version
    // 0; whichever commits second finds the version moved and starts over.
    let replica = Core::new(store.clone(), "t.links.students");
    let (a, b) = (ctx(), ctx());
    let (update, apply) = tokio::join!(
        core.update(&a, &id, draft(&["c1", "c2"])),
        replica.apply_link(&b, change(&id, "c3", true, clock)),
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

mod edits {
    //! Versions, conditional writes, one-link writes and idempotent creates
    //! (docs/behaviour.md §3).

    use std::time::Duration;

    use super::*;
    use crate::{
        conditions::Expected, idempotency::IdempotencyKey, service::LinkEdit,
        store::EntityStore as _,
    };

    fn edit(other: &str, linked: bool) -> LinkEdit<Pupil> {
        LinkEdit {
            other: Key(other.into()),
            linked,
        }
    }

    fn key(raw: &str) -> Option<IdempotencyKey> {
        Some(raw.parse().expect("a key"))
    }

    #[tokio::test]
    async fn every_change_moves_the_version_and_a_stale_condition_writes_nothing() {
        let (core, store) = core();
        let id = core
            .create(&ctx(), draft(&[]))
            .await
            .expect("create")
            .value
            .id;
        assert_eq!(core.get(&ctx(), &id).await.expect("get").version, 0);
        let updated = core
            .update_if(&ctx(), &id, draft(&["c1"]), Expected::OneOf(vec![0]))
            .await
            .expect("update at version 0");
        assert_eq!(updated.value.version, 1);
        // A link applied from the other side moves the version too.
        core.apply_link(&ctx(), change(&id, "c2", true, 1))
            .await
            .expect("apply");
        assert_eq!(core.get(&ctx(), &id).await.expect("get").version, 2);

        let before = store.commit_counts();
        for stale in [
            core.update_if(&ctx(), &id, draft(&[]), Expected::OneOf(vec![0, 1]))
                .await
                .map(|_| ()),
            core.delete_if(&ctx(), &id, Expected::OneOf(vec![1]))
                .await
                .map(|_| ()),
            core.set_link(&ctx(), &id, edit("c3", true), Expected::OneOf(vec![7]))
                .await
                .map(|_| ()),
        ] {
            assert_eq!(stale.expect_err("stale").code(), "precondition_failed");
        }
        assert_eq!(store.commit_counts(), before, "nothing written");
        let gone = Key("nobody".into());
        let missing = core.delete_if(&ctx(), &gone, Expected::Exists).await;
        assert_eq!(missing.expect_err("gone").code(), "not_found");
        let missing = core.delete(&ctx(), &gone).await;
        assert_eq!(missing.expect_err("gone").code(), "not_found");
        core.delete_if(&ctx(), &id, Expected::Exists)
            .await
            .expect("delete if it exists");
    }

    #[tokio::test]
    async fn one_link_writes_change_one_pair_and_are_stamped_even_when_already_so() {
        let (core, store) = core();
        let id = core
            .create(&ctx(), draft(&["c1"]))
            .await
            .expect("create")
            .value
            .id;
        events(&store);
        let added = core
            .set_link(&ctx(), &id, edit("c2", true), Expected::Unconditional)
            .await
            .expect("link");
        assert_eq!(added.relinked, ["c2"]);
        let again = core
            .set_link(&ctx(), &id, edit("c2", true), Expected::Unconditional)
            .await
            .expect("link again");
        assert!(again.relinked.is_empty(), "the list did not change");
        assert!(again.value > added.value, "but the pair was stamped again");
        let sent = events(&store);
        assert_eq!(pairs(&sent), [("c2".into(), true), ("c2".into(), true)]);
        assert!(sent[1].clock > sent[0].clock);
        core.set_link(&ctx(), &id, edit("c1", false), Expected::Unconditional)
            .await
            .expect("unlink");
        let stored = core.get(&ctx(), &id).await.expect("get");
        assert_eq!(stored.links, [Key("c2".into())]);
    }

    #[tokio::test]
    async fn a_one_link_write_past_the_limit_is_the_list_forms_validation_error() {
        let (core, _) = core();
        let full: Vec<String> = (0..15).map(|n| format!("c{n}")).collect();
        let full: Vec<&str> = full.iter().map(String::as_str).collect();
        let id = core
            .create(&ctx(), draft(&full))
            .await
            .expect("create")
            .value
            .id;
        let refused = core
            .set_link(&ctx(), &id, edit("c99", true), Expected::Unconditional)
            .await
            .expect_err("a 16th link");
        assert_eq!(refused.code(), "validation_failed");
        assert_eq!(refused.details()[0].field, "links");
        core.set_link(&ctx(), &id, edit("c3", true), Expected::Unconditional)
            .await
            .expect("a link it holds is fine");
    }

    #[tokio::test]
    async fn concurrent_one_link_writes_of_different_pairs_never_undo_each_other() {
        let (core, _) = core();
        let id = core
            .create(&ctx(), draft(&[]))
            .await
            .expect("create")
            .value
            .id;
        let links = (0..12).map(|n| {
            let (core, id) = (core.clone(), id.clone());
            async move {
                core.set_link(
                    &ctx(),
                    &id,
                    edit(&format!("c{n}"), true),
                    Expected::Unconditional,
                )
                .await
                .expect("link")
            }
        });
        futures::future::join_all(links).await;
        let stored = core.get(&ctx(), &id).await.expect("get");
        assert_eq!(stored.links.len(), 12, "{:?}", stored.links);
    }

    #[tokio::test]
    async fn a_keyed_create_is_made_once_and_the_key_is_bound_to_its_fields() {
        let (core, store) = core();
        let first = core
            .create_keyed(&ctx(), draft(&["c1"]), key("k"))
            .await
            .expect("create");
        assert!(!first.replayed);
        let again = core
            .create_keyed(&ctx(), draft(&["c1"]), key("k"))
            .await
            .expect("again");
        assert!(again.replayed && !again.wrote);
        assert_eq!(again.value, first.value);
        assert_eq!(store.ids().len(), 1);
        let reused = core.create_keyed(&ctx(), draft(&["c2"]), key("k")).await;
        assert_eq!(reused.expect_err("reused").code(), "idempotency_key_reused");
        core.create_keyed(&ctx(), draft(&["c1"]), key("other"))
            .await
            .expect("another key is another create");
        assert_eq!(store.ids().len(), 2);
    }

    #[tokio::test]
    async fn an_expired_key_is_a_new_create_and_is_purged() {
        let store = MemoryStore::<Pupil>::new(|n| Key(format!("s{n}")));
        let core = Core::new(store.clone(), "t.links.students")
            .with_key_retention(Duration::from_millis(20));
        core.create_keyed(&ctx(), draft(&[]), key("k"))
            .await
            .expect("create");
        tokio::time::sleep(Duration::from_millis(40)).await;
        let later = core
            .create_keyed(&ctx(), draft(&[]), key("k"))
            .await
            .expect("a new create");
        assert!(!later.replayed);
        assert_eq!(store.ids().len(), 2);
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert_eq!(store.purge_keys().await.expect("purge"), 1);
    }
}

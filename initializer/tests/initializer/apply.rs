//! `apply` against the real NATS server: create, rerun, change, restore; never delete.

use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull};
use initializer::{Outcome, Report, apply};
use nis_queue::{StreamSettings, topology::SERVICES};

use crate::support::{Namespace, jetstream};

fn outcomes(report: &Report) -> Vec<Outcome> {
    report.entries.iter().map(|e| e.outcome).collect()
}

#[tokio::test]
async fn a_second_run_changes_nothing() {
    let ns = Namespace::unique();
    let js = jetstream().await;
    let settings = StreamSettings::default();

    let first = apply(&js, &ns.topology, &settings)
        .await
        .expect("first run");
    assert_eq!(outcomes(&first), [Outcome::Created; 5], "{first}");
    let after_first = ns.server_configs(&js).await;

    let second = apply(&js, &ns.topology, &settings)
        .await
        .expect("second run");
    assert_eq!(outcomes(&second), [Outcome::Unchanged; 5], "{second}");
    assert_eq!(ns.server_configs(&js).await, after_first);

    // What was created is what the topology asks for.
    for wanted in ns.topology.streams(&settings) {
        let stored = &after_first.streams[&wanted.name];
        assert_eq!(stored.subjects, wanted.subjects);
        assert_eq!(stored.max_age, wanted.max_age);
        assert_eq!(stored.duplicate_window, settings.duplicate_window);
        assert_eq!(stored.num_replicas, 1);
    }
    for (stream, wanted) in ns.topology.consumers() {
        let name = wanted.durable_name.clone().expect("durable");
        let stored = &after_first.consumers[&format!("{stream}/{name}")];
        assert_eq!(stored.max_ack_pending, wanted.max_ack_pending);
        assert_eq!(stored.max_deliver, wanted.max_deliver);
        assert_eq!(stored.ack_wait, wanted.ack_wait);
    }
}

#[tokio::test]
async fn a_changed_setting_is_applied_and_no_message_is_lost() {
    let ns = Namespace::unique();
    let js = jetstream().await;
    let before = StreamSettings::default();
    apply(&js, &ns.topology, &before).await.expect("first run");

    let subject = ns.topology.links_subject("courses");
    js.publish(subject.clone(), "kept".into())
        .await
        .expect("publish")
        .await
        .expect("stored");
    // An operator's own limit on a stream, a setting the initializer does not own.
    let courses = ns.topology.links_stream("courses");
    let mut by_hand = js
        .get_stream(&courses)
        .await
        .expect("stream")
        .cached_info()
        .config
        .clone();
    by_hand.max_messages = 10_000;
    js.update_stream(&by_hand).await.expect("update by hand");

    let after = StreamSettings {
        max_age: Duration::from_secs(3 * 24 * 3600),
        ..before.clone()
    };
    let report = apply(&js, &ns.topology, &after).await.expect("second run");

    for origin in SERVICES {
        let name = ns.topology.links_stream(origin);
        let entry = report.stream(&name).expect("reported");
        assert_eq!(entry.outcome, Outcome::Updated, "{report}");
        assert_eq!(entry.changed, ["max_age"], "{report}");
        let info = js
            .get_stream(&name)
            .await
            .expect("stream")
            .cached_info()
            .clone();
        assert_eq!(info.config.max_age, after.max_age);
    }
    // The dead letters are kept forever whatever the setting, and consumers did not change.
    let dead = report
        .stream(&ns.topology.dead_letter_stream())
        .expect("reported");
    assert_eq!(dead.outcome, Outcome::Unchanged, "{report}");
    assert_eq!(report.count(Outcome::Updated), 2, "{report}");

    let stream = js.get_stream(&courses).await.expect("stream");
    let info = stream.cached_info();
    assert_eq!(
        info.config.max_messages, 10_000,
        "the operator's limit is kept"
    );
    assert_eq!(info.state.messages, 1, "the message is still there");
    let message = stream.get_raw_message(1).await.expect("first message");
    assert_eq!(message.subject.as_str(), subject);
    assert_eq!(&message.payload[..], b"kept");

    let third = apply(&js, &ns.topology, &after).await.expect("third run");
    assert_eq!(third.count(Outcome::Unchanged), 5, "{third}");
}

#[tokio::test]
async fn a_consumer_changed_by_hand_is_restored() {
    let ns = Namespace::unique();
    let js = jetstream().await;
    let settings = StreamSettings::default();
    apply(&js, &ns.topology, &settings)
        .await
        .expect("first run");

    let (stream, wanted) = ns.topology.consumer("students");
    let name = wanted.durable_name.clone().expect("durable");
    let by_hand = pull::Config {
        max_ack_pending: 5,
        ..wanted.clone()
    };
    js.update_consumer_on_stream(by_hand, &stream)
        .await
        .expect("update by hand");
    assert_eq!(max_ack_pending(&js, &stream, &name).await, 5);

    let report = apply(&js, &ns.topology, &settings)
        .await
        .expect("second run");
    let entry = report.consumer(&stream, &name).expect("reported");
    assert_eq!(entry.outcome, Outcome::Updated, "{report}");
    assert_eq!(entry.changed, ["max_ack_pending"], "{report}");
    assert_eq!(report.count(Outcome::Unchanged), 4, "{report}");
    assert_eq!(
        max_ack_pending(&js, &stream, &name).await,
        wanted.max_ack_pending
    );
}

#[tokio::test]
async fn streams_of_other_prefixes_are_left_alone() {
    let ours = Namespace::unique();
    let theirs = Namespace::unique();
    let js = jetstream().await;
    let settings = StreamSettings::default();
    apply(&js, &theirs.topology, &settings)
        .await
        .expect("their run");
    let before = theirs.server_configs(&js).await;

    apply(&js, &ours.topology, &settings)
        .await
        .expect("our run");
    assert_eq!(theirs.server_configs(&js).await, before);
}

async fn max_ack_pending(js: &jetstream::Context, stream: &str, name: &str) -> i64 {
    js.get_stream_no_info(stream)
        .await
        .expect("stream")
        .consumer_info(name)
        .await
        .expect("consumer")
        .config
        .max_ack_pending
}

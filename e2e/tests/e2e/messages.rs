//! Messages as they arrive: the same change twice changes nothing twice; what cannot be decoded
//! goes to the dead letters and is counted; without streams the services are not ready.

use std::{collections::BTreeSet, time::Duration};

use async_nats::HeaderMap;
use e2e::{Options, System, set};
use nis_core::message::{LinkEvent, VERSION};
use nis_queue::Topology;
use testkit::{body, metric_value};

async fn publish(system: &System, subject: &str, msg_id: &str, payload: Vec<u8>) {
    let js = testkit::queue::jetstream_at(None).await;
    let mut headers = HeaderMap::new();
    headers.insert("Nats-Msg-Id", msg_id);
    js.publish_with_headers(subject.to_owned(), headers, payload.into())
        .await
        .expect("publish")
        .await
        .expect("ack");
    let _ = system;
}

fn consumed(metrics: &str, outcome: &str) -> f64 {
    metric_value(
        metrics,
        "nis_events_consumed_total",
        &[("service", "students"), ("outcome", outcome)],
    )
}

#[tokio::test]
async fn the_same_change_delivered_twice_changes_nothing_twice() {
    let system = System::start().await;
    let s = system.student(1, &[]).await;
    let c = system.course(1, &[]).await;
    let subject = Topology::new(&system.prefix).links_subject("courses");
    let event = LinkEvent {
        v: VERSION,
        id: uuid::Uuid::now_v7().to_string(),
        origin: "courses".into(),
        entity: c.clone(),
        other: s.clone(),
        linked: true,
        clock: nis_core::links::Side::Courses.next_clock(None, nis_core::links::now_micros()),
    };
    // Two deliveries of one change (distinct message ids, so JetStream keeps both).
    publish(&system, &subject, "first-delivery", event.encode()).await;
    publish(&system, &subject, "second-delivery", event.encode()).await;
    system
        .eventually("both deliveries consumed", || async {
            let metrics = system.students.metrics().await;
            consumed(&metrics, "applied") >= 1.0 && consumed(&metrics, "duplicate") >= 1.0
        })
        .await;
    let metrics = system.students.metrics().await;
    assert_eq!(consumed(&metrics, "applied"), 1.0, "{metrics}");
    assert_eq!(consumed(&metrics, "duplicate"), 1.0, "{metrics}");
    let student = body(system.students.get(&format!("/api/students/{s}")).await).await;
    assert_eq!(
        student["data"]["course_ids"],
        serde_json::json!([c]),
        "linked once"
    );
    system.stop().await;
}

#[tokio::test]
async fn undecodable_and_unknown_version_messages_are_dead_lettered_and_counted() {
    let system = System::start().await;
    let topology = Topology::new(&system.prefix);
    let subject = topology.links_subject("courses");
    publish(&system, &subject, "poison-1", b"this is not json".to_vec()).await;
    publish(
        &system,
        &subject,
        "poison-2",
        br#"{"v":99,"whatever":true}"#.to_vec(),
    )
    .await;
    system
        .eventually("two dead letters counted", || async {
            consumed(&system.students.metrics().await, "dead_lettered") >= 2.0
        })
        .await;
    let js = testkit::queue::jetstream_at(None).await;
    let mut dead = js
        .get_stream(topology.dead_letter_stream())
        .await
        .expect("dead-letter stream");
    let state = dead.info().await.expect("info").state.clone();
    assert_eq!(state.messages, 2);
    let first = dead
        .get_raw_message(state.first_sequence)
        .await
        .expect("first dead letter");
    assert_eq!(
        first.subject.as_str(),
        topology.dead_letter_subject("students")
    );
    assert_eq!(first.payload.as_ref(), b"this is not json");
    let headers = first.headers;
    assert!(
        headers
            .get(nis_core::message::DEAD_LETTER_REASON_HEADER)
            .is_some_and(|r| r.as_str().contains("undecodable")),
        "{headers:?}"
    );
    // The consumer goes on with good messages.
    let s = system.student(1, &[]).await;
    let c = system.course(1, std::slice::from_ref(&s)).await;
    system
        .eventually("a good change still applies", || async {
            system.courses_of(&s).await == Some(set(&[&c]))
        })
        .await;
    system.stop().await;
}

#[tokio::test]
async fn without_the_streams_services_are_not_ready_and_say_which_is_missing() {
    let system = System::start_with(Options {
        without_streams: true,
        ..Options::default()
    })
    .await;
    for service in [&system.courses, &system.students] {
        // Once connected to NATS, readiness names the missing stream (and stays 503).
        let error = testkit::wait_for(
            "readiness naming a missing stream",
            Duration::from_secs(10),
            || async {
                let ready = service.get("/readyz").await;
                assert_eq!(ready.status(), 503);
                let ready = body(ready).await;
                assert_eq!(ready["dependencies"]["queue"]["state"], "down");
                let error = ready["dependencies"]["queue"]["error"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                error.contains("missing").then_some(error)
            },
        )
        .await;
        assert!(
            error.contains("_LINKS_") && error.contains("initializer"),
            "{error}"
        );
    }
    // The initializer runs: they become ready and the relation flows.
    testkit::queue::create_streams(&system.prefix).await;
    for service in [&system.courses, &system.students] {
        testkit::wait_for(
            "ready once the streams exist",
            Duration::from_secs(20),
            || async { (service.get("/readyz").await.status() == 200).then_some(()) },
        )
        .await;
    }
    let s = system.student(1, &[]).await;
    let c = system.course(1, std::slice::from_ref(&s)).await;
    system
        .eventually("the link propagates", || async {
            system.courses_of(&s).await == Some(set(&[&c]))
        })
        .await;
    assert_ne!(system.courses_of(&s).await, Some(BTreeSet::new()));
    system.stop().await;
}

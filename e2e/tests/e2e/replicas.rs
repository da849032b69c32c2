//! Two replicas of each service on the same stores, cache and queue (docs/behaviour.md §5.8):
//! a write acknowledged by one replica is never followed by a stale read on another, and a
//! cross query still answers when one replica of the other service is gone.

use e2e::{Options, System, id};
use serde_json::json;
use testkit::body;

async fn two_replicas() -> System {
    System::start_with(Options {
        replicas: 2,
        ..Options::default()
    })
    .await
}

#[tokio::test]
async fn a_write_on_one_replica_is_never_followed_by_a_stale_read_on_another() {
    let system = two_replicas().await;
    let replicas: Vec<_> = system.students_replicas().collect();
    let created = replicas[0]
        .create(
            "students",
            &json!({ "name": "replica0", "first_name": "Ada", "last_name": "Lovelace" }),
        )
        .await;
    let path = format!("/api/students/{}", id(&created));
    for n in 1..=20 {
        let (writer, reader) = (replicas[n % 2], replicas[(n + 1) % 2]);
        // The reader has the entity and the first page cached before the write.
        assert_eq!(reader.get(&path).await.status(), 200);
        assert_eq!(reader.get("/api/students").await.status(), 200);
        let name = format!("replica{n}");
        let update = json!({ "name": name, "first_name": "Ada", "last_name": "Lovelace" });
        assert_eq!(writer.put_json(&path, &update).await.status(), 200);
        let read = body(reader.get(&path).await).await;
        assert_eq!(
            read["data"]["name"], name,
            "write {n}: the other replica's read"
        );
        let listed = body(reader.get("/api/students").await).await;
        assert_eq!(
            listed["data"][0]["name"], name,
            "write {n}: the other replica's list"
        );
    }
    system.stop().await;
}

#[tokio::test]
async fn a_cross_query_answers_while_one_replica_of_the_peer_is_gone() {
    let mut system = two_replicas().await;
    let student = system.student(1, &[]).await;
    let course = system.course(1, std::slice::from_ref(&student)).await;
    system
        .eventually("the link reaches students", || async {
            system.courses_of(&student).await == Some(e2e::set(&[&course]))
        })
        .await;
    let gone = system.more_courses.pop().expect("a second courses replica");
    gone.stop_replica().await;
    let path = format!("/api/students/{student}/courses");
    for n in 0..20 {
        // Past the cache: every read asks courses (a fresh `offset` is a fresh cache key).
        let response = system
            .students
            .get(&format!("{path}?offset=0&limit={}", n + 1))
            .await;
        assert_eq!(response.status(), 200, "cross query {n}");
        assert_eq!(id(&body(response).await["data"][0]), course);
    }
    system.stop().await;
}

#[tokio::test]
async fn with_two_relays_each_outbox_entry_is_published_once() {
    let system = two_replicas().await;
    let mut courses = Vec::new();
    for n in 0..3 {
        courses.push(system.course(n, &[]).await);
    }
    // 40 students, created through both replicas at once, each linking the 3 courses: 120
    // outbox entries, which both replicas' relays race for.
    let replicas: Vec<_> = system.students_replicas().collect();
    let creates = (0..40).map(|n| {
        let student = json!({ "name": format!("relay{n}"), "first_name": "Ada", "last_name": "Lovelace", "course_ids": courses });
        let replica = replicas[n % 2];
        async move { replica.create("students", &student).await }
    });
    futures::future::join_all(creates).await;
    for course in &courses {
        system
            .eventually("every link reaches courses", || async {
                system.students_of(course).await.map(|s| s.len()) == Some(40)
            })
            .await;
    }
    // Both replicas run in this process, so one exposition counts the publishes of both.
    let metrics = system
        .students
        .get("/metrics")
        .await
        .text()
        .await
        .expect("metrics");
    let published = testkit::metric_value(
        &metrics,
        "nis_events_published_total",
        &[("service", "students")],
    );
    assert_eq!(published, 120.0, "publishes for 120 entries");
    system.stop().await;
}

//! The relation heals itself (docs/behaviour.md §5.10): whatever the broker loses, a
//! reconciliation run repairs every pair on the side that is behind, and a second run finds
//! nothing to do. Against real NATS, PostgreSQL, Redis and the MongoDB(-compatible) server;
//! every wait is a condition with a deadline.

use std::{collections::BTreeSet, time::Duration};

use async_nats::jetstream;
use e2e::System;
use futures::{StreamExt as _, stream};
use nis_queue::Topology;

const STUDENTS: usize = 100;
const COURSES: usize = 100;
/// Links per student: 1,000 link changes in all, 10 per course.
const LINKS_EACH: usize = 10;

async fn jetstream() -> jetstream::Context {
    testkit::queue::jetstream_at(None).await
}

/// Creates `n` entities with `make`, 16 at a time.
async fn many<F, Fut>(n: usize, make: F) -> Vec<String>
where
    F: Fn(u32) -> Fut,
    Fut: Future<Output = String>,
{
    stream::iter(0..n)
        .map(|i| make(u32::try_from(i).expect("small")))
        .buffered(16)
        .collect()
        .await
}

/// The course ids student `i` links.
fn courses_of(i: usize, courses: &[String]) -> Vec<String> {
    (0..LINKS_EACH)
        .map(|k| courses[(i + k * 7) % COURSES].clone())
        .collect()
}

/// The (student, course) pairs a side links, read over HTTP with the caches.
async fn pairs_seen_by(
    system: &System,
) -> (BTreeSet<(String, String)>, BTreeSet<(String, String)>) {
    let (courses, students) = system.relation().await;
    let from_courses = courses
        .iter()
        .flat_map(|(c, ss)| ss.iter().map(move |s| (s.clone(), c.clone())))
        .collect();
    let from_students = students
        .iter()
        .flat_map(|(s, cs)| cs.iter().map(move |c| (s.clone(), c.clone())))
        .collect();
    (from_students, from_courses)
}

/// How many messages the stream `name` holds.
async fn messages_in(js: &jetstream::Context, name: &str) -> u64 {
    let mut stream = js.get_stream(name).await.expect("the stream exists");
    stream.info().await.expect("stream info").state.messages
}

#[tokio::test]
async fn after_the_links_stream_is_purged_one_run_repairs_every_pair_and_a_second_repairs_none() {
    let system = System::start().await;
    let js = jetstream().await;
    let topology = Topology::new(&system.prefix);
    let (stream_name, _) = topology.consumer("courses");

    let courses = many(COURSES, |i| system.course(i, &[])).await;
    let students = many(STUDENTS, |i| system.student(i, &[])).await;

    // Courses stops reading students' changes, so all of them are still in the stream when it
    // is purged: 1,000 link changes in flight.
    js.get_stream(&stream_name)
        .await
        .expect("stream")
        .delete_consumer("courses")
        .await
        .expect("delete courses' consumer");
    let writes: Vec<(String, String)> = students
        .iter()
        .enumerate()
        .flat_map(|(i, s)| {
            courses_of(i, &courses)
                .into_iter()
                .map(move |c| (s.clone(), c))
        })
        .collect();
    assert_eq!(writes.len(), 1_000);
    stream::iter(&writes)
        .for_each_concurrent(16, |(s, c)| {
            let students = &system.students;
            async move {
                let url = students.url(&format!("/api/students/{s}/courses/{c}"));
                let response = students.client.put(url).send().await.expect("PUT");
                assert_eq!(response.status(), 204, "link {s} to {c}");
            }
        })
        .await;
    testkit::wait_for(
        "the relay published all 1,000 changes",
        Duration::from_secs(30),
        || {
            let js = js.clone();
            let name = stream_name.clone();
            async move { (messages_in(&js, &name).await >= 1_000).then_some(()) }
        },
    )
    .await;
    js.get_stream(&stream_name)
        .await
        .expect("stream")
        .purge()
        .await
        .expect("purge the links stream");
    testkit::queue::create_streams(&system.prefix).await;

    let (students_see, courses_see) = pairs_seen_by(&system).await;
    let expected: BTreeSet<(String, String)> = writes.iter().cloned().collect();
    assert_eq!(students_see, expected);
    assert!(courses_see.is_empty(), "courses never heard of them");
    let disagreeing = students_see.symmetric_difference(&courses_see).count();

    let dry = system.reconcile_from_students(true).await.report;
    assert_eq!(
        (dry.repaired_here, dry.repaired_peer),
        (0, 1_000),
        "{dry:?}"
    );
    assert_eq!(
        pairs_seen_by(&system).await.1,
        BTreeSet::new(),
        "a dry run repairs nothing"
    );

    let first = system.reconcile_from_students(false).await;
    let report = &first.report;
    assert_eq!(
        (report.repaired_here, report.repaired_peer),
        (0, 1_000),
        "{report:?}"
    );
    assert_eq!(report.pairs_checked, 1_000);
    // Read at once, through the caches: the repairs invalidated them.
    let (students_see, courses_see) = pairs_seen_by(&system).await;
    assert_eq!(students_see, expected);
    assert_eq!(courses_see, expected, "every pair repaired by one run");

    let second = system.reconcile_from_courses(false).await.report;
    assert_eq!(
        (second.repaired_here, second.repaired_peer),
        (0, 0),
        "{second:?}"
    );
    assert_eq!(second.buckets_differed, 0);
    eprintln!(
        "pairs disagreeing before: {disagreeing}; repaired by the first run: {} in {:?}; by the second: {}",
        report.repaired_here + report.repaired_peer,
        report.duration,
        second.repaired_here + second.repaired_peer
    );
    system.stop().await;
}

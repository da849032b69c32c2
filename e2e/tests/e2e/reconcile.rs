//! The relation heals itself (docs/behaviour.md §5.10): whatever the broker loses, a
//! reconciliation run repairs every pair on the side that is behind, and a second run finds
//! nothing to do. Against real NATS, PostgreSQL, Redis and the MongoDB(-compatible) server;
//! every wait is a condition with a deadline.

use std::{collections::BTreeSet, time::Duration};

use async_nats::jetstream;
use e2e::System;
use futures::{StreamExt as _, TryStreamExt as _, stream};
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

/// Removes `service`'s durable consumer: the changes published to it stay in the stream,
/// unread, until the initializer makes the consumer again.
async fn stop_reading(js: &jetstream::Context, topology: &Topology, service: &str) {
    let (stream_name, _) = topology.consumer(service);
    js.get_stream(&stream_name)
        .await
        .expect("stream")
        .delete_consumer(service)
        .await
        .expect("delete the consumer");
}

/// Waits until the stream `name` holds at least `n` messages (the relay published them).
async fn published(js: &jetstream::Context, name: &str, n: u64) {
    testkit::wait_for(
        &format!("the relay published {n} changes"),
        Duration::from_secs(30),
        || async move { (messages_in(js, name).await >= n).then_some(()) },
    )
    .await;
}

/// Purges the stream `name` through the JetStream API, then lets the initializer restore the
/// consumers.
async fn purge(js: &jetstream::Context, name: &str, prefix: &str) {
    js.get_stream(name)
        .await
        .expect("stream")
        .purge()
        .await
        .expect("purge the links stream");
    testkit::queue::create_streams(prefix).await;
}

/// One-link PUT `path` on `service`: 204.
async fn link(service: &testkit::TestService, path: String) {
    let linked = service
        .client
        .put(service.url(&path))
        .send()
        .await
        .expect("PUT");
    assert_eq!(linked.status(), 204, "PUT {path}");
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
    stop_reading(&js, &topology, "courses").await;
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
            link(&system.students, format!("/api/students/{s}/courses/{c}"))
        })
        .await;
    published(&js, &stream_name, 1_000).await;
    purge(&js, &stream_name, &system.prefix).await;

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

/// How many dead letters of `service` the dead-letter stream holds.
async fn dead_letters(js: &jetstream::Context, topology: &Topology, service: &str) -> u64 {
    let stream = js
        .get_stream(topology.dead_letter_stream())
        .await
        .expect("the dead-letter stream");
    let subjects: Vec<(String, usize)> = stream
        .info_with_subjects(topology.dead_letter_subject(service))
        .await
        .expect("stream info")
        .try_collect()
        .await
        .expect("subjects");
    subjects.iter().map(|(_, n)| *n as u64).sum()
}

#[tokio::test]
async fn a_change_left_in_the_dead_letters_is_repaired_by_a_run() {
    let system = System::start().await;
    let js = jetstream().await;
    let topology = Topology::new(&system.prefix);
    let student = system.student(1, &[]).await;
    let course = system.course(1, &[]).await;

    // Students gives a change up after its second delivery (a limit for this test only; the
    // initializer sets 50), and its database is down.
    let (stream_name, mut config) = topology.consumer("students");
    config.max_deliver = 2;
    let stream = js.get_stream(&stream_name).await.expect("stream");
    stream
        .delete_consumer("students")
        .await
        .expect("delete the consumer");
    stream
        .create_consumer(config)
        .await
        .expect("a consumer with a low limit");
    testkit::stores::set_postgres_available(&system.students_database, false).await;

    let url = system
        .courses
        .url(&format!("/api/courses/{course}/students/{student}"));
    let linked = system.courses.client.put(url).send().await.expect("PUT");
    assert_eq!(linked.status(), 204);
    testkit::wait_for(
        "the change is dead-lettered",
        Duration::from_secs(30),
        || {
            let (js, topology) = (js.clone(), topology.clone());
            async move { (dead_letters(&js, &topology, "students").await == 1).then_some(()) }
        },
    )
    .await;
    testkit::stores::set_postgres_available(&system.students_database, true).await;
    assert_eq!(
        system.courses_of(&student).await,
        Some(BTreeSet::new()),
        "students never applied it"
    );
    assert_eq!(
        system.students_of(&course).await,
        Some(e2e::set(&[&student]))
    );

    let run = system.reconcile_from_students(false).await;
    assert_eq!(
        (run.report.repaired_here, run.report.repaired_peer),
        (1, 0),
        "{run:?}"
    );
    assert_eq!(
        run.dead_letters,
        Some(1),
        "the run reports the dead letter it made up for"
    );
    assert_eq!(
        system.courses_of(&student).await,
        Some(e2e::set(&[&course]))
    );
    assert!(system.converged().await);
    system.stop().await;
}

#[tokio::test]
async fn changes_lost_with_a_stream_the_initializer_recreated_are_repaired() {
    let system = System::start().await;
    let js = jetstream().await;
    let topology = Topology::new(&system.prefix);
    let (stream_name, _) = topology.consumer("students");
    let student = system.student(1, &[]).await;
    let courses = many(3, |i| system.course(i, &[])).await;

    // Students stops reading, courses links the student to each course, the stream with the
    // three changes is deleted and the initializer makes it again, empty, while both run.
    stop_reading(&js, &topology, "students").await;
    for course in &courses {
        link(
            &system.courses,
            format!("/api/courses/{course}/students/{student}"),
        )
        .await;
    }
    published(&js, &stream_name, 3).await;
    js.delete_stream(&stream_name)
        .await
        .expect("delete the stream");
    testkit::queue::create_streams(&system.prefix).await;
    assert_eq!(messages_in(&js, &stream_name).await, 0);

    // Later changes flow through the new stream: the consumer found its way back.
    let later = system.course(9, std::slice::from_ref(&student)).await;
    system
        .eventually("a change made after the recreation arrives", || async {
            system.courses_of(&student).await == Some(e2e::set(&[&later]))
        })
        .await;

    let run = system.reconcile_from_courses(false).await.report;
    assert_eq!((run.repaired_here, run.repaired_peer), (0, 3), "{run:?}");
    let mut all = courses.clone();
    all.push(later);
    assert_eq!(
        system.courses_of(&student).await,
        Some(all.into_iter().collect())
    );
    assert!(system.converged().await);
    system.stop().await;
}

#[tokio::test]
async fn runs_of_two_replicas_at_once_during_writes_converge_and_undo_no_acknowledged_write() {
    let system = System::start_with(e2e::Options {
        replicas: 2,
        ..e2e::Options::default()
    })
    .await;
    let js = jetstream().await;
    let topology = Topology::new(&system.prefix);
    let (stream_name, _) = topology.consumer("courses");
    let students = many(20, |i| system.student(i, &[])).await;
    let courses = many(10, |i| system.course(i, &[])).await;
    let pairs: Vec<(String, String)> = students
        .iter()
        .flat_map(|s| courses.iter().map(move |c| (s.clone(), c.clone())))
        .collect();

    // First some changes the queue loses: 100 links of students that courses never hears of.
    stop_reading(&js, &topology, "courses").await;
    for (s, c) in pairs.iter().step_by(2) {
        link(&system.students, format!("/api/students/{s}/courses/{c}")).await;
    }
    published(&js, &stream_name, 100).await;
    purge(&js, &stream_name, &system.prefix).await;
    let before = system.clocks().await;

    // Then, at once: writes on both sides through both replicas (each pair written by one
    // task, in order, so its last acknowledged write is known), and runs from two replicas of
    // students and one of courses.
    let writers = (0..8).map(|w| {
        let system = &system;
        let mine: Vec<(String, String)> = pairs.iter().skip(w).step_by(8).cloned().collect();
        async move {
            let mut last = Vec::new();
            for (k, (s, c)) in mine.iter().enumerate().take(12) {
                let link = (k + w) % 3 != 0;
                let (service, path) = if (k + w) % 2 == 0 {
                    let replicas: Vec<_> = system.students_replicas().collect();
                    (replicas[k % 2], format!("/api/students/{s}/courses/{c}"))
                } else {
                    let replicas: Vec<_> = system.courses_replicas().collect();
                    (replicas[k % 2], format!("/api/courses/{c}/students/{s}"))
                };
                let url = service.url(&path);
                let request = if link {
                    service.client.put(url)
                } else {
                    service.client.delete(url)
                };
                let answer = request.send().await.expect("one-link write");
                assert_eq!(answer.status(), 204, "{path}");
                last.push(((s.clone(), c.clone()), link));
            }
            last
        }
    });
    let (written, first, second, third) = tokio::join!(
        futures::future::join_all(writers),
        system.try_reconcile_from_students(false),
        system.try_reconcile_from_students(false),
        system.try_reconcile_from_courses(false),
    );
    // A run racing these writes may lose its conditional commits for too long and fail, as a
    // write may; what matters is that whatever ran undid nothing.
    let runs: Vec<_> = [first, second, third].into_iter().flatten().collect();
    assert!(!runs.is_empty(), "every concurrent run failed");

    // Once the queue has delivered the writes' changes and a last run has made up for what
    // the runs could not see yet, every acknowledged write stands on both sides.
    let settled = system.reconcile_from_courses(false).await.report;
    // The 52 lost links no write touched afterwards were repaired by one run or another.
    let repaired: u64 = runs
        .iter()
        .map(|r| &r.report)
        .chain([&settled])
        .map(|r| r.repaired_here + r.repaired_peer)
        .sum();
    assert!(repaired >= 52, "{repaired} repairs: {runs:?} {settled:?}");
    let acknowledged: Vec<((String, String), bool)> = written.into_iter().flatten().collect();
    system
        .eventually("the sides agree", || async { system.converged().await })
        .await;
    let (students_see, courses_see) = pairs_seen_by(&system).await;
    assert_eq!(students_see, courses_see, "after {settled:?}");
    for ((s, c), linked) in &acknowledged {
        let pair = (s.clone(), c.clone());
        assert_eq!(
            students_see.contains(&pair),
            *linked,
            "the acknowledged write of {pair:?} was undone"
        );
    }
    let after = system.clocks().await;
    for (pair, clock) in &before {
        let now = after
            .get(pair)
            .expect("a side never forgets a pair's clock");
        assert!(
            now >= clock,
            "the clock of {pair:?} moved back from {clock} to {now}"
        );
    }
    // And they stay so: once the queue is idle, a run has nothing left to repair.
    system
        .eventually("a run repairs nothing", || async {
            let run = system.reconcile_from_students(false).await.report;
            run.repaired_here + run.repaired_peer == 0
        })
        .await;
    system.stop().await;
}

#[tokio::test]
async fn the_reconcile_command_prints_what_a_run_found() {
    let system = System::start().await;
    let course = system.course(1, &[]).await;
    let student = system.student(1, std::slice::from_ref(&course)).await;
    system
        .eventually("the link arrives", || async {
            system.students_of(&course).await == Some(e2e::set(&[&student]))
        })
        .await;
    let binary = testkit::process::workspace_binary("students");
    let env = [
        (
            "DATABASE_URL".to_owned(),
            format!("{}/{}", testkit::postgres_url(), system.students_database),
        ),
        ("REDIS_URL".to_owned(), testkit::redis_url()),
        ("NATS_URL".to_owned(), testkit::nats_url()),
        ("NIS_PREFIX".to_owned(), system.prefix.clone()),
        (
            "COURSES_GRPC_URL".to_owned(),
            format!("http://{}", system.courses.grpc_addr),
        ),
        ("LOG_FORMAT".to_owned(), "json".to_owned()),
    ];
    for args in [&["reconcile", "--dry-run"][..], &["reconcile"][..]] {
        // Awaited, not blocked on: the services under test run on this test's runtime.
        let output = tokio::process::Command::new(&binary)
            .args(args)
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output()
            .await
            .expect("run the command");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{args:?}: {stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let words = stdout.split_whitespace().collect::<Vec<_>>().join(" ");
        for line in [
            "pairs checked 1",
            "buckets that differed 0",
            "here 0 (students was behind)",
            "on the peer 0 (courses was behind)",
            "dead letters 0",
        ] {
            assert!(words.contains(line), "{args:?} prints {line:?}: {stdout}");
        }
    }
    system.stop().await;
}

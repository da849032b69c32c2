//! A link change consumed by a replica cut from Redis (issue 26; docs/behaviour.md §6): once
//! the consumer has acknowledged it, no read — the entity, the list page, the cross queries of
//! both services, over HTTP and gRPC — shows the old links, during the cut or after it heals. The consumer whose
//! cache cannot be fenced does not apply and acknowledge the change; JetStream delivers it
//! again, and it is applied once the link heals.
//!
//! Both services run once each (so the consumer under test is the only one of its service), on
//! their own stores, key and stream prefix; the consuming service reaches the shared Redis
//! through a `fault_proxy::Proxy`, the other directly.
//!
//! Against the old cache the consumer applied the change during the cut, failed to invalidate,
//! and acknowledged it: once healed, its cache served the entity, the list page and its answer
//! to the other service's cross query without the link until their TTL.

use std::{collections::BTreeSet, net::SocketAddr, time::Duration};

use e2e::id;
use nis_grpc::proto::v1::{
    Course, GetCourseRequest, GetStudentRequest, ListCoursesByStudentRequest,
    ListStudentsByCourseRequest, Student, course_service_client::CourseServiceClient,
    student_service_client::StudentServiceClient,
};
use nis_runtime::{config::ServiceSettings, secret::Secret};
use serde_json::{Value, json};
use testkit::{
    TestService, body,
    cache_links::{Cut, proxy_to_the_test_redis, until_acknowledged, wait_cache_up},
    metric_value,
    process::free_port,
};

/// `GET path` through `service`, which must answer 200 (reads never fail because of the
/// cache): the path and the `data` of its body.
async fn read(service: &TestService, path: String) -> (String, Value) {
    let response = service.get(&path).await;
    assert_eq!(
        response.status(),
        200,
        "GET {path}: reads never fail because of the cache"
    );
    (path, body(response).await["data"].clone())
}

/// Creates entity 1 of `side` through `service` (tried again while refused with `503
/// unavailable`, which a cache call that misses its deadline under load may cause); its id.
async fn create(service: &TestService, side: Side) -> String {
    let path = format!("/api/{}", side.kind());
    let entity = side.entity(1, &[]);
    let created = until_acknowledged(&format!("POST {path}"), || {
        service.post_json(&path, &entity)
    })
    .await;
    id(&created["data"])
}

/// One of the two services.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Students,
    Courses,
}

impl Side {
    fn kind(self) -> &'static str {
        match self {
            Self::Students => "students",
            Self::Courses => "courses",
        }
    }

    fn other(self) -> Self {
        match self {
            Self::Students => Self::Courses,
            Self::Courses => Self::Students,
        }
    }

    /// The field of its entities that holds the ids of the other kind.
    fn links_field(self) -> &'static str {
        match self {
            Self::Students => "course_ids",
            Self::Courses => "student_ids",
        }
    }

    /// A valid body for entity `n` linking `links`.
    fn entity(self, n: u32, links: &[&str]) -> Value {
        match self {
            Self::Students => {
                json!({ "name": format!("student{n}"), "first_name": "Ada", "last_name": "Lovelace", "course_ids": links })
            }
            Self::Courses => {
                json!({ "name": format!("course{n}"), "description": "A course", "discipline": "Maths", "teacher": "Noether", "student_ids": links })
            }
        }
    }
}

/// Both services, one process each.
struct Pair {
    students: TestService,
    courses: TestService,
}

impl Pair {
    /// Starts both on fresh stores, a fresh prefix and streams, each with its cache at its URL.
    async fn start(students_redis: &str, courses_redis: &str) -> Self {
        let prefix = testkit::unique_name("e");
        testkit::queue::create_streams(&prefix).await;
        let settings = |grpc: u16, peer: SocketAddr, redis: &str| -> ServiceSettings {
            let peer = format!("http://{peer}");
            let mut settings = testkit::settings_with_peer(&prefix, false, &peer);
            settings.grpc_addr = SocketAddr::from(([127, 0, 0, 1], grpc));
            settings.cache.url = Secret::new(redis.to_owned());
            settings
        };
        let database = testkit::stores::create_postgres_database("students_test").await;
        let mongo_database = testkit::unique_name("courses_test");
        // Courses listens where the system gives it a port; students on a free port chosen
        // before, since courses must know it. Another test may take that port between the
        // choice and the bind: then both start again on another.
        let mut attempts = 0;
        let (students, courses) = loop {
            attempts += 1;
            let students_grpc = free_port();
            let courses_config = courses::config::Config {
                service: settings(
                    0,
                    SocketAddr::from(([127, 0, 0, 1], students_grpc)),
                    courses_redis,
                ),
                mongodb_uri: Secret::new(testkit::mongodb_uri()),
                mongodb_database: mongo_database.clone(),
            };
            let courses = courses::app::start(&courses_config)
                .await
                .expect("courses starts");
            let students_config = students::config::Config {
                service: settings(students_grpc, courses.grpc_addr, students_redis),
                database_url: Secret::new(format!("{}/{database}", testkit::postgres_url())),
                database_max_connections: 5,
            };
            match students::app::start(&students_config).await {
                Ok(students) => break (students, courses),
                Err(e) if attempts < 3 => {
                    eprintln!("students did not start ({e}); again on another port");
                    courses.stop().await;
                }
                Err(e) => panic!("students starts: {e}"),
            }
        };
        Self {
            students: TestService::new(
                students,
                prefix.clone(),
                Box::pin(testkit::stores::drop_postgres_database(database)),
            ),
            courses: TestService::new(
                courses,
                prefix,
                Box::pin(testkit::stores::drop_mongo_database(mongo_database)),
            ),
        }
    }

    fn service(&self, side: Side) -> &TestService {
        match side {
            Side::Students => &self.students,
            Side::Courses => &self.courses,
        }
    }

    async fn stop(self) {
        self.courses.stop().await;
        self.students.stop().await;
    }

    /// `nis_events_consumed_total` of `side` with `outcome` (both services run in the test
    /// process: one exposition has both, told apart by `service`).
    async fn consumed(&self, side: Side, outcome: &str) -> f64 {
        metric_value(
            &self.students.metrics().await,
            "nis_events_consumed_total",
            &[("service", side.kind()), ("outcome", outcome)],
        )
    }

    /// Every read that shows whether `entity` (of `side`) links `other` (of the other side):
    /// `side`'s HTTP get and list page, the other side's cross query `/{other}/{side kind}`
    /// (answered by `side` from its cache) and `side`'s cross query `/{entity}/{other kind}`;
    /// then the same over gRPC.
    async fn reads(&self, side: Side, entity: &str, other: &str) -> Vec<(String, bool)> {
        let (own, peer) = (self.service(side), self.service(side.other()));
        let (kind, other_kind) = (side.kind(), side.other().kind());
        let links = |e: &Value| -> BTreeSet<String> {
            e[side.links_field()]
                .as_array()
                .map(|ids| {
                    ids.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut seen = Vec::new();
        let (path, entity_json) = read(own, format!("/api/{kind}/{entity}")).await;
        seen.push((
            format!("{kind} GET {path}"),
            links(&entity_json).contains(other),
        ));
        let (path, page) = read(own, format!("/api/{kind}")).await;
        let listed = page
            .as_array()
            .and_then(|page| page.iter().find(|e| e["id"] == entity))
            .unwrap_or_else(|| panic!("{entity} in {page}"));
        seen.push((format!("{kind} GET {path}"), links(listed).contains(other)));
        for (service, name, path, wanted) in [
            (
                peer,
                other_kind,
                format!("/api/{other_kind}/{other}/{kind}"),
                entity,
            ),
            (
                own,
                kind,
                format!("/api/{kind}/{entity}/{other_kind}"),
                other,
            ),
        ] {
            let (path, page) = read(service, path).await;
            let ids: BTreeSet<String> = page
                .as_array()
                .map(|page| page.iter().map(id).collect())
                .unwrap_or_default();
            seen.push((format!("{name} GET {path}"), ids.contains(wanted)));
        }
        seen.extend(self.grpc_reads(side, entity, other).await);
        seen
    }

    /// The same reads over gRPC: `side`'s get, the public cross query that `side` answers
    /// from its cache (which of its entities link `other`), and the other side's.
    async fn grpc_reads(&self, side: Side, entity: &str, other: &str) -> Vec<(String, bool)> {
        let mut students = StudentServiceClient::new(self.students.channel().await);
        let mut courses = CourseServiceClient::new(self.courses.channel().await);
        let student_ids = |students: Vec<Student>| -> BTreeSet<String> {
            students.into_iter().map(|s| s.id).collect()
        };
        let course_ids = |courses: Vec<Course>| -> BTreeSet<String> {
            courses.into_iter().map(|c| c.id).collect()
        };
        let never_fails = "gRPC reads never fail because of the cache";
        let (student, course) = match side {
            Side::Students => (entity, other),
            Side::Courses => (other, entity),
        };
        let of_course = students
            .list_students_by_course(ListStudentsByCourseRequest {
                course_id: course.to_owned(),
                page: None,
            })
            .await
            .expect(never_fails)
            .into_inner()
            .students;
        let of_student = courses
            .list_courses_by_student(ListCoursesByStudentRequest {
                student_id: student.to_owned(),
                page: None,
            })
            .await
            .expect(never_fails)
            .into_inner()
            .courses;
        let got = match side {
            Side::Students => {
                let got = students.get_student(GetStudentRequest {
                    id: entity.to_owned(),
                });
                got.await.expect(never_fails).into_inner().course_ids
            }
            Side::Courses => {
                let got = courses.get_course(GetCourseRequest {
                    id: entity.to_owned(),
                });
                got.await.expect(never_fails).into_inner().student_ids
            }
        };
        vec![
            (
                format!("gRPC Get of {entity}"),
                got.iter().any(|id| id == other),
            ),
            (
                format!("gRPC ListStudentsByCourse({course})"),
                student_ids(of_course).contains(student),
            ),
            (
                format!("gRPC ListCoursesByStudent({student})"),
                course_ids(of_student).contains(course),
            ),
        ]
    }

    async fn assert_reads(&self, side: Side, entity: &str, other: &str, linked: bool, when: &str) {
        for (read, shows) in self.reads(side, entity, other).await {
            assert_eq!(
                shows, linked,
                "{when}: {read} shows the link {entity}–{other}: {shows}, expected {linked}"
            );
        }
    }
}

/// The scenario: `consumer` reaches Redis through a proxy, cut (`how`) after the entity `a`
/// it will receive a link for, its list page and its answer to the other side's cross query
/// are cached. The other side links its entity `b` to `a` (acknowledged: its own cache is
/// fine). While the cut lasts, `consumer` is delivered the change and must refuse it (counted
/// `failed`, delivered again) rather than apply and acknowledge it — and if it did apply it,
/// every read must show it. After the heal it applies the change, and from the moment it is
/// counted `applied` every read, three rounds of them, shows the link.
async fn a_change_consumed_while_cut_from_redis_is_never_read_old(consumer: Side, how: Cut) {
    let writer = consumer.other();
    let (proxy, through_proxy) = proxy_to_the_test_redis().await;
    let redis = testkit::redis_url();
    let pair = match consumer {
        Side::Students => Pair::start(&through_proxy, &redis).await,
        Side::Courses => Pair::start(&redis, &through_proxy).await,
    };
    let (own, peer) = (pair.service(consumer), pair.service(writer));
    let a = create(own, consumer).await;
    let b = create(peer, writer).await;
    for _ in 0..2 {
        pair.assert_reads(consumer, &a, &b, false, "before the cut")
            .await;
    }
    assert!(
        proxy.accepted() > 0,
        "the consumer reaches Redis through the proxy"
    );
    let applied_before = pair.consumed(consumer, "applied").await;
    let failed_before = pair.consumed(consumer, "failed").await;

    proxy.cut(how);
    let path = format!("/api/{}/{b}", writer.kind());
    let linking = writer.entity(1, &[&a]);
    until_acknowledged(&format!("PUT {path} linking {a}"), || {
        peer.put_json(&path, &linking)
    })
    .await;
    let what = format!(
        "{}'s consumer, cut from Redis ({how:?}), to refuse the change twice (or apply it)",
        consumer.kind()
    );
    testkit::wait_for(&what, Duration::from_secs(30), || async {
        let failed = pair.consumed(consumer, "failed").await - failed_before;
        let applied = pair.consumed(consumer, "applied").await - applied_before;
        (failed >= 2.0 || applied > 0.0).then_some(())
    })
    .await;
    let applied_during_cut = pair.consumed(consumer, "applied").await - applied_before;
    if applied_during_cut > 0.0 {
        let when = format!("during the cut ({how:?}), after the consumer acknowledged the change");
        pair.assert_reads(consumer, &a, &b, true, &when).await;
    }

    proxy.heal();
    wait_cache_up(own, consumer.kind()).await;
    let what = format!(
        "{}'s consumer to apply the change once healed",
        consumer.kind()
    );
    testkit::wait_for(&what, Duration::from_secs(60), || async {
        (pair.consumed(consumer, "applied").await > applied_before).then_some(())
    })
    .await;
    for round in 1..=3 {
        let when = format!("after the heal ({how:?}), the change acknowledged, round {round}");
        pair.assert_reads(consumer, &a, &b, true, &when).await;
    }
    assert_eq!(
        applied_during_cut,
        0.0,
        "while cut from Redis, {}'s consumer applied and acknowledged the change",
        consumer.kind()
    );

    pair.stop().await;
    drop(proxy);
}

/// Students, the only consumer of its service, cut from Redis by resets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_consumed_by_students_cut_from_redis_by_resets_is_never_read_old() {
    a_change_consumed_while_cut_from_redis_is_never_read_old(Side::Students, Cut::Reset).await;
}

/// Students, the only consumer of its service, blackholed from Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_consumed_by_students_blackholed_from_redis_is_never_read_old() {
    a_change_consumed_while_cut_from_redis_is_never_read_old(Side::Students, Cut::Blackhole).await;
}

/// Courses, the only consumer of its service, cut from Redis by resets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_consumed_by_courses_cut_from_redis_by_resets_is_never_read_old() {
    a_change_consumed_while_cut_from_redis_is_never_read_old(Side::Courses, Cut::Reset).await;
}

/// Courses, the only consumer of its service, blackholed from Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_consumed_by_courses_blackholed_from_redis_is_never_read_old() {
    a_change_consumed_while_cut_from_redis_is_never_read_old(Side::Courses, Cut::Blackhole).await;
}

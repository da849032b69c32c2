//! A whole nis system for one test: both services in the test process, on free ports, each with
//! its own store, sharing a fresh prefix on the test NATS and Redis, with the streams made by
//! the initializer's code. Reads go through HTTP, with the caches, as a user's would.

use std::{collections::BTreeSet, net::SocketAddr, time::Duration};

use nis_runtime::{config::ServiceSettings, secret::Secret};
use serde_json::{Value, json};
use testkit::{TestService, body};

/// What a reconciliation run reported.
pub type Reconciled = nis_core::reconcile::schedule::Finished;

/// Both services of one system.
pub struct System {
    /// The courses service (its first replica).
    pub courses: TestService,
    /// The students service (its first replica).
    pub students: TestService,
    /// The other replicas of courses, on the same store, cache and queue.
    pub more_courses: Vec<TestService>,
    /// The other replicas of students, on the same store, cache and queue.
    pub more_students: Vec<TestService>,
    /// The system's prefix (streams, subjects, Redis keys).
    pub prefix: String,
    /// The PostgreSQL database of students.
    pub students_database: String,
    /// The configuration of the first replica of each service (for a reconciliation run).
    students_config: students::config::Config,
    courses_config: courses::config::Config,
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// The ports of one replica: (HTTP, gRPC).
type Ports = (u16, u16);

fn settings(prefix: &str, (http, grpc): Ports, peers: &[Ports]) -> ServiceSettings {
    // Every replica asks all replicas of the other service (a comma-separated URL list).
    let peer_urls: Vec<String> = peers
        .iter()
        .map(|(_, grpc)| format!("http://127.0.0.1:{grpc}"))
        .collect();
    let mut settings = testkit::settings_with_peer(prefix, false, &peer_urls.join(","));
    settings.http_addr = addr(http);
    settings.grpc_addr = addr(grpc);
    settings
}

/// How a test wants its system.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// NATS to use instead of the shared test server.
    pub nats_url: Option<String>,
    /// Redis to use instead of the shared test server.
    pub redis_url: Option<String>,
    /// Skip the initializer: the streams do not exist.
    pub without_streams: bool,
    /// Processes of each service (0 is taken as 1).
    pub replicas: usize,
}

impl System {
    /// Starts both services with the streams in place.
    pub async fn start() -> Self {
        Self::start_with(Options::default()).await
    }

    /// Starts both services as `options` say.
    pub async fn start_with(options: Options) -> Self {
        let prefix = testkit::unique_name("e");
        if !options.without_streams {
            testkit::queue::create_streams_at(options.nats_url.as_deref(), &prefix).await;
        }
        let replicas = options.replicas.max(1);
        let ports = || -> Vec<Ports> {
            (0..replicas)
                .map(|_| (testkit::process::free_port(), testkit::process::free_port()))
                .collect()
        };
        let (students_ports, courses_ports) = (ports(), ports());
        let adjust = |mut s: ServiceSettings| {
            if let Some(url) = &options.nats_url {
                s.nats_url.clone_from(url);
            }
            if let Some(url) = &options.redis_url {
                s.cache.url = Secret::new(url.clone());
            }
            s
        };

        let database = testkit::stores::create_postgres_database("students_test").await;
        let mongo_database = testkit::unique_name("courses_test");
        let mut students = Vec::new();
        let mut courses = Vec::new();
        let mut configs = None;
        for (n, (own_students, own_courses)) in
            students_ports.iter().zip(&courses_ports).enumerate()
        {
            let students_config = students::config::Config {
                service: adjust(settings(&prefix, *own_students, &courses_ports)),
                database_url: Secret::new(format!("{}/{database}", testkit::postgres_url())),
                database_max_connections: 10,
            };
            let courses_config = courses::config::Config {
                service: adjust(settings(&prefix, *own_courses, &students_ports)),
                mongodb_uri: Secret::new(testkit::mongodb_uri()),
                mongodb_database: mongo_database.clone(),
            };
            let running_students = students::app::start(&students_config)
                .await
                .expect("students starts");
            let running_courses = courses::app::start(&courses_config)
                .await
                .expect("courses starts");
            configs.get_or_insert((students_config, courses_config));
            // The first replica drops the stores when it stops (after the others).
            let (drop_students, drop_courses): (BoxFuture, BoxFuture) = if n == 0 {
                (
                    Box::pin(testkit::stores::drop_postgres_database(database.clone())),
                    Box::pin(testkit::stores::drop_mongo_database(mongo_database.clone())),
                )
            } else {
                (Box::pin(async {}), Box::pin(async {}))
            };
            students.push(TestService::new(
                running_students,
                prefix.clone(),
                drop_students,
            ));
            courses.push(TestService::new(
                running_courses,
                prefix.clone(),
                drop_courses,
            ));
        }
        let (students, more_students) = first_and_rest(students);
        let (courses, more_courses) = first_and_rest(courses);
        let (students_config, courses_config) = configs.expect("one replica at least");
        Self {
            students,
            courses,
            more_students,
            more_courses,
            prefix,
            students_database: database,
            students_config,
            courses_config,
        }
    }

    /// Every pair's clock on each side, read from the stores: `(true, student, course)` for
    /// courses' clocks, `(false, …)` for students'.
    pub async fn clocks(&self) -> std::collections::BTreeMap<(bool, String, String), i64> {
        use nis_core::reconcile::RelationStore as _;
        let students = students::app::prepare_store(&self.students_config)
            .await
            .expect("students' store");
        let courses = courses::app::prepare_store(&self.courses_config)
            .await
            .expect("courses' store");
        let mut clocks = std::collections::BTreeMap::new();
        let scan = students.relation_scan(|row| {
            for (course, clock) in row.clocks {
                clocks.insert((false, row.id.clone(), course), clock);
            }
        });
        scan.await.expect("scan students");
        let scan = courses.relation_scan(|row| {
            for (student, clock) in row.clocks {
                clocks.insert((true, student, row.id.clone()), clock);
            }
        });
        scan.await.expect("scan courses");
        clocks
    }

    /// Runs reconciliation once from the students side, as `students reconcile` does.
    pub async fn reconcile_from_students(&self, dry_run: bool) -> Reconciled {
        self.try_reconcile_from_students(dry_run)
            .await
            .expect("the run succeeds")
    }

    /// Runs reconciliation once from the courses side, as `courses reconcile` does.
    pub async fn reconcile_from_courses(&self, dry_run: bool) -> Reconciled {
        self.try_reconcile_from_courses(dry_run)
            .await
            .expect("the run succeeds")
    }

    /// [`reconcile_from_students`](Self::reconcile_from_students), which may fail (a run
    /// racing heavy writes can lose its conditional commits for too long, as a write can).
    pub async fn try_reconcile_from_students(
        &self,
        dry_run: bool,
    ) -> Result<Reconciled, nis_runtime::lifecycle::StartError> {
        let config = &self.students_config;
        let store = students::app::prepare_store(config).await?;
        nis_server::reconcile::<students::domain::Student, _>(&config.service, store, dry_run).await
    }

    /// [`reconcile_from_courses`](Self::reconcile_from_courses), which may fail.
    pub async fn try_reconcile_from_courses(
        &self,
        dry_run: bool,
    ) -> Result<Reconciled, nis_runtime::lifecycle::StartError> {
        let config = &self.courses_config;
        let store = courses::app::prepare_store(config).await?;
        nis_server::reconcile::<courses::domain::Course, _>(&config.service, store, dry_run).await
    }

    /// Stops every replica of both services and removes their stores, keys and streams.
    pub async fn stop(self) {
        for replica in self.more_courses.into_iter().chain(self.more_students) {
            replica.stop().await;
        }
        self.courses.stop().await;
        self.students.stop().await;
    }

    /// Every replica of students, the first one first.
    pub fn students_replicas(&self) -> impl Iterator<Item = &TestService> {
        std::iter::once(&self.students).chain(&self.more_students)
    }

    /// Every replica of courses, the first one first.
    pub fn courses_replicas(&self) -> impl Iterator<Item = &TestService> {
        std::iter::once(&self.courses).chain(&self.more_courses)
    }

    /// Creates a student; returns its id.
    pub async fn student(&self, n: u32, course_ids: &[String]) -> String {
        let student = json!({ "name": format!("student{n}"), "first_name": "Ada", "last_name": "Lovelace", "course_ids": course_ids });
        id(&self.students.create("students", &student).await)
    }

    /// Creates a course; returns its id.
    pub async fn course(&self, n: u32, student_ids: &[String]) -> String {
        let course = json!({ "name": format!("course{n}"), "description": "A course", "discipline": "Maths", "teacher": "Noether", "student_ids": student_ids });
        id(&self.courses.create("courses", &course).await)
    }

    /// Replaces a student's courses (keeping its name `s{n}`).
    pub async fn set_courses(&self, student: &str, n: u32, course_ids: &[String]) -> u16 {
        let body = json!({ "name": format!("student{n}"), "first_name": "Ada", "last_name": "Lovelace", "course_ids": course_ids });
        self.students
            .put_json(&format!("/api/students/{student}"), &body)
            .await
            .status()
            .as_u16()
    }

    /// Replaces a course's students.
    pub async fn set_students(&self, course: &str, n: u32, student_ids: &[String]) -> u16 {
        let body = json!({ "name": format!("course{n}"), "description": "A course", "discipline": "Maths", "teacher": "Noether", "student_ids": student_ids });
        self.courses
            .put_json(&format!("/api/courses/{course}"), &body)
            .await
            .status()
            .as_u16()
    }

    /// A student's course ids, read over HTTP (`None`: 404).
    pub async fn courses_of(&self, student: &str) -> Option<BTreeSet<String>> {
        links(
            &self.students,
            &format!("/api/students/{student}"),
            "course_ids",
        )
        .await
    }

    /// A course's student ids, read over HTTP (`None`: 404).
    pub async fn students_of(&self, course: &str) -> Option<BTreeSet<String>> {
        links(
            &self.courses,
            &format!("/api/courses/{course}"),
            "student_ids",
        )
        .await
    }

    /// Waits until `check` holds, reading through HTTP; panics naming `what` after 30 s.
    pub async fn eventually<F, Fut>(&self, what: &str, mut check: F)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = bool>,
    {
        testkit::wait_for(what, Duration::from_secs(30), || {
            let done = check();
            async move { done.await.then_some(()) }
        })
        .await;
    }

    /// Every entity with its links, both kinds, read over HTTP: (courses, students).
    pub async fn relation(
        &self,
    ) -> (
        Vec<(String, BTreeSet<String>)>,
        Vec<(String, BTreeSet<String>)>,
    ) {
        (
            all_links(&self.courses, "courses", "student_ids").await,
            all_links(&self.students, "students", "course_ids").await,
        )
    }

    /// Whether `s ∈ c.student_ids ⇔ c ∈ s.course_ids` holds for every pair (docs/behaviour.md §5.1),
    /// with no link to an entity that does not exist.
    pub async fn converged(&self) -> bool {
        let (courses, students) = self.relation().await;
        let pairs_from_courses: BTreeSet<(String, String)> = courses
            .iter()
            .flat_map(|(c, ss)| ss.iter().map(move |s| (c.clone(), s.clone())))
            .collect();
        let pairs_from_students: BTreeSet<(String, String)> = students
            .iter()
            .flat_map(|(s, cs)| cs.iter().map(move |c| (c.clone(), s.clone())))
            .collect();
        pairs_from_courses == pairs_from_students
    }
}

type BoxFuture = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

fn first_and_rest(mut replicas: Vec<TestService>) -> (TestService, Vec<TestService>) {
    let first = replicas.remove(0);
    (first, replicas)
}

/// The `id` of an entity's JSON.
pub fn id(entity: &Value) -> String {
    entity["id"].as_str().expect("id").to_owned()
}

fn ids(list: &Value) -> BTreeSet<String> {
    list.as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

async fn all_links(
    service: &TestService,
    kind: &str,
    field: &str,
) -> Vec<(String, BTreeSet<String>)> {
    let page = body(service.get(&format!("/api/{kind}?limit=500")).await).await;
    page["data"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|e| (id(e), ids(&e[field])))
        .collect()
}

async fn links(service: &TestService, path: &str, field: &str) -> Option<BTreeSet<String>> {
    let response = service.get(path).await;
    if response.status() == 404 {
        return None;
    }
    assert_eq!(response.status(), 200, "GET {path}");
    Some(ids(&body(response).await["data"][field]))
}

/// A set of ids from string slices.
pub fn set(items: &[&String]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).clone()).collect()
}

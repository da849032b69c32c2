//! A whole nis system for one test: both services in the test process, on free ports, each with
//! its own store, sharing a fresh prefix on the test NATS and Redis, with the streams made by
//! the initializer's code. Reads go through HTTP, with the caches, as a user's would.

use std::{collections::BTreeSet, net::SocketAddr, time::Duration};

use nis_runtime::{config::ServiceSettings, secret::Secret};
use serde_json::{Value, json};
use testkit::{TestService, body};

/// Both services of one system.
pub struct System {
    /// The courses service.
    pub courses: TestService,
    /// The students service.
    pub students: TestService,
    /// The system's prefix (streams, subjects, Redis keys).
    pub prefix: String,
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn settings(
    prefix: &str,
    http: u16,
    grpc: u16,
    peer_grpc: u16,
    dead_redis: bool,
) -> ServiceSettings {
    let mut settings =
        testkit::settings_with_peer(prefix, dead_redis, &format!("http://127.0.0.1:{peer_grpc}"));
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
        let [c_http, c_grpc, s_http, s_grpc] = [(); 4].map(|()| testkit::process::free_port());
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
        let students_config = students::config::Config {
            service: adjust(settings(&prefix, s_http, s_grpc, c_grpc, false)),
            database_url: Secret::new(format!("{}/{database}", testkit::postgres_url())),
            database_max_connections: 10,
        };
        let mongo_database = testkit::unique_name("courses_test");
        let courses_config = courses::config::Config {
            service: adjust(settings(&prefix, c_http, c_grpc, s_grpc, false)),
            mongodb_uri: Secret::new(testkit::mongodb_uri()),
            mongodb_database: mongo_database.clone(),
        };
        let students = students::app::start(&students_config)
            .await
            .expect("students starts");
        let courses = courses::app::start(&courses_config)
            .await
            .expect("courses starts");
        Self {
            students: TestService::new(
                students,
                prefix.clone(),
                Box::pin(testkit::stores::drop_postgres_database(database)),
            ),
            courses: TestService::new(
                courses,
                prefix.clone(),
                Box::pin(testkit::stores::drop_mongo_database(mongo_database)),
            ),
            prefix,
        }
    }

    /// Stops both services and removes their stores, keys and streams.
    pub async fn stop(self) {
        self.courses.stop().await;
        self.students.stop().await;
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

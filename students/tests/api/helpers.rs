//! Starting a students service for one test: with its real stores, or its HTTP API alone.

use nis_core::ids::StudentId;
use nis_grpc::proto::v1::student_service_client::StudentServiceClient;
use nis_runtime::secret::Secret;
use serde_json::{Value, json};
use students::{app, config::Config, domain::Student};
use testkit::{InProcessService, TestService, contract::Kind};

/// How the shared contract checks make students.
pub const KIND: Kind = Kind {
    name: "students",
    unknown_id: || uuid::Uuid::now_v7().to_string(),
    malformed_id: "not-a-uuid",
    valid: student,
    links_field: "course_ids",
    other_ids: course_ids,
    other_kind: "courses",
    text_field: "name",
    text_fields: &["name", "first_name", "last_name"],
    multiline_field: None,
};

/// A valid student body; different `n` never clash on the unique full name.
pub fn student(n: u32) -> Value {
    json!({ "name": format!("student{n}"), "first_name": "Ada", "last_name": "Lovelace", "course_ids": [] })
}

/// Some well-formed course ids.
pub fn course_ids(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{:024x}", 0xc0ffee00 + i)).collect()
}

/// The students HTTP API in process over in-memory fakes (ids as the real store makes them).
pub async fn in_process() -> InProcessService {
    testkit::in_process::serve::<Student>(|_| StudentId::generate()).await
}

pub async fn spawn() -> TestService {
    spawn_with(false).await
}

pub async fn spawn_without_redis() -> TestService {
    spawn_with(true).await
}

/// Creates a database of its own, then starts students on it.
async fn spawn_with(dead_redis: bool) -> TestService {
    spawn_on_own_database(dead_redis).await.0
}

/// Starts students on a database of its own, and names that database (for tests that write
/// to it behind the service's back).
pub async fn spawn_on_own_database(dead_redis: bool) -> (TestService, String) {
    let database = testkit::stores::create_postgres_database("students_test").await;
    let prefix = testkit::unique_name("t");
    testkit::queue::create_streams(&prefix).await;
    let config = Config {
        service: testkit::settings(&prefix, dead_redis),
        database_url: Secret::new(format!("{}/{database}", testkit::postgres_url())),
        database_max_connections: 5,
    };
    let running = app::start(&config).await.expect("students starts");
    let service = TestService::new(
        running,
        prefix,
        Box::pin(testkit::stores::drop_postgres_database(database.clone())),
    );
    (service, database)
}

pub async fn grpc(app: &TestService) -> StudentServiceClient<tonic::transport::Channel> {
    StudentServiceClient::new(app.channel().await)
}

/// A migrated store on a database of its own (drop it with
/// `testkit::stores::drop_postgres_database`).
pub async fn fresh_store() -> (students::outbound::postgres::PostgresStudents, String) {
    let database = testkit::stores::create_postgres_database("students_test").await;
    let url = Secret::new(format!("{}/{database}", testkit::postgres_url()));
    let store = students::outbound::postgres::PostgresStudents::connect(
        &url,
        5,
        std::time::Duration::from_secs(5),
    )
    .expect("connect");
    store.migrate().await.expect("migrate");
    (store, database)
}

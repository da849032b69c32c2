//! Starting a students service for one test.

use std::time::Duration;

use common::{proto::v1::student_service_client::StudentServiceClient, secret::Secret};
use serde_json::{Value, json};
use sqlx::{Connection as _, Executor as _, PgConnection};
use students::{app, config::Config};
use testkit::{TestService, contract::Kind};

/// How the shared contract checks make students.
pub const KIND: Kind = Kind {
    name: "students",
    unknown_id: || uuid::Uuid::now_v7().to_string(),
    malformed_id: "not-a-uuid",
    valid: student,
    links_field: "course_ids",
    other_ids: course_ids,
    text_field: "name",
};

/// A valid student body; different `n` never clash on the unique full name.
pub fn student(n: u32) -> Value {
    json!({ "name": format!("student{n}"), "first_name": "Ada", "last_name": "Lovelace", "course_ids": [] })
}

/// Some well-formed course ids.
pub fn course_ids(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{:024x}", 0xc0ffee00 + i)).collect()
}

pub async fn spawn() -> TestService {
    spawn_with(false).await
}

pub async fn spawn_without_redis() -> TestService {
    spawn_with(true).await
}

/// Creates a database of its own, then starts students on it.
async fn spawn_with(dead_redis: bool) -> TestService {
    let database = create_database().await;
    let prefix = testkit::unique_name("t");
    let config = Config {
        service: testkit::settings(&prefix, dead_redis),
        database_url: Secret::new(format!("{}/{database}", testkit::postgres_url())),
        database_max_connections: 5,
        startup_timeout: Duration::from_secs(20),
    };
    let running = app::start(&config).await.expect("students starts");
    TestService::new(running, prefix, Box::pin(drop_database(database)))
}

pub async fn create_database() -> String {
    let database = testkit::unique_name("students_test");
    admin()
        .await
        .execute(format!(r#"CREATE DATABASE "{database}""#).as_str())
        .await
        .expect("create the test database");
    database
}

pub async fn drop_database(database: String) {
    let _ = admin()
        .await
        .execute(format!(r#"DROP DATABASE IF EXISTS "{database}" WITH (FORCE)"#).as_str())
        .await;
}

async fn admin() -> PgConnection {
    PgConnection::connect(&format!("{}/postgres", testkit::postgres_url()))
        .await
        .expect("connect to the test PostgreSQL")
}

pub async fn grpc(app: &TestService) -> StudentServiceClient<tonic::transport::Channel> {
    StudentServiceClient::new(app.channel().await)
}

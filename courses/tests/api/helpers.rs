//! Starting a courses service for one test: with its real stores, or its HTTP API alone.

use courses::{app, config::Config, domain::Course};
use nis_core::ids::CourseId;
use nis_grpc::proto::v1::course_service_client::CourseServiceClient;
use nis_runtime::secret::Secret;
use serde_json::{Value, json};
use testkit::{InProcessService, TestService, contract::Kind};

/// How the shared contract checks make courses.
pub const KIND: Kind = Kind {
    name: "courses",
    unknown_id: || "0123456789abcdef01234567".to_owned(),
    malformed_id: "0123456789abcdef0123456z",
    valid: course,
    links_field: "student_ids",
    other_ids: student_ids,
    other_kind: "students",
    text_field: "name",
    text_fields: &["name", "description", "discipline", "teacher"],
    multiline_field: Some("description"),
};

/// A valid course body.
pub fn course(n: u32) -> Value {
    json!({
        "name": format!("Course {n}"),
        "description": "Groups, rings and fields",
        "discipline": "Mathematics",
        "teacher": "Emmy Noether",
        "student_ids": []
    })
}

/// Some well-formed student ids.
pub fn student_ids(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("01890000-0000-7000-8000-{i:012x}"))
        .collect()
}

/// The courses HTTP API in process over in-memory fakes; the `n`-th course gets the ObjectId
/// `65f1a2b3` followed by `n` in 8 bytes.
pub async fn in_process() -> InProcessService {
    testkit::in_process::serve::<Course>(|n| {
        let mut bytes = [0; 12];
        bytes[..4].copy_from_slice(&0x65f1_a2b3_u32.to_be_bytes());
        bytes[4..].copy_from_slice(&n.to_be_bytes());
        CourseId::from(bytes)
    })
    .await
}

pub async fn spawn() -> TestService {
    spawn_with(false).await
}

pub async fn spawn_without_redis() -> TestService {
    spawn_with(true).await
}

/// Starts courses on a database of its own.
async fn spawn_with(dead_redis: bool) -> TestService {
    spawn_on_own_database(dead_redis).await.0
}

/// Starts courses on a database of its own, and names that database (for tests that write to
/// it behind the service's back).
pub async fn spawn_on_own_database(dead_redis: bool) -> (TestService, String) {
    let database = testkit::unique_name("courses_test");
    let prefix = testkit::unique_name("t");
    testkit::queue::create_streams(&prefix).await;
    let config = Config {
        service: testkit::settings(&prefix, dead_redis),
        mongodb_uri: Secret::new(testkit::mongodb_uri()),
        mongodb_database: database.clone(),
    };
    let running = app::start(&config).await.expect("courses starts");
    let service = TestService::new(
        running,
        prefix,
        Box::pin(testkit::stores::drop_mongo_database(database.clone())),
    );
    (service, database)
}

pub async fn grpc(app: &TestService) -> CourseServiceClient<tonic::transport::Channel> {
    CourseServiceClient::new(app.channel().await)
}

/// A migrated store on a database of its own (drop it with `testkit::stores::drop_mongo_database`).
pub async fn fresh_store() -> (courses::outbound::mongo::MongoCourses, String) {
    let database = testkit::unique_name("courses_test");
    let uri = Secret::new(testkit::mongodb_uri());
    let store = courses::outbound::mongo::MongoCourses::connect(
        &uri,
        &database,
        std::time::Duration::from_secs(5),
    )
    .await
    .expect("connect");
    store.migrate().await.expect("migrate");
    (store, database)
}

//! The real binary: configuration errors, the healthcheck, JSON logs with request ids,
//! graceful shutdown.

use testkit::process;

const BINARY: &str = env!("CARGO_BIN_EXE_courses");

#[test]
fn a_missing_mongodb_uri_stops_the_program_naming_it() {
    process::assert_config_error_names(BINARY, &[], &["MONGODB_URI"]);
}

#[test]
fn malformed_settings_are_named() {
    process::assert_config_error_names(
        BINARY,
        &[
            ("MONGODB_URI", "mongodb://localhost"),
            ("GRPC_ADDR", "nowhere"),
            ("CACHE_TIMEOUT_MS", "-5"),
        ],
        &["GRPC_ADDR", "CACHE_TIMEOUT_MS"],
    );
}

#[tokio::test]
async fn healthcheck_passes_json_logs_carry_the_request_id_and_sigterm_exits_cleanly() {
    let database = testkit::unique_name("courses_test");
    let prefix = testkit::unique_name("t");
    testkit::queue::create_streams(&prefix).await;
    let env = vec![
        ("MONGODB_URI".to_owned(), testkit::mongodb_uri()),
        ("MONGODB_DATABASE".to_owned(), database.clone()),
        ("REDIS_URL".to_owned(), testkit::redis_url()),
        ("NIS_PREFIX".to_owned(), prefix.clone()),
        ("NATS_URL".to_owned(), testkit::nats_url()),
    ];
    process::assert_healthcheck_json_logs_and_graceful_stop(BINARY, &env, "courses").await;
    testkit::queue::delete_streams(&prefix).await;
    testkit::stores::drop_mongo_database(database).await;
}

#[tokio::test]
async fn migrate_creates_the_student_ids_index_and_exits() {
    let database = testkit::unique_name("courses_test");
    let env = [
        ("MONGODB_URI".to_owned(), testkit::mongodb_uri()),
        ("MONGODB_DATABASE".to_owned(), database.clone()),
    ];
    process::assert_migrate_succeeds(BINARY, &env);
    process::assert_migrate_succeeds(BINARY, &env);
    let client = mongodb::Client::with_uri_str(testkit::mongodb_uri())
        .await
        .expect("client");
    let names = client
        .database(&database)
        .collection::<mongodb::bson::Document>("courses")
        .list_index_names()
        .await
        .expect("indexes");
    assert!(names.iter().any(|n| n == "student_ids_1"), "{names:?}");
    testkit::stores::drop_mongo_database(database).await;
}

#[test]
fn reconcile_exits_1_when_students_cannot_be_reached() {
    let database = testkit::unique_name("courses_test");
    let env = vec![
        ("MONGODB_URI".to_owned(), testkit::mongodb_uri()),
        ("MONGODB_DATABASE".to_owned(), database.clone()),
        ("REDIS_URL".to_owned(), testkit::redis_url()),
        ("NATS_URL".to_owned(), testkit::nats_url()),
    ];
    process::assert_reconcile_fails_without_its_peer(BINARY, &env, "STUDENTS_GRPC_URL");
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    runtime.block_on(testkit::stores::drop_mongo_database(database));
}

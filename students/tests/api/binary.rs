//! The real binary: configuration errors, the healthcheck, JSON logs with request ids,
//! graceful shutdown.

use testkit::process;

const BINARY: &str = env!("CARGO_BIN_EXE_students");

#[test]
fn a_missing_database_url_stops_the_program_naming_it() {
    process::assert_config_error_names(BINARY, &[], &["DATABASE_URL"]);
}

#[test]
fn malformed_settings_are_named() {
    process::assert_config_error_names(
        BINARY,
        &[
            ("DATABASE_URL", "postgres://localhost/x"),
            ("HTTP_ADDR", "nowhere"),
            ("CACHE_TTL_SECS", "soon"),
        ],
        &["HTTP_ADDR", "CACHE_TTL_SECS"],
    );
}

/// The environment of a binary that serves: its own database and streams.
async fn served() -> (Vec<(String, String)>, String, String) {
    let database = testkit::stores::create_postgres_database("students_test").await;
    let prefix = testkit::unique_name("t");
    testkit::queue::create_streams(&prefix).await;
    let env = vec![
        (
            "DATABASE_URL".to_owned(),
            format!("{}/{database}", testkit::postgres_url()),
        ),
        ("REDIS_URL".to_owned(), testkit::redis_url()),
        ("NIS_PREFIX".to_owned(), prefix.clone()),
        ("NATS_URL".to_owned(), testkit::nats_url()),
    ];
    (env, database, prefix)
}

/// Removes what [`served`] made.
async fn cleaned(database: String, prefix: String) {
    testkit::queue::delete_streams(&prefix).await;
    testkit::stores::drop_postgres_database(database).await;
}

#[tokio::test]
async fn healthcheck_passes_json_logs_carry_the_request_id_and_sigterm_exits_cleanly() {
    let (env, database, prefix) = served().await;
    process::assert_healthcheck_json_logs_and_graceful_stop(BINARY, &env, "students").await;
    cleaned(database, prefix).await;
}

#[tokio::test]
async fn requests_continue_the_callers_trace_and_their_log_lines_name_it() {
    let (env, database, prefix) = served().await;
    process::assert_traces_continue_the_callers_and_logs_name_them(BINARY, &env, "students").await;
    cleaned(database, prefix).await;
}

#[tokio::test]
async fn migrate_applies_the_migrations_and_exits() {
    use sqlx::Connection as _;
    let database = testkit::stores::create_postgres_database("students_test").await;
    let url = format!("{}/{database}", testkit::postgres_url());
    process::assert_migrate_succeeds(BINARY, &[("DATABASE_URL".to_owned(), url.clone())]);
    // Twice is fine, and the tables are there.
    process::assert_migrate_succeeds(BINARY, &[("DATABASE_URL".to_owned(), url.clone())]);
    let mut connection = sqlx::PgConnection::connect(&url).await.expect("connect");
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' AND tablename IN ('students', 'outbox') ORDER BY 1",
    )
    .fetch_all(&mut connection)
    .await
    .expect("list tables");
    assert_eq!(tables, ["outbox", "students"]);
    drop(connection);
    testkit::stores::drop_postgres_database(database).await;
}

#[test]
fn text_logs_written_to_a_pipe_have_no_colour_codes() {
    // Nothing listens on port 1: start-up fails after STARTUP_TIMEOUT_SECS, logging why.
    process::assert_text_logs_are_plain_when_piped(
        BINARY,
        &[("DATABASE_URL", "postgres://nis@127.0.0.1:1/nowhere")],
    );
}

#[tokio::test]
async fn reconcile_exits_1_when_courses_cannot_be_reached() {
    let database = testkit::stores::create_postgres_database("students_test").await;
    let env = vec![
        (
            "DATABASE_URL".to_owned(),
            format!("{}/{database}", testkit::postgres_url()),
        ),
        ("REDIS_URL".to_owned(), testkit::redis_url()),
        ("NATS_URL".to_owned(), testkit::nats_url()),
    ];
    process::assert_reconcile_fails_without_its_peer(BINARY, &env, "COURSES_GRPC_URL");
    testkit::stores::drop_postgres_database(database).await;
}

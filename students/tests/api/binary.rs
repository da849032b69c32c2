//! The real binary: configuration errors, JSON logs with request ids, graceful shutdown.

use testkit::process;

use crate::helpers::{create_database, drop_database};

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

#[tokio::test]
async fn json_logs_carry_the_request_id_and_sigterm_exits_cleanly() {
    let database = create_database().await;
    let env = vec![
        (
            "DATABASE_URL".to_owned(),
            format!("{}/{database}", testkit::postgres_url()),
        ),
        ("REDIS_URL".to_owned(), testkit::redis_url()),
        ("NIS_PREFIX".to_owned(), testkit::unique_name("t")),
    ];
    process::assert_json_logs_and_graceful_stop(BINARY, &env, "students").await;
    drop_database(database).await;
}

//! The `initializer` program as a Job runs it: exit codes, messages, and what it logs.

use std::{
    process::Output,
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::support::{Namespace, nats_url};

const BINARY: &str = env!("CARGO_BIN_EXE_initializer");

/// Runs the initializer with only `env`, failing the test if it takes longer than `deadline`.
async fn run(env: &[(&str, &str)], deadline: Duration) -> Output {
    let child = tokio::process::Command::new(BINARY)
        .env_clear()
        .envs(env.iter().copied())
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(deadline, child)
        .await
        .unwrap_or_else(|_| panic!("the initializer still runs after {deadline:?}"))
        .expect("run the initializer")
}

/// The `outcome` of every JSON log line that has one.
fn logged_outcomes(output: &Output) -> Vec<String> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| {
            serde_json::from_str::<Value>(line).unwrap_or_else(|_| panic!("not JSON: {line}"))
        })
        .filter_map(|line| line["fields"]["outcome"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn without_nats_it_gives_up_in_time_naming_the_url() {
    let url = "nats://127.0.0.1:1";
    let started = Instant::now();
    let output = run(
        &[("NATS_URL", url), ("INIT_TIMEOUT_SECS", "1")],
        Duration::from_secs(20),
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        text.contains(url),
        "the message does not name {url}: {text}"
    );
}

#[tokio::test]
async fn a_malformed_setting_stops_it_with_status_2_naming_the_variable() {
    let output = run(&[("STREAM_REPLICAS", "x")], Duration::from_secs(10)).await;
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("STREAM_REPLICAS"), "{stderr}");

    // Every problem is named at once, not only the first.
    testkit::process::assert_config_error_names(
        BINARY,
        &[("NIS_PREFIX", "a.b"), ("STREAM_MAX_AGE_SECS", "soon")],
        &["NIS_PREFIX", "STREAM_MAX_AGE_SECS"],
    );
}

#[tokio::test]
async fn run_twice_it_succeeds_and_the_second_run_changes_nothing() {
    let ns = Namespace::unique();
    let url = nats_url();
    let env = [
        ("NATS_URL", url.as_str()),
        ("NIS_PREFIX", ns.prefix.as_str()),
        ("LOG_FORMAT", "json"),
        ("RUST_LOG", "info"),
    ];

    let first = run(&env, Duration::from_secs(60)).await;
    assert!(first.status.success(), "{first:?}");
    assert_eq!(logged_outcomes(&first), ["created"; 5], "{first:?}");

    let second = run(&env, Duration::from_secs(60)).await;
    assert!(second.status.success(), "{second:?}");
    assert_eq!(logged_outcomes(&second), ["unchanged"; 5], "{second:?}");
}

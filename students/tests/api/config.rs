//! The binary itself: configuration errors, JSON logs with request ids, graceful shutdown.

use std::{
    io::{BufRead as _, BufReader},
    process::{Command, Stdio},
    time::Duration,
};

use serde_json::Value;

const BINARY: &str = env!("CARGO_BIN_EXE_students");

#[test]
fn a_missing_database_url_stops_the_program_naming_it() {
    let output = Command::new(BINARY)
        .env_clear()
        .output()
        .expect("run students");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("DATABASE_URL"), "{stderr}");
}

#[test]
fn a_malformed_setting_is_named() {
    let output = Command::new(BINARY)
        .env_clear()
        .env("DATABASE_URL", "postgres://localhost/x")
        .env("HTTP_ADDR", "not-an-address")
        .env("CACHE_TTL_SECS", "soon")
        .output()
        .expect("run students");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("HTTP_ADDR") && stderr.contains("CACHE_TTL_SECS"),
        "{stderr}"
    );
}

/// Starts the real binary with JSON logs, makes a request with a known id, finds it in the
/// logs, then stops it with SIGTERM and expects a clean exit.
#[tokio::test]
async fn json_logs_carry_the_request_id_and_sigterm_exits_cleanly() {
    let database = testkit::unique_name("students_test");
    let admin_url = format!("{}/postgres", testkit::postgres_url());
    {
        use sqlx::{Connection as _, Executor as _};
        let mut admin = sqlx::PgConnection::connect(&admin_url)
            .await
            .expect("connect");
        admin
            .execute(format!(r#"CREATE DATABASE "{database}""#).as_str())
            .await
            .expect("create db");
    }
    let http_port = free_port();
    let mut child = Command::new(BINARY)
        .env_clear()
        .env(
            "DATABASE_URL",
            format!("{}/{database}", testkit::postgres_url()),
        )
        .env("REDIS_URL", testkit::redis_url())
        .env("NIS_PREFIX", testkit::unique_name("t"))
        .env("HTTP_ADDR", format!("127.0.0.1:{http_port}"))
        .env("GRPC_ADDR", format!("127.0.0.1:{}", free_port()))
        .env("LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn students");
    let stdout = child.stdout.take().expect("stdout");
    let (lines_tx, lines_rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });

    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{http_port}");
    testkit::wait_for("students ready", Duration::from_secs(30), || {
        let client = client.clone();
        let url = format!("{base}/readyz");
        async move {
            client
                .get(url)
                .send()
                .await
                .ok()
                .filter(|r| r.status() == 200)
        }
    })
    .await;
    let response = client
        .get(format!("{base}/api/students"))
        .header("x-request-id", "log-me-42")
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status(), 200);

    let found = (0..200).find_map(|_| {
        let line = lines_rx.recv_timeout(Duration::from_secs(10)).ok()?;
        let json: Value =
            serde_json::from_str(&line).unwrap_or_else(|_| panic!("not JSON: {line}"));
        (json["fields"]["request_id"] == "log-me-42").then_some(json)
    });
    let line = found.expect("a JSON log line with the request id");
    assert_eq!(line["fields"]["operation"], "list");
    assert_eq!(line["fields"]["transport"], "http");

    let pid = child.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .expect("join")
        .expect("wait");
    assert!(status.success(), "exit status after SIGTERM: {status}");

    use sqlx::{Connection as _, Executor as _};
    if let Ok(mut admin) = sqlx::PgConnection::connect(&admin_url).await {
        let _ = admin
            .execute(format!(r#"DROP DATABASE IF EXISTS "{database}" WITH (FORCE)"#).as_str())
            .await;
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

//! Checks on a service's real binary: configuration errors, JSON logs, graceful shutdown.

use std::{
    io::{BufRead as _, BufReader},
    process::{Command, Stdio},
    time::Duration,
};

use serde_json::Value;

/// Runs `binary` with only `env` and asserts it exits non-zero naming every one of `names`.
pub fn assert_config_error_names(binary: &str, env: &[(&str, &str)], names: &[&str]) {
    let output = Command::new(binary)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .expect("run the binary");
    assert!(
        !output.status.success(),
        "{binary} started without {names:?}"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    for name in names {
        assert!(
            stderr.contains(name),
            "stderr does not name {name}: {stderr}"
        );
    }
}

/// A free TCP port on loopback.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Runs `<binary> healthcheck` with `env` and the given `HTTP_ADDR`; true when it exits 0.
fn healthcheck(binary: &str, env: &[(String, String)], http_addr: &str) -> bool {
    let output = Command::new(binary)
        .arg("healthcheck")
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("HTTP_ADDR", http_addr)
        .output()
        .expect("run healthcheck");
    output.status.success()
}

/// A service binary started with JSON logs on free ports, its stdout read line by line.
pub struct Running {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    /// Its HTTP base URL.
    pub base: String,
    http_port: u16,
}

impl Running {
    /// Starts `binary` with `env` and `extra` (which may name its `GRPC_ADDR`) on free ports
    /// and waits until it is ready.
    pub async fn start(binary: &str, env: &[(String, String)], extra: &[(&str, String)]) -> Self {
        let http_port = free_port();
        let mut child = Command::new(binary)
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("HTTP_ADDR", format!("127.0.0.1:{http_port}"))
            .env("GRPC_ADDR", format!("127.0.0.1:{}", free_port()))
            .env("LOG_FORMAT", "json")
            .envs(extra.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn the binary");
        let stdout = child.stdout.take().expect("stdout");
        let (lines_tx, lines) = std::sync::mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = lines_tx.send(line);
            }
        });
        let base = format!("http://127.0.0.1:{http_port}");
        let client = reqwest::Client::new();
        super::wait_for("the service ready", Duration::from_secs(30), || {
            let request = client.get(format!("{base}/readyz")).send();
            async move { request.await.ok().filter(|r| r.status() == 200) }
        })
        .await;
        Self {
            child,
            lines,
            base,
            http_port,
        }
    }

    /// The first JSON log line whose `fields.request_id` is `id`.
    pub fn log_line_of(&self, id: &str) -> Value {
        self.log_line(&format!("the request id {id}"), |json| {
            json["fields"]["request_id"] == id
        })
    }

    /// The next JSON log line that `wanted` accepts (`what` it is, for the failure), skipping
    /// the others; within 30 s.
    pub fn log_line(&self, what: &str, wanted: impl Fn(&Value) -> bool) -> Value {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let Ok(line) = self.lines.recv_timeout(left) else {
                panic!("no JSON log line with {what} within 30 s");
            };
            let json: Value =
                serde_json::from_str(&line).unwrap_or_else(|_| panic!("not JSON: {line}"));
            if wanted(&json) {
                return json;
            }
        }
    }

    /// SIGTERM, then expects exit 0.
    pub async fn stop(self) {
        let killed = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(killed.success());
        let mut child = self.child;
        let status = tokio::task::spawn_blocking(move || child.wait())
            .await
            .expect("join")
            .expect("wait");
        assert!(status.success(), "exit status after SIGTERM: {status}");
    }
}

/// Starts `binary` with `env` plus JSON logs and free ports, waits until ready, checks that
/// `<binary> healthcheck` says healthy (and unhealthy for a port nothing listens on), makes one
/// list request of `kind` with a known request id, finds that id in a JSON log line, then sends
/// SIGTERM and expects exit 0.
pub async fn assert_healthcheck_json_logs_and_graceful_stop(
    binary: &str,
    env: &[(String, String)],
    kind: &str,
) {
    let service = Running::start(binary, env, &[]).await;
    let http_port = service.http_port;
    // The way compose calls it: the container's own environment, a wildcard listen address.
    assert!(
        healthcheck(binary, env, &format!("0.0.0.0:{http_port}")),
        "`{binary} healthcheck` failed while the service is ready"
    );
    assert!(
        !healthcheck(binary, env, &format!("127.0.0.1:{}", free_port())),
        "`{binary} healthcheck` succeeded with nothing listening"
    );

    let response = reqwest::Client::new()
        .get(format!("{}/api/{kind}", service.base))
        .header("x-request-id", "log-me-42")
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status(), 200);
    let line = service.log_line_of("log-me-42");
    assert_eq!(line["fields"]["operation"], "list");
    assert_eq!(line["fields"]["transport"], "http");
    service.stop().await;
}

/// The path of binary `name` of this workspace, next to the running test (`target/<profile>/`).
/// Cargo builds every binary of the workspace for `cargo test --workspace` / `nextest run
/// --workspace`; a test that needs another crate's binary says so if it is missing.
pub fn workspace_binary(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    let profile_dir = exe
        .parent()
        .and_then(std::path::Path::parent)
        .expect("tests run from target/<profile>/deps");
    let binary = profile_dir.join(name);
    assert!(
        binary.exists(),
        "{} is missing: build it first (`cargo build --bin {name}`), or run the whole workspace's tests",
        binary.display()
    );
    binary
}

/// Runs `<binary> migrate` with `env` and asserts it prepares the store and exits 0.
pub fn assert_migrate_succeeds(binary: &str, env: &[(String, String)]) {
    let output = Command::new(binary)
        .arg("migrate")
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .expect("run migrate");
    assert!(
        output.status.success(),
        "{binary} migrate failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Runs `binary serve` with `env` (which should make start-up fail within a second or two) in
/// text format with stdout a pipe, and asserts it logged lines without terminal colour codes.
pub fn assert_text_logs_are_plain_when_piped(binary: &str, env: &[(&str, &str)]) {
    let output = Command::new(binary)
        .arg("serve")
        .env_clear()
        .envs(env.iter().copied())
        .env("LOG_FORMAT", "text")
        .env("STARTUP_TIMEOUT_SECS", "1")
        .output()
        .expect("run the binary");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!stdout.trim().is_empty(), "{binary} logged nothing");
    assert!(
        !stdout.contains('\u{1b}'),
        "colour codes in logs written to a pipe: {stdout}"
    );
}

/// Runs `<binary> reconcile` with `env`, whose other service (`peer_var`) is where nothing
/// listens, and asserts it exits 1 saying so; and that an unknown option is a usage error (2).
pub fn assert_reconcile_fails_without_its_peer(
    binary: &str,
    env: &[(String, String)],
    peer_var: &str,
) {
    let output = Command::new(binary)
        .arg("reconcile")
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env(peer_var, "http://127.0.0.1:1")
        .env("PEER_TIMEOUT_MS", "500")
        .env("REQUEST_TIMEOUT_MS", "500")
        .output()
        .expect("run reconcile");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{binary} reconcile: {stderr}"
    );
    assert!(
        stderr.contains("reconcile") && stderr.contains("did not answer"),
        "the reason is named: {stderr}"
    );
    let usage = Command::new(binary)
        .args(["reconcile", "--bogus"])
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .expect("run reconcile --bogus");
    assert_eq!(usage.status.code(), Some(2), "a usage error");
    assert!(String::from_utf8_lossy(&usage.stderr).contains("--dry-run"));
}

/// Starts `binary` with `env`, JSON logs and its traces sent to a collector in this test
/// (`OTEL_EXPORTER_OTLP_ENDPOINT`); sends one list request of `kind` carrying a W3C
/// `traceparent`; expects the collector to receive the HTTP server span of that request in the
/// caller's trace, as a child of the caller's span, from service `kind`, and the request's log
/// line to name the trace; then stops it with SIGTERM (spans still batched are exported).
pub async fn assert_traces_continue_the_callers_and_logs_name_them(
    binary: &str,
    env: &[(String, String)],
    kind: &str,
) {
    let collector = super::otlp::Collector::start().await;
    let service = Running::start(
        binary,
        env,
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", collector.endpoint())],
    )
    .await;
    let client = reqwest::Client::new();
    let base = &service.base;

    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller = "00f067aa0ba902b7";
    let response = client
        .get(format!("{base}/api/{kind}"))
        .header("traceparent", format!("00-{trace}-{caller}-01"))
        .header("x-request-id", "trace-me-7")
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status(), 200);

    let route = format!("GET /api/{kind}");
    let span = collector
        .wait_for("the HTTP server span in the caller's trace", |s| {
            s.trace_id == trace && s.name == route
        })
        .await;
    assert_eq!(span.parent_span_id, caller, "a child of the caller's span");
    assert_eq!(span.service, kind, "service.name");
    assert_eq!(span.kind, 2, "kind server");
    assert_eq!(span.attribute("http.request.method"), Some("GET"));
    assert_eq!(
        span.attribute("http.route"),
        Some(format!("/api/{kind}").as_str())
    );
    assert_eq!(span.attribute("http.response.status_code"), Some("200"));

    let line = service.log_line_of("trace-me-7");
    assert_eq!(
        line["span"]["trace_id"], trace,
        "the log line names the trace: {line}"
    );
    assert_eq!(
        line["span"]["span_id"],
        span.span_id.as_str(),
        "and the span: {line}"
    );

    service.stop().await;
}

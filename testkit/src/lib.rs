//! Helpers shared by the tests of every nis service: where the real servers are, unique names
//! that keep parallel tests apart, waiting for conditions with deadlines, reading metrics, a
//! handle on a service under test (with its real stores, or its HTTP API alone in process over
//! in-memory fakes), and the HTTP contract checks every service must pass.

pub mod cache_links;
pub mod contract;
pub mod grpc;
pub mod in_process;
pub mod odd_text;
pub mod otlp;
pub mod outbox;
pub mod process;
pub mod queue;
pub mod relation;
mod service;
pub mod stores;

use std::{future::Future, time::Duration};

pub use in_process::InProcessService;
pub use service::{Api, TestService, assert_error, body, settings, settings_with_peer};

/// The PostgreSQL server for tests (`NIS_TEST_POSTGRES_URL`, no database in the path).
pub fn postgres_url() -> String {
    std::env::var("NIS_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// The Redis server for tests (`NIS_TEST_REDIS_URL`).
pub fn redis_url() -> String {
    std::env::var("NIS_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// The MongoDB(-compatible) server for tests (`NIS_TEST_MONGODB_URI`).
pub fn mongodb_uri() -> String {
    std::env::var("NIS_TEST_MONGODB_URI")
        .or_else(|_| std::env::var("MONGODB_URI"))
        .expect("NIS_TEST_MONGODB_URI is not set: run the tests with `make test`, which starts a server")
}

/// The NATS server for tests (`NIS_TEST_NATS_URL`).
pub fn nats_url() -> String {
    std::env::var("NIS_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

/// A Redis URL where nothing listens (port 1 on loopback refuses at once).
pub const DEAD_REDIS_URL: &str = "redis://127.0.0.1:1";

/// A name no other test uses: `{stem}_{32 hex}`.
pub fn unique_name(stem: &str) -> String {
    format!("{stem}_{}", uuid::Uuid::new_v4().simple())
}

/// Polls `check` every 50 ms until it returns `Some`, or panics after `deadline` naming `what`.
pub async fn wait_for<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let give_up = tokio::time::Instant::now() + deadline;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < give_up,
            "timed out after {deadline:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The value of the sample of `family` whose labels include every pair of `labels`, from a
/// Prometheus text exposition; summed when several samples match.
pub fn metric_value(exposition: &str, family: &str, labels: &[(&str, &str)]) -> f64 {
    exposition
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (name_and_labels, value) = line.rsplit_once(' ')?;
            let (name, label_text) = match name_and_labels.split_once('{') {
                Some((name, rest)) => (name, rest.trim_end_matches('}')),
                None => (name_and_labels, ""),
            };
            if name != family {
                return None;
            }
            let all = labels.iter().all(|(k, v)| {
                label_text
                    .split(',')
                    .any(|pair| pair == format!("{k}=\"{v}\""))
            });
            all.then(|| value.parse::<f64>().ok()).flatten()
        })
        .sum()
}

/// Reads `/metrics` of a service.
pub async fn scrape(client: &reqwest::Client, base_url: &str) -> String {
    client
        .get(format!("{base_url}/metrics"))
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics body")
}

/// Deletes every Redis key under `prefix:` (cleanup after a test).
pub async fn delete_redis_keys(prefix: &str) {
    let Ok(client) = redis::Client::open(redis_url()) else {
        return;
    };
    let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
        return;
    };
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(&mut conn)
        .await
        .unwrap_or_default();
    if !keys.is_empty() {
        let _: Result<(), _> = redis::cmd("DEL").arg(keys).query_async(&mut conn).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_values_are_matched_by_labels() {
        let text = "# TYPE x counter\nx{a=\"1\",b=\"2\"} 3\nx{a=\"1\",b=\"3\"} 4\ny 9\n";
        assert_eq!(metric_value(text, "x", &[("a", "1")]), 7.0);
        assert_eq!(metric_value(text, "x", &[("b", "3")]), 4.0);
        assert_eq!(metric_value(text, "y", &[]), 9.0);
        assert_eq!(metric_value(text, "x", &[("a", "2")]), 0.0);
    }
}

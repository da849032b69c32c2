//! Configuration from environment variables (12-factor).
//!
//! [`Env`] collects every problem instead of stopping at the first one, so that a single failed
//! start names every missing or malformed variable. [`ServiceSettings`] holds what every service
//! reads the same way.

use std::{collections::HashMap, fmt::Display, net::SocketAddr, str::FromStr, time::Duration};

use crate::{secret::Secret, telemetry::LogFormat};

/// One or more environment variables are missing or malformed.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n  - {}", .problems.join("\n  - "))]
pub struct ConfigError {
    /// One line per variable at fault, each naming it.
    pub problems: Vec<String>,
}

/// Reads typed settings from the environment and remembers what was wrong.
pub struct Env {
    vars: HashMap<String, String>,
    problems: Vec<String>,
}

impl Env {
    /// The process environment.
    pub fn from_process() -> Self {
        Self::from_map(std::env::vars().collect())
    }

    /// A given set of variables (for tests).
    pub fn from_map(vars: HashMap<String, String>) -> Self {
        Self {
            vars,
            problems: Vec::new(),
        }
    }

    fn raw(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// A variable that must be set; `what` tells a person what it is for.
    pub fn required<T>(&mut self, name: &str, what: &str) -> T
    where
        T: FromStr + Default,
        T::Err: Display,
    {
        match self.raw(name).map(str::to_owned) {
            None => {
                self.problems.push(format!("{name} is not set ({what})"));
                T::default()
            }
            Some(raw) => self.parse(name, &raw).unwrap_or_default(),
        }
    }

    /// A variable with a default used when it is unset or empty.
    pub fn optional<T>(&mut self, name: &str, default: T) -> T
    where
        T: FromStr,
        T::Err: Display,
    {
        match self.raw(name).map(str::to_owned) {
            None => default,
            Some(raw) => self.parse(name, &raw).unwrap_or(default),
        }
    }

    /// A duration given in milliseconds.
    pub fn millis(&mut self, name: &str, default_ms: u64) -> Duration {
        Duration::from_millis(self.optional(name, default_ms))
    }

    /// A duration given in seconds.
    pub fn secs(&mut self, name: &str, default_secs: u64) -> Duration {
        Duration::from_secs(self.optional(name, default_secs))
    }

    fn parse<T>(&mut self, name: &str, raw: &str) -> Option<T>
    where
        T: FromStr,
        T::Err: Display,
    {
        match raw.parse() {
            Ok(value) => Some(value),
            Err(e) => {
                self.problems
                    .push(format!("{name} has an invalid value {raw:?}: {e}"));
                None
            }
        }
    }

    /// Ends reading: an error listing every problem, if there was any.
    pub fn finish(self) -> Result<(), ConfigError> {
        if self.problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError {
                problems: self.problems,
            })
        }
    }
}

/// `NIS_PREFIX` (default `nis`): the namespace of Redis keys, streams, subjects and database
/// names. Letters, digits, `_` and `-` only, so it is safe in all of them.
pub fn read_prefix(env: &mut Env) -> String {
    let prefix: String = env.optional("NIS_PREFIX", "nis".to_owned());
    if !prefix
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        env.problems.push(format!(
            "NIS_PREFIX has an invalid value {prefix:?}: use letters, digits, '_' or '-'"
        ));
    }
    prefix
}

/// Redis cache settings.
#[derive(Debug, Clone)]
pub struct CacheSettings {
    /// `REDIS_URL`.
    pub url: Secret,
    /// `CACHE_TTL_SECS`: how long a cached read lives (default 300).
    pub ttl: Duration,
    /// `CACHE_TIMEOUT_MS`: the longest a request waits for Redis before using the database (default 250).
    pub timeout: Duration,
    /// `CACHE_FENCE_TIMEOUT_MS`: the longest a write waits for Redis to fence or settle what it
    /// changes (default 1000); a write whose fence does not answer in time is refused.
    pub fence_timeout: Duration,
    /// `CACHE_FENCE_REPLICAS`: how many Redis replicas must hold a write's fence before it
    /// commits (`WAIT`; default 0). With as many as there are replicas, a failover can only
    /// promote one that holds it (docs/behaviour.md §6).
    pub fence_replicas: u32,
}

/// What differs between services in how they read [`ServiceSettings`].
#[derive(Debug, Clone, Copy)]
pub struct Defaults {
    /// Default HTTP port.
    pub http_port: u16,
    /// Default gRPC port.
    pub grpc_port: u16,
    /// The variable naming the other service's gRPC URL (`STUDENTS_GRPC_URL` for courses).
    pub peer_var: &'static str,
    /// Its default (the other service under `make up`).
    pub peer_url: &'static str,
}

/// Settings every service reads the same way.
#[derive(Debug, Clone)]
pub struct ServiceSettings {
    /// `HTTP_ADDR`.
    pub http_addr: SocketAddr,
    /// `GRPC_ADDR`.
    pub grpc_addr: SocketAddr,
    /// `NIS_PREFIX`: namespaces Redis keys, streams and database names (default `nis`).
    pub prefix: String,
    /// `LOG_FORMAT`: `text` or `json`.
    pub log_format: LogFormat,
    /// `HTTP_WORKERS`: actix worker threads (default: one per core).
    pub http_workers: usize,
    /// `REQUEST_TIMEOUT_MS`: the deadline of one database call (default 5000).
    pub store_timeout: Duration,
    /// `SHUTDOWN_GRACE_SECS`: how long in-flight requests may take to finish on shutdown (default 20).
    pub shutdown_grace: Duration,
    /// `STARTUP_TIMEOUT_SECS`: how long start-up (and `migrate`) retries preparing the store
    /// while the database is away (default 60).
    pub startup_timeout: Duration,
    /// The Redis cache.
    pub cache: CacheSettings,
    /// `NATS_URL`: the NATS server with JetStream (default `nats://127.0.0.1:4222`).
    pub nats_url: String,
    /// The other service's gRPC URL, for cross queries (`COURSES_GRPC_URL` / `STUDENTS_GRPC_URL`).
    pub peer_url: String,
    /// `PEER_TIMEOUT_MS`: the deadline of a cross query to the other service (default 1500).
    pub peer_timeout: Duration,
    /// `IDEMPOTENCY_RETENTION_SECS`: how long the idempotency key of a create is remembered
    /// (default 86400, a day).
    pub idempotency_retention: Duration,
    /// `RECONCILE_INTERVAL_SECS`: how often the replicas of a service run reconciliation (one
    /// of them, under a lease; default 300; 0 turns periodic runs off).
    pub reconcile_interval: Duration,
    /// `RECONCILE_GRACE_SECS`: differing pairs whose newest change is younger than this are
    /// left to the queue by a run (default 60).
    pub reconcile_grace: Duration,
}

/// The longest `REQUEST_TIMEOUT_MS` accepted: a commit must end well within the 15 s a write's
/// cache fence lasts (docs/behaviour.md §6).
const MAX_STORE_TIMEOUT_MS: u64 = 10_000;

/// `REQUEST_TIMEOUT_MS` (default 5000, at most [`MAX_STORE_TIMEOUT_MS`]).
fn read_store_timeout(env: &mut Env) -> Duration {
    let timeout = env.millis("REQUEST_TIMEOUT_MS", 5_000);
    if timeout > Duration::from_millis(MAX_STORE_TIMEOUT_MS) {
        env.problems.push(format!(
            "REQUEST_TIMEOUT_MS is {} ms; at most {MAX_STORE_TIMEOUT_MS} ms is accepted, so a commit ends well within its cache fence",
            timeout.as_millis()
        ));
    }
    timeout
}

impl ServiceSettings {
    /// Reads the shared settings; problems are recorded in `env`.
    pub fn read(env: &mut Env, defaults: Defaults) -> Self {
        let prefix = read_prefix(env);
        Self {
            http_addr: env.optional(
                "HTTP_ADDR",
                SocketAddr::from(([0, 0, 0, 0], defaults.http_port)),
            ),
            grpc_addr: env.optional(
                "GRPC_ADDR",
                SocketAddr::from(([0, 0, 0, 0], defaults.grpc_port)),
            ),
            prefix,
            log_format: env.optional("LOG_FORMAT", LogFormat::Text),
            http_workers: env.optional(
                "HTTP_WORKERS",
                std::thread::available_parallelism().map_or(2, |n| n.get()),
            ),
            store_timeout: read_store_timeout(env),
            shutdown_grace: env.secs("SHUTDOWN_GRACE_SECS", 20),
            startup_timeout: env.secs("STARTUP_TIMEOUT_SECS", 60),
            cache: CacheSettings {
                url: env.optional("REDIS_URL", Secret::new("redis://127.0.0.1:6379")),
                ttl: env.secs("CACHE_TTL_SECS", 300),
                timeout: env.millis("CACHE_TIMEOUT_MS", 250),
                fence_timeout: env.millis("CACHE_FENCE_TIMEOUT_MS", 1_000),
                fence_replicas: env.optional("CACHE_FENCE_REPLICAS", 0),
            },
            nats_url: env.optional("NATS_URL", "nats://127.0.0.1:4222".to_owned()),
            peer_url: env.optional(defaults.peer_var, defaults.peer_url.to_owned()),
            peer_timeout: env.millis("PEER_TIMEOUT_MS", 1_500),
            idempotency_retention: env.secs("IDEMPOTENCY_RETENTION_SECS", 86_400),
            reconcile_interval: env.secs("RECONCILE_INTERVAL_SECS", 300),
            reconcile_grace: env.secs("RECONCILE_GRACE_SECS", 60),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULTS: Defaults = Defaults {
        http_port: 8020,
        grpc_port: 50020,
        peer_var: "COURSES_GRPC_URL",
        peer_url: "http://127.0.0.1:50010",
    };

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::from_map(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn a_store_timeout_longer_than_a_cache_fence_allows_is_refused() {
        let mut e = env(&[("REQUEST_TIMEOUT_MS", "20000")]);
        ServiceSettings::read(&mut e, DEFAULTS);
        let text = e.finish().expect_err("refused").to_string();
        assert!(text.contains("REQUEST_TIMEOUT_MS is 20000 ms"), "{text}");
    }

    #[test]
    fn every_problem_is_reported_by_name() {
        let mut e = env(&[("CACHE_TTL_SECS", "soon"), ("DATABASE_URL", "  ")]);
        let _: Secret = e.required("DATABASE_URL", "the PostgreSQL URL");
        let _ = ServiceSettings::read(&mut e, DEFAULTS);
        let err = e.finish().expect_err("two problems");
        let text = err.to_string();
        assert!(text.contains("DATABASE_URL is not set"), "{text}");
        assert!(
            text.contains("CACHE_TTL_SECS has an invalid value"),
            "{text}"
        );
    }

    #[test]
    fn defaults_apply_when_unset() {
        let mut e = env(&[]);
        let s = ServiceSettings::read(&mut e, DEFAULTS);
        e.finish().expect("no problems");
        assert_eq!(s.http_addr.port(), 8020);
        assert_eq!(s.grpc_addr.port(), 50020);
        assert_eq!(s.prefix, "nis");
        assert_eq!(s.cache.ttl, Duration::from_secs(300));
    }

    #[test]
    fn a_bad_prefix_is_refused() {
        let mut e = env(&[("NIS_PREFIX", "a:b")]);
        let _ = ServiceSettings::read(&mut e, DEFAULTS);
        assert!(e.finish().is_err());
    }
}

//! The initializer's configuration, from environment variables only.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `NATS_URL` | `nats://127.0.0.1:4222` | the NATS server (with JetStream) |
//! | `NIS_PREFIX` | `nis` | namespaces streams and subjects (letters, digits, `_`, `-`) |
//! | `STREAM_REPLICAS` | `1` | copies of each stream, 1..=5 (3 on a clustered NATS) |
//! | `STREAM_MAX_AGE_SECS` | `604800` (7 days) | how long relation changes are kept (0 = forever) |
//! | `STREAM_DUPLICATE_WINDOW_SECS` | `600` | how long a `Nats-Msg-Id` is remembered (0 = server default) |
//! | `INIT_TIMEOUT_SECS` | `60` | how long to wait for NATS before giving up |
//! | `LOG_FORMAT` | `text` | `text` or `json` |

use std::{collections::HashMap, time::Duration};

use nis_queue::StreamSettings;
use nis_runtime::{
    config::{ConfigError, Env, read_prefix},
    telemetry::LogFormat,
};

use crate::connection::redacted;

/// JetStream keeps at most this many copies of a stream.
const MAX_REPLICAS: usize = 5;

/// Everything the initializer reads at start.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `NATS_URL`.
    pub nats_url: String,
    /// `NIS_PREFIX`.
    pub prefix: String,
    /// `STREAM_REPLICAS`, `STREAM_MAX_AGE_SECS`, `STREAM_DUPLICATE_WINDOW_SECS`.
    pub streams: StreamSettings,
    /// `INIT_TIMEOUT_SECS`: how long [`crate::connect`] waits for NATS.
    pub timeout: Duration,
    /// `LOG_FORMAT`.
    pub log_format: LogFormat,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::read(std::env::vars().collect())
    }

    /// Reads the given variables; the error names every variable at fault, not only the first.
    pub fn read(vars: HashMap<String, String>) -> Result<Self, ConfigError> {
        let mut env = Env::from_map(vars);
        let defaults = StreamSettings::default();
        let config = Self {
            nats_url: env.optional("NATS_URL", "nats://127.0.0.1:4222".to_owned()),
            prefix: read_prefix(&mut env),
            streams: StreamSettings {
                replicas: env.optional("STREAM_REPLICAS", defaults.replicas),
                max_age: env.secs("STREAM_MAX_AGE_SECS", defaults.max_age.as_secs()),
                duplicate_window: env.secs(
                    "STREAM_DUPLICATE_WINDOW_SECS",
                    defaults.duplicate_window.as_secs(),
                ),
            },
            timeout: env.secs("INIT_TIMEOUT_SECS", 60),
            log_format: env.optional("LOG_FORMAT", LogFormat::Text),
        };

        let mut problems = env.finish().err().map(|e| e.problems).unwrap_or_default();
        if let Err(e) = config.nats_url.parse::<async_nats::ServerAddr>() {
            problems.push(format!(
                "NATS_URL has an invalid value {:?}: {e}",
                redacted(&config.nats_url)
            ));
        }
        problems.extend(config.inconsistencies());
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError { problems })
        }
    }

    /// Values that parse but that JetStream would refuse, each naming its variable.
    fn inconsistencies(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let streams = &self.streams;
        if !(1..=MAX_REPLICAS).contains(&streams.replicas) {
            problems.push(format!(
                "STREAM_REPLICAS has an invalid value {}: use 1 to {MAX_REPLICAS}",
                streams.replicas
            ));
        }
        if !streams.max_age.is_zero() && streams.duplicate_window > streams.max_age {
            problems.push(format!(
                "STREAM_DUPLICATE_WINDOW_SECS ({}) must not be longer than STREAM_MAX_AGE_SECS ({})",
                streams.duplicate_window.as_secs(),
                streams.max_age.as_secs()
            ));
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::read(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn defaults_apply_when_unset() {
        let config = read(&[]).expect("defaults are valid");
        assert_eq!(config.nats_url, "nats://127.0.0.1:4222");
        assert_eq!(config.prefix, "nis");
        assert_eq!(config.streams, StreamSettings::default());
        assert_eq!(config.streams.max_age, Duration::from_secs(604_800));
        assert_eq!(config.streams.duplicate_window, Duration::from_secs(600));
        assert_eq!(config.timeout, Duration::from_secs(60));
        assert_eq!(config.log_format, LogFormat::Text);
    }

    #[test]
    fn settings_are_read() {
        let config = read(&[
            ("NATS_URL", "nats://nats:4222"),
            ("NIS_PREFIX", "prod-2"),
            ("STREAM_REPLICAS", "3"),
            ("STREAM_MAX_AGE_SECS", "0"),
            ("STREAM_DUPLICATE_WINDOW_SECS", "120"),
            ("INIT_TIMEOUT_SECS", "5"),
            ("LOG_FORMAT", "json"),
        ])
        .expect("valid");
        assert_eq!(config.nats_url, "nats://nats:4222");
        assert_eq!(config.prefix, "prod-2");
        assert_eq!(config.streams.replicas, 3);
        assert_eq!(config.streams.max_age, Duration::ZERO);
        assert_eq!(config.streams.duplicate_window, Duration::from_secs(120));
        assert_eq!(config.timeout, Duration::from_secs(5));
        assert_eq!(config.log_format, LogFormat::Json);
    }

    #[test]
    fn every_problem_is_named() {
        let err = read(&[
            ("NIS_PREFIX", "a.b"),
            ("STREAM_REPLICAS", "x"),
            ("STREAM_MAX_AGE_SECS", "soon"),
            ("LOG_FORMAT", "xml"),
            ("NATS_URL", "nats://a b"),
        ])
        .expect_err("five problems");
        let text = err.to_string();
        for name in [
            "NIS_PREFIX",
            "STREAM_REPLICAS",
            "STREAM_MAX_AGE_SECS",
            "LOG_FORMAT",
            "NATS_URL",
        ] {
            assert!(text.contains(name), "{name} not named in: {text}");
        }
        assert_eq!(err.problems.len(), 5, "{text}");
    }

    #[test]
    fn values_jetstream_would_refuse_are_named() {
        let text = read(&[("STREAM_REPLICAS", "7")])
            .expect_err("too many replicas")
            .to_string();
        assert!(text.contains("STREAM_REPLICAS"), "{text}");
        assert!(read(&[("STREAM_REPLICAS", "0")]).is_err(), "zero replicas");

        let text = read(&[
            ("STREAM_MAX_AGE_SECS", "60"),
            ("STREAM_DUPLICATE_WINDOW_SECS", "120"),
        ])
        .expect_err("window longer than retention")
        .to_string();
        assert!(text.contains("STREAM_DUPLICATE_WINDOW_SECS"), "{text}");
        assert!(text.contains("STREAM_MAX_AGE_SECS"), "{text}");
    }
}

//! Readiness: which dependencies answer. A critical one down makes the service not ready; an
//! optional one (the cache) down only makes it degraded.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use futures::future::{BoxFuture, join_all};
use serde::Serialize;

type Probe = Arc<dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

#[derive(Clone)]
struct Check {
    name: &'static str,
    critical: bool,
    probe: Probe,
}

/// The dependency checks of a service.
#[derive(Clone, Default)]
pub struct Readiness {
    checks: Arc<Vec<Check>>,
}

/// The state of one dependency.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct DependencyState {
    /// `up`, `down` (critical and failing) or `degraded` (optional and failing).
    pub state: &'static str,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The body of `/readyz`.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `ready` or `not_ready`.
    pub status: &'static str,
    /// Whether every critical dependency answers.
    #[serde(skip)]
    pub ready: bool,
    /// Each dependency by name.
    pub dependencies: BTreeMap<&'static str, DependencyState>,
}

/// How long one probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

impl Readiness {
    /// Adds a dependency. `critical`: the service cannot serve without it.
    #[must_use]
    pub fn with<F, Fut>(mut self, name: &'static str, critical: bool, probe: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        let probe: Probe = Arc::new(move || Box::pin(probe()));
        Arc::make_mut(&mut self.checks).push(Check {
            name,
            critical,
            probe,
        });
        self
    }

    /// The same checks, each polled in `runtime`'s context ([`crate::context::within`]): a
    /// probe that opens a connection opens it there, not on the runtime of the caller (an HTTP
    /// worker's, which a graceful stop shuts down first).
    #[must_use]
    pub fn on_runtime(self, runtime: tokio::runtime::Handle) -> Self {
        let checks = self
            .checks
            .iter()
            .map(|check| {
                let (probe, runtime) = (check.probe.clone(), runtime.clone());
                let on_runtime: Probe = Arc::new(move || {
                    let (work, runtime) = (probe(), runtime.clone());
                    Box::pin(async move { crate::context::within(&runtime, work).await })
                });
                Check {
                    name: check.name,
                    critical: check.critical,
                    probe: on_runtime,
                }
            })
            .collect();
        Self {
            checks: Arc::new(checks),
        }
    }

    /// Probes every dependency concurrently.
    pub async fn check(&self) -> Report {
        let results = join_all(self.checks.iter().map(|check| async move {
            let outcome = match tokio::time::timeout(PROBE_TIMEOUT, (check.probe)()).await {
                Ok(outcome) => outcome,
                Err(_) => Err(format!("no answer within {PROBE_TIMEOUT:?}")),
            };
            (check, outcome)
        }))
        .await;
        let mut ready = true;
        let mut dependencies = BTreeMap::new();
        for (check, outcome) in results {
            let state = match outcome {
                Ok(()) => DependencyState {
                    state: "up",
                    error: None,
                },
                Err(error) => {
                    ready &= !check.critical;
                    DependencyState {
                        state: if check.critical { "down" } else { "degraded" },
                        error: Some(error),
                    }
                }
            };
            dependencies.insert(check.name, state);
        }
        Report {
            status: if ready { "ready" } else { "not_ready" },
            ready,
            dependencies,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn optional_failures_degrade_critical_ones_block() {
        let degraded = Readiness::default()
            .with("database", true, || async { Ok(()) })
            .with("cache", false, || async { Err("refused".to_owned()) })
            .check()
            .await;
        assert!(degraded.ready);
        assert_eq!(degraded.dependencies["cache"].state, "degraded");

        let down = Readiness::default()
            .with("database", true, || async { Err("refused".to_owned()) })
            .check()
            .await;
        assert!(!down.ready);
        assert_eq!(down.status, "not_ready");
        assert_eq!(down.dependencies["database"].state, "down");
    }
}

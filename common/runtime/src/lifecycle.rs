//! Start-up retries and shutdown signals.

use std::time::Duration;

/// Why a program could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// A dependency did not become usable before the start-up deadline.
    #[error("{what} failed: {last_error}")]
    GaveUp {
        /// What was tried.
        what: String,
        /// The last failure.
        last_error: String,
    },
    /// A setting that was read fine turned out unusable (a URL the driver rejects, ...).
    #[error("{what}: {cause}")]
    Setup {
        /// What could not be set up, naming the setting.
        what: String,
        /// What the driver said.
        #[source]
        cause: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl StartError {
    /// `what` could not be set up because of `cause`.
    pub fn setup(
        what: impl Into<String>,
        cause: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self::Setup {
            what: what.into(),
            cause: cause.into(),
        }
    }
}

/// Retries `attempt` with exponential back-off (200 ms doubling to 5 s) until it succeeds or
/// `timeout` has passed, logging each failure as `what`.
pub async fn retry<T, E, F, Fut>(
    what: &str,
    timeout: Duration,
    mut attempt: F,
) -> Result<T, StartError>
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    let mut delay = Duration::from_millis(200);
    loop {
        match attempt().await {
            Ok(value) => return Ok(value),
            Err(e) if tokio::time::Instant::now() + delay < deadline => {
                tracing::warn!(error = %e, retry_in = ?delay, "{what} failed; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            Err(e) => {
                return Err(StartError::GaveUp {
                    what: what.to_owned(),
                    last_error: e.to_string(),
                });
            }
        }
    }
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = interrupt => {},
                    _ = terminate.recv() => {},
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; only SIGINT stops the service");
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn retries_until_success_and_gives_up_at_the_deadline() {
        let mut calls = 0;
        let value = retry("probe", Duration::from_secs(10), || {
            calls += 1;
            let n = calls;
            async move { if n < 3 { Err("not yet") } else { Ok(n) } }
        })
        .await
        .expect("third call succeeds");
        assert_eq!(value, 3);

        let failed = retry("probe", Duration::from_secs(1), || async {
            Err::<(), _>("down")
        })
        .await
        .expect_err("gives up");
        assert_eq!(failed.to_string(), "probe failed: down");
    }
}

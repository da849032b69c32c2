//! Reaching NATS JetStream, which may start after the initializer (compose, Kubernetes).

use std::time::Duration;

use async_nats::{
    ConnectOptions,
    jetstream::{self, context::AccountErrorKind},
};
use nis_runtime::lifecycle::retry;

use crate::InitError;

/// The longest one attempt (connect, then ask JetStream for the account) may take.
const MAX_ATTEMPT: Duration = Duration::from_secs(5);

/// Connects to the NATS server at `url` and checks that JetStream answers, retrying with
/// exponential back-off (200 ms doubling to 5 s) until `timeout` has passed.
///
/// An attempt still under way at the deadline may overrun it by at most 5 s.
pub async fn connect(url: &str, timeout: Duration) -> Result<jetstream::Context, InitError> {
    let shown = redacted(url);
    let attempt_timeout = timeout.clamp(Duration::from_secs(1), MAX_ATTEMPT);
    tracing::info!(url = %shown, ?timeout, "waiting for NATS JetStream");
    retry("connecting to NATS JetStream", timeout, || async {
        tokio::time::timeout(attempt_timeout, attempt(url, attempt_timeout))
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {attempt_timeout:?}")))
    })
    .await
    .map_err(|e| InitError::Unreachable {
        url: shown,
        timeout,
        reason: e.to_string(),
    })
}

async fn attempt(url: &str, timeout: Duration) -> Result<jetstream::Context, String> {
    let client = ConnectOptions::new()
        .name("nis-initializer")
        .connection_timeout(timeout)
        .connect(url)
        .await
        .map_err(|e| e.to_string())?;
    let jetstream = jetstream::new(client);
    match jetstream.query_account().await {
        Ok(_) => Ok(jetstream),
        // An answer this client cannot read is still an answer: NATS 2.9 leaves out
        // `reserved_memory`/`reserved_storage`, which async-nats 0.51 requires. Refusals
        // (JetStream off for the account, no cluster leader yet) come as `JetStream` errors.
        Err(e) if e.kind() == AccountErrorKind::Other => Ok(jetstream),
        Err(e) => Err(format!("JetStream does not answer: {e}")),
    }
}

/// `url` without its password or token, for messages (`nats://user:***@host:4222`).
pub(crate) fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rsplit_once('@') {
        None => url.to_owned(),
        Some((user_info, _)) => {
            let user = match user_info.split_once(':') {
                Some((user, _)) => format!("{user}:***"),
                None => "***".to_owned(),
            };
            format!("{scheme}://{user}@{}", &rest[user_info.len() + 1..])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_not_shown() {
        assert_eq!(redacted("nats://127.0.0.1:4222"), "nats://127.0.0.1:4222");
        assert_eq!(
            redacted("nats://nis:hunter2@nats:4222"),
            "nats://nis:***@nats:4222"
        );
        assert_eq!(
            redacted("tls://s3cr3tt0ken@nats:4222"),
            "tls://***@nats:4222"
        );
        assert_eq!(redacted("nats:4222"), "nats:4222");
    }
}

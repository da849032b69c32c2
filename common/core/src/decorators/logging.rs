//! One log line per request, with its request id, transport, operation, outcome and duration.

use std::time::Instant;

use super::around::{Around, Aspect};
use crate::{Context, Error};

/// Logs every call: `info` when it succeeds or the caller erred, `error` when the server failed.
#[derive(Debug, Clone, Copy, Default)]
pub struct Logging;

/// A service whose every call is logged.
pub type Logged<S> = Around<S, Logging>;

impl Aspect for Logging {
    async fn around<T: Send>(
        &self,
        service: &'static str,
        ctx: &Context,
        operation: &'static str,
        call: impl Future<Output = Result<T, Error>> + Send,
    ) -> Result<T, Error> {
        let started = Instant::now();
        let outcome = call.await;
        let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
        let request_id = ctx.request_id.as_str();
        let transport = ctx.transport.as_str();
        match &outcome {
            Ok(_) => tracing::info!(
                service,
                request_id,
                transport,
                operation,
                elapsed_ms,
                outcome = "ok",
                "request handled"
            ),
            Err(e) if e.is_server_fault() => tracing::error!(
                service, request_id, transport, operation, elapsed_ms, outcome = "error",
                code = e.code(), error = %e.chain(), "request failed"
            ),
            Err(e) => tracing::info!(
                service, request_id, transport, operation, elapsed_ms, outcome = "error",
                code = e.code(), error = %e.chain(), "request rejected"
            ),
        }
        outcome
    }
}

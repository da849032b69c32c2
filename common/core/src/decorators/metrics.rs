//! Request counts and latencies by service, transport, operation and outcome.

use std::time::Instant;

use super::around::{Around, Aspect};
use crate::{
    Context, Error,
    metric_names::{REQUEST_DURATION, REQUESTS_TOTAL},
};

/// Records `nis_requests_total` (with an extra `code` label: `ok` or the error code) and
/// `nis_request_duration_seconds`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Metrics;

/// A service whose every call is measured.
pub type Metered<S> = Around<S, Metrics>;

impl Aspect for Metrics {
    async fn around<T: Send>(
        &self,
        service: &'static str,
        ctx: &Context,
        operation: &'static str,
        call: impl Future<Output = Result<T, Error>> + Send,
    ) -> Result<T, Error> {
        let started = Instant::now();
        let outcome = call.await;
        let outcome_label = if outcome.is_ok() { "ok" } else { "error" };
        let labels = [
            ("service", service),
            ("transport", ctx.transport.as_str()),
            ("operation", operation),
            ("outcome", outcome_label),
        ];
        // `code` tells the caller's mistakes (not_found, validation_failed, ...) from the
        // server's (internal, unavailable), so alerts can page on the latter only.
        let code = outcome.as_ref().err().map_or("ok", Error::code);
        let counted = [labels[0], labels[1], labels[2], labels[3], ("code", code)];
        metrics::counter!(REQUESTS_TOTAL, &counted).increment(1);
        metrics::histogram!(REQUEST_DURATION, &labels).record(started.elapsed().as_secs_f64());
        outcome
    }
}

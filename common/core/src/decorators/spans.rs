//! The use-case span of a call, for distributed traces (docs/behaviour.md §7, "Traces"): one
//! span per operation of the core, inside the transport's span, so a trace shows the use case
//! and, under it, the cache and the store. Only for calls that are part of a trace (their
//! [`Context`] carries one): with traces off nothing is created.

use tracing::Instrument as _;

use super::around::{Around, Aspect};
use crate::{Context, Error};

/// Runs every call of a traced request in a span named `{service} {operation}`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Spans;

/// A service whose every traced call has a span.
pub type Spanned<S> = Around<S, Spans>;

/// The trace id of a W3C `traceparent` (`00-<trace id>-<span id>-<flags>`).
fn trace_id(traceparent: &str) -> Option<&str> {
    traceparent.split('-').nth(1)
}

impl Aspect for Spans {
    async fn around<T: Send>(
        &self,
        service: &'static str,
        ctx: &Context,
        operation: &'static str,
        call: impl Future<Output = Result<T, Error>> + Send,
    ) -> Result<T, Error> {
        let Some(traceparent) = &ctx.trace_context else {
            return call.await;
        };
        // `trace_id` keeps the log lines written inside (a cache or store warning) joined to
        // the trace.
        let span = tracing::info_span!(
            "use case",
            otel.name = %format_args!("{service} {operation}"),
            otel.kind = "internal",
            nis.service = service,
            nis.operation = operation,
            nis.transport = ctx.transport.as_str(),
            trace_id = trace_id(traceparent),
        );
        call.instrument(span).await
    }
}

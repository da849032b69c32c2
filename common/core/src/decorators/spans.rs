//! The use-case span of a call, for distributed traces (docs/behaviour.md §7, "Traces"): one
//! span per operation of the core, inside the transport's span, so a trace shows the use case
//! and, under it, the cache and the store. Only for calls that are part of a sampled trace
//! ([`trace::child`]): for the others nothing is created.

use tracing::Instrument as _;

use super::around::{Around, Aspect};
use crate::{Context, Error, trace};

/// Runs every traced call in a span named `{service} {operation}`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Spans;

/// A service whose every traced call has a span.
pub type Spanned<S> = Around<S, Spans>;

impl Aspect for Spans {
    async fn around<T: Send>(
        &self,
        service: &'static str,
        ctx: &Context,
        operation: &'static str,
        call: impl Future<Output = Result<T, Error>> + Send,
    ) -> Result<T, Error> {
        let span = trace::child(|| {
            tracing::info_span!(
                target: trace::TARGET,
                "use case",
                otel.name = %format_args!("{service} {operation}"),
                otel.kind = "internal",
                nis.service = service,
                nis.operation = operation,
                nis.transport = ctx.transport.as_str(),
            )
        });
        call.instrument(span).await
    }
}

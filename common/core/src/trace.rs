//! Which spans become trace spans (docs/behaviour.md §7, "Traces").
//!
//! Whether a request is traced is decided once, where it enters the process (the transport
//! adapters, through `nis_runtime::traces`): only a sampled request gets spans of target
//! [`TARGET`], the only ones exported, and under them, for its log lines, one span of target
//! [`LOG_TARGET`] that names the trace. Everything below — the use case, the cache, the
//! database, a peer call — asks [`child`] for its span, which is made only inside a traced
//! request; an unsampled request (nine in ten at the default ratio of production) builds no
//! span data at all, so it costs what it cost before traces existed.
//!
//! The exported spans stay out of the log lines (their attributes would make every line
//! longer, and the JSON log format re-encodes a span's fields whenever one is added): what a
//! log line needs of the trace, its `trace_id` and `span_id`, is in the [`LOG_TARGET`] span.

use tracing::Span;

/// The target of every span exported as part of a trace.
pub const TARGET: &str = "nis::trace";

/// The target of the span that carries a traced request's `trace_id` and `span_id` into its
/// log lines; not exported.
pub const LOG_TARGET: &str = "nis::trace::log";

/// Whether the work being done is part of a sampled trace (the current span is one of its).
pub fn in_trace() -> bool {
    tracing::dispatcher::get_default(|dispatch| {
        dispatch
            .current_span()
            .metadata()
            .is_some_and(|m| m.target() == TARGET || m.target() == LOG_TARGET)
    })
}

/// The span `make` builds (of target [`TARGET`]) when the work being done is part of a
/// sampled trace; a disabled span otherwise.
pub fn child(make: impl FnOnce() -> Span) -> Span {
    if in_trace() { make() } else { Span::none() }
}

/// The client span of one database call (OpenTelemetry's database conventions), with the
/// database system (`postgresql`, `mongodb`, `redis`): named `{operation} {collection}` (e.g.
/// `SELECT students`), or `{operation}` for a call on no collection (a Redis `MGET`).
pub fn database(system: &'static str, operation: &'static str, collection: Option<&str>) -> Span {
    child(|| match collection {
        Some(collection) => tracing::info_span!(
            target: TARGET,
            "database",
            otel.name = %format_args!("{operation} {collection}"),
            otel.kind = "client",
            db.system.name = system,
            db.operation.name = operation,
            db.collection.name = collection,
        ),
        None => tracing::info_span!(
            target: TARGET,
            "database",
            otel.name = operation,
            otel.kind = "client",
            db.system.name = system,
            db.operation.name = operation,
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_inside_a_trace_span_are_child_spans_made() {
        let subscriber = tracing_subscriber::registry();
        tracing::subscriber::with_default(subscriber, || {
            assert!(!in_trace());
            let request = tracing::info_span!("http", request_id = "r1");
            request.in_scope(|| {
                assert!(!in_trace(), "a request that was not sampled");
                assert!(database("postgresql", "SELECT", Some("students")).is_disabled());
            });
            let traced = tracing::info_span!(target: TARGET, "http");
            let logs = tracing::info_span!(target: LOG_TARGET, parent: &traced, "http");
            for span in [traced, logs] {
                span.in_scope(|| {
                    assert!(in_trace());
                    let query = database("postgresql", "SELECT", Some("students"));
                    assert!(!query.is_disabled());
                    assert_eq!(query.metadata().map(|m| m.target()), Some(TARGET));
                    query.in_scope(|| assert!(in_trace(), "and below it too"));
                });
            }
        });
    }
}

//! Request ids: taken from `x-request-id` when the caller sent a sane one, made otherwise;
//! returned in the response and carried in the tracing span and the service [`Context`]. For a
//! traced request (docs/behaviour.md §7, "Traces"), the span is also the trace's HTTP server
//! span: it continues the caller's W3C `traceparent`, and its `trace_id` and `span_id` are in
//! every log line written inside it.

use actix_web::{
    Error as ActixError, HttpMessage as _, HttpRequest,
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    http::header::{HeaderName, HeaderValue},
    middleware::Next,
};
use nis_runtime::traces::Entry;
use tracing::Instrument as _;

use nis_core::{
    Context, Transport,
    request_id::{HEADER as REQUEST_ID_HEADER, sanitize},
};

/// What the middleware found out about a request, for [`context`].
#[derive(Clone)]
struct RequestId {
    id: String,
    /// The request span's `traceparent` (traces on).
    traceparent: Option<String>,
}

pub(super) async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, ActixError> {
    let id = sanitize(
        req.headers()
            .get(REQUEST_ID_HEADER)
            .and_then(|v| v.to_str().ok()),
    );
    // The span of the log lines, and for a traced request the exported server span above it.
    let (span, traced, traceparent) = match enter_trace(&req) {
        Entry::Sampled(sampled) => {
            let span = tracing::info_span!(
                target: nis_core::trace::LOG_TARGET,
                parent: &sampled.span,
                "http",
                request_id = %id,
                method = %req.method(),
                path = %req.path(),
                trace_id = sampled.trace_id(),
                span_id = sampled.span_id(),
            );
            (span, Some(sampled.span), Some(sampled.traceparent))
        }
        untraced => {
            let span = tracing::info_span!("http", request_id = %id, method = %req.method(), path = %req.path());
            (span, None, untraced.into_parts().1)
        }
    };
    req.extensions_mut().insert(RequestId {
        id: id.clone(),
        traceparent,
    });
    // Both entered, the trace span first: the spans made inside find it as their parent.
    let trace = traced.clone().unwrap_or_else(tracing::Span::none);
    let mut response = next.call(req).instrument(span).instrument(trace).await?;
    if let Some(traced) = traced {
        name_after_route(&traced, &response);
        traced.record("http.response.status_code", response.status().as_u16());
    }
    if let Ok(value) = HeaderValue::from_str(&id) {
        response
            .headers_mut()
            .insert(HeaderName::from_static(REQUEST_ID_HEADER), value);
    }
    Ok(response)
}

/// Whether the request is traced (traces on, and sampled): then its span is the HTTP server
/// span of the OpenTelemetry semantic conventions, continuing the caller's W3C trace context.
/// Its route is known once the request has been routed ([`name_after_route`]).
fn enter_trace(req: &ServiceRequest) -> Entry {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    nis_runtime::traces::enter(header("traceparent"), header("tracestate"), || {
        let method = req.method().as_str();
        tracing::info_span!(
            target: nis_core::trace::TARGET,
            "http",
            otel.kind = "server",
            otel.name = method,
            http.request.method = method,
            url.path = req.path(),
            http.route = tracing::field::Empty,
            http.response.status_code = tracing::field::Empty,
        )
    })
}

/// Names the HTTP server span of a routed request after its route's pattern
/// (`GET /api/students/{id}`: low-cardinality, unlike the path) and records the route. Read
/// from what routing left in the request, rather than by routing it a second time before.
fn name_after_route(traced: &tracing::Span, response: &ServiceResponse<impl MessageBody>) {
    use opentelemetry::trace::TraceContextExt as _;
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;

    let request = response.request();
    if let Some(route) = request.match_pattern() {
        traced
            .context()
            .span()
            .update_name(format!("{} {route}", request.method()));
        traced.record("http.route", route.as_str());
    }
}

/// The service context of an HTTP request.
pub fn context(req: &HttpRequest) -> Context {
    // Both found once by the middleware, not again per service call.
    match req.extensions().get::<RequestId>() {
        Some(r) => {
            Context::new(Transport::Http, r.id.clone()).with_trace_context(r.traceparent.clone())
        }
        None => Context::new(Transport::Http, sanitize(None)),
    }
}

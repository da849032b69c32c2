//! Request ids: taken from `x-request-id` when the caller sent a sane one, made otherwise;
//! returned in the response and carried in the tracing span and the service [`Context`]. With
//! traces on (docs/behaviour.md §7, "Traces"), the span is also the trace's HTTP server span:
//! it continues the caller's W3C `traceparent`, and its `trace_id` and `span_id` are in every
//! log line written inside it.

use actix_web::{
    Error as ActixError, HttpMessage as _, HttpRequest,
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    http::header::{HeaderName, HeaderValue},
    middleware::Next,
};
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
    let traced = nis_runtime::traces::enabled();
    let (span, traceparent) = if traced {
        server_span(&req, &id)
    } else {
        let span = tracing::info_span!("http", request_id = %id, method = %req.method(), path = %req.path());
        (span, None)
    };
    req.extensions_mut().insert(RequestId {
        id: id.clone(),
        traceparent,
    });
    let mut response = next.call(req).instrument(span.clone()).await?;
    if traced {
        span.record("http.response.status_code", response.status().as_u16());
    }
    if let Ok(value) = HeaderValue::from_str(&id) {
        response
            .headers_mut()
            .insert(HeaderName::from_static(REQUEST_ID_HEADER), value);
    }
    Ok(response)
}

/// The request's span when traces are on: the HTTP server span of the OpenTelemetry semantic
/// conventions, named after the route's pattern (known from the resource map before routing;
/// low-cardinality, unlike the path), continuing the caller's W3C trace context; with its own
/// `traceparent`.
fn server_span(req: &ServiceRequest, id: &str) -> (tracing::Span, Option<String>) {
    let route = req.match_pattern();
    let name = match &route {
        Some(route) => format!("{} {route}", req.method()),
        None => req.method().to_string(),
    };
    let span = tracing::info_span!(
        "http",
        request_id = %id,
        method = %req.method(),
        path = %req.path(),
        otel.kind = "server",
        otel.name = %name,
        http.request.method = %req.method(),
        url.path = %req.path(),
        http.route = route.as_deref(),
        http.response.status_code = tracing::field::Empty,
        trace_id = tracing::field::Empty,
        span_id = tracing::field::Empty,
    );
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let traceparent =
        nis_runtime::traces::continue_trace(&span, header("traceparent"), header("tracestate"));
    (span, traceparent)
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

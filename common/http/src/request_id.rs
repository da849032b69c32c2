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

#[derive(Clone)]
struct RequestId(String);

pub(super) async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, ActixError> {
    let id = sanitize(
        req.headers()
            .get(REQUEST_ID_HEADER)
            .and_then(|v| v.to_str().ok()),
    );
    req.extensions_mut().insert(RequestId(id.clone()));
    let traced = nis_runtime::traces::enabled();
    let span = if traced {
        server_span(&req, &id)
    } else {
        tracing::info_span!("http", request_id = %id, method = %req.method(), path = %req.path())
    };
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
/// low-cardinality, unlike the path), continuing the caller's W3C trace context.
fn server_span(req: &ServiceRequest, id: &str) -> tracing::Span {
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
    nis_runtime::traces::continue_trace(&span, |name| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    });
    span
}

/// The service context of an HTTP request.
pub fn context(req: &HttpRequest) -> Context {
    let id = req
        .extensions()
        .get::<RequestId>()
        .map_or_else(|| sanitize(None), |r| r.0.clone());
    Context::new(Transport::Http, id).with_trace_context(nis_runtime::traces::current_traceparent())
}

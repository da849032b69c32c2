//! Request ids: taken from `x-request-id` when the caller sent a sane one, made otherwise;
//! returned in the response and carried in the tracing span and the service [`Context`].

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
    let span =
        tracing::info_span!("http", request_id = %id, method = %req.method(), path = %req.path());
    let mut response = next.call(req).instrument(span).await?;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response
            .headers_mut()
            .insert(HeaderName::from_static(REQUEST_ID_HEADER), value);
    }
    Ok(response)
}

/// The service context of an HTTP request.
pub fn context(req: &HttpRequest) -> Context {
    let id = req
        .extensions()
        .get::<RequestId>()
        .map_or_else(|| sanitize(None), |r| r.0.clone());
    Context::new(Transport::Http, id)
}

//! The JSON error body and status of every error an HTTP request can end with: the core's
//! [`Error`]s and the conditions only HTTP has (a wrong method, a body too large or not JSON).

use actix_web::{
    HttpResponse, ResponseError,
    http::{StatusCode, header},
};
use nis_core::Error;
use serde_json::json;

/// Why an HTTP request failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// What the core (or a parse on the way to it) said.
    #[error(transparent)]
    Core(#[from] Error),
    /// A known path, another method; `allow` lists the methods it has (the `Allow` header).
    #[error("{message}")]
    MethodNotAllowed {
        /// For a person.
        message: String,
        /// The value of the `Allow` header, e.g. `GET, HEAD, OPTIONS`.
        allow: &'static str,
    },
    /// The request body is over the limit (bytes).
    #[error("request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// POST/PUT without `Content-Type: application/json`.
    #[error("the request body must be JSON (Content-Type: application/json)")]
    UnsupportedMediaType,
}

impl ApiError {
    /// The stable `snake_case` code of the error body.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Core(e) => e.code(),
            Self::MethodNotAllowed { .. } => "method_not_allowed",
            Self::PayloadTooLarge(_) => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Core(e) => match e {
                Error::BadRequest(_) => StatusCode::BAD_REQUEST,
                Error::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
                Error::NotFound(_) => StatusCode::NOT_FOUND,
                Error::Conflict(_) => StatusCode::CONFLICT,
                Error::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
                Error::KeyReused(_) => StatusCode::UNPROCESSABLE_ENTITY,
                Error::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
                Error::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            },
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let (message, details) = match self {
            Self::Core(e) => (e.public_message(), e.details()),
            other => (other.to_string(), &[][..]),
        };
        let mut error = json!({ "code": self.code(), "message": message });
        if !details.is_empty() {
            error["details"] = json!(details);
        }
        let mut response = HttpResponse::build(self.status_code());
        if let Self::MethodNotAllowed { allow, .. } = self {
            // RFC 9110 §15.5.6: a 405 says which methods the resource has.
            response.insert_header((header::ALLOW, *allow));
        }
        response.json(json!({ "error": error }))
    }
}

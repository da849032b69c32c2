//! The JSON error body and status of every [`Error`].

use actix_web::{HttpResponse, ResponseError, http::StatusCode};
use serde_json::json;

use crate::error::Error;

impl ResponseError for Error {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let Self::Internal(detail) = self {
            tracing::error!(error = %detail, "internal error");
        }
        let mut error = json!({ "code": self.code(), "message": self.public_message() });
        if !self.details().is_empty() {
            error["details"] = json!(self.details());
        }
        HttpResponse::build(self.status_code()).json(json!({ "error": error }))
    }
}

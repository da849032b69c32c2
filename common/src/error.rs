//! The one error type of nis. Each inbound edge maps it once: to an HTTP status and JSON body
//! (`http::error`), to a gRPC status (`grpc::status`).

use serde::Serialize;

/// A field that broke a rule, as shown in the `details` of an error body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// The field, e.g. `name` or `course_ids[2]`.
    pub field: String,
    /// What is wrong, for a person.
    pub message: String,
}

impl FieldError {
    /// A problem with `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Everything that can go wrong in a request, seen from its caller.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// Malformed JSON, malformed id, bad query parameter.
    #[error("{0}")]
    BadRequest(String),
    /// Field rules broken; one entry per field.
    #[error("validation failed: {}", summary(.0))]
    Validation(Vec<FieldError>),
    /// No such entity.
    #[error("{0}")]
    NotFound(String),
    /// A unique rule broken.
    #[error("{0}")]
    Conflict(String),
    /// A known path, another method.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// The request body is over the limit (bytes).
    #[error("request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// POST/PUT without `Content-Type: application/json`.
    #[error("the request body must be JSON (Content-Type: application/json)")]
    UnsupportedMediaType,
    /// A dependency needed for this request is down or too slow.
    #[error("{0}")]
    Unavailable(String),
    /// Anything else. The text is logged, never shown to the caller.
    #[error("internal error: {0}")]
    Internal(String),
}

fn summary(details: &[FieldError]) -> String {
    details
        .iter()
        .map(|d| format!("{}: {}", d.field, d.message))
        .collect::<Vec<_>>()
        .join("; ")
}

impl Error {
    /// The stable `snake_case` code of the error body.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "bad_request",
            Self::Validation(_) => "validation_failed",
            Self::NotFound(_) => "not_found",
            Self::Conflict(_) => "conflict",
            Self::MethodNotAllowed(_) => "method_not_allowed",
            Self::PayloadTooLarge(_) => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::Unavailable(_) => "unavailable",
            Self::Internal(_) => "internal",
        }
    }

    /// What the caller is told; internal details stay in the logs.
    pub fn public_message(&self) -> String {
        match self {
            Self::Internal(_) => "internal error".to_owned(),
            other => other.to_string(),
        }
    }

    /// Field details, for validation errors.
    pub fn details(&self) -> &[FieldError] {
        match self {
            Self::Validation(details) => details,
            _ => &[],
        }
    }

    /// True for failures of the server or its dependencies, false for the caller's mistakes.
    pub fn is_server_fault(&self) -> bool {
        matches!(self, Self::Unavailable(_) | Self::Internal(_))
    }

    /// A single-field validation error.
    pub fn invalid_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(field, message)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_details_are_not_public() {
        let e = Error::Internal("connection string postgres://secret".into());
        assert_eq!(e.public_message(), "internal error");
        assert_eq!(e.code(), "internal");
    }

    #[test]
    fn validation_message_names_the_fields() {
        let e = Error::Validation(vec![
            FieldError::new("name", "too short"),
            FieldError::new("course_ids[1]", "not an id"),
        ]);
        assert_eq!(
            e.public_message(),
            "validation failed: name: too short; course_ids[1]: not an id"
        );
    }
}

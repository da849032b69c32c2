//! The error of the core's use cases. Each inbound adapter maps it once: to an HTTP status and
//! JSON body (`nis-http`), to a gRPC status (`nis-grpc`); see docs/behaviour.md §3 and §4.

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

/// The cause of a server-side error, kept for the logs.
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong in a use case, seen from its caller. Transport-only conditions
/// (a wrong method, a body too large or not JSON) belong to the adapters, not here.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Malformed id, bad query parameter, malformed input.
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
    /// The entity is not at a version the caller expects (RFC 9110 `If-Match`): it changed
    /// since the caller read it, or is gone.
    #[error("{0}")]
    PreconditionFailed(String),
    /// An idempotency key used again with a different request.
    #[error("{0}")]
    KeyReused(String),
    /// A dependency needed for this request is down or too slow. `message` is shown to the
    /// caller; the cause is logged only.
    #[error("{message}")]
    Unavailable {
        /// For the caller.
        message: String,
        /// What the dependency said.
        #[source]
        cause: Option<Cause>,
    },
    /// Anything else. Neither the message nor the cause is shown to the caller.
    #[error("internal error: {message}")]
    Internal {
        /// For the logs.
        message: String,
        /// The underlying error.
        #[source]
        cause: Option<Cause>,
    },
}

fn summary(details: &[FieldError]) -> String {
    details
        .iter()
        .map(|d| format!("{}: {}", d.field, d.message))
        .collect::<Vec<_>>()
        .join("; ")
}

impl Error {
    /// A dependency is down or too slow.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::Unavailable {
            message: message.into(),
            cause: None,
        }
    }

    /// A dependency is down or too slow, as `cause` shows.
    pub fn unavailable_because(message: impl Into<String>, cause: impl Into<Cause>) -> Self {
        Self::Unavailable {
            message: message.into(),
            cause: Some(cause.into()),
        }
    }

    /// A failure of the server.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::Internal {
            message: message.into(),
            cause: None,
        }
    }

    /// A failure of the server, caused by `cause`.
    pub fn internal_because(message: impl Into<String>, cause: impl Into<Cause>) -> Self {
        Self::Internal {
            message: message.into(),
            cause: Some(cause.into()),
        }
    }

    /// The stable `snake_case` code of the error body.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "bad_request",
            Self::Validation(_) => "validation_failed",
            Self::NotFound(_) => "not_found",
            Self::Conflict(_) => "conflict",
            Self::PreconditionFailed(_) => "precondition_failed",
            Self::KeyReused(_) => "idempotency_key_reused",
            Self::Unavailable { .. } => "unavailable",
            Self::Internal { .. } => "internal",
        }
    }

    /// What the caller is told; internal details stay in the logs.
    pub fn public_message(&self) -> String {
        match self {
            Self::Internal { .. } => "internal error".to_owned(),
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
        matches!(self, Self::Unavailable { .. } | Self::Internal { .. })
    }

    /// A single-field validation error.
    pub fn invalid_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(field, message)])
    }

    /// The error and every cause under it, `: `-separated, for one log line.
    pub fn chain(&self) -> String {
        let mut text = self.to_string();
        let mut cause = std::error::Error::source(self);
        while let Some(next) = cause {
            text.push_str(": ");
            text.push_str(&next.to_string());
            cause = next.source();
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_details_are_not_public() {
        let e = Error::internal("connection string postgres://secret");
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

    #[test]
    fn causes_are_kept_for_the_logs_not_the_caller() {
        let io = std::io::Error::other("connection reset");
        let e = Error::unavailable_because("the database is unavailable", io);
        assert_eq!(e.public_message(), "the database is unavailable");
        assert_eq!(e.chain(), "the database is unavailable: connection reset");
    }
}

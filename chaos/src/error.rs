//! The campaign's own failures (a server that would not start, a database that could not be
//! made): a sentence saying what went wrong. Findings about the services are not errors; they
//! are failed checks in the report.

use std::fmt::{self, Display};

/// What went wrong, in words.
#[derive(Debug)]
pub struct Error(pub String);

impl Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

/// The campaign's result type.
pub type Result<T> = std::result::Result<T, Error>;

/// Says what was being done when a lower-level error happened.
pub trait Context<T> {
    /// The error, prefixed with `what`.
    fn context(self, what: impl Display) -> Result<T>;
}

impl<T, E: Display> Context<T> for std::result::Result<T, E> {
    fn context(self, what: impl Display) -> Result<T> {
        self.map_err(|e| Error(format!("{what}: {e}")))
    }
}

/// An error with this message.
pub fn fail<T>(message: impl Into<String>) -> Result<T> {
    Err(Error(message.into()))
}

//! The tools' error type, and its message with every cause: a transport error's own message
//! ("transport error", "error sending request") says little without its sources.

use std::error::Error;

/// The error of a tool's run: its message is printed on stderr.
pub type BoxError = Box<dyn Error + Send + Sync + 'static>;

/// `error` and its sources, joined with ": " (a source already quoted by the message before
/// it is left out).
pub fn chain(error: &(dyn Error + 'static)) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Outer(std::io::Error);

    impl std::fmt::Display for Outer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("transport error")
        }
    }

    impl Error for Outer {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn names_every_cause() {
        let error = Outer(std::io::Error::other("connection refused"));
        assert_eq!(chain(&error), "transport error: connection refused");
    }
}

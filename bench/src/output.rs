//! The one JSON line a tool writes on stdout: what `scripts/bench.sh` collects.

use std::io::Write as _;

use serde::Serialize;

use crate::BoxError;

/// Writes `value` as one line of JSON on stdout and flushes it.
pub fn emit<T: Serialize>(value: &T) -> Result<(), BoxError> {
    let line = serde_json::to_string(value)?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{line}")?;
    stdout.flush()?;
    Ok(())
}

/// Rounds milliseconds to microseconds, so the JSON shows no float noise.
pub fn round_ms(ms: f64) -> f64 {
    (ms * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_to_microseconds() {
        assert!((round_ms(1.234_567) - 1.235).abs() < 1e-12);
    }
}

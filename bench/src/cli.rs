//! What the tools' command lines share: clap parses them (each tool's `Config` derives
//! `clap::Parser`); these are the value parsers for whole numbers of seconds or milliseconds.

use std::time::Duration;

/// Whole seconds, 0 allowed.
pub fn seconds(text: &str) -> Result<Duration, String> {
    text.parse()
        .map(Duration::from_secs)
        .map_err(|e| format!("{text:?}: {e}"))
}

/// Whole milliseconds, at least 1.
pub fn millis(text: &str) -> Result<Duration, String> {
    match text.parse::<u64>() {
        Ok(0) => Err("must be at least 1".to_owned()),
        Ok(ms) => Ok(Duration::from_millis(ms)),
        Err(e) => Err(format!("{text:?}: {e}")),
    }
}

/// Whole seconds, at least 1.
pub fn positive_seconds(text: &str) -> Result<Duration, String> {
    match seconds(text)? {
        Duration::ZERO => Err("must be at least 1".to_owned()),
        duration => Ok(duration),
    }
}

/// A whole number, at least 1.
pub fn positive(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("must be at least 1".to_owned()),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("{text:?}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use clap::{Parser, error::ErrorKind};

    use super::*;

    #[derive(Debug, Parser)]
    struct Flags {
        #[arg(long)]
        url: String,
        #[arg(long, default_value = "200", value_parser = positive)]
        samples: usize,
    }

    fn parse(args: &[&str]) -> Result<Flags, clap::Error> {
        Flags::try_parse_from(std::iter::once("tool").chain(args.iter().copied()))
    }

    #[test]
    fn reads_both_forms() {
        let flags = parse(&["--url", "http://x", "--samples=5"]).expect("valid flags");
        assert_eq!(flags.url, "http://x");
        assert_eq!(flags.samples, 5);
    }

    #[test]
    fn defaults_apply_when_absent() {
        let flags = parse(&["--url", "u"]).expect("valid flags");
        assert_eq!(flags.samples, 200);
        assert!(parse(&[]).is_err());
    }

    #[test]
    fn refuses_mistakes() {
        assert!(parse(&["--url", "u", "--nope", "1"]).is_err());
        assert!(parse(&["--url"]).is_err());
        assert!(parse(&["--url", "a", "--url", "b"]).is_err());
        assert!(parse(&["--url", "u", "stray"]).is_err());
        assert_eq!(
            parse(&["--help"]).map(|_| ()).map_err(|e| e.kind()),
            Err(ErrorKind::DisplayHelp)
        );
        assert!(parse(&["--url", "u", "--samples", "0"]).is_err());
        assert!(parse(&["--url", "u", "--samples", "many"]).is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(seconds("0"), Ok(Duration::ZERO));
        assert!(positive_seconds("0").is_err());
        assert_eq!(millis("250"), Ok(Duration::from_millis(250)));
        assert!(millis("0").is_err());
    }
}

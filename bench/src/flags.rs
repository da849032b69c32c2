//! The command-line flags of the tools: `--name value` or `--name=value`, each name known and
//! given at most once. The workspace has no argument-parsing crate, and four small tools do not
//! need one.

use std::{collections::HashMap, fmt::Display, process::ExitCode, str::FromStr, time::Duration};

/// Why the flags could not be read.
#[derive(Debug, PartialEq, Eq)]
pub enum FlagError {
    /// `-h` or `--help` was given.
    Help,
    /// Anything else, with its message.
    Invalid(String),
}

impl Display for FlagError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Help => f.write_str("help requested"),
            Self::Invalid(message) => f.write_str(message),
        }
    }
}

/// The flags given, by name (without the leading `--`).
#[derive(Debug, Default)]
pub struct Flags {
    values: HashMap<String, String>,
}

impl Flags {
    /// Reads `args` (without the program name); every flag must be in `known` (names without
    /// `--`) and take a value.
    pub fn parse(
        args: impl IntoIterator<Item = String>,
        known: &[&str],
    ) -> Result<Self, FlagError> {
        let mut values = HashMap::new();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            if arg == "-h" || arg == "--help" {
                return Err(FlagError::Help);
            }
            let Some(flag) = arg.strip_prefix("--") else {
                return Err(FlagError::Invalid(format!("unexpected argument {arg:?}")));
            };
            let (name, value) = match flag.split_once('=') {
                Some((name, value)) => (name.to_owned(), value.to_owned()),
                None => {
                    let value = args
                        .next()
                        .ok_or_else(|| FlagError::Invalid(format!("--{flag} needs a value")))?;
                    (flag.to_owned(), value)
                }
            };
            if !known.contains(&name.as_str()) {
                return Err(FlagError::Invalid(format!("unknown flag --{name}")));
            }
            if values.insert(name.clone(), value).is_some() {
                return Err(FlagError::Invalid(format!("--{name} given twice")));
            }
        }
        Ok(Self { values })
    }

    /// The flags of this process, or the exit code after printing `usage` (on stderr; 0 for
    /// `--help`, 2 for a mistake).
    pub fn from_env(usage: &str, known: &[&str]) -> Result<Self, ExitCode> {
        Self::parse(std::env::args().skip(1), known).map_err(|e| usage_exit(usage, &e))
    }

    /// The value of `--name`, if given.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// The value of `--name`, which must be given.
    pub fn required(&self, name: &str) -> Result<&str, FlagError> {
        self.text(name)
            .ok_or_else(|| FlagError::Invalid(format!("--{name} is required")))
    }

    /// `--name` as a `T`, or `default` when not given.
    pub fn number<T>(&self, name: &str, default: T) -> Result<T, FlagError>
    where
        T: FromStr,
        T::Err: Display,
    {
        match self.text(name) {
            None => Ok(default),
            Some(text) => text
                .parse()
                .map_err(|e| FlagError::Invalid(format!("--{name} {text:?}: {e}"))),
        }
    }

    /// `--name` as a positive whole number, or `default` when not given.
    pub fn positive(&self, name: &str, default: u64) -> Result<u64, FlagError> {
        match self.number(name, default)? {
            0 => Err(FlagError::Invalid(format!("--{name} must be at least 1"))),
            n => Ok(n),
        }
    }

    /// `--name` (whole seconds, 0 allowed) as a duration.
    pub fn seconds(&self, name: &str, default: u64) -> Result<Duration, FlagError> {
        self.number(name, default).map(Duration::from_secs)
    }

    /// `--name` (whole milliseconds, at least 1) as a duration.
    pub fn millis(&self, name: &str, default: u64) -> Result<Duration, FlagError> {
        self.positive(name, default).map(Duration::from_millis)
    }
}

/// Prints `usage` (and the mistake) on stderr; the exit code that goes with it.
pub fn usage_exit(usage: &str, error: &FlagError) -> ExitCode {
    match error {
        FlagError::Help => {
            eprintln!("{usage}");
            ExitCode::SUCCESS
        }
        FlagError::Invalid(message) => {
            eprintln!("{message}\n{usage}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Flags, FlagError> {
        Flags::parse(args.iter().map(|s| (*s).to_owned()), &["url", "samples"])
    }

    #[test]
    fn reads_both_forms() {
        let flags = parse(&["--url", "http://x", "--samples=5"]).expect("valid flags");
        assert_eq!(flags.text("url"), Some("http://x"));
        assert_eq!(flags.positive("samples", 200), Ok(5));
    }

    #[test]
    fn defaults_apply_when_absent() {
        let flags = parse(&[]).expect("no flags");
        assert_eq!(flags.positive("samples", 200), Ok(200));
        assert!(flags.required("url").is_err());
    }

    #[test]
    fn refuses_mistakes() {
        assert!(parse(&["--nope", "1"]).is_err());
        assert!(parse(&["--url"]).is_err());
        assert!(parse(&["--url", "a", "--url", "b"]).is_err());
        assert!(parse(&["stray"]).is_err());
        assert_eq!(parse(&["--help"]).err(), Some(FlagError::Help));
        let zero = parse(&["--samples", "0"]).expect("parses");
        assert!(zero.positive("samples", 1).is_err());
        let word = parse(&["--samples", "many"]).expect("parses");
        assert!(word.positive("samples", 1).is_err());
    }
}

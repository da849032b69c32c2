//! The report of a run: figures, then one `PASS`/`FAIL` line per check, then the last line
//! `N passed, M failed` (docs/chaos.md, "Reading the report").

use std::fmt;

/// One check's verdict.
#[derive(Debug, Clone)]
pub struct Check {
    /// What was checked.
    pub name: String,
    /// Whether it held.
    pub passed: bool,
    /// Why, with the numbers.
    pub detail: String,
}

/// Figures and verdicts.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Lines of figures (what happened, how much, how fast).
    pub figures: Vec<String>,
    /// The verdicts, in order.
    pub checks: Vec<Check>,
}

impl Report {
    /// Adds a line of figures.
    pub fn figure(&mut self, line: impl Into<String>) {
        self.figures.push(line.into());
    }

    /// Adds a verdict.
    pub fn check(&mut self, name: &str, passed: bool, detail: impl Into<String>) {
        self.checks.push(Check {
            name: name.to_owned(),
            passed,
            detail: detail.into(),
        });
    }

    /// How many checks held.
    pub fn passed(&self) -> usize {
        self.checks.iter().filter(|c| c.passed).count()
    }

    /// How many checks failed.
    pub fn failed(&self) -> usize {
        self.checks.len() - self.passed()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for line in &self.figures {
            writeln!(f, "{line}")?;
        }
        for check in &self.checks {
            let verdict = if check.passed { "PASS" } else { "FAIL" };
            writeln!(f, "{verdict} {}: {}", check.name, check.detail)?;
        }
        write!(f, "{} passed, {} failed", self.passed(), self.failed())
    }
}

//! The results file `scripts/bench.sh` writes: one JSON object a line, told apart by `kind`.
//! Unknown fields are ignored, and so are lines of an unknown kind (with a note on stderr).

use serde::Deserialize;

/// One line of the results file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Line {
    Load(Load),
    Propagation(Propagation),
    Rss(Rss),
    Size(Size),
    Reconcile(Reconcile),
    Meta(Meta),
    #[serde(other)]
    Other,
}

/// One measured load run of a case.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Load {
    pub case: String,
    pub transport: String,
    pub round: Option<u32>,
    pub rps: f64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    /// The `baseline_name` of the baseline case this one is compared with, or the name of
    /// another case on the same transport.
    pub baseline: Option<String>,
    /// Set on the baseline cases themselves.
    pub baseline_name: Option<String>,
}

/// One round of `bench-propagation`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Propagation {
    pub round: Option<u32>,
    pub samples: u64,
    pub lost: u64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
}

/// The resident memory of a service, idle and after the load.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Rss {
    pub service: String,
    pub idle_kb: f64,
    pub after_kb: f64,
}

/// The size of a stripped binary.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Size {
    pub binary: String,
    pub stripped_bytes: f64,
}

/// One reconciliation run over the large relation, as `students reconcile` reported it, with
/// the peak resident memory of both services and of the command while it ran.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Reconcile {
    pub case: String,
    pub pairs: u64,
    pub buckets: u64,
    /// Pairs repaired on the side that ran it (students) and on the peer (courses).
    pub here: u64,
    pub peer: u64,
    pub bytes: u64,
    pub seconds: f64,
    pub students_kb: f64,
    pub courses_kb: f64,
    pub command_kb: f64,
}

/// A fact about the run (machine, versions, command, date).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Meta {
    pub key: String,
    pub value: String,
}

/// Every line of `text` (blank lines skipped); a malformed one is an error naming its number.
pub fn parse(text: &str) -> Result<Vec<Line>, String> {
    let mut lines = Vec::new();
    for (number, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let parsed: Line =
            serde_json::from_str(line).map_err(|e| format!("line {}: {e}", number + 1))?;
        if matches!(parsed, Line::Other) {
            eprintln!("bench-report: line {}: unknown kind, ignored", number + 1);
            continue;
        }
        lines.push(parsed);
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_kind_and_skips_unknown_ones() {
        let text = r#"
{"kind":"meta","key":"date","value":"today","extra":1}
{"kind":"load","case":"c","transport":"http","round":1,"rps":10.5,"p50_ms":0.4,"p99_ms":2.5,"baseline":null}
{"kind":"something-new","x":1}
{"kind":"size","binary":"students","stripped_bytes":11323880}
"#;
        let lines = parse(text).expect("valid");
        assert_eq!(lines.len(), 3);
        assert!(matches!(&lines[1], Line::Load(l) if l.baseline.is_none() && l.rps == 10.5));
    }

    #[test]
    fn names_the_broken_line() {
        let error = parse("{\"kind\":\"meta\",\"key\":\"a\",\"value\":\"b\"}\n{oops\n")
            .expect_err("malformed");
        assert!(error.starts_with("line 2:"), "{error}");
        let missing = parse(r#"{"kind":"load","case":"c"}"#).expect_err("no rps");
        assert!(missing.starts_with("line 1:"), "{missing}");
    }
}

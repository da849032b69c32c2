//! What the replicas' JSON logs say (docs/chaos.md, "Figures"): the propagation lag of every
//! applied link change (`link change applied`, field `lag_ms`, logged at debug by the
//! consumer) and the error lines, over every incarnation of every replica.

use std::{collections::BTreeMap, path::Path};

/// Figures read from the logs.
#[derive(Debug, Clone, Default)]
pub struct LogFigures {
    /// Every `lag_ms`, sorted.
    pub lags_ms: Vec<u64>,
    /// ERROR lines by message.
    pub errors: BTreeMap<String, usize>,
    /// WARN lines by message.
    pub warnings: BTreeMap<String, usize>,
}

/// A number that tracing's JSON format may write as a number or (for 128-bit integers) as a
/// string.
fn number(value: &serde_json::Value) -> Option<u64> {
    value
        .as_u64()
        .or_else(|| value.as_str().and_then(|s| s.parse().ok()))
}

/// Reads every `students-*.log` and `courses-*.log` in `dir`.
pub fn read(dir: &Path) -> LogFigures {
    let mut figures = LogFigures::default();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return figures;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if !(name.starts_with("students-") || name.starts_with("courses-"))
            || !name.ends_with(".log")
        {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        for line in text.lines() {
            let Ok(json) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            let message = json["fields"]["message"].as_str().unwrap_or_default();
            if message == "link change applied"
                && let Some(lag) = number(&json["fields"]["lag_ms"])
            {
                figures.lags_ms.push(lag);
            }
            match json["level"].as_str() {
                Some("ERROR") => *figures.errors.entry(message.to_owned()).or_default() += 1,
                Some("WARN") => *figures.warnings.entry(message.to_owned()).or_default() += 1,
                _ => {}
            }
        }
    }
    figures.lags_ms.sort_unstable();
    figures
}

/// The nearest-rank percentile `p` (0–100) of sorted `values`.
pub fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let values: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&values, 50.0), Some(50));
        assert_eq!(percentile(&values, 99.0), Some(99));
        assert_eq!(percentile(&values, 100.0), Some(100));
        assert_eq!(percentile(&[7], 99.0), Some(7));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn lags_are_read_as_numbers_or_strings() {
        assert_eq!(number(&serde_json::json!("20")), Some(20));
        assert_eq!(number(&serde_json::json!(21)), Some(21));
        assert_eq!(number(&serde_json::json!(null)), None);
    }
}

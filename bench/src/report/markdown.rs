//! The Markdown report: the run's facts, then one table per measurement — load cases (medians
//! and ranges over rounds, ratio to the baseline), link propagation, memory, binary sizes.
//! A section with no data is left out.

use std::fmt::Write as _;

use super::{
    input::Reconcile,
    summary::{LoadRow, PropagationSummary, RssRow, SizeRow, Spread, Summary},
};

/// The whole report.
pub fn render(summary: &Summary) -> String {
    let mut out = String::from("# nis benchmark\n\n");
    for (key, value) in &summary.meta {
        let _ = writeln!(out, "- **{key}**: {}", one_line(value));
    }
    if !summary.meta.is_empty() {
        out.push('\n');
    }
    if !summary.load.is_empty() {
        out.push_str(&load_table(&summary.load));
    }
    if let Some(propagation) = &summary.propagation {
        out.push_str(&propagation_table(propagation));
    }
    if !summary.rss.is_empty() {
        out.push_str(&rss_table(&summary.rss));
    }
    if !summary.sizes.is_empty() {
        out.push_str(&size_table(&summary.sizes));
    }
    if !summary.reconcile.is_empty() {
        out.push_str(&reconcile_table(&summary.reconcile));
    }
    out
}

/// The reconciliation runs: what each found and repaired, its time, the bytes between the
/// services and the peak memory.
pub fn reconcile_table(runs: &[Reconcile]) -> String {
    let mut out = String::from(
        "## Reconciliation\n\n`students reconcile` over 20,000 students, 4,000 courses and \
         200,000 linked pairs written into the stores; peak RSS sampled every 50 ms while it \
         ran.\n\n\
         | run | pairs checked | buckets differing | repaired on students | repaired on courses \
         | seconds | bytes exchanged | RSS MiB students / courses / command |\n\
         |---|--:|--:|--:|--:|--:|--:|--:|\n",
    );
    for r in runs {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {:.2} | {} | {:.1} / {:.1} / {:.1} |",
            cell(&r.case),
            thousands(r.pairs as f64),
            thousands(r.buckets as f64),
            thousands(r.here as f64),
            thousands(r.peer as f64),
            r.seconds,
            thousands(r.bytes as f64),
            r.students_kb / 1024.0,
            r.courses_kb / 1024.0,
            r.command_kb / 1024.0,
        );
    }
    out.push('\n');
    out
}

/// The load cases in the order they first appear.
pub fn load_table(rows: &[LoadRow]) -> String {
    let rounds = rows.iter().map(|r| r.rounds).max().unwrap_or(0);
    let mut out = format!(
        "## Load\n\nMedians over rounds (up to {rounds} per case); the last column is the \
         median req/s as a share of its baseline case's (for a traced read: of the same read \
         untraced).\n\n\
         | case | transport | req/s median | min–max | p99 ms median | min–max | vs baseline |\n\
         |---|---|--:|--:|--:|--:|--:|\n"
    );
    for row in rows {
        let (p99, p99_range) = match row.p99_ms {
            Some(p99) => (ms(p99.median), range(p99, ms)),
            None => ("—".to_owned(), "—".to_owned()),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {p99} | {p99_range} | {} |",
            cell(&row.case),
            cell(&row.transport),
            thousands(row.rps.median),
            range(row.rps, thousands),
            ratio(row),
        );
    }
    out.push('\n');
    out
}

/// The propagation rounds, then their medians and the total lost.
pub fn propagation_table(p: &PropagationSummary) -> String {
    let mut out = String::from(
        "## Link propagation\n\nFrom a student's PUT answer to the first read of the course \
         that lists it.\n\n\
         | round | samples | lost | p50 ms | p99 ms | max ms |\n|--:|--:|--:|--:|--:|--:|\n",
    );
    for (i, round) in p.rounds.iter().enumerate() {
        let number = round
            .round
            .map_or_else(|| (i + 1).to_string(), |r| r.to_string());
        let _ = writeln!(
            out,
            "| {number} | {} | {} | {} | {} | {} |",
            round.samples,
            round.lost,
            opt_ms(round.p50_ms),
            opt_ms(round.p99_ms),
            opt_ms(round.max_ms),
        );
    }
    let _ = writeln!(
        out,
        "| **median** | {} (total) | {} (total) | {} | {} | {} |\n",
        p.samples,
        p.lost,
        opt_ms(p.p50_ms),
        opt_ms(p.p99_ms),
        opt_ms(p.max_ms),
    );
    out
}

/// Resident memory per service.
pub fn rss_table(rows: &[RssRow]) -> String {
    let mut out =
        String::from("## Memory (RSS, MiB)\n\n| service | idle | after load |\n|---|--:|--:|\n");
    for row in rows {
        let _ = writeln!(
            out,
            "| {} | {:.1} | {:.1} |",
            cell(&row.service),
            row.idle_mib,
            row.after_mib
        );
    }
    out.push('\n');
    out
}

/// Stripped binary sizes.
pub fn size_table(rows: &[SizeRow]) -> String {
    let mut out = String::from("## Binary sizes (stripped, MiB)\n\n| binary | size |\n|---|--:|\n");
    for row in rows {
        let _ = writeln!(out, "| {} | {:.1} |", cell(&row.binary), row.mib);
    }
    out.push('\n');
    out
}

/// "62 %" for a case with a baseline, "—" otherwise.
pub fn ratio(row: &LoadRow) -> String {
    row.ratio
        .map_or_else(|| "—".to_owned(), |r| format!("{:.0} %", r * 100.0))
}

/// A whole number with thousands separators: 20800.4 → "20,800".
pub fn thousands(value: f64) -> String {
    if !value.is_finite() {
        return "—".to_owned();
    }
    let digits = format!("{:.0}", value.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if value < 0.0 && digits != "0" {
        out.insert(0, '-');
    }
    out
}

/// Milliseconds with two decimals.
pub fn ms(value: f64) -> String {
    format!("{value:.2}")
}

fn opt_ms(value: Option<f64>) -> String {
    value.map_or_else(|| "—".to_owned(), ms)
}

fn range(spread: Spread, format: fn(f64) -> String) -> String {
    format!("{}–{}", format(spread.min), format(spread.max))
}

/// A table cell: no pipe or line break can break the table.
fn cell(text: &str) -> String {
    one_line(text).replace('|', "\\|")
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::super::{input, summary::summarize, tests::FIXTURE};
    use super::*;

    #[test]
    fn formats_numbers() {
        assert_eq!(thousands(20_800.4), "20,800");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(1_234_567.0), "1,234,567");
        assert_eq!(thousands(0.2), "0");
        assert_eq!(ms(0.4), "0.40");
    }

    #[test]
    fn renders_the_fixture() {
        let report = render(&summarize(&input::parse(FIXTURE).expect("fixture parses")));
        assert!(report.contains("- **machine**: 2 cores\n"), "{report}");
        assert!(
            report.contains(
                "| students GET /{id} cached | http | 20,000 | 19,000–21,000 | 2.50 | 2.00–3.00 | 50 % |"
            ),
            "{report}"
        );
        assert!(
            report.contains(
                "| baseline redis GET | http | 40,000 | 40,000–50,000 | 1.10 | 1.00–1.20 | — |"
            ),
            "{report}"
        );
        assert!(
            report.contains("| students GET /{id} cached | grpc | 15,000 | 15,000–15,000 | 3.00 | 3.00–3.00 | — |"),
            "{report}"
        );
        assert!(
            report.contains("| **median** | 400 (total) | 3 (total) | 3.00 | 9.00 | 15.00 |"),
            "{report}"
        );
        assert!(report.contains("| students | 10.0 | 20.0 |"), "{report}");
        assert!(report.contains("| courses | 15.0 |"), "{report}");
        // Tables come in a fixed order.
        let at = |s: &str| report.find(s).expect(s);
        assert!(at("## Load") < at("## Link propagation"));
        assert!(at("## Link propagation") < at("## Memory"));
        assert!(at("## Memory") < at("## Binary sizes"));
        assert!(at("## Binary sizes") < at("## Reconciliation"));
        assert!(
            report.contains("| 200,000 agreeing pairs | 200,000 | 0 | 0 | 0 | 3.33 | 8,200 | 20.0 / 35.0 / 17.0 |"),
            "{report}"
        );
    }

    #[test]
    fn empty_sections_are_left_out_and_cells_escaped() {
        let report = render(&summarize(
            &input::parse(
                r#"{"kind":"load","case":"a|b","transport":"http","rps":1,"p99_ms":null}"#,
            )
            .expect("valid"),
        ));
        assert!(
            report.contains("| a\\|b | http | 1 | 1–1 | — | — | — |"),
            "{report}"
        );
        assert!(!report.contains("## Memory"));
    }
}

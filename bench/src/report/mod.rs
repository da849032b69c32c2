//! `bench-report`: turns the JSONL results of `scripts/bench.sh` ([`input`]) into a Markdown
//! report on stdout ([`summary`], [`markdown`]) and, with `--png`, a chart ([`chart`]). The
//! chart's text needs a font file; without it the PNG is skipped (said on stderr), not failed.

pub mod chart;
pub mod input;
pub mod markdown;
pub mod summary;

use std::path::{Path, PathBuf};

use crate::BoxError;

/// The chart's font unless `--font` names another.
pub const DEFAULT_FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

/// One report: the command line of `bench-report`.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "bench-report")]
pub struct Config {
    /// The JSON-lines results file of scripts/bench.sh.
    #[arg(long)]
    pub results: PathBuf,
    /// Where to draw the chart (none: no chart).
    #[arg(long)]
    pub png: Option<PathBuf>,
    /// The chart's font (Debian's fonts-dejavu-core by default).
    #[arg(long, default_value = DEFAULT_FONT)]
    pub font: PathBuf,
}

/// The Markdown report of the results file, after drawing the chart if asked for.
pub fn run(config: &Config) -> Result<String, BoxError> {
    let text = std::fs::read_to_string(&config.results)
        .map_err(|e| format!("{}: {e}", config.results.display()))?;
    let lines = input::parse(&text).map_err(|e| format!("{}: {e}", config.results.display()))?;
    let summary = summary::summarize(&lines);
    if let Some(png) = &config.png {
        draw_chart(&summary.load, png, &config.font)?;
    }
    Ok(markdown::render(&summary))
}

/// Draws the chart, or says on stderr why not when the font is missing or there is nothing to
/// draw.
fn draw_chart(rows: &[summary::LoadRow], png: &Path, font: &Path) -> Result<(), BoxError> {
    if rows.is_empty() {
        eprintln!("bench-report: no load case, no chart");
        return Ok(());
    }
    let bytes = match std::fs::read(font) {
        Ok(bytes) => bytes,
        Err(e) => {
            eprintln!(
                "bench-report: font {} unreadable ({e}): PNG skipped (apt-get install fonts-dejavu-core)",
                font.display()
            );
            return Ok(());
        }
    };
    // plotters keeps fonts for the life of the process; this one is read once per run.
    if !chart::register_font(Box::leak(bytes.into_boxed_slice())) {
        eprintln!(
            "bench-report: {} is not a usable font: PNG skipped",
            font.display()
        );
        return Ok(());
    }
    chart::draw(rows, png).map_err(|e| format!("{}: {e}", png.display()))?;
    eprintln!("bench-report: chart written to {}", png.display());
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A small results file: three rounds of a cached read against its Redis baseline, a
    /// gRPC case without baseline, a case whose baseline is missing, two propagation rounds,
    /// memory, sizes and facts.
    pub const FIXTURE: &str = include_str!("testdata/results.jsonl");

    fn temp_file(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("bench-report-{}-{name}", std::process::id()))
    }

    #[test]
    fn writes_the_report_and_a_png() {
        let results = temp_file("results.jsonl");
        std::fs::write(&results, FIXTURE).expect("temp file written");
        let png = temp_file("chart.png");
        let config = Config {
            results: results.clone(),
            png: Some(png.clone()),
            font: DEFAULT_FONT.into(),
        };
        let report = run(&config).expect("report");
        assert!(report.starts_with("# nis benchmark"));
        if Path::new(DEFAULT_FONT).exists() {
            let bytes = std::fs::read(&png).expect("PNG written");
            assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
            let _ = std::fs::remove_file(&png);
        }
        let _ = std::fs::remove_file(&results);
    }

    #[test]
    fn a_missing_font_skips_the_png_only() {
        let results = temp_file("results-nofont.jsonl");
        std::fs::write(&results, FIXTURE).expect("temp file written");
        let png = temp_file("nofont.png");
        let config = Config {
            results: results.clone(),
            png: Some(png.clone()),
            font: "/nonexistent/font.ttf".into(),
        };
        assert!(run(&config).is_ok());
        assert!(!png.exists());
        let _ = std::fs::remove_file(&results);
    }
}

//! `bench-report --results FILE [--png FILE] [--font FILE]`: the Markdown report of a JSONL
//! results file on stdout and, with `--png`, a chart (see `bench::report`). Exits 2 on a flag
//! mistake, 1 if the results cannot be read or the chart cannot be written (a missing font
//! only skips the chart).

use std::process::ExitCode;

use bench::{error::chain, report};
use clap::Parser as _;

fn main() -> ExitCode {
    let config = report::Config::parse();
    match report::run(&config) {
        Ok(markdown) => {
            print!("{markdown}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bench-report: {}", chain(&*e));
            ExitCode::FAILURE
        }
    }
}

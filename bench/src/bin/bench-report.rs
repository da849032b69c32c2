//! `bench-report --results FILE [--png FILE] [--font FILE]`: the Markdown report of a JSONL
//! results file on stdout and, with `--png`, a chart (see `bench::report`). Exits 2 on a flag
//! mistake, 1 if the results cannot be read or the chart cannot be written (a missing font
//! only skips the chart).

use std::process::ExitCode;

use bench::{error::chain, flags::Flags, report};

fn main() -> ExitCode {
    let flags = match Flags::from_env(report::USAGE, report::FLAGS) {
        Ok(flags) => flags,
        Err(code) => return code,
    };
    let config = match report::Config::from_flags(&flags) {
        Ok(config) => config,
        Err(e) => return bench::flags::usage_exit(report::USAGE, &e),
    };
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

//! `bench-propagation --students URL --courses URL [--samples N] [--timeout-ms MS]`: the
//! latency of a link change from students to courses (see `bench::propagation`). Prints one
//! JSON line: `{"samples":N,"lost":L,"p50_ms":f64,"p99_ms":f64,"max_ms":f64}`. What it created
//! is deleted at the end, also on SIGINT/SIGTERM (then it exits 130 without a result).
//! Exits 2 on a flag mistake, 1 if the setup fails.

use std::process::ExitCode;

use clap::Parser as _;

use bench::{
    BoxError,
    error::chain,
    output,
    propagation::{self, Api, Config, Fixture},
    signals,
};

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    let api = match Api::new(&config.students, &config.courses, propagation::CALL_TIMEOUT) {
        Ok(api) => api,
        Err(e) => {
            eprintln!("bench-propagation: {}", chain(&*e));
            return ExitCode::FAILURE;
        }
    };
    let mut fixture = Fixture::default();
    let outcome = tokio::select! {
        outcome = run(&api, &config, &mut fixture) => Some(outcome),
        stopped = signals::stopped() => {
            if let Err(e) = stopped {
                eprintln!("bench-propagation: {}", chain(&*e));
            }
            None
        }
    };
    eprintln!("bench-propagation: deleting what it created");
    fixture.remove(&api).await;
    match outcome {
        Some(Ok(())) => ExitCode::SUCCESS,
        Some(Err(e)) => {
            eprintln!("bench-propagation: {}", chain(&*e));
            ExitCode::FAILURE
        }
        None => {
            eprintln!("bench-propagation: interrupted");
            ExitCode::from(130)
        }
    }
}

/// Creates the fixture, measures and prints the result.
async fn run(api: &Api, config: &Config, fixture: &mut Fixture) -> Result<(), BoxError> {
    fixture
        .create(api, config.samples)
        .await
        .map_err(|e| format!("setup: {}", chain(&*e)))?;
    eprintln!(
        "bench-propagation: 1 student and {} courses created; measuring",
        fixture.courses.len()
    );
    let outcome = propagation::measure(api, fixture, config.timeout).await?;
    output::emit(&outcome)
}

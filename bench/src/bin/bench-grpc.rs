//! `bench-grpc --url URL --kind students|courses --id ID [--connections N] [--duration-secs S]
//! [--warmup-secs S] [--timeout-ms MS] [--threads N]`: unary `Get` load over N HTTP/2
//! connections (see `bench::grpc_load`). Prints one JSON line:
//! `{"requests":N,"errors":E,"rps":f64,"p50_ms":f64,"p99_ms":f64,"max_ms":f64}`.
//! Exits 2 on a flag mistake, 1 if it cannot connect or the first call fails.

use std::process::ExitCode;

use bench::{BoxError, error::chain, grpc_load, output};
use clap::Parser as _;

fn main() -> ExitCode {
    let config = grpc_load::Config::parse();
    match run(&config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-grpc: {}", chain(&*e));
            ExitCode::FAILURE
        }
    }
}

/// Runs the load on a runtime of `config.threads` threads and prints the result.
fn run(config: &grpc_load::Config) -> Result<(), BoxError> {
    let runtime = if config.threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(config.threads)
            .enable_all()
            .build()?
    };
    let outcome = runtime.block_on(grpc_load::run(config))?;
    output::emit(&outcome)
}

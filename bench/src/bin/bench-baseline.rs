//! `bench-baseline --listen ADDR --redis-url URL --database-url URL [--workers N]
//! [--timeout-ms MS]`: the bare actix-web server the services are compared with (see
//! `bench::baseline`). Prints nothing on stdout; serves until SIGINT or SIGTERM. Exits 2 on a
//! flag mistake, 1 if it cannot connect or listen.

use std::process::ExitCode;

use bench::{baseline, error::chain};
use clap::Parser as _;

#[tokio::main]
async fn main() -> ExitCode {
    let config = baseline::Config::parse();
    match baseline::serve(&config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-baseline: {}", chain(&*e));
            ExitCode::FAILURE
        }
    }
}

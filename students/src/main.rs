//! `students [serve]` runs the service; `students migrate` applies the migrations and exits.

use std::process::ExitCode;

use nis_runtime::config::Env;
use nis_server::cli::{self, Command};
use students::{app, config::Config};

#[tokio::main]
async fn main() -> ExitCode {
    let command = match cli::command("students") {
        Ok(command) => command,
        Err(usage) => return usage,
    };
    let config = match cli::configured("students", Config::from_env(Env::from_process()), |c| {
        c.service.log_format
    }) {
        Ok(config) => config,
        Err(invalid) => return invalid,
    };
    match command {
        Command::Serve => cli::serve("students", app::start(&config)).await,
        Command::Migrate => cli::migrate("students", app::prepare_store(&config)).await,
    }
}

//! `courses [serve]` runs the service; `courses migrate` creates the indexes and exits.

use std::process::ExitCode;

use courses::{app, config::Config};
use nis_runtime::config::Env;
use nis_server::cli::{self, Command};

#[tokio::main]
async fn main() -> ExitCode {
    let command = match cli::command("courses") {
        Ok(command) => command,
        Err(usage) => return usage,
    };
    let config = match cli::configured("courses", Config::from_env(Env::from_process()), |c| {
        c.service.log_format
    }) {
        Ok(config) => config,
        Err(invalid) => return invalid,
    };
    match command {
        Command::Serve => cli::serve("courses", app::start(&config)).await,
        Command::Migrate => cli::migrate("courses", app::prepare_store(&config)).await,
    }
}

//! `students [serve]` runs the service; `students migrate` applies the migrations and exits;
//! `students reconcile [--dry-run]` repairs the relation with courses once.

use nis_runtime::config::Env;
use students::{app, config::Config, domain::Student};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let config = Config::from_env(Env::from_process());
    nis_server::cli::main::<Student, _, _>("students", config, app::start, app::prepare_store).await
}

//! `students [serve]` runs the service; `students migrate` applies the migrations and exits.

use nis_runtime::config::Env;
use students::{app, config::Config};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let config = Config::from_env(Env::from_process());
    nis_server::cli::main("students", config, app::start, app::prepare_store).await
}

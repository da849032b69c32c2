//! `courses [serve]` runs the service; `courses migrate` creates the indexes and exits.

use courses::{app, config::Config};
use nis_runtime::config::Env;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let config = Config::from_env(Env::from_process());
    nis_server::cli::main("courses", config, app::start, app::prepare_store).await
}

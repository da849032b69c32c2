//! `courses [serve]` runs the service; `courses migrate` creates the indexes and exits;
//! `courses reconcile [--dry-run]` repairs the relation with students once.

use courses::{app, config::Config, domain::Course};
use nis_runtime::config::Env;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let config = Config::from_env(Env::from_process());
    nis_server::cli::main::<Course, _, _>("courses", config, app::start, app::prepare_store).await
}

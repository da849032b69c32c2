//! `courses [serve]` runs the service; `courses migrate` creates the indexes and exits.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    common::cli::main::<courses::config::Config>().await
}

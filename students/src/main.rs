//! `students [serve]` runs the service; `students migrate` applies the migrations and exits.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    common::cli::main::<students::config::Config>().await
}

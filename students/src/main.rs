//! `students [serve]` runs the service; `students migrate` applies the migrations and exits
//! (for a Kubernetes Job).

use std::process::ExitCode;

use common::{config::Env, telemetry};
use students::{app, config::Config};

#[tokio::main]
async fn main() -> ExitCode {
    let config = match Config::from_env(Env::from_process()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("students: {e}");
            return ExitCode::from(2);
        }
    };
    telemetry::init_tracing(config.service.log_format);
    match std::env::args().nth(1).as_deref() {
        None | Some("serve") => match app::start(&config).await {
            Ok(running) => {
                running.run_until_signalled().await;
                ExitCode::SUCCESS
            }
            Err(e) => {
                tracing::error!(error = %e, "students could not start");
                ExitCode::FAILURE
            }
        },
        Some("migrate") => match app::migrate(&config).await {
            Ok(_) => {
                tracing::info!("migrations applied");
                ExitCode::SUCCESS
            }
            Err(e) => {
                tracing::error!(error = %e, "migrations failed");
                ExitCode::FAILURE
            }
        },
        Some(other) => {
            eprintln!("students: unknown command `{other}` (expected `serve` or `migrate`)");
            ExitCode::from(2)
        }
    }
}

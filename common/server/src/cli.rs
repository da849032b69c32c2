//! The command line every service shares: `<service> [serve]` runs it, `<service> migrate`
//! prepares its store and exits (for a Kubernetes Job or a compose one-shot), `<service>
//! healthcheck` exits 0 when the running service's `/readyz` answers ready (a container
//! healthcheck). Exit codes: 0 after a clean stop, 1 when it cannot start (or is not
//! healthy), 2 for a configuration or usage error.

use std::process::ExitCode;

use nis_runtime::{
    config::{ConfigError, ServiceSettings},
    lifecycle::StartError,
    telemetry::{self, LogFormat, LogGuard},
};

use crate::Running;

/// What the command line asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Command {
    /// Run the service until a signal.
    Serve,
    /// Prepare the store, then exit.
    Migrate,
    /// Ask the running service whether it is ready.
    Healthcheck,
}

/// Reads the command from the process arguments; a usage error is named on stderr.
fn command(program: &str) -> Result<Command, ExitCode> {
    match std::env::args().nth(1).as_deref() {
        None | Some("serve") => Ok(Command::Serve),
        Some("migrate") => Ok(Command::Migrate),
        Some("healthcheck") => Ok(Command::Healthcheck),
        Some(other) => {
            eprintln!(
                "{program}: unknown command `{other}` (expected `serve`, `migrate` or `healthcheck`)"
            );
            Err(ExitCode::from(2))
        }
    }
}

/// The configuration, or exit code 2 with every problem named on stderr. Starts logging in
/// the format the configuration asks for (the guard keeps the log writer until exit).
fn configured<C>(
    program: &str,
    config: Result<C, ConfigError>,
    log_format: impl FnOnce(&C) -> LogFormat,
) -> Result<(C, LogGuard), ExitCode> {
    match config {
        Ok(config) => {
            let logs = telemetry::init_tracing(log_format(&config));
            Ok((config, logs))
        }
        Err(e) => {
            eprintln!("{program}: {e}");
            Err(ExitCode::from(2))
        }
    }
}

/// Awaits `started`, then runs until SIGTERM or SIGINT.
async fn serve(
    program: &str,
    started: impl Future<Output = Result<Running, StartError>>,
) -> ExitCode {
    match started.await {
        Ok(running) => {
            running.run_until_signalled().await;
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!(error = %e, "{program} could not start");
            ExitCode::FAILURE
        }
    }
}

/// Awaits `prepared` (migrations, indexes) and exits.
async fn migrate<T>(
    program: &str,
    prepared: impl Future<Output = Result<T, StartError>>,
) -> ExitCode {
    match prepared.await {
        Ok(_) => {
            tracing::info!("{program}: store prepared");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!(error = %e, "{program}: preparing the store failed");
            ExitCode::FAILURE
        }
    }
}

/// Exit 0 when the service listening on `http_addr` is ready; otherwise says why on stderr.
async fn healthcheck(program: &str, http_addr: std::net::SocketAddr) -> ExitCode {
    match crate::healthcheck::check(http_addr).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{program}: not healthy: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The `main` of a service program: reads the command, takes `config` (exit 2, naming every
/// problem, if it is invalid), starts logging, then serves with `start` or prepares the store
/// with `migrate`.
pub async fn main<C, T>(
    program: &str,
    config: Result<C, ConfigError>,
    start: impl AsyncFnOnce(&C) -> Result<Running, StartError>,
    migrate: impl AsyncFnOnce(&C) -> Result<T, StartError>,
) -> ExitCode
where
    C: AsRef<ServiceSettings>,
{
    let command = match command(program) {
        Ok(command) => command,
        Err(usage) => return usage,
    };
    if command == Command::Healthcheck {
        // Quiet on success and without logging set up: a container runtime runs it every few
        // seconds and keeps only its last output.
        return match config {
            Ok(config) => healthcheck(program, config.as_ref().http_addr).await,
            Err(e) => {
                eprintln!("{program}: {e}");
                ExitCode::from(2)
            }
        };
    }
    let (config, _logs) = match configured(program, config, |c| c.as_ref().log_format) {
        Ok(configured) => configured,
        Err(invalid) => return invalid,
    };
    match command {
        Command::Serve => serve(program, start(&config)).await,
        Command::Migrate => self::migrate(program, migrate(&config)).await,
        Command::Healthcheck => unreachable!("answered before logging starts"),
    }
}

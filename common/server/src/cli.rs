//! The command line every service shares: `<service> [serve]` runs it, `<service> migrate`
//! prepares its store and exits (for a Kubernetes Job or a compose one-shot), `<service>
//! healthcheck` exits 0 when the running service's `/readyz` answers ready (a container
//! healthcheck), `<service> reconcile [--dry-run]` runs one reconciliation with the other
//! service and prints what it found (docs/behaviour.md §5.10). Exit codes: 0 after a clean
//! stop (or run), 1 when it cannot start, is not healthy or the run failed (the other service
//! unreachable, say), 2 for a configuration or usage error.

use std::process::ExitCode;

use nis_core::{Entity, EntityStore, reconcile::RelationStore};
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
    /// Run reconciliation once; only report with `dry_run`.
    Reconcile {
        /// Report without repairing.
        dry_run: bool,
    },
}

const USAGE: &str = "expected `serve`, `migrate`, `healthcheck` or `reconcile [--dry-run]`";

/// Reads the command from the process arguments; a usage error is named on stderr.
fn command(program: &str) -> Result<Command, ExitCode> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        [] | ["serve"] => Ok(Command::Serve),
        ["migrate"] => Ok(Command::Migrate),
        ["healthcheck"] => Ok(Command::Healthcheck),
        ["reconcile"] => Ok(Command::Reconcile { dry_run: false }),
        ["reconcile", "--dry-run"] => Ok(Command::Reconcile { dry_run: true }),
        other => {
            eprintln!("{program}: unknown command `{}` ({USAGE})", other.join(" "));
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
            let logs = telemetry::init_tracing_and_traces(log_format(&config), program);
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

/// Prepares the store with `prepare`, runs reconciliation once and prints the report.
async fn reconcile<E, S>(
    program: &str,
    settings: &ServiceSettings,
    prepare: impl Future<Output = Result<S, StartError>>,
    dry_run: bool,
) -> ExitCode
where
    E: Entity,
    S: EntityStore<E> + RelationStore,
{
    let finished = match prepare.await {
        Ok(store) => crate::reconcile::<E, S>(settings, store, dry_run).await,
        Err(e) => Err(e),
    };
    match finished {
        Ok(finished) => {
            let r = &finished.report;
            let dead = finished.dead_letters.map_or_else(
                || "unknown (NATS did not answer)".to_owned(),
                |n| n.to_string(),
            );
            let verb = if dry_run { "to repair" } else { "repaired" };
            let grace = settings.reconcile_grace.as_secs();
            println!(
                "{program} reconcile{}",
                if dry_run { " --dry-run" } else { "" }
            );
            for (label, value) in [
                ("pairs checked", r.pairs_checked.to_string()),
                ("buckets that differed", r.buckets_differed.to_string()),
                (
                    &format!("pairs {verb} here"),
                    format!("{} ({} was behind)", r.repaired_here, E::KIND),
                ),
                (
                    &format!("pairs {verb} on the peer"),
                    format!("{} ({} was behind)", r.repaired_peer, E::OTHER_KIND),
                ),
                (
                    "refused by the other side",
                    format!("{} (compensated through the queue)", r.compensated),
                ),
                (
                    "left to the queue",
                    format!("{} (changed in the last {grace} s)", r.in_flight),
                ),
                ("dead letters", dead),
                (
                    "bytes exchanged",
                    format!("{} (with the peer)", r.bytes_exchanged),
                ),
                ("duration", format!("{:.3} s", r.duration.as_secs_f64())),
            ] {
                println!("  {label:<28}{value}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{program} reconcile: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The `main` of a service program of entity `E`: reads the command, takes `config` (exit 2,
/// naming every problem, if it is invalid), starts logging, then serves with `start`, prepares
/// the store with `prepare` (`migrate`), or prepares it and runs reconciliation.
pub async fn main<E, C, S>(
    program: &str,
    config: Result<C, ConfigError>,
    start: impl AsyncFnOnce(&C) -> Result<Running, StartError>,
    prepare: impl AsyncFnOnce(&C) -> Result<S, StartError>,
) -> ExitCode
where
    E: Entity,
    C: AsRef<ServiceSettings>,
    S: EntityStore<E> + RelationStore,
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
        Command::Migrate => self::migrate(program, prepare(&config)).await,
        Command::Reconcile { dry_run } => {
            reconcile::<E, S>(program, config.as_ref(), prepare(&config), dry_run).await
        }
        Command::Healthcheck => unreachable!("answered before logging starts"),
    }
}

//! The command line every service shares: `<service> [serve]` runs it, `<service> migrate`
//! prepares its store and exits (for a Kubernetes Job or a compose one-shot).

use std::process::ExitCode;

use crate::{
    Repository,
    config::{ConfigError, ServiceSettings},
    grpc::GrpcEntity,
    http::JsonEntity,
    server::{self, Running, StartError},
    telemetry,
};

/// A service program: its configuration, its entity and how to reach its store.
pub trait ServiceProgram: Sized {
    /// The program's name, for messages.
    const NAME: &'static str;
    /// The entity it owns.
    type Entity: JsonEntity + GrpcEntity;
    /// Where it keeps them.
    type Store: Repository<Self::Entity> + crate::queue::Outbox;

    /// Reads the configuration from the environment.
    fn load() -> Result<Self, ConfigError>;
    /// The settings every service has.
    fn settings(&self) -> &ServiceSettings;
    /// Connects to the store and prepares it (migrations, indexes), retrying while it is away.
    fn prepare_store(&self) -> impl Future<Output = Result<Self::Store, StartError>>;
}

/// Prepares the store, then serves the entity over HTTP and gRPC.
pub async fn start<P: ServiceProgram>(program: &P) -> Result<Running, StartError> {
    let store = program.prepare_store().await?;
    server::start_entity_service::<P::Entity, _>(program.settings(), store).await
}

/// Runs program `P` with the process arguments: exit 0 after a clean stop, 1 when it cannot
/// start, 2 for a configuration or usage error (named on stderr).
pub async fn main<P: ServiceProgram>() -> ExitCode {
    let config = match P::load() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("{}: {e}", P::NAME);
            return ExitCode::from(2);
        }
    };
    telemetry::init_tracing(config.settings().log_format);
    match std::env::args().nth(1).as_deref() {
        None | Some("serve") => match start(&config).await {
            Ok(running) => {
                running.run_until_signalled().await;
                ExitCode::SUCCESS
            }
            Err(e) => {
                tracing::error!(error = %e, "{} could not start", P::NAME);
                ExitCode::FAILURE
            }
        },
        Some("migrate") => match config.prepare_store().await {
            Ok(_) => {
                tracing::info!("{}: store prepared", P::NAME);
                ExitCode::SUCCESS
            }
            Err(e) => {
                tracing::error!(error = %e, "{}: preparing the store failed", P::NAME);
                ExitCode::FAILURE
            }
        },
        Some(other) => {
            eprintln!(
                "{}: unknown command `{other}` (expected `serve` or `migrate`)",
                P::NAME
            );
            ExitCode::from(2)
        }
    }
}

//! `initializer`: creates or updates the JetStream streams and consumers of nis, then exits —
//! 0 when done, 1 when NATS cannot be reached or refuses, 2 for a configuration error.
//! Runs as a Kubernetes Job or a compose one-shot; rerunning it is always safe.

use std::process::ExitCode;

use initializer::{Config, Outcome};
use nis_queue::Topology;
use nis_runtime::telemetry;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("initializer: {e}");
            return ExitCode::from(2);
        }
    };
    let _logs = telemetry::init_tracing(config.log_format);
    tracing::info!(
        prefix = %config.prefix,
        replicas = config.streams.replicas,
        max_age_secs = config.streams.max_age.as_secs(),
        duplicate_window_secs = config.streams.duplicate_window.as_secs(),
        "initializing the JetStream streams and consumers"
    );

    let jetstream = match initializer::connect(&config.nats_url, config.timeout).await {
        Ok(jetstream) => jetstream,
        Err(e) => {
            tracing::error!(error = %e, "initializer failed");
            return ExitCode::FAILURE;
        }
    };
    let topology = Topology::new(&config.prefix);
    let report = match initializer::apply(&jetstream, &topology, &config.streams).await {
        Ok(report) => report,
        Err(e) => {
            tracing::error!(error = %e, "initializer failed");
            return ExitCode::FAILURE;
        }
    };

    for entry in &report.entries {
        tracing::info!(
            kind = entry.resource.kind(),
            name = entry.resource.name(),
            outcome = %entry.outcome,
            changed = ?entry.changed,
            "{entry}"
        );
    }
    tracing::info!(
        created = report.count(Outcome::Created),
        updated = report.count(Outcome::Updated),
        unchanged = report.count(Outcome::Unchanged),
        "streams and consumers are in place"
    );
    ExitCode::SUCCESS
}

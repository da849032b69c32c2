//! Wiring: configuration → PostgreSQL store → the shared core, decorators and servers.

use common::{
    cli::{self, ServiceProgram},
    config::{ConfigError, Env, ServiceSettings},
    server::{self, Running, StartError},
};

use crate::{config::Config, domain::Student, outbound::postgres::PostgresStudents};

impl ServiceProgram for Config {
    const NAME: &'static str = "students";
    type Entity = Student;
    type Store = PostgresStudents;

    fn load() -> Result<Self, ConfigError> {
        Self::from_env(Env::from_process())
    }

    fn settings(&self) -> &ServiceSettings {
        &self.service
    }

    /// Applies the migrations, retrying until `startup_timeout` while the database is away.
    async fn prepare_store(&self) -> Result<PostgresStudents, StartError> {
        let store = PostgresStudents::connect(
            &self.database_url,
            self.database_max_connections,
            self.service.store_timeout,
            &self.service.prefix,
        )
        .map_err(StartError::Other)?;
        server::retry(
            "applying the migrations",
            self.service.startup_timeout,
            || store.migrate(),
        )
        .await?;
        Ok(store)
    }
}

/// Starts students: HTTP and gRPC over one decorated core.
pub async fn start(config: &Config) -> Result<Running, StartError> {
    cli::start(config).await
}

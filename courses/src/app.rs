//! Wiring: configuration → MongoDB store → the shared core, decorators and servers.

use common::{
    cli::{self, ServiceProgram},
    config::{ConfigError, Env, ServiceSettings},
    server::{self, Running, StartError},
};

use crate::{config::Config, domain::Course, outbound::mongo::MongoCourses};

impl ServiceProgram for Config {
    const NAME: &'static str = "courses";
    type Entity = Course;
    type Store = MongoCourses;

    fn load() -> Result<Self, ConfigError> {
        Self::from_env(Env::from_process())
    }

    fn settings(&self) -> &ServiceSettings {
        &self.service
    }

    /// Creates the indexes, retrying until `startup_timeout` while MongoDB is away.
    async fn prepare_store(&self) -> Result<MongoCourses, StartError> {
        let store = MongoCourses::connect(
            &self.mongodb_uri,
            &self.mongodb_database,
            self.service.store_timeout,
            &self.service.prefix,
        )
        .await
        .map_err(StartError::Other)?;
        server::retry("creating the indexes", self.service.startup_timeout, || {
            store.migrate()
        })
        .await?;
        Ok(store)
    }
}

/// Starts courses: HTTP and gRPC over one decorated core.
pub async fn start(config: &Config) -> Result<Running, StartError> {
    cli::start(config).await
}

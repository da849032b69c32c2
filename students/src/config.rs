//! The students service's configuration, from environment variables.

use nis_runtime::{
    config::{ConfigError, Defaults, Env, ServiceSettings},
    secret::Secret,
};

/// Default HTTP port of students.
pub const HTTP_PORT: u16 = 8020;
/// Default gRPC port of students.
pub const GRPC_PORT: u16 = 50020;

/// Everything students reads at start.
#[derive(Debug, Clone)]
pub struct Config {
    /// Shared settings (addresses, prefix, cache, timeouts, logging).
    pub service: ServiceSettings,
    /// `DATABASE_URL`: the PostgreSQL database of students (required).
    pub database_url: Secret,
    /// `DATABASE_MAX_CONNECTIONS`: pool size (default 10).
    pub database_max_connections: u32,
}

impl Config {
    /// Reads the configuration; every missing or malformed variable is named in the error.
    pub fn from_env(mut env: Env) -> Result<Self, ConfigError> {
        let service = ServiceSettings::read(
            &mut env,
            Defaults {
                http_port: HTTP_PORT,
                grpc_port: GRPC_PORT,
                peer_var: "COURSES_GRPC_URL",
                peer_url: "http://127.0.0.1:50010",
            },
        );
        let database_url = env.required(
            "DATABASE_URL",
            "the PostgreSQL URL of the students database",
        );
        let database_max_connections = env.optional("DATABASE_MAX_CONNECTIONS", 10);
        env.finish()?;
        Ok(Self {
            service,
            database_url,
            database_max_connections,
        })
    }
}

impl AsRef<ServiceSettings> for Config {
    fn as_ref(&self) -> &ServiceSettings {
        &self.service
    }
}

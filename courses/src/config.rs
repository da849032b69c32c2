//! The courses service's configuration, from environment variables.

use nis_runtime::{
    config::{ConfigError, Defaults, Env, ServiceSettings},
    secret::Secret,
};

/// Default HTTP port of courses.
pub const HTTP_PORT: u16 = 8010;
/// Default gRPC port of courses.
pub const GRPC_PORT: u16 = 50010;

/// Everything courses reads at start.
#[derive(Debug, Clone)]
pub struct Config {
    /// Shared settings (addresses, prefix, cache, timeouts, logging).
    pub service: ServiceSettings,
    /// `MONGODB_URI`: the MongoDB server (required).
    pub mongodb_uri: Secret,
    /// `MONGODB_DATABASE`: the database of courses (default `{NIS_PREFIX}_courses`).
    pub mongodb_database: String,
}

impl Config {
    /// Reads the configuration; every missing or malformed variable is named in the error.
    pub fn from_env(mut env: Env) -> Result<Self, ConfigError> {
        let service = ServiceSettings::read(
            &mut env,
            Defaults {
                http_port: HTTP_PORT,
                grpc_port: GRPC_PORT,
                peer_var: "STUDENTS_GRPC_URL",
                peer_url: "http://127.0.0.1:50020",
            },
        );
        let mongodb_uri = env.required("MONGODB_URI", "the MongoDB connection URI");
        let mongodb_database =
            env.optional("MONGODB_DATABASE", format!("{}_courses", service.prefix));
        env.finish()?;
        Ok(Self {
            service,
            mongodb_uri,
            mongodb_database,
        })
    }
}

impl AsRef<ServiceSettings> for Config {
    fn as_ref(&self) -> &ServiceSettings {
        &self.service
    }
}

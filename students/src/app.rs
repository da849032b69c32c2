//! Wiring: configuration → adapters → core → decorators → servers.

use std::time::{Duration, Instant};

use common::{
    cache::{Cache as _, RedisCache},
    decorators,
    readiness::Readiness,
    server::{self, Running, StartError},
    service::Core,
};

use crate::{
    config::Config,
    inbound::{grpc::StudentGrpc, http},
    outbound::postgres::{self, PostgresStudents},
};

/// Connects to the database and applies the migrations, retrying until `config.startup_timeout`.
pub async fn migrate(config: &Config) -> Result<PostgresStudents, StartError> {
    let pool = postgres::pool(
        &config.database_url,
        config.database_max_connections,
        config.service.store_timeout,
    )
    .map_err(StartError::Other)?;
    let store = PostgresStudents::new(pool, config.service.store_timeout);
    let deadline = Instant::now() + config.startup_timeout;
    let mut delay = Duration::from_millis(200);
    loop {
        match store.migrate().await {
            Ok(()) => return Ok(store),
            Err(e) if Instant::now() + delay < deadline => {
                tracing::warn!(error = %e, retry_in = ?delay, "database not ready");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            Err(e) => return Err(StartError::Other(e)),
        }
    }
}

/// Starts students: HTTP and gRPC over one decorated core.
pub async fn start(config: &Config) -> Result<Running, StartError> {
    let store = migrate(config).await?;
    let cache = RedisCache::new(&config.service.cache, &config.service.prefix, "students")
        .map_err(|e| StartError::Other(e.to_string()))?;
    let service = decorators::stack(Core::new(store.clone()), cache.clone());

    let readiness = Readiness::default()
        .with("database", true, move || {
            let store = store.clone();
            async move { store.ping().await }
        })
        .with("cache", false, move || {
            let cache = cache.clone();
            async move { cache.ping().await.map_err(|e| e.to_string()) }
        });

    let grpc_service = service.clone();
    server::start(
        &config.service,
        readiness,
        http::routes(service),
        move |router| router.add_service(StudentGrpc::server(grpc_service)),
        "nis.v1.StudentService",
    )
    .await
}

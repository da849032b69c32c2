//! How students is put together: the PostgreSQL store under the core; the Redis cache,
//! metrics and logging around it; HTTP, gRPC and the queue consumer in front; the outbox relay
//! publishing to NATS JetStream; cross queries asking courses over gRPC.

use nis_grpc::peers::CoursesPeer;
use nis_runtime::lifecycle::{StartError, retry};
use nis_server::{GrpcServices, Running};

use crate::{
    config::Config,
    domain::Student,
    inbound::grpc::{StudentGrpc, StudentPeerGrpc},
    outbound::postgres::PostgresStudents,
};

/// Connects to PostgreSQL and applies the migrations, retrying while the database is away.
pub async fn prepare_store(config: &Config) -> Result<PostgresStudents, StartError> {
    let settings = &config.service;
    let store = PostgresStudents::connect(
        &config.database_url,
        config.database_max_connections,
        settings.store_timeout,
    )
    .map_err(|e| StartError::setup("DATABASE_URL is not a usable PostgreSQL URL", e))?;
    retry("applying the migrations", settings.startup_timeout, || {
        store.migrate()
    })
    .await?;
    Ok(store)
}

/// Starts students: the PostgreSQL store under the shared composition of
/// [`nis_server::start_entity_service`] (core, outbox relay, Redis cache, metrics, logging, HTTP,
/// gRPC, queue consumer), with cross queries asking courses over gRPC. Its gRPC port serves the
/// public `nis.v1.StudentService` and `nis.v1.StudentPeerService`, which courses calls. [`Running::stop`] stops it.
pub async fn start(config: &Config) -> Result<Running, StartError> {
    let settings = &config.service;
    let store = prepare_store(config).await?;
    let courses = CoursesPeer::connect(&settings.peer_url, settings.peer_timeout)
        .map_err(|e| StartError::setup("COURSES_GRPC_URL is not a usable gRPC URL", e))?;
    nis_server::start_entity_service::<Student, _, _>(
        settings,
        store,
        courses,
        |service, courses| {
            GrpcServices::default()
                .add_service(StudentGrpc::server(service.clone(), courses))
                .add_service(StudentPeerGrpc::server(service))
        },
    )
    .await
}

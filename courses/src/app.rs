//! How courses is put together: the MongoDB store under the core; the Redis cache, metrics
//! and logging around it; HTTP, gRPC and the queue consumer in front; the outbox relay
//! publishing to NATS JetStream; cross queries asking students over gRPC.

use nis_grpc::peers::StudentsPeer;
use nis_runtime::lifecycle::{StartError, retry};
use nis_server::{GrpcServices, Running};

use crate::{
    config::Config,
    domain::Course,
    inbound::grpc::{CourseGrpc, CoursePeerGrpc},
    outbound::mongo::MongoCourses,
};

/// Connects to MongoDB and creates the indexes, retrying while the server is away.
pub async fn prepare_store(config: &Config) -> Result<MongoCourses, StartError> {
    let settings = &config.service;
    let store = MongoCourses::connect(
        &config.mongodb_uri,
        &config.mongodb_database,
        settings.store_timeout,
    )
    .await
    .map_err(|e| StartError::setup("MONGODB_URI is not a usable MongoDB URI", e))?;
    retry("creating the indexes", settings.startup_timeout, || async {
        store.migrate().await.map_err(|e| e.chain())
    })
    .await?;
    Ok(store)
}

/// Starts courses: the MongoDB store under the shared composition of
/// [`nis_server::start_entity_service`] (core, outbox relay, Redis cache, metrics, logging, HTTP,
/// gRPC, queue consumer), with cross queries asking students over gRPC. Its gRPC port serves the
/// public `nis.v1.CourseService` and `nis.v1.CoursePeerService`, which students calls. [`Running::stop`] stops it.
pub async fn start(config: &Config) -> Result<Running, StartError> {
    let settings = &config.service;
    let store = prepare_store(config).await?;
    let students = StudentsPeer::connect(&settings.peer_url, settings.peer_timeout)
        .map_err(|e| StartError::setup("STUDENTS_GRPC_URL is not a usable gRPC URL", e))?;
    nis_server::start_entity_service::<Course, _, _>(
        settings,
        store,
        students,
        |service, students| {
            GrpcServices::default()
                .add_service(CourseGrpc::server(service.clone(), students))
                .add_service(CoursePeerGrpc::server(service))
        },
    )
    .await
}

//! How courses is put together: the MongoDB store under the core; the Redis cache, metrics
//! and logging around it; HTTP, gRPC and the queue consumer in front; the outbox relay
//! publishing to NATS JetStream; cross queries asking students over gRPC.

use nis_cache::RedisCache;
use nis_core::{Core, Entity as _, decorators, outbox::relay};
use nis_grpc::{peers::StudentsPeer, proto::v1::course_service_server::CourseServiceServer};
use nis_queue::consumer;
use nis_runtime::lifecycle::{StartError, retry};
use nis_server::{Queue, Running, Workers};
use tonic::server::NamedService as _;

use crate::{
    config::Config, domain::Course, inbound::grpc::CourseGrpc, outbound::mongo::MongoCourses,
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
    .map_err(StartError::Setup)?;
    retry("creating the indexes", settings.startup_timeout, || {
        store.migrate()
    })
    .await?;
    Ok(store)
}

/// Starts courses; [`Running::stop`] stops it.
pub async fn start(config: &Config) -> Result<Running, StartError> {
    let settings = &config.service;
    let store = prepare_store(config).await?;
    let queue = Queue::connect(settings, Course::KIND).await?;
    let cache = RedisCache::new(&settings.cache, &settings.prefix, Course::KIND)
        .map_err(|e| StartError::Setup(e.to_string()))?;
    let students = StudentsPeer::connect(&settings.peer_url, settings.peer_timeout)
        .map_err(StartError::Setup)?;

    let core = Core::new(store.clone(), queue.links_subject());
    let service = decorators::stack(core.clone(), cache.clone());

    let mut workers = Workers::default();
    let (publisher, signal) = (queue.publisher(), core.outbox_signal());
    let outbox = store.clone();
    workers.spawn(|stop| relay::run(outbox, publisher, signal, Course::KIND, stop));
    let (jetstream, topology, consumed) = (queue.jetstream(), queue.topology(), service.clone());
    workers.spawn(|stop| consumer::run::<Course, _>(jetstream, topology, consumed, stop));

    let readiness = nis_server::readiness::<Course, _>(&store, &cache, &queue);
    let http = service.clone();
    nis_server::serve(
        settings,
        readiness,
        move |api| {
            api.service(nis_http::entity_scope::<Course, _, _>(
                http.clone(),
                students.clone(),
            ));
        },
        |grpc| grpc.add_service(CourseGrpc::server(service)),
        CourseServiceServer::<CourseGrpc<()>>::NAME,
        workers,
    )
    .await
}

//! How students is put together: the PostgreSQL store under the core; the Redis cache,
//! metrics and logging around it; HTTP, gRPC and the queue consumer in front; the outbox relay
//! publishing to NATS JetStream; cross queries asking courses over gRPC.

use nis_cache::RedisCache;
use nis_core::{Core, Entity as _, decorators, outbox::relay};
use nis_grpc::{peers::CoursesPeer, proto::v1::student_service_server::StudentServiceServer};
use nis_queue::consumer;
use nis_runtime::lifecycle::{StartError, retry};
use nis_server::{Queue, Running, Workers};
use tonic::server::NamedService as _;

use crate::{
    config::Config, domain::Student, inbound::grpc::StudentGrpc,
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
    .map_err(StartError::Setup)?;
    retry("applying the migrations", settings.startup_timeout, || {
        store.migrate()
    })
    .await?;
    Ok(store)
}

/// Starts students; [`Running::stop`] stops it.
pub async fn start(config: &Config) -> Result<Running, StartError> {
    let settings = &config.service;
    let store = prepare_store(config).await?;
    let queue = Queue::connect(settings, Student::KIND).await?;
    let cache = RedisCache::new(&settings.cache, &settings.prefix, Student::KIND)
        .map_err(|e| StartError::Setup(e.to_string()))?;
    let courses = CoursesPeer::connect(&settings.peer_url, settings.peer_timeout)
        .map_err(StartError::Setup)?;

    let core = Core::new(store.clone(), queue.links_subject());
    let service = decorators::stack(core.clone(), cache.clone());

    let mut workers = Workers::default();
    let (publisher, signal) = (queue.publisher(), core.outbox_signal());
    let outbox = store.clone();
    workers.spawn(|stop| relay::run(outbox, publisher, signal, Student::KIND, stop));
    let (jetstream, topology, consumed) = (queue.jetstream(), queue.topology(), service.clone());
    workers.spawn(|stop| consumer::run::<Student, _>(jetstream, topology, consumed, stop));

    let readiness = nis_server::readiness::<Student, _>(&store, &cache, &queue);
    let http = service.clone();
    nis_server::serve(
        settings,
        readiness,
        move |api| {
            api.service(nis_http::entity_scope::<Student, _, _>(
                http.clone(),
                courses.clone(),
            ));
        },
        |grpc| grpc.add_service(StudentGrpc::server(service)),
        StudentServiceServer::<StudentGrpc<()>>::NAME,
        workers,
    )
    .await
}

//! Runs a nis service: its HTTP and gRPC servers side by side, the queue workers beside them,
//! gRPC health following readiness, and a graceful stop (stop accepting, finish in-flight
//! requests, stop the workers, return). Each service's `app.rs` chooses the parts; this crate
//! only runs them.

pub mod cli;
pub mod healthcheck;
mod queue;

use std::{convert::Infallible, net::SocketAddr, time::Duration};

use actix_web::web;
use nis_cache::RedisCache;
use nis_core::{
    Core, Entity, EntityStore,
    cache::Cache as _,
    decorators::{self, Fenced, Stack},
    idempotency,
    outbox::{Outbox, relay},
    peer::Peer,
    reconcile::{Reconciler, RelationStore, schedule},
};
use nis_grpc::relation::{RelationClient, RelationGrpc};
use nis_http::JsonEntity;
use nis_queue::consumer;
use nis_runtime::{
    config::ServiceSettings,
    lifecycle::{StartError, shutdown_signal},
    readiness::Readiness,
    telemetry,
};
use tokio::{
    net::TcpListener,
    sync::{oneshot, watch},
    task::JoinHandle,
};
use tonic::{
    body::Body,
    codegen::{Service as TowerService, http},
    server::NamedService,
    service::Routes,
    transport::server::TcpIncoming,
};
use tonic_health::{ServingStatus, server::HealthReporter};

/// Every service binary links this crate, so this is the allocator of both services when they
/// are built for musl (the images); glibc builds keep the system allocator.
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub use queue::Queue;

/// How often gRPC health is brought in line with readiness.
const HEALTH_INTERVAL: Duration = Duration::from_secs(2);

/// Background work that runs until the service stops (the outbox relay, the consumer).
#[derive(Debug)]
pub struct Workers {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Default for Workers {
    fn default() -> Self {
        Self {
            stop: watch::channel(false).0,
            tasks: Vec::new(),
        }
    }
}

impl Workers {
    /// Starts `work`, which must return once the receiver it is given turns `true`.
    pub fn spawn<F>(&mut self, work: impl FnOnce(watch::Receiver<bool>) -> F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.tasks.push(tokio::spawn(work(self.stop.subscribe())));
    }

    async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// A running service; dropping it does not stop it, [`Running::stop`] does.
pub struct Running {
    /// Where HTTP listens.
    pub http_addr: SocketAddr,
    /// Where gRPC listens.
    pub grpc_addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
    workers: Workers,
}

impl Running {
    /// Stops gracefully: the servers first (in-flight requests finish), then the workers.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
        self.workers.stop().await;
    }

    /// Runs until SIGTERM or SIGINT, then stops gracefully.
    pub async fn run_until_signalled(self) {
        shutdown_signal().await;
        tracing::info!("shutdown signal received; finishing in-flight requests");
        self.stop().await;
        tracing::info!("stopped");
    }
}

/// The service of entity `E` as it runs, decorated: what HTTP, gRPC and the consumer call.
pub type Service<S> = Stack<FencedCore<S>, RedisCache>;

/// The core over `S`, every commit fenced in the Redis cache.
pub type FencedCore<S> = Core<Fenced<S, RedisCache>>;

/// The gRPC services a port serves besides health and reflection (a service's public API and
/// its peer service), each with its name: gRPC health reports every name, reflection lists
/// exactly these (docs/behaviour.md §4). The name is taken from the tonic service itself, so
/// what is served and what is listed cannot drift apart.
#[derive(Default)]
pub struct GrpcServices {
    routes: Routes,
    names: Vec<&'static str>,
}

impl GrpcServices {
    /// These services and `service`.
    #[must_use]
    pub fn add_service<T>(mut self, service: T) -> Self
    where
        T: TowerService<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        T::Future: Send + 'static,
    {
        self.routes = self.routes.add_service(service);
        self.names.push(T::NAME);
        self
    }

    /// The fully qualified names of the services, in the order they were added.
    pub fn names(&self) -> &[&'static str] {
        &self.names
    }
}

/// The core over `store` (its link changes recorded for `subject`) and, around it, the Redis
/// cache, metrics and logging: what every entry point of a service calls.
fn compose<E, S>(
    settings: &ServiceSettings,
    store: S,
    subject: String,
) -> Result<(FencedCore<S>, Service<S>, RedisCache), StartError>
where
    E: Entity,
    S: EntityStore<E>,
{
    let cache = RedisCache::new(&settings.cache, &settings.prefix, E::KIND)
        .map_err(|e| StartError::setup("REDIS_URL is not usable", e))?;
    // Every commit fences the cache scopes it makes stale (docs/behaviour.md §6).
    let store = Fenced::new(store, cache.clone());
    let core = Core::new(store, subject).with_key_retention(settings.idempotency_retention);
    let service = decorators::stack(core.clone(), cache.clone());
    Ok((core, service, cache))
}

/// The client of the other service's relation service (the peer of reconciliation runs). A
/// digest scans the whole relation, so its deadline is the server's (twice the store's), not
/// that of a cross query.
fn relation_peer<E: Entity>(settings: &ServiceSettings) -> Result<RelationClient, StartError> {
    let timeout = settings.peer_timeout.max(settings.store_timeout * 2);
    RelationClient::connect(E::OTHER_KIND, &settings.peer_url, timeout)
        .map_err(|e| StartError::setup("the other service's gRPC URL is not usable", e))
}

/// Runs reconciliation once from this side (`<service> reconcile [--dry-run]`), in this
/// process, against the running other service: repairs go through the same decorated service
/// as in the running one, so caches learn of them.
pub async fn reconcile<E, S>(
    settings: &ServiceSettings,
    store: S,
    dry_run: bool,
) -> Result<schedule::Finished, StartError>
where
    E: Entity,
    S: EntityStore<E> + RelationStore,
{
    let queue = Queue::connect(settings, E::KIND).await?;
    let (_, service, _) = compose::<E, S>(settings, store.clone(), queue.links_subject())?;
    let reconciler = Reconciler::new(store, service, settings.reconcile_grace);
    let peer = relation_peer::<E>(settings)?;
    schedule::once(&reconciler, &peer, &queue, dry_run)
        .await
        .map_err(|e| StartError::setup("the reconciliation run failed", e))
}

/// Starts the service of entity `E` over `store`, the one composition both services share:
///
/// 1. the core over `store`, every commit fencing the cache scopes it makes stale first, its
///    link changes published to NATS JetStream by the outbox relay;
/// 2. around it, the Redis cache, then metrics, then logging ([`decorators::stack`]);
/// 3. in front, the HTTP API (cross queries asking `peer`), the gRPC services `grpc`
///    makes of the decorated service and `peer` (the public API, whose cross queries ask the
///    peer too, and the peer service the other service calls) and the consumer of the peer's
///    link changes, all calling the decorated core;
/// 4. reconciliation with the other service: its relation service on the gRPC port, and the
///    periodic run under a lease (docs/behaviour.md §5.10);
/// 5. readiness from the store, the cache and the queue, which gRPC health follows.
pub async fn start_entity_service<E, S, P>(
    settings: &ServiceSettings,
    store: S,
    peer: P,
    grpc: impl FnOnce(Service<S>, P) -> GrpcServices,
) -> Result<Running, StartError>
where
    E: JsonEntity,
    S: EntityStore<E> + Outbox + RelationStore,
    P: Peer,
{
    let queue = Queue::connect(settings, E::KIND).await?;
    let (core, service, cache) = compose::<E, S>(settings, store.clone(), queue.links_subject())?;

    let mut workers = Workers::default();
    let (outbox, publisher, signal) = (store.clone(), queue.publisher(), core.outbox_signal());
    workers.spawn(|stop| relay::run(outbox, publisher, signal, E::KIND, stop));
    let (jetstream, topology, consumed) = (queue.jetstream(), queue.topology(), service.clone());
    workers.spawn(|stop| consumer::run::<E, _>(jetstream, topology, consumed, stop));
    let (keys, every) = (
        store.clone(),
        idempotency::purge_interval(settings.idempotency_retention),
    );
    workers.spawn(|stop| idempotency::purge::<E, _>(keys, every, stop));
    let reconciler = Reconciler::new(store.clone(), service.clone(), settings.reconcile_grace);
    let (side, relation, dead) = (
        reconciler.clone(),
        relation_peer::<E>(settings)?,
        queue.clone(),
    );
    let interval = settings.reconcile_interval;
    workers.spawn(|stop| schedule::every(side, relation, dead, interval, stop));

    // HTTP handlers run on actix's worker runtimes: their service calls go to this one.
    let http = nis_http::OnRuntime::new(service.clone(), tokio::runtime::Handle::current());
    let http_peer = peer.clone();
    serve(
        settings,
        readiness::<E, _>(&store, &cache, &queue),
        move |api| {
            api.service(nis_http::entity_scope::<E, _, _>(
                http.clone(),
                http_peer.clone(),
            ));
        },
        grpc(service, peer).add_service(RelationGrpc::server(reconciler)),
        workers,
    )
    .await
}

/// The readiness of a service of entity `E`: ready when `store` answers and the queue's streams
/// exist; the cache is optional (without it the service is degraded, not down).
pub fn readiness<E: Entity, S: EntityStore<E>>(
    store: &S,
    cache: &RedisCache,
    queue: &Queue,
) -> Readiness {
    let (store, cache, queue) = (store.clone(), cache.clone(), queue.clone());
    Readiness::default()
        .with("database", true, move || {
            let store = store.clone();
            async move { store.ping().await.map_err(|e| e.chain()) }
        })
        .with("cache", false, move || {
            let cache = cache.clone();
            async move { cache.ping().await.map_err(|e| e.to_string()) }
        })
        .with("queue", true, move || {
            let queue = queue.clone();
            async move { queue.streams_ready().await }
        })
}

/// Starts the HTTP server (probes + what `api` adds) and the gRPC server (`grpc`, whose
/// services' health follows readiness, then health and reflection listing exactly what the port
/// serves), with `workers` running beside them.
pub async fn serve(
    settings: &ServiceSettings,
    readiness: Readiness,
    api: impl Fn(&mut web::ServiceConfig) + Clone + Send + 'static,
    grpc: GrpcServices,
    workers: Workers,
) -> Result<Running, StartError> {
    let http_settings = nis_http::HttpSettings {
        addr: settings.http_addr,
        workers: settings.http_workers,
        shutdown_grace: settings.shutdown_grace,
    };
    let (http_server, http_addr) =
        nis_http::bind(&http_settings, readiness.clone(), telemetry::metrics(), api).map_err(
            |source| StartError::Bind {
                addr: settings.http_addr,
                source,
            },
        )?;

    let listener = TcpListener::bind(settings.grpc_addr)
        .await
        .map_err(|source| StartError::Bind {
            addr: settings.grpc_addr,
            source,
        })?;
    let grpc_addr = listener.local_addr().map_err(|source| StartError::Bind {
        addr: settings.grpc_addr,
        source,
    })?;
    let (health, health_service) = tonic_health::server::health_reporter();
    // Health reports the server ("") and each service; reflection lists each service and health.
    let served = grpc.names();
    let health_names: Vec<&'static str> = [""].iter().chain(served).copied().collect();
    let listed = [served, &[tonic_health::pb::health_server::SERVICE_NAME]].concat();
    let reflection =
        nis_grpc::reflection(&listed).map_err(|e| StartError::setup("gRPC reflection", e))?;
    let mut builder = tonic::transport::Server::builder()
        .timeout(settings.store_timeout * 2)
        .layer(nis_grpc::ServerSpans);
    let router = builder
        .add_routes(grpc.routes)
        .add_service(health_service)
        .add_service(reflection);

    let (stop, stopped) = oneshot::channel();
    let grace = settings.shutdown_grace;
    let task = tokio::spawn(async move {
        let http_handle = http_server.handle();
        let http_task = tokio::spawn(http_server);
        let (grpc_stop, grpc_stopped) = oneshot::channel::<()>();
        let grpc_task = tokio::spawn(router.serve_with_incoming_shutdown(
            // Accepted connections without Nagle's delay, as tonic sets when it binds itself: a
            // unary answer is written in a few small frames, which Nagle would hold back.
            TcpIncoming::from(listener).with_nodelay(Some(true)),
            async move {
                let _ = grpc_stopped.await;
            },
        ));
        let follower = tokio::spawn(follow_readiness(
            health.clone(),
            readiness,
            health_names.clone(),
        ));

        let _ = stopped.await;
        follower.abort();
        set_health(&health, &health_names, ServingStatus::NotServing).await;
        let _ = grpc_stop.send(());
        http_handle.stop(true).await;
        match tokio::time::timeout(grace, grpc_task).await {
            Ok(Ok(Err(e))) => tracing::error!(error = %e, "gRPC server failed"),
            Err(_) => tracing::warn!("gRPC requests still running after the grace period"),
            _ => {}
        }
        if let Ok(Err(e)) = http_task.await {
            tracing::error!(error = %e, "HTTP server failed");
        }
    });
    tracing::info!(%http_addr, %grpc_addr, "listening");
    Ok(Running {
        http_addr,
        grpc_addr,
        stop,
        task,
        workers,
    })
}

/// Sets the gRPC health status of every name in `names`.
async fn set_health(health: &HealthReporter, names: &[&'static str], status: ServingStatus) {
    for name in names {
        health.set_service_status(name, status).await;
    }
}

/// Keeps the gRPC health status of every name in `names` (the server, "", and each service)
/// equal to readiness.
async fn follow_readiness(health: HealthReporter, readiness: Readiness, names: Vec<&'static str>) {
    let mut last = None;
    loop {
        let ready = readiness.check().await.ready;
        if last != Some(ready) {
            let status = if ready {
                ServingStatus::Serving
            } else {
                ServingStatus::NotServing
            };
            set_health(&health, &names, status).await;
            tracing::info!(ready, "readiness changed");
            last = Some(ready);
        }
        tokio::time::sleep(HEALTH_INTERVAL).await;
    }
}

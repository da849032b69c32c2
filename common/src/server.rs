//! Running a service: its HTTP and gRPC servers side by side, gRPC health following readiness,
//! and a graceful stop (stop accepting, finish in-flight requests, return).

use std::{net::SocketAddr, time::Duration};

use actix_web::web;
use tokio::{
    net::TcpListener,
    sync::{oneshot, watch},
    task::JoinHandle,
};
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::server::Router;
use tonic_health::{ServingStatus, server::HealthReporter};

use crate::{
    Repository,
    cache::{Cache as _, RedisCache},
    config::ServiceSettings,
    decorators,
    grpc::GrpcEntity,
    http::{self, JsonEntity},
    queue::{Outbox, StreamSettings, Topology, consumer, relay},
    readiness::Readiness,
    service::Core,
    telemetry,
};

/// How often gRPC health is brought in line with readiness.
const HEALTH_INTERVAL: Duration = Duration::from_secs(2);

/// Why a service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// Anything else at start-up (store, cache, reflection).
    #[error("{0}")]
    Other(String),
}

/// A running service; dropping it does not stop it, [`Running::stop`] does.
pub struct Running {
    /// Where HTTP listens.
    pub http_addr: SocketAddr,
    /// Where gRPC listens.
    pub grpc_addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
    /// Queue work (relay, consumer) to stop once the servers have stopped.
    background: Option<(watch::Sender<bool>, Vec<JoinHandle<()>>)>,
}

impl Running {
    /// Stops gracefully and waits until both servers have finished.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
        if let Some((stop, tasks)) = self.background {
            let _ = stop.send(true);
            for task in tasks {
                let _ = task.await;
            }
        }
    }

    /// Runs until SIGTERM or SIGINT, then stops gracefully.
    pub async fn run_until_signalled(self) {
        shutdown_signal().await;
        tracing::info!("shutdown signal received; finishing in-flight requests");
        self.stop().await;
        tracing::info!("stopped");
    }
}

/// Starts the service of entity `E` over `store`: the core, wrapped in the cache, metrics and
/// logging decorators, served over HTTP and gRPC and fed by the queue consumer, with the outbox
/// relay publishing what its writes record. Ready when the store answers and the streams
/// exist; the cache is optional (without it the service is degraded, not down).
pub async fn start_entity_service<E, R>(
    settings: &ServiceSettings,
    store: R,
) -> Result<Running, StartError>
where
    E: JsonEntity + GrpcEntity,
    R: Repository<E> + Outbox,
{
    let cache = RedisCache::new(&settings.cache, &settings.prefix, E::KIND)
        .map_err(|e| StartError::Other(e.to_string()))?;
    let peer = E::peer(&settings.peer_url, settings.peer_timeout).map_err(StartError::Other)?;
    let nats = async_nats::ConnectOptions::new()
        .name(format!("nis-{}", E::KIND))
        .retry_on_initial_connect()
        .connection_timeout(Duration::from_secs(2))
        .request_timeout(Some(Duration::from_secs(5)))
        .connect(settings.nats_url.as_str())
        .await
        .map_err(|e| StartError::Other(format!("NATS_URL {}: {e}", settings.nats_url)))?;
    let jetstream = async_nats::jetstream::new(nats.clone());
    let topology = Topology::new(&settings.prefix);

    let probe_store = store.clone();
    let probe_cache = cache.clone();
    let probe_streams = (nats, jetstream.clone(), topology.clone());
    let readiness = Readiness::default()
        .with("database", true, move || {
            let store = probe_store.clone();
            async move { store.ping().await.map_err(|e| e.to_string()) }
        })
        .with("cache", false, move || {
            let cache = probe_cache.clone();
            async move { cache.ping().await.map_err(|e| e.to_string()) }
        })
        .with("queue", true, move || {
            let (nats, jetstream, topology) = probe_streams.clone();
            async move { streams_ready(&nats, &jetstream, &topology).await }
        });

    let service = decorators::stack(Core::new(store.clone()), cache);
    let (stop_background, background_stopped) = watch::channel(false);
    let background = vec![
        tokio::spawn(relay::run(
            jetstream.clone(),
            store,
            E::KIND,
            background_stopped.clone(),
        )),
        tokio::spawn(consumer::run::<E, _>(
            jetstream,
            topology,
            service.clone(),
            background_stopped,
        )),
    ];
    let grpc_service = service.clone();
    let mut running = start(
        settings,
        readiness,
        move |cfg| {
            cfg.service(http::entity_scope::<E, _, _>(service.clone(), peer.clone()));
        },
        move |router| E::add_grpc_service(router, grpc_service),
        E::GRPC_SERVICE,
    )
    .await?;
    running.background = Some((stop_background, background));
    Ok(running)
}

/// Ready when NATS is connected and every stream of the topology exists; the error names what
/// is missing.
async fn streams_ready(
    nats: &async_nats::Client,
    jetstream: &async_nats::jetstream::Context,
    topology: &Topology,
) -> Result<(), String> {
    if nats.connection_state() != async_nats::connection::State::Connected {
        return Err("not connected to NATS".into());
    }
    for stream in topology.streams(&StreamSettings::default()) {
        if jetstream.get_stream(&stream.name).await.is_err() {
            return Err(format!(
                "stream {} is missing (run the initializer)",
                stream.name
            ));
        }
    }
    Ok(())
}

/// Retries `attempt` with exponential back-off (200 ms doubling to 5 s) until it succeeds or
/// `timeout` has passed, logging each failure as `what`.
pub async fn retry<T, F, Fut>(
    what: &str,
    timeout: Duration,
    mut attempt: F,
) -> Result<T, StartError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    let mut delay = Duration::from_millis(200);
    loop {
        match attempt().await {
            Ok(value) => return Ok(value),
            Err(e) if tokio::time::Instant::now() + delay < deadline => {
                tracing::warn!(error = %e, retry_in = ?delay, "{what} failed; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            Err(e) => return Err(StartError::Other(format!("{what} failed: {e}"))),
        }
    }
}

/// Starts the HTTP server (probes + `api`) and the gRPC server (health + reflection + what
/// `grpc` adds) of the service named `grpc_service` (e.g. `nis.v1.StudentService`).
pub async fn start(
    settings: &ServiceSettings,
    readiness: Readiness,
    api: impl Fn(&mut web::ServiceConfig) + Clone + Send + 'static,
    grpc: impl FnOnce(Router) -> Router,
    grpc_service: &'static str,
) -> Result<Running, StartError> {
    let http_settings = http::HttpSettings {
        addr: settings.http_addr,
        workers: settings.http_workers,
        shutdown_grace: settings.shutdown_grace,
    };
    let (http_server, http_addr) =
        http::bind(&http_settings, readiness.clone(), telemetry::metrics(), api).map_err(
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
    let reflection = crate::grpc::reflection()
        .map_err(|e| StartError::Other(format!("gRPC reflection: {e}")))?;
    let router = grpc(
        tonic::transport::Server::builder()
            .timeout(settings.store_timeout * 2)
            .add_service(health_service)
            .add_service(reflection),
    );

    let (stop, stopped) = oneshot::channel();
    let grace = settings.shutdown_grace;
    let task = tokio::spawn(async move {
        let http_handle = http_server.handle();
        let http_task = tokio::spawn(http_server);
        let (grpc_stop, grpc_stopped) = oneshot::channel::<()>();
        let grpc_task = tokio::spawn(router.serve_with_incoming_shutdown(
            TcpListenerStream::new(listener),
            async move {
                let _ = grpc_stopped.await;
            },
        ));
        let follower = tokio::spawn(follow_readiness(health.clone(), readiness, grpc_service));

        let _ = stopped.await;
        follower.abort();
        for name in ["", grpc_service] {
            health
                .set_service_status(name, ServingStatus::NotServing)
                .await;
        }
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
        background: None,
    })
}

/// Keeps the gRPC health status of the server ("") and of the service equal to readiness.
async fn follow_readiness(health: HealthReporter, readiness: Readiness, service: &'static str) {
    let mut last = None;
    loop {
        let ready = readiness.check().await.ready;
        if last != Some(ready) {
            let status = if ready {
                ServingStatus::Serving
            } else {
                ServingStatus::NotServing
            };
            for name in ["", service] {
                health.set_service_status(name, status).await;
            }
            tracing::info!(ready, "readiness changed");
            last = Some(ready);
        }
        tokio::time::sleep(HEALTH_INTERVAL).await;
    }
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = interrupt => {},
                    _ = terminate.recv() => {},
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; only SIGINT stops the service");
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}

//! A service's HTTP API run in the test process over in-memory fakes: the real HTTP server
//! (`nis_http::bind`, on a free port of 127.0.0.1, so checks talk to it over a real socket), the
//! real routes of the entity kind (`nis_http::entity_scope`) and the real decorator stack, but
//! a [`MemoryStore`] under the core, a [`MemoryCache`] beside it and a [`FakePeer`] for the
//! cross queries. It starts in milliseconds and needs no server, so the checks that touch only
//! the HTTP adapter (bodies, media types, sizes, error mapping, request ids, OpenAPI, probes)
//! run against it; what needs the stores, Redis, NATS or both services runs on
//! [`TestService`](crate::TestService).

use std::{net::SocketAddr, time::Duration};

use nis_core::{
    Core, EntityStore as _,
    cache::Cache as _,
    decorators,
    fakes::{FakePeer, MemoryCache, MemoryStore},
};
use nis_http::{HttpSettings, JsonEntity};
use nis_runtime::{
    readiness::Readiness,
    telemetry::{self, LogFormat},
};
use tokio::{sync::oneshot, task::JoinHandle};

use crate::service::Api;

/// The subject the in-process core records its link changes for (nothing publishes them).
const LINKS_SUBJECT: &str = "test.links";

/// The HTTP API of entity kind `E` served in this process over in-memory fakes; it
/// dereferences to its [`Api`]. [`InProcessService::stop`] (or dropping it) stops the server.
pub struct InProcessService {
    api: Api,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl std::ops::Deref for InProcessService {
    type Target = Api;

    fn deref(&self) -> &Api {
        &self.api
    }
}

impl InProcessService {
    /// Stops the server gracefully (in-flight requests finish).
    pub async fn stop(self) {
        let Self { api, stop, task } = self;
        drop(api);
        let _ = stop.send(());
        let _ = task.await;
    }
}

/// Serves the HTTP API of `E` in this process: `nis_http::bind` on `127.0.0.1:0` with one
/// worker, the routes of `E` over `decorators::stack(Core::new(Fenced::new(MemoryStore::<E>::new(make_id),
/// cache), ..), cache)` (a `MemoryCache`), `peer` answering the cross queries, and a readiness that names the same
/// dependencies as a real service (`database`, `cache`, `queue`), all up while the fakes are.
pub async fn serve_with_peer<E: JsonEntity>(
    make_id: impl Fn(u64) -> E::Id + Send + Sync + 'static,
    peer: FakePeer,
) -> InProcessService {
    if std::env::var_os("TEST_LOG").is_some() {
        telemetry::init_tracing(LogFormat::Text).keep_for_the_process();
    }
    let store = MemoryStore::<E>::new(make_id);
    let cache = MemoryCache::default();
    let fenced = decorators::Fenced::new(store.clone(), cache.clone());
    let service = decorators::stack(Core::new(fenced, LINKS_SUBJECT), cache.clone());
    let settings = HttpSettings {
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        workers: 1,
        shutdown_grace: Duration::from_secs(5),
    };
    let (server, addr) = nis_http::bind(
        &settings,
        readiness(store, cache),
        telemetry::metrics(),
        move |api| {
            api.service(nis_http::entity_scope::<E, _, _>(
                service.clone(),
                peer.clone(),
            ));
        },
    )
    .expect("bind the in-process HTTP server");
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let handle = server.handle();
        let serving = tokio::spawn(server);
        // A dropped handle stops the server too.
        let _ = stopped.await;
        handle.stop(true).await;
        let _ = serving.await;
    });
    InProcessService {
        api: Api::at(addr),
        stop,
        task,
    }
}

/// [`serve_with_peer`] with the other service down: its cross queries are 503.
pub async fn serve<E: JsonEntity>(
    make_id: impl Fn(u64) -> E::Id + Send + Sync + 'static,
) -> InProcessService {
    serve_with_peer::<E>(make_id, FakePeer::down()).await
}

/// The readiness of a real service (`nis_server::readiness`) over the fakes: the store and the
/// cache are pinged; the queue, which the in-process service has none of, is always there.
fn readiness<E: JsonEntity>(store: MemoryStore<E>, cache: MemoryCache) -> Readiness {
    Readiness::default()
        .with("database", true, move || {
            let store = store.clone();
            async move { store.ping().await.map_err(|e| e.to_string()) }
        })
        .with("cache", false, move || {
            let cache = cache.clone();
            async move { cache.ping().await.map_err(|e| e.to_string()) }
        })
        .with("queue", true, || async { Ok(()) })
}

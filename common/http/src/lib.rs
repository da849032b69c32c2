//! The actix-web adapter: the JSON API of an entity (docs/behaviour.md §3), probes, metrics,
//! request ids, the error body, and the HTTP server itself. It calls the core only through the
//! service port, so it is tested in-process against a fake service.

mod body;
mod conditional;
mod error;
mod openapi;
mod probes;
mod request_id;
mod resource;
mod routes;
mod runtime;
pub mod schema;

use std::{net::SocketAddr, time::Duration};

use actix_web::{App, HttpServer, dev::Server, middleware::from_fn, web};
use metrics_exporter_prometheus::PrometheusHandle;

pub use body::{JsonFields, MAX_BODY_BYTES};
pub use error::ApiError;
pub use openapi::document as openapi_document;
pub use request_id::context;
pub use routes::{Data, JsonEntity, entity_scope};
pub use runtime::OnRuntime;

use nis_runtime::readiness::Readiness;

/// Everything the HTTP server of a service needs.
#[derive(Clone)]
pub struct HttpSettings {
    /// Where to listen (port 0 picks a free one).
    pub addr: SocketAddr,
    /// Worker threads.
    pub workers: usize,
    /// How long in-flight requests may take to finish on shutdown.
    pub shutdown_grace: Duration,
}

/// Binds the HTTP server: the probes (`/healthz`, `/readyz`, `/metrics`), the service's API
/// (`api` adds its routes), and JSON 404s for everything else. Signals are handled by the
/// caller (`nis-server`), not by actix.
pub fn bind(
    settings: &HttpSettings,
    readiness: Readiness,
    metrics: PrometheusHandle,
    api: impl Fn(&mut web::ServiceConfig) + Clone + Send + 'static,
) -> std::io::Result<(Server, SocketAddr)> {
    let listener = std::net::TcpListener::bind(settings.addr)?;
    let addr = listener.local_addr()?;
    // The probes open store connections too: on the application's runtime (see `OnRuntime`).
    let readiness = readiness.on_runtime(tokio::runtime::Handle::current());
    let server = HttpServer::new(move || {
        App::new()
            .wrap(from_fn(request_id::middleware))
            .app_data(web::Data::new(readiness.clone()))
            .app_data(web::Data::new(metrics.clone()))
            .app_data(web::PathConfig::default().error_handler(|e, _| {
                // A path segment that is not UTF-8 once percent-decoded: a bad id, not a 404.
                ApiError::Core(nis_core::Error::BadRequest(format!("malformed path: {e}"))).into()
            }))
            .configure(probes::configure)
            .configure(api.clone())
            .default_service(web::to(probes::no_route))
    })
    .workers(settings.workers.max(1))
    .disable_signals()
    .shutdown_timeout(settings.shutdown_grace.as_secs())
    .listen(listener)?
    .run();
    Ok((server, addr))
}

//! Liveness, readiness, metrics, and the JSON 404 for unknown routes.

use actix_web::{HttpRequest, HttpResponse, web};
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::json;

use nis_core::Error;
use nis_runtime::readiness::Readiness;

use crate::{error::ApiError, resource};

pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    const READ: &str = "GET, HEAD, OPTIONS";
    cfg.service(resource::get(resource::at("/healthz", READ), healthz))
        .service(resource::get(resource::at("/readyz", READ), readyz))
        .service(resource::get(resource::at("/metrics", READ), metrics));
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "alive" }))
}

async fn readyz(readiness: web::Data<Readiness>) -> HttpResponse {
    let report = readiness.check().await;
    let mut response = if report.ready {
        HttpResponse::Ok()
    } else {
        HttpResponse::ServiceUnavailable()
    };
    response.json(report)
}

async fn metrics(handle: web::Data<PrometheusHandle>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(handle.render())
}

pub(super) async fn no_route(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::Core(Error::NotFound(format!(
        "no route for {} {}",
        req.method(),
        req.path()
    ))))
}

//! A service started in the test process with its real stores, and how to talk to it over HTTP.

use std::{net::SocketAddr, time::Duration};

use futures::future::BoxFuture;
use nis_runtime::{
    config::{CacheSettings, ServiceSettings},
    secret::Secret,
    telemetry::{self, LogFormat},
};
use nis_server::Running;
use reqwest::{Client, Response};
use serde_json::Value;

/// Settings for a service under test: free ports, the given key prefix, one worker, short
/// timeouts, no periodic reconciliation within a test; the cache at the test Redis or, with `dead_redis`, at a port where nothing listens;
/// the test NATS; the other service at `peer_url` (or nowhere).
pub fn settings(prefix: &str, dead_redis: bool) -> ServiceSettings {
    settings_with_peer(prefix, dead_redis, "http://127.0.0.1:1")
}

/// [`settings`] with the other service's gRPC URL.
pub fn settings_with_peer(prefix: &str, dead_redis: bool, peer_url: &str) -> ServiceSettings {
    if std::env::var_os("TEST_LOG").is_some() {
        telemetry::init_tracing(LogFormat::Text).keep_for_the_process();
    }
    ServiceSettings {
        http_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        grpc_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        prefix: prefix.to_owned(),
        log_format: LogFormat::Text,
        http_workers: 1,
        store_timeout: Duration::from_secs(5),
        shutdown_grace: Duration::from_secs(5),
        startup_timeout: Duration::from_secs(20),
        cache: CacheSettings {
            url: Secret::new(if dead_redis {
                super::DEAD_REDIS_URL.to_owned()
            } else {
                super::redis_url()
            }),
            ttl: Duration::from_secs(300),
            timeout: Duration::from_millis(250),
            fence_timeout: Duration::from_secs(1),
            fence_replicas: 0,
        },
        nats_url: super::nats_url(),
        peer_url: peer_url.to_owned(),
        peer_timeout: Duration::from_secs(1),
        idempotency_retention: nis_core::idempotency::DEFAULT_RETENTION,
        // Tests run reconciliation when they mean to (no periodic run within a test, but the
        // interval is exported as in production), and repair what they just changed.
        reconcile_interval: Duration::from_secs(3600),
        reconcile_grace: Duration::ZERO,
    }
}

/// The HTTP API of a service under test, wherever it runs: its base URL, a client, and the
/// requests the checks make. [`TestService`] and [`InProcessService`](crate::InProcessService)
/// both dereference to one, so the contract checks take either.
#[derive(Debug, Clone)]
pub struct Api {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// A client for the HTTP API.
    pub client: Client,
}

impl Api {
    /// The API listening at `addr`.
    pub fn at(addr: SocketAddr) -> Self {
        Self {
            base: format!("http://{addr}"),
            client: Client::new(),
        }
    }

    /// The full URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Response {
        self.client.get(self.url(path)).send().await.expect("GET")
    }

    /// `POST path` with a JSON body.
    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("POST")
    }

    /// `PUT path` with a JSON body.
    pub async fn put_json(&self, path: &str, body: &Value) -> Response {
        self.client
            .put(self.url(path))
            .json(body)
            .send()
            .await
            .expect("PUT")
    }

    /// `POST path` with `body` sent as it is, under `content_type`.
    pub async fn post_raw(
        &self,
        path: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> Response {
        self.client
            .post(self.url(path))
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body)
            .send()
            .await
            .expect("POST")
    }

    /// `DELETE path`.
    pub async fn delete(&self, path: &str) -> Response {
        self.client
            .delete(self.url(path))
            .send()
            .await
            .expect("DELETE")
    }

    /// `POST /api/{kind}` that must succeed; returns the created entity (`data`).
    pub async fn create(&self, kind: &str, entity: &Value) -> Value {
        let response = self.post_json(&format!("/api/{kind}"), entity).await;
        assert_eq!(response.status(), 201, "create {entity}");
        body(response).await["data"].clone()
    }

    /// The `/metrics` text.
    pub async fn metrics(&self) -> String {
        super::scrape(&self.client, &self.base).await
    }
}

/// A running service with its own store and key prefix; [`TestService::stop`] removes both.
/// Its HTTP API is reached through [`Api`], which it dereferences to.
pub struct TestService {
    api: Api,
    /// The gRPC listener.
    pub grpc_addr: SocketAddr,
    prefix: String,
    running: Option<Running>,
    /// In a mutex only so the handle can be shared between tasks (`Sync`).
    drop_store: std::sync::Mutex<Option<BoxFuture<'static, ()>>>,
}

impl std::ops::Deref for TestService {
    type Target = Api;

    fn deref(&self) -> &Api {
        &self.api
    }
}

impl TestService {
    /// Wraps a started service; `drop_store` removes its database when the test ends.
    pub fn new(running: Running, prefix: String, drop_store: BoxFuture<'static, ()>) -> Self {
        Self {
            api: Api::at(running.http_addr),
            grpc_addr: running.grpc_addr,
            prefix,
            running: Some(running),
            drop_store: std::sync::Mutex::new(Some(drop_store)),
        }
    }

    /// A gRPC channel to the service.
    pub async fn channel(&self) -> tonic::transport::Channel {
        tonic::transport::Channel::from_shared(format!("http://{}", self.grpc_addr))
            .expect("uri")
            .connect()
            .await
            .expect("gRPC connect")
    }

    /// Stops the service as a process would stop (graceful), leaving its store, keys and streams
    /// to the other replicas.
    pub async fn stop_replica(mut self) {
        if let Some(running) = self.running.take() {
            running.stop().await;
        }
    }

    /// Stops the service gracefully and removes its database and Redis keys.
    pub async fn stop(mut self) {
        if let Some(running) = self.running.take() {
            running.stop().await;
        }
        super::delete_redis_keys(&self.prefix).await;
        super::queue::delete_streams(&self.prefix).await;
        let drop_store = self.drop_store.lock().map(|mut d| d.take()).unwrap_or(None);
        if let Some(drop_store) = drop_store {
            drop_store.await;
        }
    }
}

/// The JSON body of a response.
pub async fn body(response: Response) -> Value {
    response.json().await.expect("JSON body")
}

/// Asserts an error response: status, code, a message, and the fields named in `details`.
pub async fn assert_error(response: Response, status: u16, code: &str, fields: &[&str]) {
    assert_eq!(response.status(), status);
    let body = body(response).await;
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    let named: Vec<&str> = body["error"]["details"]
        .as_array()
        .map(|d| d.iter().filter_map(|e| e["field"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(named, fields, "{body}");
}

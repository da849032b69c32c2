//! Starting a students service for one test, and talking to it.

use std::{net::SocketAddr, time::Duration};

use common::{
    config::{CacheSettings, ServiceSettings},
    proto::v1::student_service_client::StudentServiceClient,
    secret::Secret,
    server::Running,
    telemetry::{self, LogFormat},
};
use reqwest::{Client, Response};
use serde_json::{Value, json};
use sqlx::{Connection as _, Executor as _, PgConnection};
use students::{app, config::Config};
use tonic::transport::Channel;

/// A running students service with its own database and key prefix.
pub struct TestApp {
    pub base: String,
    pub grpc_addr: SocketAddr,
    pub client: Client,
    pub prefix: String,
    pub database: String,
    running: Option<Running>,
}

/// How a test wants its service.
#[derive(Default)]
pub struct Options {
    /// Point the cache at a Redis that does not answer.
    pub dead_redis: bool,
}

pub async fn spawn() -> TestApp {
    spawn_with(Options::default()).await
}

pub async fn spawn_with(options: Options) -> TestApp {
    if std::env::var_os("TEST_LOG").is_some() {
        telemetry::init_tracing(LogFormat::Text);
    }
    let database = testkit::unique_name("students_test");
    let mut admin = PgConnection::connect(&format!("{}/postgres", testkit::postgres_url()))
        .await
        .expect("connect to the test PostgreSQL");
    admin
        .execute(format!(r#"CREATE DATABASE "{database}""#).as_str())
        .await
        .expect("create the test database");
    let prefix = testkit::unique_name("t");
    let config = Config {
        service: ServiceSettings {
            http_addr: "127.0.0.1:0".parse().expect("addr"),
            grpc_addr: "127.0.0.1:0".parse().expect("addr"),
            prefix: prefix.clone(),
            log_format: LogFormat::Text,
            http_workers: 1,
            store_timeout: Duration::from_secs(5),
            shutdown_grace: Duration::from_secs(5),
            cache: CacheSettings {
                url: Secret::new(if options.dead_redis {
                    testkit::DEAD_REDIS_URL.to_owned()
                } else {
                    testkit::redis_url()
                }),
                ttl: Duration::from_secs(300),
                timeout: Duration::from_millis(250),
            },
        },
        database_url: Secret::new(format!("{}/{database}", testkit::postgres_url())),
        database_max_connections: 5,
        startup_timeout: Duration::from_secs(20),
    };
    let running = app::start(&config).await.expect("students starts");
    TestApp {
        base: format!("http://{}", running.http_addr),
        grpc_addr: running.grpc_addr,
        client: Client::new(),
        prefix,
        database,
        running: Some(running),
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client.get(self.url(path)).send().await.expect("GET")
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("POST")
    }

    pub async fn put_json(&self, path: &str, body: &Value) -> Response {
        self.client
            .put(self.url(path))
            .json(body)
            .send()
            .await
            .expect("PUT")
    }

    pub async fn delete(&self, path: &str) -> Response {
        self.client
            .delete(self.url(path))
            .send()
            .await
            .expect("DELETE")
    }

    /// Creates a student and returns its JSON (`data`).
    pub async fn create_student(&self, name: &str) -> Value {
        let response = self.post_json("/api/students", &student(name)).await;
        assert_eq!(response.status(), 201, "create {name}");
        body(response).await["data"].clone()
    }

    pub async fn grpc(&self) -> StudentServiceClient<Channel> {
        StudentServiceClient::connect(format!("http://{}", self.grpc_addr))
            .await
            .expect("gRPC connect")
    }

    pub async fn metrics(&self) -> String {
        testkit::scrape(&self.client, &self.base).await
    }

    /// Stops the service and drops its database and keys.
    pub async fn stop(mut self) {
        if let Some(running) = self.running.take() {
            running.stop().await;
        }
        testkit::delete_redis_keys(&self.prefix).await;
        if let Ok(mut admin) =
            PgConnection::connect(&format!("{}/postgres", testkit::postgres_url())).await
        {
            let _ = admin
                .execute(
                    format!(
                        r#"DROP DATABASE IF EXISTS "{}" WITH (FORCE)"#,
                        self.database
                    )
                    .as_str(),
                )
                .await;
        }
    }
}

/// A valid student body.
pub fn student(name: &str) -> Value {
    json!({ "name": name, "first_name": "Ada", "last_name": "Lovelace", "course_ids": [] })
}

/// The JSON body of a response.
pub async fn body(response: Response) -> Value {
    response.json().await.expect("JSON body")
}

/// Asserts an error response: status, code, and the fields named in `details` (in order).
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

/// Some well-formed course ids.
pub fn course_ids(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{:024x}", 0xc0ffee00 + i)).collect()
}

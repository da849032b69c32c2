//! The Redis cache: reads after writes are fresh, repeated reads hit, and a dead Redis costs
//! nothing but the cache.

use serde_json::json;
use testkit::metric_value;

use crate::helpers::{Options, body, spawn, spawn_with, student};

fn lookups(metrics: &str, operation: &str, result: &str) -> f64 {
    metric_value(
        metrics,
        "nis_cache_lookups_total",
        &[
            ("service", "students"),
            ("operation", operation),
            ("result", result),
        ],
    )
}

#[tokio::test]
async fn a_repeated_read_is_a_hit() {
    let app = spawn().await;
    let id = app.create_student("cached").await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let path = format!("/api/students/{id}");
    let first = body(app.get(&path).await).await;
    let before = app.metrics().await;
    let second = body(app.get(&path).await).await;
    let after = app.metrics().await;
    assert_eq!(first, second);
    assert_eq!(
        lookups(&after, "get", "hit") - lookups(&before, "get", "hit"),
        1.0
    );
    assert_eq!(
        lookups(&after, "get", "miss"),
        lookups(&before, "get", "miss")
    );

    app.get("/api/students?limit=7").await;
    let before = app.metrics().await;
    app.get("/api/students?limit=7").await;
    let after = app.metrics().await;
    assert_eq!(
        lookups(&after, "list", "hit") - lookups(&before, "list", "hit"),
        1.0
    );
    app.stop().await;
}

#[tokio::test]
async fn every_read_after_a_write_sees_the_write() {
    let app = spawn().await;
    let id = app.create_student("before").await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let path = format!("/api/students/{id}");
    // Warm both caches.
    assert_eq!(body(app.get(&path).await).await["data"]["name"], "before");
    assert_eq!(
        body(app.get("/api/students").await).await["data"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );

    // Create: the list shows the new student.
    app.create_student("another").await;
    assert_eq!(
        body(app.get("/api/students").await).await["data"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );

    // Update over HTTP: get and list show the new name.
    let response = app.put_json(&path, &student("after")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(body(app.get(&path).await).await["data"]["name"], "after");
    assert_eq!(
        body(app.get("/api/students").await).await["data"][0]["name"],
        "after"
    );

    // Update over gRPC: HTTP reads see it too (one cache for both transports).
    let mut grpc = app.grpc().await;
    grpc.update_student(common::proto::v1::UpdateStudentRequest {
        id: id.clone(),
        name: "viagrpc".into(),
        first_name: "Ada".into(),
        last_name: "Lovelace".into(),
        course_ids: vec![],
    })
    .await
    .expect("update");
    assert_eq!(body(app.get(&path).await).await["data"]["name"], "viagrpc");

    // Delete: get is 404, list no longer has it.
    assert_eq!(app.delete(&path).await.status(), 204);
    assert_eq!(app.get(&path).await.status(), 404);
    let remaining = body(app.get("/api/students").await).await["data"].clone();
    assert!(
        remaining
            .as_array()
            .is_some_and(|all| all.iter().all(|s| s["id"] != json!(id)))
    );
    app.stop().await;
}

#[tokio::test]
async fn with_redis_unreachable_requests_succeed_and_readiness_says_degraded() {
    let app = spawn_with(Options { dead_redis: true }).await;
    let id = app.create_student("nocache").await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let path = format!("/api/students/{id}");
    for _ in 0..3 {
        let response = app.get(&path).await;
        assert_eq!(response.status(), 200);
        assert_eq!(app.get("/api/students").await.status(), 200);
    }
    assert_eq!(
        app.put_json(&path, &student("stillworks")).await.status(),
        200
    );
    assert_eq!(
        body(app.get(&path).await).await["data"]["name"],
        "stillworks"
    );
    assert_eq!(app.delete(&path).await.status(), 204);

    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), 200);
    let ready = body(ready).await;
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["dependencies"]["cache"]["state"], "degraded");
    assert_eq!(ready["dependencies"]["database"]["state"], "up");

    let metrics = app.metrics().await;
    assert!(lookups(&metrics, "get", "error") >= 3.0, "{metrics}");
    app.stop().await;
}

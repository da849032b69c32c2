//! Every students route of CONTRACT §3 and every status that applies.

use serde_json::json;

use crate::helpers::{assert_error, body, course_ids, spawn, student};

#[tokio::test]
async fn create_returns_201_with_location_and_the_stored_student() {
    let app = spawn().await;
    let courses = course_ids(2);
    let response = app
        .post_json(
            "/api/students",
            &json!({ "name": "  ada ", "first_name": "Ada", "last_name": "Lovelace",
                     "course_ids": [courses[0], courses[1], courses[0]] }),
        )
        .await;
    assert_eq!(response.status(), 201);
    let location = response.headers()["location"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let created = body(response).await["data"].clone();
    let id = created["id"].as_str().expect("id");
    assert_eq!(location, format!("/api/students/{id}"));
    assert_eq!(created["name"], "ada", "trimmed");
    assert_eq!(
        created["course_ids"],
        json!([courses[0], courses[1]]),
        "duplicates collapsed"
    );

    let fetched = app.get(&location).await;
    assert_eq!(fetched.status(), 200);
    assert_eq!(body(fetched).await["data"], created);
    app.stop().await;
}

#[tokio::test]
async fn list_is_oldest_first_and_pages() {
    let app = spawn().await;
    let mut ids = Vec::new();
    for name in ["first", "second", "third", "fourth"] {
        ids.push(app.create_student(name).await["id"].clone());
    }
    let all = body(app.get("/api/students").await).await["data"].clone();
    let listed: Vec<_> = all
        .as_array()
        .expect("array")
        .iter()
        .map(|s| s["id"].clone())
        .collect();
    assert_eq!(listed, ids);

    let page = body(app.get("/api/students?limit=2&offset=1").await).await["data"].clone();
    let paged: Vec<_> = page
        .as_array()
        .expect("array")
        .iter()
        .map(|s| s["id"].clone())
        .collect();
    assert_eq!(paged, ids[1..3]);

    let beyond = body(app.get("/api/students?offset=10").await).await;
    assert_eq!(beyond["data"], json!([]));
    app.stop().await;
}

#[tokio::test]
async fn bad_limit_or_offset_is_400() {
    let app = spawn().await;
    for query in [
        "limit=0",
        "limit=501",
        "limit=abc",
        "limit=-1",
        "offset=-1",
        "offset=x",
        "limit=1.5",
    ] {
        assert_error(
            app.get(&format!("/api/students?{query}")).await,
            400,
            "bad_request",
            &[],
        )
        .await;
    }
    assert_eq!(
        app.get("/api/students?limit=500&offset=0").await.status(),
        200
    );
    app.stop().await;
}

#[tokio::test]
async fn get_unknown_is_404_and_malformed_id_is_400() {
    let app = spawn().await;
    let unknown = uuid::Uuid::now_v7();
    assert_error(
        app.get(&format!("/api/students/{unknown}")).await,
        404,
        "not_found",
        &[],
    )
    .await;
    assert_error(
        app.get("/api/students/not-a-uuid").await,
        400,
        "bad_request",
        &[],
    )
    .await;
    assert_error(
        app.delete("/api/students/123").await,
        400,
        "bad_request",
        &[],
    )
    .await;
    assert_error(
        app.put_json("/api/students/123", &student("abc")).await,
        400,
        "bad_request",
        &[],
    )
    .await;
    app.stop().await;
}

#[tokio::test]
async fn put_replaces_everything_and_an_omitted_list_means_empty() {
    let app = spawn().await;
    let courses = course_ids(1);
    let created = app
        .post_json(
            "/api/students",
            &json!({ "name": "grace", "first_name": "Grace", "last_name": "Hopper", "course_ids": courses }),
        )
        .await;
    let id = body(created).await["data"]["id"]
        .as_str()
        .expect("id")
        .to_owned();

    let replaced = app
        .put_json(
            &format!("/api/students/{id}"),
            &json!({ "id": id, "name": "gracie", "first_name": "Grace", "last_name": "Hopper" }),
        )
        .await;
    assert_eq!(replaced.status(), 200);
    let replaced = body(replaced).await["data"].clone();
    assert_eq!(replaced["name"], "gracie");
    assert_eq!(replaced["course_ids"], json!([]));
    assert_eq!(
        body(app.get(&format!("/api/students/{id}")).await).await["data"],
        replaced
    );

    let unknown = uuid::Uuid::now_v7();
    assert_error(
        app.put_json(&format!("/api/students/{unknown}"), &student("nobody"))
            .await,
        404,
        "not_found",
        &[],
    )
    .await;
    let other = uuid::Uuid::now_v7();
    let mut mismatched = student("gracie");
    mismatched["id"] = json!(other.to_string());
    assert_error(
        app.put_json(&format!("/api/students/{id}"), &mismatched)
            .await,
        422,
        "validation_failed",
        &["id"],
    )
    .await;
    app.stop().await;
}

#[tokio::test]
async fn delete_is_204_then_404() {
    let app = spawn().await;
    let id = app.create_student("temp").await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let deleted = app.delete(&format!("/api/students/{id}")).await;
    assert_eq!(deleted.status(), 204);
    assert!(deleted.text().await.expect("body").is_empty());
    assert_error(
        app.get(&format!("/api/students/{id}")).await,
        404,
        "not_found",
        &[],
    )
    .await;
    assert_error(
        app.delete(&format!("/api/students/{id}")).await,
        404,
        "not_found",
        &[],
    )
    .await;
    app.stop().await;
}

#[tokio::test]
async fn the_same_full_name_twice_is_409() {
    let app = spawn().await;
    app.create_student("twin").await;
    assert_error(
        app.post_json("/api/students", &student("twin")).await,
        409,
        "conflict",
        &[],
    )
    .await;
    // Trimming happens before the unique rule.
    assert_error(
        app.post_json("/api/students", &student("  twin  ")).await,
        409,
        "conflict",
        &[],
    )
    .await;

    let other = app.create_student("other").await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert_error(
        app.put_json(&format!("/api/students/{other}"), &student("twin"))
            .await,
        409,
        "conflict",
        &[],
    )
    .await;
    app.stop().await;
}

#[tokio::test]
async fn bodies_over_64_kib_are_413() {
    let app = spawn().await;
    let mut big = student("big");
    big["padding"] = json!("x".repeat(70 * 1024));
    assert_error(
        app.post_json("/api/students", &big).await,
        413,
        "payload_too_large",
        &[],
    )
    .await;

    // Without a Content-Length the limit still holds (chunked body).
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        vec![Ok(vec![b' '; 40 * 1024]), Ok(vec![b' '; 40 * 1024])];
    let response = app
        .client
        .post(app.url("/api/students"))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures_stream(chunks)))
        .send()
        .await
        .expect("POST");
    assert_error(response, 413, "payload_too_large", &[]).await;
    app.stop().await;
}

fn futures_stream(
    chunks: Vec<Result<Vec<u8>, std::io::Error>>,
) -> impl futures::Stream<Item = Result<Vec<u8>, std::io::Error>> + Send + 'static {
    futures::stream::iter(chunks)
}

#[tokio::test]
async fn bodies_that_are_not_json_are_415() {
    let app = spawn().await;
    let body = serde_json::to_string(&student("plain")).expect("json");
    let no_type = app
        .client
        .post(app.url("/api/students"))
        .body(body.clone())
        .send()
        .await
        .expect("POST");
    assert_error(no_type, 415, "unsupported_media_type", &[]).await;
    let text = app
        .client
        .post(app.url("/api/students"))
        .header("content-type", "text/plain")
        .body(body.clone())
        .send()
        .await
        .expect("POST");
    assert_error(text, 415, "unsupported_media_type", &[]).await;
    let with_charset = app
        .client
        .post(app.url("/api/students"))
        .header("content-type", "application/json; charset=utf-8")
        .body(body)
        .send()
        .await
        .expect("POST");
    assert_eq!(with_charset.status(), 201);
    app.stop().await;
}

#[tokio::test]
async fn malformed_json_is_400() {
    let app = spawn().await;
    for raw in ["{", "{\"name\": }", "", "nul"] {
        let response = app
            .client
            .post(app.url("/api/students"))
            .header("content-type", "application/json")
            .body(raw)
            .send()
            .await
            .expect("POST");
        assert_error(response, 400, "bad_request", &[]).await;
    }
    app.stop().await;
}

#[tokio::test]
async fn broken_field_rules_are_422_with_details() {
    let app = spawn().await;
    let cases = [
        (json!({}), vec!["name", "first_name", "last_name"]),
        (
            json!({ "name": "ab", "first_name": "Ada", "last_name": "Lovelace" }),
            vec!["name"],
        ),
        (
            json!({ "name": "x".repeat(21), "first_name": "   Ada   ", "last_name": "Lovelace" }),
            vec!["name"],
        ),
        (
            json!({ "name": "ada", "first_name": 7, "last_name": "Lovelace" }),
            vec!["first_name"],
        ),
        (
            json!({ "name": "ada", "first_name": "Ada", "last_name": "Lovelace", "course_ids": ["nope", "0123456789abcdef01234567", 3] }),
            vec!["course_ids[2]"],
        ),
        (
            json!({ "name": "ada", "first_name": "Ada", "last_name": "Lovelace", "course_ids": ["nope"] }),
            vec!["course_ids[0]"],
        ),
        (
            json!({ "name": "ada", "first_name": "Ada", "last_name": "Lovelace", "course_ids": course_ids(16) }),
            vec!["course_ids"],
        ),
        (
            json!({ "name": "ada", "first_name": "Ada", "last_name": "Lovelace", "nickname": "x" }),
            vec!["nickname"],
        ),
        (
            json!({ "id": uuid::Uuid::now_v7().to_string(), "name": "ada", "first_name": "Ada", "last_name": "Lovelace" }),
            vec!["id"],
        ),
        (json!([1, 2]), vec!["body"]),
    ];
    for (payload, fields) in cases {
        assert_error(
            app.post_json("/api/students", &payload).await,
            422,
            "validation_failed",
            &fields,
        )
        .await;
    }
    // Characters, not bytes: 20 Cyrillic letters are 40 bytes and fine.
    let response = app
        .post_json(
            "/api/students",
            &json!({ "name": "Ж".repeat(20), "first_name": "Юлия", "last_name": "Çelik" }),
        )
        .await;
    assert_eq!(response.status(), 201);
    // 15 distinct courses, with repeats, are fine.
    let mut fifteen = course_ids(15);
    fifteen.extend(course_ids(3));
    let response = app
        .post_json(
            "/api/students",
            &json!({ "name": "busy", "first_name": "Busy", "last_name": "Bee", "course_ids": fifteen }),
        )
        .await;
    assert_eq!(response.status(), 201);
    assert_eq!(
        body(response).await["data"]["course_ids"]
            .as_array()
            .map(Vec::len),
        Some(15)
    );
    app.stop().await;
}

#[tokio::test]
async fn health_openapi_probes_and_unknown_routes() {
    let app = spawn().await;
    let health = app.get("/api/students/health").await;
    assert_eq!(health.status(), 200);
    assert_eq!(body(health).await, json!({ "message": "students alive" }));

    let openapi = body(app.get("/api/students/openapi.json").await).await;
    assert!(
        openapi["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3."))
    );
    assert!(openapi["paths"]["/api/students/{id}"]["put"].is_object());

    assert_eq!(app.get("/healthz").await.status(), 200);
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), 200);
    let ready = body(ready).await;
    assert_eq!(ready["dependencies"]["database"]["state"], "up");
    assert_eq!(ready["dependencies"]["cache"]["state"], "up");

    assert_error(app.get("/api/nothing").await, 404, "not_found", &[]).await;
    app.stop().await;
}

#[tokio::test]
async fn the_request_id_is_kept_or_made() {
    let app = spawn().await;
    let response = app
        .client
        .get(app.url("/api/students"))
        .header("x-request-id", "test-123")
        .send()
        .await
        .expect("GET");
    assert_eq!(response.headers()["x-request-id"], "test-123");
    let made = app.get("/api/students").await;
    assert!(
        made.headers()["x-request-id"]
            .to_str()
            .is_ok_and(|id| id.len() >= 32)
    );
    app.stop().await;
}

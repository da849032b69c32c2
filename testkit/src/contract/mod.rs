//! The HTTP contract (docs/behaviour.md §3, §6, §7) as checks that run against any nis service, so
//! both services are held to exactly the same behaviour. Each service's tests call them with a
//! [`Kind`] that says how to make valid entities of its kind, usually through
//! [`contract_tests!`](crate::contract_tests), which makes one test per check.
//!
//! Every check takes the service's HTTP [`Api`], so it runs against a service started with its
//! real stores ([`TestService`](crate::TestService)) or against its HTTP API alone, in process
//! over in-memory fakes ([`InProcessService`](crate::InProcessService)). The checks that touch
//! only the HTTP adapter run in process; those that need the stores, Redis or the metrics of a
//! real service run on the real stack (see [`contract_tests!`](crate::contract_tests)).

mod odd_requests;

use std::time::Duration;

use serde_json::{Value, json};

pub use odd_requests::*;

use crate::{Api, assert_error, body, metric_value};

/// How to exercise one entity kind.
pub struct Kind {
    /// The kind, as in `/api/{name}`: `students` or `courses`.
    pub name: &'static str,
    /// A well-formed id that names no entity.
    pub unknown_id: fn() -> String,
    /// An id that is malformed for this kind.
    pub malformed_id: &'static str,
    /// A valid body; different `n` give entities that don't clash with each other.
    pub valid: fn(u32) -> Value,
    /// The field holding the ids of the other kind.
    pub links_field: &'static str,
    /// `n` well-formed ids of the other kind.
    pub other_ids: fn(usize) -> Vec<String>,
    /// The other kind, as in `/api/{name}/{id}/{other_kind}`.
    pub other_kind: &'static str,
    /// A text field to change in updates.
    pub text_field: &'static str,
    /// Every text field.
    pub text_fields: &'static [&'static str],
    /// The text field that may hold line feeds and tabs, if any.
    pub multiline_field: Option<&'static str>,
}

impl Kind {
    fn path(&self, rest: &str) -> String {
        format!("/api/{}{rest}", self.name)
    }

    async fn create(&self, app: &Api, n: u32) -> Value {
        app.create(self.name, &(self.valid)(n)).await
    }
}

fn id_of(entity: &Value) -> String {
    entity["id"].as_str().expect("id").to_owned()
}

/// POST is 201 with `Location` and the stored entity, which GET returns unchanged.
pub async fn create_returns_201_with_location(app: &Api, kind: &Kind) {
    let response = app.post_json(&kind.path(""), &(kind.valid)(1)).await;
    assert_eq!(response.status(), 201);
    let location = response.headers()["location"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let created = body(response).await["data"].clone();
    assert_eq!(location, kind.path(&format!("/{}", id_of(&created))));
    let fetched = app.get(&location).await;
    assert_eq!(fetched.status(), 200);
    assert_eq!(body(fetched).await["data"], created);
}

/// Lists are oldest first and page with `limit` and `offset`.
pub async fn list_is_oldest_first_and_pages(app: &Api, kind: &Kind) {
    let mut ids = Vec::new();
    for n in 1..=4 {
        ids.push(id_of(&kind.create(app, n).await));
    }
    let listed = |page: Value| -> Vec<String> {
        page["data"]
            .as_array()
            .expect("array")
            .iter()
            .map(id_of)
            .collect()
    };
    assert_eq!(listed(body(app.get(&kind.path("")).await).await), ids);
    assert_eq!(
        listed(body(app.get(&kind.path("?limit=2&offset=1")).await).await),
        ids[1..3]
    );
    assert_eq!(
        listed(body(app.get(&kind.path("?offset=10")).await).await),
        Vec::<String>::new()
    );
}

/// `limit` outside 1..=500 or not a number, and a bad `offset`, are 400.
pub async fn bad_limit_or_offset_is_400(app: &Api, kind: &Kind) {
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
            app.get(&kind.path(&format!("?{query}"))).await,
            400,
            "bad_request",
            &[],
        )
        .await;
    }
    assert_eq!(
        app.get(&kind.path("?limit=500&offset=0")).await.status(),
        200
    );
}

/// A malformed id is 400 on every route that takes one; an unknown one is 404.
pub async fn unknown_is_404_and_malformed_is_400(app: &Api, kind: &Kind) {
    let unknown = kind.path(&format!("/{}", (kind.unknown_id)()));
    assert_error(app.get(&unknown).await, 404, "not_found", &[]).await;
    assert_error(
        app.put_json(&unknown, &(kind.valid)(1)).await,
        404,
        "not_found",
        &[],
    )
    .await;
    assert_error(app.delete(&unknown).await, 404, "not_found", &[]).await;
    let malformed = kind.path(&format!("/{}", kind.malformed_id));
    assert_error(app.get(&malformed).await, 400, "bad_request", &[]).await;
    assert_error(
        app.put_json(&malformed, &(kind.valid)(1)).await,
        400,
        "bad_request",
        &[],
    )
    .await;
    assert_error(app.delete(&malformed).await, 400, "bad_request", &[]).await;
}

/// PUT replaces every field; an omitted id list means empty; a body `id` must match the path.
pub async fn put_replaces_everything(app: &Api, kind: &Kind) {
    let links = (kind.other_ids)(2);
    let mut original = (kind.valid)(1);
    original[kind.links_field] = json!(links);
    let created = app.create(kind.name, &original).await;
    assert_eq!(created[kind.links_field], json!(links));
    let id = id_of(&created);
    let path = kind.path(&format!("/{id}"));

    let mut replacement = (kind.valid)(2);
    replacement
        .as_object_mut()
        .expect("object")
        .remove(kind.links_field);
    replacement["id"] = json!(id);
    let replaced = app.put_json(&path, &replacement).await;
    assert_eq!(replaced.status(), 200);
    let replaced = body(replaced).await["data"].clone();
    assert_eq!(replaced[kind.text_field], (kind.valid)(2)[kind.text_field]);
    assert_eq!(replaced[kind.links_field], json!([]));
    assert_eq!(body(app.get(&path).await).await["data"], replaced);

    let mut mismatched = (kind.valid)(2);
    mismatched["id"] = json!((kind.unknown_id)());
    assert_error(
        app.put_json(&path, &mismatched).await,
        422,
        "validation_failed",
        &["id"],
    )
    .await;
}

/// DELETE is 204 with no body, then the entity is gone: reading, replacing or deleting it again
/// is 404.
pub async fn delete_is_204_then_404(app: &Api, kind: &Kind) {
    let path = kind.path(&format!("/{}", id_of(&kind.create(app, 1).await)));
    let deleted = app.delete(&path).await;
    assert_eq!(deleted.status(), 204);
    assert!(deleted.text().await.expect("body").is_empty());
    assert_error(app.get(&path).await, 404, "not_found", &[]).await;
    assert_error(
        app.put_json(&path, &(kind.valid)(1)).await,
        404,
        "not_found",
        &[],
    )
    .await;
    assert_error(app.delete(&path).await, 404, "not_found", &[]).await;
}

/// Bodies over 64 KiB are 413, with or without a `Content-Length`.
pub async fn bodies_over_64_kib_are_413(app: &Api, kind: &Kind) {
    let mut big = (kind.valid)(1);
    big["padding"] = json!("x".repeat(70 * 1024));
    assert_error(
        app.post_json(&kind.path(""), &big).await,
        413,
        "payload_too_large",
        &[],
    )
    .await;

    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        vec![Ok(vec![b' '; 40 * 1024]), Ok(vec![b' '; 40 * 1024])];
    let chunked = app
        .client
        .post(app.url(&kind.path("")))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .expect("POST");
    assert_error(chunked, 413, "payload_too_large", &[]).await;
}

/// POST and PUT need `Content-Type: application/json` (a charset parameter is fine).
pub async fn bodies_that_are_not_json_are_415(app: &Api, kind: &Kind) {
    let raw = (kind.valid)(1).to_string();
    let send = |content_type: Option<&'static str>| {
        let mut request = app.client.post(app.url(&kind.path(""))).body(raw.clone());
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        request.send()
    };
    assert_error(
        send(None).await.expect("POST"),
        415,
        "unsupported_media_type",
        &[],
    )
    .await;
    assert_error(
        send(Some("text/plain")).await.expect("POST"),
        415,
        "unsupported_media_type",
        &[],
    )
    .await;
    let created = send(Some("application/json; charset=utf-8"))
        .await
        .expect("POST");
    assert_eq!(created.status(), 201);
    let id = id_of(&body(created).await["data"]);
    let put = app
        .client
        .put(app.url(&kind.path(&format!("/{id}"))))
        .header("content-type", "text/plain")
        .body(raw)
        .send()
        .await
        .expect("PUT");
    assert_error(put, 415, "unsupported_media_type", &[]).await;
}

/// Malformed JSON is 400; valid JSON that is not an object is 422.
pub async fn malformed_json_is_400(app: &Api, kind: &Kind) {
    for raw in ["{", "{\"name\": }", "", "nul"] {
        let response = app
            .client
            .post(app.url(&kind.path("")))
            .header("content-type", "application/json")
            .body(raw)
            .send()
            .await
            .expect("POST");
        assert_error(response, 400, "bad_request", &[]).await;
    }
    assert_error(
        app.post_json(&kind.path(""), &json!([1, 2])).await,
        422,
        "validation_failed",
        &["body"],
    )
    .await;
}

/// Unknown fields, wrong types and an `id` in a POST body are 422 naming each field.
pub async fn structural_problems_are_422(app: &Api, kind: &Kind) {
    let mut unknown = (kind.valid)(1);
    unknown["nickname"] = json!("x");
    assert_error(
        app.post_json(&kind.path(""), &unknown).await,
        422,
        "validation_failed",
        &["nickname"],
    )
    .await;

    let mut typed = (kind.valid)(1);
    typed[kind.text_field] = json!(7);
    assert_error(
        app.post_json(&kind.path(""), &typed).await,
        422,
        "validation_failed",
        &[kind.text_field],
    )
    .await;

    let mut list = (kind.valid)(1);
    list[kind.links_field] = json!([3]);
    let entry = format!("{}[0]", kind.links_field);
    assert_error(
        app.post_json(&kind.path(""), &list).await,
        422,
        "validation_failed",
        &[entry.as_str()],
    )
    .await;

    let mut with_id = (kind.valid)(1);
    with_id["id"] = json!((kind.unknown_id)());
    assert_error(
        app.post_json(&kind.path(""), &with_id).await,
        422,
        "validation_failed",
        &["id"],
    )
    .await;
}

/// The kind's health and OpenAPI routes, the probes, and JSON 404s for unknown routes. The
/// `/readyz` body must name the store as `database` and the cache as `cache`, both up (against
/// real servers, [`ready_when_the_real_stores_answer`] checks they really are).
pub async fn health_openapi_probes_and_unknown_routes(app: &Api, kind: &Kind) {
    let health = app.get(&kind.path("/health")).await;
    assert_eq!(health.status(), 200);
    assert_eq!(
        body(health).await,
        json!({ "message": format!("{} alive", kind.name) })
    );

    let openapi = body(app.get(&kind.path("/openapi.json")).await).await;
    assert!(
        openapi["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3."))
    );
    assert!(openapi["paths"][kind.path("/{id}")]["put"].is_object());

    assert_eq!(app.get("/healthz").await.status(), 200);
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), 200);
    let ready = body(ready).await;
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["dependencies"]["database"]["state"], "up");
    assert_eq!(ready["dependencies"]["cache"]["state"], "up");

    assert_error(app.get("/api/nothing").await, 404, "not_found", &[]).await;
    assert_error(
        app.delete(&kind.path("")).await,
        405,
        "method_not_allowed",
        &[],
    )
    .await;
    let patch = app
        .client
        .patch(app.url(&kind.path(&format!("/{}", (kind.unknown_id)()))))
        .send();
    assert_error(patch.await.expect("PATCH"), 405, "method_not_allowed", &[]).await;
}

/// With its real store, Redis and NATS answering, the service is ready (once its NATS
/// connection, made in the background, is up) and says each is up.
pub async fn ready_when_the_real_stores_answer(app: &Api, _kind: &Kind) {
    let ready = crate::wait_for("/readyz to be 200", Duration::from_secs(10), || async {
        let ready = app.get("/readyz").await;
        (ready.status() == 200).then_some(ready)
    })
    .await;
    let ready = body(ready).await;
    assert_eq!(ready["status"], "ready", "{ready}");
    assert_eq!(ready["dependencies"]["database"]["state"], "up", "{ready}");
    assert_eq!(ready["dependencies"]["cache"]["state"], "up", "{ready}");
    assert_eq!(ready["dependencies"]["queue"]["state"], "up", "{ready}");
}

/// A sane `x-request-id` is echoed; without one the service makes one.
pub async fn the_request_id_is_kept_or_made(app: &Api, kind: &Kind) {
    let response = app
        .client
        .get(app.url(&kind.path("")))
        .header("x-request-id", "test-123")
        .send()
        .await
        .expect("GET");
    assert_eq!(response.headers()["x-request-id"], "test-123");
    let made = app.get(&kind.path("")).await;
    assert!(
        made.headers()["x-request-id"]
            .to_str()
            .is_ok_and(|id| id.len() >= 32)
    );
}

fn cache_lookups(metrics: &str, kind: &Kind, operation: &str, result: &str) -> f64 {
    metric_value(
        metrics,
        "nis_cache_lookups_total",
        &[
            ("service", kind.name),
            ("operation", operation),
            ("result", result),
        ],
    )
}

/// A repeated read is a cache hit, for get and for list.
pub async fn a_repeated_read_is_a_hit(app: &Api, kind: &Kind) {
    let path = kind.path(&format!("/{}", id_of(&kind.create(app, 1).await)));
    for (operation, path) in [("get", path.as_str()), ("list", &*kind.path("?limit=7"))] {
        let first = body(app.get(path).await).await;
        let before = app.metrics().await;
        let second = body(app.get(path).await).await;
        let after = app.metrics().await;
        assert_eq!(first, second);
        let delta = |result| {
            cache_lookups(&after, kind, operation, result)
                - cache_lookups(&before, kind, operation, result)
        };
        assert_eq!(delta("hit"), 1.0, "{operation}");
        assert_eq!(delta("miss"), 0.0, "{operation}");
    }
}

/// Every read after a create, update or delete sees it, though the reads before were cached.
pub async fn every_read_after_a_write_sees_it(app: &Api, kind: &Kind) {
    let first = kind.create(app, 1).await;
    let path = kind.path(&format!("/{}", id_of(&first)));
    let count = |page: Value| page["data"].as_array().map(Vec::len);
    // Warm the caches.
    assert_eq!(body(app.get(&path).await).await["data"], first);
    assert_eq!(count(body(app.get(&kind.path("")).await).await), Some(1));

    kind.create(app, 2).await;
    assert_eq!(count(body(app.get(&kind.path("")).await).await), Some(2));

    let replacement = (kind.valid)(3);
    assert_eq!(app.put_json(&path, &replacement).await.status(), 200);
    assert_eq!(
        body(app.get(&path).await).await["data"][kind.text_field],
        replacement[kind.text_field]
    );
    assert_eq!(
        body(app.get(&kind.path("")).await).await["data"][0][kind.text_field],
        replacement[kind.text_field]
    );

    assert_eq!(app.delete(&path).await.status(), 204);
    assert_eq!(app.get(&path).await.status(), 404);
    assert_eq!(count(body(app.get(&kind.path("")).await).await), Some(1));
}

/// With Redis unreachable every read still works, from the database; every write is refused
/// with 503 `unavailable` and nothing committed, since the cache cannot be fenced against
/// serving what it replaces (docs/behaviour.md §6); `/readyz` says the cache is degraded; the
/// failed lookups and the refused writes are counted.
pub async fn with_redis_unreachable_reads_succeed_and_writes_are_refused(app: &Api, kind: &Kind) {
    let list = kind.path("");
    let count = |page: Value| page["data"].as_array().map(Vec::len);
    for _ in 0..3 {
        assert_eq!(app.get(&list).await.status(), 200);
    }
    let created = app.post_json(&list, &(kind.valid)(1)).await;
    assert_eq!(created.status(), 503);
    assert_eq!(body(created).await["error"]["code"], "unavailable");
    assert_eq!(
        count(body(app.get(&list).await).await),
        Some(0),
        "the refused create committed nothing"
    );

    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), 200);
    let ready = body(ready).await;
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["dependencies"]["cache"]["state"], "degraded");
    assert_eq!(ready["dependencies"]["database"]["state"], "up");
    let metrics = app.metrics().await;
    assert!(
        cache_lookups(&metrics, kind, "list", "error") >= 3.0,
        "{metrics}"
    );
    assert_eq!(
        metric_value(
            &metrics,
            "nis_cache_fence_refusals_total",
            &[("service", kind.name)]
        ),
        1.0,
        "{metrics}"
    );
}

/// After `http_calls` (create, list, a 404 get) and one gRPC list made by the caller, the
/// request families carry the labels of docs/behaviour.md §7 for both transports.
pub async fn request_metrics_are_labelled(app: &Api, kind: &Kind, grpc_lists: u32) {
    let metrics = app.metrics().await;
    let count = |transport: &str, operation: &str, outcome: &str| {
        metric_value(
            &metrics,
            "nis_requests_total",
            &[
                ("service", kind.name),
                ("transport", transport),
                ("operation", operation),
                ("outcome", outcome),
            ],
        )
    };
    assert_eq!(count("http", "create", "ok"), 1.0, "{metrics}");
    assert_eq!(count("http", "list", "ok"), 1.0);
    assert_eq!(count("http", "get", "error"), 1.0);
    let not_found = metric_value(
        &metrics,
        "nis_requests_total",
        &[
            ("service", kind.name),
            ("operation", "get"),
            ("outcome", "error"),
            ("code", "not_found"),
        ],
    );
    assert_eq!(not_found, 1.0, "the error code is a label");
    assert_eq!(count("grpc", "list", "ok"), f64::from(grpc_lists));
    for transport in ["http", "grpc"] {
        let observed = metric_value(
            &metrics,
            "nis_request_duration_seconds_count",
            &[
                ("service", kind.name),
                ("transport", transport),
                ("operation", "list"),
                ("outcome", "ok"),
            ],
        );
        assert!(observed >= 1.0, "{transport} latency");
    }
    assert!(metrics.contains("# TYPE nis_request_duration_seconds histogram"));
}

/// The HTTP calls [`request_metrics_are_labelled`] expects.
pub async fn make_http_calls_for_metrics(app: &Api, kind: &Kind) {
    kind.create(app, 1).await;
    app.get(&kind.path("")).await;
    app.get(&kind.path(&format!("/{}", (kind.unknown_id)())))
        .await;
}

/// Makes one `#[tokio::test]` per contract check for a service, in two modules:
///
/// - `in_process`: the checks that touch only the HTTP adapter (query, id and body parsing,
///   media types, sizes, error mapping, probes, OpenAPI, request ids), each against the
///   service's HTTP API served in process over in-memory fakes by `in_process` (usually
///   [`in_process::serve`](crate::in_process::serve) with the service's entity type);
/// - `full_stack`: the checks that need the real stores, Redis or a real service's metrics,
///   each against the service started by `spawn` on the test servers, and by
///   `spawn_without_redis` with its cache pointed where nothing answers.
#[macro_export]
macro_rules! contract_tests {
    (
        kind: $kind:expr,
        in_process: $in_process:path,
        spawn: $spawn:path,
        spawn_without_redis: $spawn_dead:path $(,)?
    ) => {
        /// The checks of the HTTP adapter, against the HTTP API in process over fakes.
        mod in_process {
            #[allow(unused_imports)]
            use super::*;

            $crate::contract_tests!(@each $kind, $in_process;
                bad_limit_or_offset_is_400,
                unknown_is_404_and_malformed_is_400,
                bodies_over_64_kib_are_413,
                bodies_that_are_not_json_are_415,
                malformed_json_is_400,
                structural_problems_are_422,
                health_openapi_probes_and_unknown_routes,
                the_request_id_is_kept_or_made,
                control_characters_are_422,
                bidi_controls_are_422,
                duplicate_keys_are_400,
                wrong_json_types_are_422,
                ten_thousand_character_strings_are_422,
                a_body_of_exactly_64_kib_is_read_one_more_byte_is_413,
                only_utf8_json_media_types_are_read,
                invalid_utf8_is_400,
                null_or_array_bodies_are_422,
                repeated_query_parameters_are_400,
                trailing_slashes_are_404,
                percent_encoded_and_over_long_ids,
                head_options_patch_and_trace,
                odd_request_ids_are_replaced,
            );
        }

        /// The checks that need the real stores and Redis, against the service started on them.
        mod full_stack {
            #[allow(unused_imports)]
            use super::*;

            $crate::contract_tests!(@each $kind, $spawn;
                create_returns_201_with_location,
                list_is_oldest_first_and_pages,
                put_replaces_everything,
                delete_is_204_then_404,
                ready_when_the_real_stores_answer,
                a_repeated_read_is_a_hit,
                every_read_after_a_write_sees_it,
            );
            $crate::contract_tests!(@each $kind, $spawn_dead;
                with_redis_unreachable_reads_succeed_and_writes_are_refused,
            );
        }
    };
    (@each $kind:expr, $spawn:path; $($check:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $check() {
            let app = $spawn().await;
            $crate::contract::$check(&app, &$kind).await;
            app.stop().await;
        }
    )*};
}

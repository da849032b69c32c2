//! The odd requests of docs/behaviour.md §3.1, one check per row of its table, run against
//! both services so that the same odd input gets the same answer from each. None of them may
//! be answered with a 5xx.

use serde_json::json;

use super::{Kind, id_of};
use crate::{Api, assert_error, body, odd_text};

/// Control characters (Unicode category Cc) in any text field are 422 naming the field; line
/// feed and tab are refused too, except inside a multi-line text.
pub async fn control_characters_are_422(app: &Api, kind: &Kind) {
    for field in kind.text_fields {
        for bad in odd_text::CONTROL {
            let mut entity = (kind.valid)(1);
            entity[*field] = json!(bad);
            assert_error(
                app.post_json(&kind.path(""), &entity).await,
                422,
                "validation_failed",
                &[field],
            )
            .await;
        }
        let mut entity = (kind.valid)(1);
        entity[*field] = json!(odd_text::LINES);
        let response = app.post_json(&kind.path(""), &entity).await;
        if kind.multiline_field == Some(*field) {
            assert_eq!(response.status(), 201, "{field} keeps line feeds and tabs");
            assert_eq!(body(response).await["data"][*field], odd_text::LINES);
        } else {
            assert_error(response, 422, "validation_failed", &[field]).await;
        }
    }
    // The same rule for a replacement.
    let created = kind.create(app, 2).await;
    let mut entity = (kind.valid)(2);
    entity[kind.text_field] = json!("ab\u{0}cd");
    let path = kind.path(&format!("/{}", id_of(&created)));
    assert_error(
        app.put_json(&path, &entity).await,
        422,
        "validation_failed",
        &[kind.text_field],
    )
    .await;
}

/// The bidirectional overrides and isolates (U+202A–U+202E, U+2066–U+2069) are 422 naming the
/// field; a plain right-to-left text is fine.
pub async fn bidi_controls_are_422(app: &Api, kind: &Kind) {
    for bad in odd_text::BIDI {
        let mut entity = (kind.valid)(1);
        entity[kind.text_field] = json!(bad);
        assert_error(
            app.post_json(&kind.path(""), &entity).await,
            422,
            "validation_failed",
            &[kind.text_field],
        )
        .await;
    }
    let mut hebrew = (kind.valid)(1);
    hebrew[kind.text_field] = json!(odd_text::RIGHT_TO_LEFT);
    assert_eq!(app.post_json(&kind.path(""), &hebrew).await.status(), 201);
}

/// A key given twice in a body, at any depth, is 400 `bad_request` naming the key.
pub async fn duplicate_keys_are_400(app: &Api, kind: &Kind) {
    let valid = (kind.valid)(1).to_string();
    let text = format!("\"{}\"", kind.text_field);
    for body_text in [
        valid.replacen(&text, &format!("{text}: \"first\", {text}"), 1),
        valid.replacen('{', "{\"id\": 1, \"id\": 1, ", 1),
        valid.replacen('{', "{\"x\": {\"k\": 1, \"k\": 2}, ", 1),
    ] {
        let response = app
            .post_raw(&kind.path(""), "application/json", body_text.clone())
            .await;
        assert_eq!(response.status(), 400, "{body_text}");
        let error = body(response).await;
        assert_eq!(error["error"]["code"], "bad_request");
        let message = error["error"]["message"].as_str().expect("message");
        assert!(message.contains("appears more than once"), "{message}");
    }
}

/// Wrong JSON types are 422 naming each field: a number or an object for a text, a string or
/// an object for an id list, a number inside one.
pub async fn wrong_json_types_are_422(app: &Api, kind: &Kind) {
    let entry = format!("{}[1]", kind.links_field);
    for (value, links, fields) in [
        (json!(7), json!([]), vec![kind.text_field]),
        (
            json!({"a": 1}),
            json!("x"),
            vec![kind.text_field, kind.links_field],
        ),
        (
            json!(true),
            json!({"a": 1}),
            vec![kind.text_field, kind.links_field],
        ),
        (
            json!(["a"]),
            json!([(kind.other_ids)(1)[0], 5]),
            vec![kind.text_field, entry.as_str()],
        ),
    ] {
        let mut entity = (kind.valid)(1);
        entity[kind.text_field] = value;
        entity[kind.links_field] = links;
        assert_error(
            app.post_json(&kind.path(""), &entity).await,
            422,
            "validation_failed",
            &fields,
        )
        .await;
    }
}

/// A 10,000-character string is 422 naming the field (over its length), whatever the field.
pub async fn ten_thousand_character_strings_are_422(app: &Api, kind: &Kind) {
    let long = "x".repeat(10_000);
    for field in kind.text_fields {
        let mut entity = (kind.valid)(1);
        entity[*field] = json!(long);
        assert_error(
            app.post_json(&kind.path(""), &entity).await,
            422,
            "validation_failed",
            &[field],
        )
        .await;
    }
    let mut entity = (kind.valid)(1);
    entity[kind.links_field] = json!([long]);
    let entry = format!("{}[0]", kind.links_field);
    assert_error(
        app.post_json(&kind.path(""), &entity).await,
        422,
        "validation_failed",
        &[entry.as_str()],
    )
    .await;
}

/// A body of exactly 65,536 bytes is read (here: a valid entity padded with spaces, so 201);
/// one byte more is 413.
pub async fn a_body_of_exactly_64_kib_is_read_one_more_byte_is_413(app: &Api, kind: &Kind) {
    let entity = (kind.valid)(1).to_string();
    let padded = |len: usize| format!("{entity}{}", " ".repeat(len - entity.len()));
    let exact = padded(nis_http::MAX_BODY_BYTES);
    assert_eq!(exact.len(), 65_536);
    let response = app
        .post_raw(&kind.path(""), "application/json", exact)
        .await;
    assert_eq!(response.status(), 201);
    let over = padded(nis_http::MAX_BODY_BYTES + 1);
    assert_error(
        app.post_raw(&kind.path(""), "application/json", over).await,
        413,
        "payload_too_large",
        &[],
    )
    .await;
}

/// `charset=utf-8` (any case, quoted or not) is JSON; any other charset, or another JSON-ish
/// media type, is 415.
pub async fn only_utf8_json_media_types_are_read(app: &Api, kind: &Kind) {
    for (n, content_type) in [
        "application/json;charset=UTF-8",
        "application/json; charset=\"utf-8\"",
        "APPLICATION/JSON",
    ]
    .into_iter()
    .enumerate()
    {
        let entity = (kind.valid)(u32::try_from(n).expect("small") + 1).to_string();
        let response = app.post_raw(&kind.path(""), content_type, entity).await;
        assert_eq!(response.status(), 201, "{content_type}");
    }
    for content_type in [
        "application/json; charset=latin1",
        "application/json; charset=utf-16",
        "application/merge-patch+json",
        "text/json",
        "multipart/form-data; boundary=x",
    ] {
        let entity = (kind.valid)(9).to_string();
        assert_error(
            app.post_raw(&kind.path(""), content_type, entity).await,
            415,
            "unsupported_media_type",
            &[],
        )
        .await;
    }
}

/// A body that is not valid UTF-8 (in a string, or a byte-order mark before it) is 400.
pub async fn invalid_utf8_is_400(app: &Api, kind: &Kind) {
    let entity = (kind.valid)(1).to_string();
    let mut in_string = entity.clone().into_bytes();
    let at = entity
        .find(&format!("\"{}\":\"", kind.text_field))
        .expect("field")
        + kind.text_field.len()
        + 4;
    in_string.splice(at..at, [0xff, 0xfe]);
    let mut with_bom = vec![0xef, 0xbb, 0xbf];
    with_bom.extend_from_slice(entity.as_bytes());
    for raw in [in_string, with_bom, b"{\"a\":\"\xc3\x28\"}".to_vec()] {
        assert_error(
            app.post_raw(&kind.path(""), "application/json", raw).await,
            400,
            "bad_request",
            &[],
        )
        .await;
    }
}

/// JSON `null`, an array, a string or a number as the body is 422 naming `body`.
pub async fn null_or_array_bodies_are_422(app: &Api, kind: &Kind) {
    for value in [
        json!(null),
        json!([]),
        json!([(kind.valid)(1)]),
        json!("x"),
        json!(5),
    ] {
        assert_error(
            app.post_json(&kind.path(""), &value).await,
            422,
            "validation_failed",
            &["body"],
        )
        .await;
    }
}

/// `limit` or `offset` given twice is 400; other parameters are ignored.
pub async fn repeated_query_parameters_are_400(app: &Api, kind: &Kind) {
    for query in [
        "limit=5&limit=5",
        "offset=0&offset=1",
        "limit=1&offset=0&limit=2",
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
        app.get(&kind.path("?limit=5&sort=name&sort=id"))
            .await
            .status(),
        200
    );
}

/// A trailing slash names another path: 404 `not_found`, never a redirect.
pub async fn trailing_slashes_are_404(app: &Api, kind: &Kind) {
    let created = kind.create(app, 1).await;
    for path in [
        kind.path("/"),
        kind.path(&format!("/{}/", id_of(&created))),
        kind.path("/health/"),
        "/healthz/".to_owned(),
    ] {
        assert_error(app.get(&path).await, 404, "not_found", &[]).await;
    }
}

/// A percent-encoded id is decoded first (so the same id); an encoded slash or a byte that is
/// not UTF-8 is a malformed id (400), and so is an over-long one.
pub async fn percent_encoded_and_over_long_ids(app: &Api, kind: &Kind) {
    let id = id_of(&kind.create(app, 1).await);
    let encoded: String = id.bytes().map(|b| format!("%{b:02X}")).collect();
    let fetched = app.get(&kind.path(&format!("/{encoded}"))).await;
    assert_eq!(fetched.status(), 200);
    assert_eq!(id_of(&body(fetched).await["data"]), id);
    let half = &id[..id.len() / 2];
    for path in [
        format!("/{half}%2F{half}"),
        format!("/{half}%FF"),
        format!("/{}", "a".repeat(10_000)),
        format!("/{id}%00"),
    ] {
        assert_error(app.get(&kind.path(&path)).await, 400, "bad_request", &[]).await;
        assert_error(app.delete(&kind.path(&path)).await, 400, "bad_request", &[]).await;
    }
}

/// HEAD is GET without a body; OPTIONS is 204 with `Allow`; PATCH, TRACE and any other
/// method the path does not have are 405 with `Allow`.
pub async fn head_options_patch_and_trace(app: &Api, kind: &Kind) {
    let id = id_of(&kind.create(app, 1).await);
    let one = kind.path(&format!("/{id}"));
    let request = |method: &str, path: &str| {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        app.client.request(method, app.url(path)).send()
    };
    let head = request("HEAD", &one).await.expect("HEAD");
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["content-type"], "application/json");
    assert!(head.text().await.expect("body").is_empty());

    for (path, allow) in [
        (kind.path(""), "GET, HEAD, POST, OPTIONS"),
        (one.clone(), "GET, HEAD, PUT, DELETE, OPTIONS"),
        (
            kind.path(&format!("/{id}/{}", kind.other_kind)),
            "GET, HEAD, OPTIONS",
        ),
        (kind.path("/health"), "GET, HEAD, OPTIONS"),
        (kind.path("/openapi.json"), "GET, HEAD, OPTIONS"),
        ("/healthz".to_owned(), "GET, HEAD, OPTIONS"),
        ("/readyz".to_owned(), "GET, HEAD, OPTIONS"),
        ("/metrics".to_owned(), "GET, HEAD, OPTIONS"),
    ] {
        let options = request("OPTIONS", &path).await.expect("OPTIONS");
        assert_eq!(options.status(), 204, "OPTIONS {path}");
        assert_eq!(options.headers()["allow"], allow, "OPTIONS {path}");
        for method in ["PATCH", "TRACE", "PROPFIND"] {
            let refused = request(method, &path).await.expect(method);
            assert_eq!(
                refused.headers().get("allow").map(|v| v.as_bytes()),
                Some(allow.as_bytes()),
                "{method} {path}: {}",
                refused.status()
            );
            assert_error(refused, 405, "method_not_allowed", &[]).await;
        }
    }
}

/// An `x-request-id` over 128 bytes, or with spaces or non-ASCII bytes, is not echoed: the
/// request gets a new id instead.
pub async fn odd_request_ids_are_replaced(app: &Api, kind: &Kind) {
    for sent in ["x".repeat(129), "a b".to_owned(), "x".repeat(8_000)] {
        let response = app
            .client
            .get(app.url(&kind.path("")))
            .header("x-request-id", sent.as_str())
            .send()
            .await
            .expect("GET");
        assert_eq!(response.status(), 200);
        let given = response.headers()["x-request-id"].to_str().expect("ascii");
        assert_ne!(given, sent);
        assert!(uuid::Uuid::parse_str(given).is_ok(), "{given}");
    }
    let response = app
        .client
        .get(app.url(&kind.path("")))
        .header(
            "x-request-id",
            reqwest::header::HeaderValue::from_bytes(b"caf\xc3\xa9").expect("bytes"),
        )
        .send()
        .await
        .expect("GET");
    assert!(
        uuid::Uuid::parse_str(response.headers()["x-request-id"].to_str().expect("ascii")).is_ok()
    );
}

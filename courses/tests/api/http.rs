//! Every courses route of docs/behaviour.md §3 and every status that applies.

use serde_json::json;
use testkit::{assert_error, body};

use crate::helpers::{course, spawn, student_ids};

#[tokio::test]
async fn ids_are_24_lowercase_hex_and_uppercase_ids_are_understood() {
    let app = spawn().await;
    let created = app.create("courses", &course(1)).await;
    let id = created["id"].as_str().expect("id").to_owned();
    assert_eq!(id.len(), 24);
    assert!(
        id.chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)),
        "{id}"
    );
    let upper = app
        .get(&format!("/api/courses/{}", id.to_uppercase()))
        .await;
    assert_eq!(upper.status(), 200);
    assert_eq!(body(upper).await["data"]["id"], id);
    for malformed in [
        "123",
        "0123456789abcdef012345678",
        "zzzzzzzzzzzzzzzzzzzzzzzz",
    ] {
        assert_error(
            app.get(&format!("/api/courses/{malformed}")).await,
            400,
            "bad_request",
            &[],
        )
        .await;
    }
    app.stop().await;
}

#[tokio::test]
async fn fields_are_trimmed_and_student_ids_collapse() {
    let app = spawn().await;
    let students = student_ids(2);
    let mut body = course(1);
    body["teacher"] = json!("  Emmy  ");
    body["student_ids"] = json!([students[1], students[0], students[1]]);
    let created = app.create("courses", &body).await;
    assert_eq!(created["teacher"], "Emmy");
    assert_eq!(created["student_ids"], json!([students[1], students[0]]));
    app.stop().await;
}

#[tokio::test]
async fn broken_field_rules_are_422_with_details() {
    let app = spawn().await;
    let with = |field: &str, value: serde_json::Value| {
        let mut body = course(1);
        body[field] = value;
        body
    };
    let cases = [
        (
            json!({}),
            vec!["name", "description", "discipline", "teacher"],
        ),
        (with("name", json!("ab")), vec!["name"]),
        (
            with("description", json!("d".repeat(201))),
            vec!["description"],
        ),
        (with("discipline", json!("  x  ")), vec!["discipline"]),
        (with("teacher", json!("t".repeat(21))), vec!["teacher"]),
        (
            with("student_ids", json!([student_ids(1)[0], "nope"])),
            vec!["student_ids[1]"],
        ),
        (
            with("student_ids", json!(student_ids(61))),
            vec!["student_ids"],
        ),
        (
            with("student_ids", json!(["0123456789abcdef01234567"])),
            vec!["student_ids[0]"],
        ),
    ];
    for (payload, fields) in cases {
        assert_error(
            app.post_json("/api/courses", &payload).await,
            422,
            "validation_failed",
            &fields,
        )
        .await;
    }
    // 200 characters of description and 60 entries, repeats collapsing, are fine.
    let mut full = with("description", json!("Д".repeat(200)));
    let mut sixty = student_ids(55);
    sixty.extend(student_ids(5));
    full["student_ids"] = json!(sixty);
    let created = app.create("courses", &full).await;
    assert_eq!(created["student_ids"].as_array().map(Vec::len), Some(55));
    // The same rules apply to a replacement, and a refused one changes nothing.
    let path = format!("/api/courses/{}", created["id"].as_str().expect("id"));
    assert_error(
        app.put_json(&path, &with("name", json!("n"))).await,
        422,
        "validation_failed",
        &["name"],
    )
    .await;
    assert_eq!(body(app.get(&path).await).await["data"]["name"], "Course 1");
    app.stop().await;
}

/// docs/behaviour.md §2: a NUL in a text is 422, and a course stored before the character rule
/// existed (here with a NUL and a right-to-left override) still reads back.
#[tokio::test]
async fn the_character_rule_guards_writes_but_not_reads() {
    let (app, database) = crate::helpers::spawn_on_own_database(false).await;
    let mut with_nul = course(1);
    with_nul["teacher"] = json!("ab\u{0}cd");
    assert_error(
        app.post_json("/api/courses", &with_nul).await,
        422,
        "validation_failed",
        &["teacher"],
    )
    .await;

    let id = app.create("courses", &course(2)).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let client = mongodb::Client::with_uri_str(testkit::mongodb_uri())
        .await
        .expect("connect");
    let object_id = mongodb::bson::oid::ObjectId::parse_str(&id).expect("ObjectId");
    client
        .database(&database)
        .collection::<mongodb::bson::Document>("courses")
        .update_one(
            mongodb::bson::doc! { "_id": object_id },
            mongodb::bson::doc! { "$set": { "name": "old\u{0}\u{202E}name" } },
        )
        .await
        .expect("write an old-style name");
    let path = format!("/api/courses/{id}");
    let read = app.get(&path).await;
    assert_eq!(read.status(), 200);
    assert_eq!(body(read).await["data"]["name"], "old\u{0}\u{202E}name");
    // Read again: now from the cache, which holds it as stored.
    let cached = app.get(&path).await;
    assert_eq!(body(cached).await["data"]["name"], "old\u{0}\u{202E}name");
    assert_eq!(app.get("/api/courses").await.status(), 200);
    assert_eq!(app.put_json(&path, &course(3)).await.status(), 200);
    app.stop().await;
}

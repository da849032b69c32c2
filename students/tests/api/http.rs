//! Every students route of docs/behaviour.md §3 and every status that applies.

use serde_json::json;
use testkit::{assert_error, body};

use crate::helpers::{course_ids, spawn, student};

#[tokio::test]
async fn names_are_trimmed_and_course_ids_collapse() {
    let app = spawn().await;
    let courses = course_ids(2);
    let created = app
        .create(
            "students",
            &json!({ "name": "  ada ", "first_name": "Ada", "last_name": "Lovelace",
                     "course_ids": [courses[0], courses[1], courses[0]] }),
        )
        .await;
    assert_eq!(created["name"], "ada");
    assert_eq!(created["course_ids"], json!([courses[0], courses[1]]));
    app.stop().await;
}

#[tokio::test]
async fn the_same_full_name_twice_is_409() {
    let app = spawn().await;
    app.create("students", &student(1)).await;
    assert_error(
        app.post_json("/api/students", &student(1)).await,
        409,
        "conflict",
        &[],
    )
    .await;
    // Trimming happens before the unique rule.
    let mut padded = student(1);
    padded["name"] = json!("  student1  ");
    assert_error(
        app.post_json("/api/students", &padded).await,
        409,
        "conflict",
        &[],
    )
    .await;

    let other = app.create("students", &student(2)).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert_error(
        app.put_json(&format!("/api/students/{other}"), &student(1))
            .await,
        409,
        "conflict",
        &[],
    )
    .await;
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
            json!({ "name": "ada", "first_name": "Ada", "last_name": "   " }),
            vec!["last_name"],
        ),
        (
            json!({ "name": "ada", "first_name": "Ada", "last_name": "Lovelace", "course_ids": ["0123456789abcdef01234567", "nope"] }),
            vec!["course_ids[1]"],
        ),
        (
            json!({ "name": "ada", "first_name": "Ada", "last_name": "Lovelace", "course_ids": course_ids(16) }),
            vec!["course_ids"],
        ),
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
    // 15 entries, repeats collapsing, are fine; 16 are not, even with repeats.
    let mut fifteen = course_ids(12);
    fifteen.extend(course_ids(3));
    let busy = app
        .create("students", &json!({ "name": "busy", "first_name": "Busy", "last_name": "Bee", "course_ids": fifteen }))
        .await;
    assert_eq!(busy["course_ids"].as_array().map(Vec::len), Some(12));
    fifteen.push(fifteen[0].clone());
    assert_error(
        app.post_json("/api/students", &json!({ "name": "busy2", "first_name": "Busy", "last_name": "Bee", "course_ids": fifteen })).await,
        422,
        "validation_failed",
        &["course_ids"],
    )
    .await;
    // The same rules apply to a replacement.
    let path = format!("/api/students/{}", busy["id"].as_str().expect("id"));
    assert_error(
        app.put_json(
            &path,
            &json!({ "name": "b", "first_name": "Busy", "last_name": "Bee" }),
        )
        .await,
        422,
        "validation_failed",
        &["name"],
    )
    .await;
    assert_eq!(
        body(app.get(&path).await).await["data"]["name"],
        "busy",
        "nothing changed"
    );
    app.stop().await;
}

//! Every students route of docs/behaviour.md §3 and every status that applies.

use serde_json::json;
use sqlx::Connection as _;
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

/// docs/behaviour.md §2: a NUL in a name is 422 before it reaches PostgreSQL (which would
/// refuse it), and a name stored before the character rule existed still reads back.
#[tokio::test]
async fn the_character_rule_guards_writes_but_not_reads() {
    let (app, database) = crate::helpers::spawn_on_own_database(false).await;
    let mut with_nul = student(1);
    with_nul["name"] = json!("ab\u{0}cd");
    assert_error(
        app.post_json("/api/students", &with_nul).await,
        422,
        "validation_failed",
        &["name"],
    )
    .await;

    let id = app.create("students", &student(2)).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let mut db = sqlx::PgConnection::connect(&format!("{}/{database}", testkit::postgres_url()))
        .await
        .expect("connect");
    sqlx::query("UPDATE students SET name = $1 WHERE id = $2::uuid")
        .bind("old\u{7}\u{202E}name")
        .bind(&id)
        .execute(&mut db)
        .await
        .expect("write an old-style name");
    let path = format!("/api/students/{id}");
    let read = app.get(&path).await;
    assert_eq!(read.status(), 200);
    assert_eq!(body(read).await["data"]["name"], "old\u{7}\u{202E}name");
    // Read again: now from the cache, which holds it as stored.
    let cached = app.get(&path).await;
    assert_eq!(body(cached).await["data"]["name"], "old\u{7}\u{202E}name");
    assert_eq!(app.get("/api/students").await.status(), 200);
    // Replacing it with a clean name works as for any student.
    assert_eq!(app.put_json(&path, &student(3)).await.status(), 200);
    app.stop().await;
}

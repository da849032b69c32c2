//! The baseline's three routes, each the least its kind of read can cost: `GET /redis/{key}`
//! (one Redis GET, the bytes as they are), `GET /pg/students/{id}` (one select by primary key,
//! the row as a JSON object) and `GET /static` (a body serialized once at start).

use std::time::Duration;

use actix_web::{HttpResponse, http::header::ContentType, web};
use redis::{AsyncCommands as _, aio::ConnectionManager};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

/// The columns the students service itself reads (students/src/outbound/postgres.rs).
const SELECT_STUDENT: &str =
    "SELECT id, name, first_name, last_name, course_ids FROM students WHERE id = $1";

/// What every worker shares.
pub struct State {
    redis: ConnectionManager,
    pool: PgPool,
    timeout: Duration,
    static_body: web::Bytes,
}

impl State {
    pub fn new(redis: ConnectionManager, pool: PgPool, timeout: Duration) -> Self {
        Self {
            redis,
            pool,
            timeout,
            static_body: static_body(),
        }
    }
}

/// Adds the routes.
pub fn configure(config: &mut web::ServiceConfig) {
    config
        .route("/redis/{key}", web::get().to(redis_get))
        .route("/pg/students/{id}", web::get().to(pg_student))
        .route("/static", web::get().to(static_get));
}

async fn redis_get(state: web::Data<State>, key: web::Path<String>) -> HttpResponse {
    let mut redis = state.redis.clone();
    match redis.get::<_, Option<Vec<u8>>>(key.as_str()).await {
        Ok(Some(bytes)) => HttpResponse::Ok()
            .content_type(ContentType::json())
            .body(bytes),
        Ok(None) => HttpResponse::NotFound().finish(),
        Err(e) => HttpResponse::ServiceUnavailable().body(format!("redis: {e}")),
    }
}

/// A row of `students`, as the service reads it.
#[derive(Debug, sqlx::FromRow, Serialize)]
struct StudentRow {
    id: Uuid,
    name: String,
    first_name: String,
    last_name: String,
    course_ids: Vec<String>,
}

async fn pg_student(state: web::Data<State>, id: web::Path<String>) -> HttpResponse {
    let Ok(id) = Uuid::parse_str(&id) else {
        return HttpResponse::BadRequest().body("malformed id");
    };
    let query = sqlx::query_as::<_, StudentRow>(SELECT_STUDENT)
        .bind(id)
        .fetch_optional(&state.pool);
    match tokio::time::timeout(state.timeout, query).await {
        Ok(Ok(Some(row))) => match serde_json::to_vec(&row) {
            Ok(body) => HttpResponse::Ok()
                .content_type(ContentType::json())
                .body(body),
            Err(e) => HttpResponse::InternalServerError().body(e.to_string()),
        },
        Ok(Ok(None)) => HttpResponse::NotFound().finish(),
        Ok(Err(e)) => HttpResponse::ServiceUnavailable().body(format!("postgres: {e}")),
        Err(_) => HttpResponse::ServiceUnavailable().body("postgres: timed out"),
    }
}

async fn static_get(state: web::Data<State>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::json())
        .body(state.static_body.clone())
}

/// About 300 bytes of JSON shaped like a student answer with six courses.
fn static_body() -> web::Bytes {
    let body = serde_json::json!({
        "data": {
            "id": "0196f3a2-7b4c-7d10-9e2f-3a4b5c6d7e8f",
            "name": "bench",
            "first_name": "Ada",
            "last_name": "Lovelace",
            "course_ids": [
                "665f1c2e9b1e8a3d4c5b6a70",
                "665f1c2e9b1e8a3d4c5b6a71",
                "665f1c2e9b1e8a3d4c5b6a72",
                "665f1c2e9b1e8a3d4c5b6a73",
                "665f1c2e9b1e8a3d4c5b6a74",
                "665f1c2e9b1e8a3d4c5b6a75",
            ],
        }
    });
    web::Bytes::from(body.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_body_is_about_300_bytes_of_json() {
        let body = static_body();
        assert!((250..=350).contains(&body.len()), "{} bytes", body.len());
        let value: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
        assert!(value["data"]["course_ids"].is_array());
    }
}

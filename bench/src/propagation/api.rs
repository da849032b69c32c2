//! The HTTP calls the propagation probe makes on both services (docs/behaviour.md §3): create,
//! replace, read and delete, each answer checked for its status and the bodies it needs.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::BoxError;

/// The fields of the probe's student (3–20 characters each, unique together).
#[derive(Debug, Clone)]
pub struct StudentFields {
    pub name: String,
    pub first_name: String,
    pub last_name: String,
}

/// Keep-alive HTTP clients of both services' APIs.
#[derive(Debug, Clone)]
pub struct Api {
    client: reqwest::Client,
    students: String,
    courses: String,
}

/// `{"data": …}`, every success's envelope.
#[derive(Deserialize)]
struct Envelope<T> {
    data: T,
}

#[derive(Deserialize)]
struct Created {
    id: String,
}

#[derive(Deserialize)]
struct Course {
    #[serde(default)]
    student_ids: Vec<String>,
}

impl Api {
    /// Clients of `students` and `courses` (base URLs such as `http://127.0.0.1:8020`), each
    /// call bounded by `timeout`.
    pub fn new(students: &str, courses: &str, timeout: Duration) -> Result<Self, BoxError> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .tcp_nodelay(true)
            .build()?;
        Ok(Self {
            client,
            students: format!("{}/api/students", students.trim_end_matches('/')),
            courses: format!("{}/api/courses", courses.trim_end_matches('/')),
        })
    }

    /// POST a student; its id.
    pub async fn create_student(&self, fields: &StudentFields) -> Result<String, BoxError> {
        let body = json!({
            "name": fields.name,
            "first_name": fields.first_name,
            "last_name": fields.last_name,
        });
        self.create(&self.students, &body).await
    }

    /// POST a course named `name`; its id.
    pub async fn create_course(&self, name: &str) -> Result<String, BoxError> {
        let body = json!({
            "name": name,
            "description": "Link propagation probe",
            "discipline": "Benchmarking",
            "teacher": "bench",
        });
        self.create(&self.courses, &body).await
    }

    async fn create(&self, url: &str, body: &Value) -> Result<String, BoxError> {
        let response = self.client.post(url).json(body).send().await?;
        let status = response.status();
        if status != reqwest::StatusCode::CREATED {
            let text = response.text().await.unwrap_or_default();
            return Err(format!("POST {url}: {status} {text}").into());
        }
        Ok(response.json::<Envelope<Created>>().await?.data.id)
    }

    /// PUT the student `id` (full replacement) with `course_ids`; returns once the whole
    /// 2xx answer has arrived.
    pub async fn replace_student(
        &self,
        id: &str,
        fields: &StudentFields,
        course_ids: &[&str],
    ) -> Result<(), BoxError> {
        let url = format!("{}/{id}", self.students);
        let body = json!({
            "name": fields.name,
            "first_name": fields.first_name,
            "last_name": fields.last_name,
            "course_ids": course_ids,
        });
        let response = self.client.put(&url).json(&body).send().await?;
        let status = response.status();
        let text = response.bytes().await?;
        if !status.is_success() {
            return Err(format!("PUT {url}: {status} {}", String::from_utf8_lossy(&text)).into());
        }
        Ok(())
    }

    /// GET the course `course`: whether its `student_ids` holds `student`.
    pub async fn course_lists(&self, course: &str, student: &str) -> Result<bool, BoxError> {
        let url = format!("{}/{course}", self.courses);
        let response = self.client.get(&url).send().await?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("GET {url}: {status}").into());
        }
        let course = response.json::<Envelope<Course>>().await?.data;
        Ok(course.student_ids.iter().any(|id| id == student))
    }

    /// DELETE the student `id`.
    pub async fn delete_student(&self, id: &str) -> Result<(), BoxError> {
        self.delete(&format!("{}/{id}", self.students)).await
    }

    /// DELETE the course `id`.
    pub async fn delete_course(&self, id: &str) -> Result<(), BoxError> {
        self.delete(&format!("{}/{id}", self.courses)).await
    }

    async fn delete(&self, url: &str) -> Result<(), BoxError> {
        let response = self.client.delete(url).send().await?;
        let status = response.status();
        if !status.is_success() && status != reqwest::StatusCode::NOT_FOUND {
            return Err(format!("DELETE {url}: {status}").into());
        }
        Ok(())
    }
}

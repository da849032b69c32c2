//! The cache's promise under partial faults (issue 26; docs/behaviour.md §6) for students: the
//! scenarios of `testkit::cache_links` — a replica cut from Redis by resets or a blackhole,
//! Redis paused, a generation key evicted — each one test, over HTTP and gRPC, two replicas on
//! one database.

use nis_grpc::proto::v1::{
    DeleteStudentRequest, GetStudentRequest, ListStudentsRequest, Student, UpdateStudentRequest,
    student_service_client::StudentServiceClient,
};
use nis_runtime::{config::ServiceSettings, secret::Secret};
use serde_json::{Value, json};
use students::{app, config::Config};
use testkit::cache_links::{BoxFuture, Grpc, Reply, Running, Service};
use tonic::transport::Channel;

use crate::helpers::KIND;

/// How the scenarios run students replicas and call them over gRPC.
const STUDENTS: Service = Service {
    kind: &KIND,
    new_database,
    drop_database,
    start,
    grpc: Grpc {
        get,
        list,
        update,
        delete,
    },
};

testkit::cache_link_tests!(STUDENTS);

fn new_database() -> BoxFuture<'static, String> {
    Box::pin(testkit::stores::create_postgres_database("students_test"))
}

fn drop_database(database: String) -> BoxFuture<'static, ()> {
    Box::pin(testkit::stores::drop_postgres_database(database))
}

fn start(service: ServiceSettings, database: String) -> BoxFuture<'static, Running> {
    Box::pin(async move {
        let config = Config {
            service,
            database_url: Secret::new(format!("{}/{database}", testkit::postgres_url())),
            database_max_connections: 5,
        };
        app::start(&config).await.expect("students starts")
    })
}

fn as_json(student: Student) -> Value {
    json!({
        "id": student.id,
        "name": student.name,
        "first_name": student.first_name,
        "last_name": student.last_name,
        "course_ids": student.course_ids,
    })
}

fn text(body: &Value, field: &str) -> String {
    body[field].as_str().unwrap_or_default().to_owned()
}

fn get(channel: Channel, id: String) -> Reply<Value> {
    Box::pin(async move {
        let reply = StudentServiceClient::new(channel)
            .get_student(GetStudentRequest { id })
            .await?;
        Ok(as_json(reply.into_inner()))
    })
}

fn list(channel: Channel) -> Reply<Vec<Value>> {
    Box::pin(async move {
        let reply = StudentServiceClient::new(channel)
            .list_students(ListStudentsRequest { page: None })
            .await?;
        Ok(reply
            .into_inner()
            .students
            .into_iter()
            .map(as_json)
            .collect())
    })
}

fn update(channel: Channel, id: String, body: Value) -> Reply<Value> {
    Box::pin(async move {
        let request = UpdateStudentRequest {
            id,
            name: text(&body, "name"),
            first_name: text(&body, "first_name"),
            last_name: text(&body, "last_name"),
            course_ids: serde_json::from_value(body["course_ids"].clone()).unwrap_or_default(),
            expected_version: None,
        };
        let reply = StudentServiceClient::new(channel)
            .update_student(request)
            .await?;
        Ok(as_json(reply.into_inner()))
    })
}

fn delete(channel: Channel, id: String) -> Reply<()> {
    Box::pin(async move {
        StudentServiceClient::new(channel)
            .delete_student(DeleteStudentRequest {
                id,
                expected_version: None,
            })
            .await?;
        Ok(())
    })
}

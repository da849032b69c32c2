//! The cache's promise under partial faults (issue 26; docs/behaviour.md §6) for courses: the
//! scenarios of `testkit::cache_links` — a replica cut from Redis by resets or a blackhole,
//! Redis paused, a generation key evicted — each one test, over HTTP and gRPC, two replicas on
//! one database.

use courses::{app, config::Config};
use nis_grpc::proto::v1::{
    Course, DeleteCourseRequest, GetCourseRequest, ListCoursesRequest, UpdateCourseRequest,
    course_service_client::CourseServiceClient,
};
use nis_runtime::{config::ServiceSettings, secret::Secret};
use serde_json::{Value, json};
use testkit::cache_links::{BoxFuture, Grpc, Reply, Running, Service};
use tonic::transport::Channel;

use crate::helpers::KIND;

/// How the scenarios run courses replicas and call them over gRPC.
const COURSES: Service = Service {
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

testkit::cache_link_tests!(COURSES);

fn new_database() -> BoxFuture<'static, String> {
    Box::pin(async { testkit::unique_name("courses_test") })
}

fn drop_database(database: String) -> BoxFuture<'static, ()> {
    Box::pin(testkit::stores::drop_mongo_database(database))
}

fn start(service: ServiceSettings, database: String) -> BoxFuture<'static, Running> {
    Box::pin(async move {
        let config = Config {
            service,
            mongodb_uri: Secret::new(testkit::mongodb_uri()),
            mongodb_database: database,
        };
        app::start(&config).await.expect("courses starts")
    })
}

fn as_json(course: Course) -> Value {
    json!({
        "id": course.id,
        "name": course.name,
        "description": course.description,
        "discipline": course.discipline,
        "teacher": course.teacher,
        "student_ids": course.student_ids,
    })
}

fn text(body: &Value, field: &str) -> String {
    body[field].as_str().unwrap_or_default().to_owned()
}

fn get(channel: Channel, id: String) -> Reply<Value> {
    Box::pin(async move {
        let reply = CourseServiceClient::new(channel)
            .get_course(GetCourseRequest { id })
            .await?;
        Ok(as_json(reply.into_inner()))
    })
}

fn list(channel: Channel) -> Reply<Vec<Value>> {
    Box::pin(async move {
        let reply = CourseServiceClient::new(channel)
            .list_courses(ListCoursesRequest { page: None })
            .await?;
        Ok(reply
            .into_inner()
            .courses
            .into_iter()
            .map(as_json)
            .collect())
    })
}

fn update(channel: Channel, id: String, body: Value) -> Reply<Value> {
    Box::pin(async move {
        let request = UpdateCourseRequest {
            id,
            name: text(&body, "name"),
            description: text(&body, "description"),
            discipline: text(&body, "discipline"),
            teacher: text(&body, "teacher"),
            student_ids: serde_json::from_value(body["student_ids"].clone()).unwrap_or_default(),
            expected_version: None,
        };
        let reply = CourseServiceClient::new(channel)
            .update_course(request)
            .await?;
        Ok(as_json(reply.into_inner()))
    })
}

fn delete(channel: Channel, id: String) -> Reply<()> {
    Box::pin(async move {
        CourseServiceClient::new(channel)
            .delete_course(DeleteCourseRequest {
                id,
                expected_version: None,
            })
            .await?;
        Ok(())
    })
}

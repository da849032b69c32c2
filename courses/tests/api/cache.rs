//! One cache for both transports: a gRPC write invalidates what an HTTP read cached.
//! (The other cache checks are contract checks, in `contract.rs`.)

use nis_grpc::proto::v1::UpdateCourseRequest;
use testkit::body;

use crate::helpers::{course, grpc, spawn};

#[tokio::test]
async fn a_grpc_write_invalidates_what_http_cached() {
    let app = spawn().await;
    let id = app.create("courses", &course(1)).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let path = format!("/api/courses/{id}");
    assert_eq!(body(app.get(&path).await).await["data"]["name"], "Course 1");
    grpc(&app)
        .await
        .update_course(UpdateCourseRequest {
            id,
            name: "Via gRPC".into(),
            description: "Changed".into(),
            discipline: "Maths".into(),
            teacher: "Emmy".into(),
            student_ids: vec![],
            expected_version: None,
        })
        .await
        .expect("update");
    assert_eq!(body(app.get(&path).await).await["data"]["name"], "Via gRPC");
    app.stop().await;
}

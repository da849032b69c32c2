//! One cache for both transports: a gRPC write invalidates what an HTTP read cached.
//! (The other cache checks are contract checks, in `contract.rs`.)

use nis_grpc::proto::v1::UpdateStudentRequest;
use testkit::body;

use crate::helpers::{grpc, spawn};

#[tokio::test]
async fn a_grpc_write_invalidates_what_http_cached() {
    let app = spawn().await;
    let id = app.create("students", &crate::helpers::student(1)).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let path = format!("/api/students/{id}");
    assert_eq!(body(app.get(&path).await).await["data"]["name"], "student1");
    grpc(&app)
        .await
        .update_student(UpdateStudentRequest {
            id,
            name: "viagrpc".into(),
            first_name: "Ada".into(),
            last_name: "Lovelace".into(),
            course_ids: vec![],
            expected_version: None,
        })
        .await
        .expect("update");
    assert_eq!(body(app.get(&path).await).await["data"]["name"], "viagrpc");
    app.stop().await;
}

//! Every StudentService RPC, its error codes, health and reflection.

use nis_grpc::proto::v1::{self as pb};
use tonic::Code;
use tonic_types::StatusExt as _;

use crate::helpers::{course_ids, grpc, spawn};

fn create(name: &str, courses: Vec<String>) -> pb::CreateStudentRequest {
    pb::CreateStudentRequest {
        name: name.into(),
        first_name: "Alan".into(),
        last_name: "Turing".into(),
        course_ids: courses,
    }
}

#[tokio::test]
async fn crud_round_trip() {
    let app = spawn().await;
    let mut client = grpc(&app).await;
    let courses = course_ids(2);
    let created = client
        .create_student(create(
            " alan ",
            vec![courses[0].clone(), courses[1].clone(), courses[0].clone()],
        ))
        .await
        .expect("create")
        .into_inner();
    assert_eq!(created.name, "alan");
    assert_eq!(created.course_ids, courses);

    let fetched = client
        .get_student(pb::GetStudentRequest {
            id: created.id.clone(),
        })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(fetched, created);

    let second = client
        .create_student(create("turing", vec![]))
        .await
        .expect("create")
        .into_inner();
    let listed = client
        .list_students(pb::ListStudentsRequest { page: None })
        .await
        .expect("list")
        .into_inner()
        .students;
    assert_eq!(listed, vec![created.clone(), second.clone()]);
    let paged = client
        .list_students(pb::ListStudentsRequest {
            page: Some(pb::Page {
                limit: 1,
                offset: 1,
            }),
        })
        .await
        .expect("list")
        .into_inner()
        .students;
    assert_eq!(paged, vec![second.clone()]);

    let updated = client
        .update_student(pb::UpdateStudentRequest {
            id: created.id.clone(),
            name: "alan2".into(),
            first_name: "Alan".into(),
            last_name: "Turing".into(),
            course_ids: vec![],
        })
        .await
        .expect("update")
        .into_inner();
    assert_eq!(updated.name, "alan2");
    assert!(updated.course_ids.is_empty());

    client
        .delete_student(pb::DeleteStudentRequest {
            id: created.id.clone(),
        })
        .await
        .expect("delete");
    let gone = client
        .get_student(pb::GetStudentRequest {
            id: created.id.clone(),
        })
        .await
        .expect_err("deleted");
    assert_eq!(gone.code(), Code::NotFound);

    // The HTTP API sees what gRPC wrote.
    let over_http = testkit::body(app.get(&format!("/api/students/{}", second.id)).await).await;
    assert_eq!(over_http["data"]["name"], "turing");
    app.stop().await;
}

#[tokio::test]
async fn errors_map_to_grpc_codes() {
    let app = spawn().await;
    let mut client = grpc(&app).await;

    let invalid = client
        .create_student(pb::CreateStudentRequest {
            name: "al".into(),
            first_name: "Alan".into(),
            last_name: "".into(),
            course_ids: vec!["bad".into()],
        })
        .await
        .expect_err("invalid");
    assert_eq!(invalid.code(), Code::InvalidArgument);
    let details = invalid.get_error_details();
    let fields: Vec<_> = details
        .bad_request()
        .expect("field details")
        .field_violations
        .iter()
        .map(|v| v.field.clone())
        .collect();
    assert_eq!(fields, ["name", "last_name", "course_ids[0]"]);

    let malformed = client
        .get_student(pb::GetStudentRequest { id: "nope".into() })
        .await
        .expect_err("malformed");
    assert_eq!(malformed.code(), Code::InvalidArgument);

    let unknown = uuid::Uuid::now_v7().to_string();
    for status in [
        client
            .get_student(pb::GetStudentRequest {
                id: unknown.clone(),
            })
            .await
            .expect_err("404"),
        client
            .delete_student(pb::DeleteStudentRequest {
                id: unknown.clone(),
            })
            .await
            .expect_err("404"),
        client
            .update_student(pb::UpdateStudentRequest {
                id: unknown.clone(),
                name: "ghost".into(),
                first_name: "Gh".repeat(2),
                last_name: "Ost".into(),
                course_ids: vec![],
            })
            .await
            .expect_err("404"),
    ] {
        assert_eq!(status.code(), Code::NotFound, "{status:?}");
    }

    client
        .create_student(create("dup", vec![]))
        .await
        .expect("first");
    let duplicate = client
        .create_student(create("dup", vec![]))
        .await
        .expect_err("duplicate");
    assert_eq!(duplicate.code(), Code::AlreadyExists);

    let too_many = client
        .list_students(pb::ListStudentsRequest {
            page: Some(pb::Page {
                limit: 501,
                offset: 0,
            }),
        })
        .await
        .expect_err("limit");
    assert_eq!(too_many.code(), Code::InvalidArgument);

    let over = client
        .create_student(create("busy", course_ids(16)))
        .await
        .expect_err("16 courses");
    assert_eq!(over.code(), Code::InvalidArgument);
    app.stop().await;
}

#[tokio::test]
async fn health_is_serving_and_reflection_lists_the_service() {
    let app = spawn().await;
    testkit::grpc::assert_serving(app.channel().await, "nis.v1.StudentService").await;
    let names = testkit::grpc::reflected_services(app.channel().await).await;
    assert!(
        names.iter().any(|n| n == "nis.v1.StudentService"),
        "{names:?}"
    );
    assert!(
        names.iter().any(|n| n == "grpc.health.v1.Health"),
        "{names:?}"
    );
    app.stop().await;
}

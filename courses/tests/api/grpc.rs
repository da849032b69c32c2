//! Every CourseService RPC, its error codes, health and reflection.

use nis_grpc::proto::v1::{self as pb};
use tonic::Code;
use tonic_types::StatusExt as _;

use crate::helpers::{grpc, spawn, student_ids};

fn create(name: &str, students: Vec<String>) -> pb::CreateCourseRequest {
    pb::CreateCourseRequest {
        name: name.into(),
        description: "Lambda calculus".into(),
        discipline: "Logic".into(),
        teacher: "Alonzo Church".into(),
        student_ids: students,
    }
}

#[tokio::test]
async fn crud_round_trip() {
    let app = spawn().await;
    let mut client = grpc(&app).await;
    let students = student_ids(2);
    let created = client
        .create_course(create(
            " Logic ",
            vec![
                students[0].clone(),
                students[1].clone(),
                students[0].clone(),
            ],
        ))
        .await
        .expect("create")
        .into_inner();
    assert_eq!(created.name, "Logic");
    assert_eq!(created.student_ids, students);
    assert_eq!(created.id.len(), 24);

    let fetched = client
        .get_course(pb::GetCourseRequest {
            id: created.id.clone(),
        })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(fetched, created);

    let second = client
        .create_course(create("Types", vec![]))
        .await
        .expect("create")
        .into_inner();
    let listed = client
        .list_courses(pb::ListCoursesRequest { page: None })
        .await
        .expect("list")
        .into_inner()
        .courses;
    assert_eq!(listed, vec![created.clone(), second.clone()]);
    let paged = client
        .list_courses(pb::ListCoursesRequest {
            page: Some(pb::Page {
                limit: 1,
                offset: 1,
            }),
        })
        .await
        .expect("list")
        .into_inner()
        .courses;
    assert_eq!(paged, vec![second.clone()]);

    let updated = client
        .update_course(pb::UpdateCourseRequest {
            id: created.id.clone(),
            name: "Logic II".into(),
            description: "More lambda".into(),
            discipline: "Logic".into(),
            teacher: "Church".into(),
            student_ids: vec![],
        })
        .await
        .expect("update")
        .into_inner();
    assert_eq!(updated.name, "Logic II");
    assert!(updated.student_ids.is_empty());

    client
        .delete_course(pb::DeleteCourseRequest {
            id: created.id.clone(),
        })
        .await
        .expect("delete");
    let gone = client
        .get_course(pb::GetCourseRequest {
            id: created.id.clone(),
        })
        .await
        .expect_err("deleted");
    assert_eq!(gone.code(), Code::NotFound);

    let over_http = testkit::body(app.get(&format!("/api/courses/{}", second.id)).await).await;
    assert_eq!(over_http["data"]["name"], "Types");
    app.stop().await;
}

#[tokio::test]
async fn errors_map_to_grpc_codes() {
    let app = spawn().await;
    let mut client = grpc(&app).await;

    let invalid = client
        .create_course(pb::CreateCourseRequest {
            name: "L".into(),
            description: "ok ok".into(),
            discipline: "".into(),
            teacher: "Church".into(),
            student_ids: vec!["bad".into()],
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
    assert_eq!(fields, ["name", "discipline", "student_ids[0]"]);

    for malformed in ["nope", "0123456789abcdef0123456z", ""] {
        let status = client
            .get_course(pb::GetCourseRequest {
                id: malformed.into(),
            })
            .await
            .expect_err("malformed");
        assert_eq!(status.code(), Code::InvalidArgument, "{malformed:?}");
    }

    let unknown = "0123456789abcdef01234567".to_owned();
    for status in [
        client
            .get_course(pb::GetCourseRequest {
                id: unknown.clone(),
            })
            .await
            .expect_err("404"),
        client
            .delete_course(pb::DeleteCourseRequest {
                id: unknown.clone(),
            })
            .await
            .expect_err("404"),
        client
            .update_course(pb::UpdateCourseRequest {
                id: unknown.clone(),
                name: "Ghost".into(),
                description: "Nothing here".into(),
                discipline: "None".into(),
                teacher: "Nobody".into(),
                student_ids: vec![],
            })
            .await
            .expect_err("404"),
    ] {
        assert_eq!(status.code(), Code::NotFound, "{status:?}");
    }

    let too_many = client
        .list_courses(pb::ListCoursesRequest {
            page: Some(pb::Page {
                limit: 501,
                offset: 0,
            }),
        })
        .await
        .expect_err("limit");
    assert_eq!(too_many.code(), Code::InvalidArgument);

    let over = client
        .create_course(create("Crowded", student_ids(61)))
        .await
        .expect_err("61 students");
    assert_eq!(over.code(), Code::InvalidArgument);
    app.stop().await;
}

#[tokio::test]
async fn health_is_serving_and_reflection_lists_the_service() {
    let app = spawn().await;
    testkit::grpc::assert_serving(app.channel().await, "nis.v1.CourseService").await;
    let names = testkit::grpc::reflected_services(app.channel().await).await;
    assert!(
        names.iter().any(|n| n == "nis.v1.CourseService"),
        "{names:?}"
    );
    assert!(
        names.iter().any(|n| n == "grpc.health.v1.Health"),
        "{names:?}"
    );
    app.stop().await;
}

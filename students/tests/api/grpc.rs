//! Every StudentService RPC and its error codes, the StudentPeerService courses calls, health
//! and reflection (docs/behaviour.md §4). The public cross query with courses running is checked
//! end to end, in `e2e/tests/e2e/grpc_parity.rs`.

use nis_grpc::proto::v1::{
    self as pb, course_peer_service_client::CoursePeerServiceClient,
    course_service_client::CourseServiceClient,
    student_peer_service_client::StudentPeerServiceClient,
    student_service_client::StudentServiceClient,
};
use testkit::grpc::{CrossIds, PageArg};
use tonic::{Code, Status, transport::Channel};
use tonic_types::StatusExt as _;

use crate::helpers::{KIND, course_ids, grpc, spawn};

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
            expected_version: None,
        })
        .await
        .expect("update")
        .into_inner();
    assert_eq!(updated.name, "alan2");
    assert!(updated.course_ids.is_empty());

    client
        .delete_student(pb::DeleteStudentRequest {
            id: created.id.clone(),
            expected_version: None,
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
                expected_version: None,
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
                expected_version: None,
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

/// The ids of the students a list call answered, in order.
fn ids(list: pb::ListStudentsResponse) -> Vec<String> {
    list.students.into_iter().map(|s| s.id).collect()
}

/// `ListStudentsByCourse` as the shared checks call it: the ids of the students it lists.
fn by_course(
    client: StudentServiceClient<Channel>,
) -> impl AsyncFnMut(String, PageArg) -> Result<Vec<String>, Status> {
    async move |course_id, page| {
        let page = page.map(|(limit, offset)| pb::Page { limit, offset });
        let request = pb::ListStudentsByCourseRequest { course_id, page };
        let answer = client.clone().list_students_by_course(request).await?;
        Ok(ids(answer.into_inner()))
    }
}

/// Creates two students of `course` with, between them, one of course `elsewhere` only; returns
/// the ids of the two.
async fn two_students_of(
    client: &mut StudentServiceClient<Channel>,
    course: &str,
    elsewhere: &str,
) -> Vec<String> {
    let mut ids = Vec::new();
    for (name, courses) in [
        ("first", vec![course.to_owned()]),
        ("elsewhere", vec![elsewhere.to_owned()]),
        ("second", vec![elsewhere.to_owned(), course.to_owned()]),
    ] {
        let student = client.create_student(create(name, courses)).await;
        ids.push(student.expect("create").into_inner().id);
    }
    ids.remove(1);
    ids
}

#[tokio::test]
async fn the_cross_query_checks_its_input_then_is_unavailable_without_courses() {
    // The harness points students at a courses service that listens nowhere.
    let app = spawn().await;
    let client = grpc(&app).await;
    let (course, unknown) = (course_ids(1)[0].clone(), course_ids(2)[1].clone());
    let ids = CrossIds {
        other: &course,
        linking: &[],
        unknown_other: &unknown,
        malformed_other: "not-an-objectid",
    };
    testkit::grpc::assert_cross_query_without_peer(by_course(client), ids).await;
    app.stop().await;
}

#[tokio::test]
async fn the_peer_service_lists_the_students_of_a_course_and_tells_which_exist() {
    let app = spawn().await;
    let courses = course_ids(4);
    let linking = two_students_of(&mut grpc(&app).await, &courses[0], &courses[1]).await;
    let peer = StudentPeerServiceClient::new(app.channel().await);
    let list = async |course_id| {
        let request = pb::ListStudentsByCourseRequest {
            course_id,
            page: None,
        };
        let answer = peer.clone().list_students_linking_course(request).await?;
        Ok(ids(answer.into_inner()))
    };
    let exists = async |id| {
        let answer = peer
            .clone()
            .student_exists(pb::StudentExistsRequest { id })
            .await?;
        Ok(answer.into_inner().exists)
    };
    let ids = CrossIds {
        other: &courses[0],
        linking: &linking,
        unknown_other: &courses[3],
        malformed_other: "not-an-objectid",
    };
    let unknown = uuid::Uuid::now_v7().to_string();
    testkit::grpc::assert_peer_service(list, exists, ids, &unknown, "nope").await;
    app.stop().await;
}

#[tokio::test]
async fn health_is_serving_and_reflection_lists_only_what_the_port_serves() {
    let app = spawn().await;
    testkit::grpc::assert_port_serves(
        app.channel().await,
        &[
            "nis.v1.StudentService",
            "nis.v1.StudentPeerService",
            "nis.v1.RelationService",
        ],
    )
    .await;
    // The courses services are not served here.
    let id = course_ids(1)[0].clone();
    let course = CourseServiceClient::new(app.channel().await)
        .get_course(pb::GetCourseRequest { id: id.clone() })
        .await;
    testkit::grpc::assert_code(course, Code::Unimplemented, "CourseService on students");
    let exists = CoursePeerServiceClient::new(app.channel().await)
        .course_exists(pb::CourseExistsRequest { id })
        .await;
    testkit::grpc::assert_code(exists, Code::Unimplemented, "CoursePeerService on students");
    app.stop().await;
}

#[tokio::test]
async fn control_and_bidi_characters_are_invalid_argument_naming_the_field() {
    let app = spawn().await;
    let client = grpc(&app).await;
    let create = async |field: &str, value: String| {
        let mut request = create("alan", vec![]);
        *match field {
            "name" => &mut request.name,
            "first_name" => &mut request.first_name,
            "last_name" => &mut request.last_name,
            other => panic!("students have no text field {other}"),
        } = value;
        client.clone().create_student(request).await.map(drop)
    };
    testkit::grpc::assert_text_rule(create, KIND.text_fields, KIND.multiline_field).await;
    app.stop().await;
}

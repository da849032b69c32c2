//! Every CourseService RPC and its error codes, the CoursePeerService students calls, health
//! and reflection (docs/behaviour.md §4). The public cross query with students running is
//! checked end to end, in `e2e/tests/e2e/grpc_parity.rs`.

use nis_grpc::proto::v1::{
    self as pb, course_peer_service_client::CoursePeerServiceClient,
    course_service_client::CourseServiceClient,
    student_peer_service_client::StudentPeerServiceClient,
    student_service_client::StudentServiceClient,
};
use testkit::grpc::{CrossIds, PageArg};
use tonic::{Code, Status, transport::Channel};
use tonic_types::StatusExt as _;

use crate::helpers::{KIND, grpc, spawn, student_ids};

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
            expected_version: None,
        })
        .await
        .expect("update")
        .into_inner();
    assert_eq!(updated.name, "Logic II");
    assert!(updated.student_ids.is_empty());

    client
        .delete_course(pb::DeleteCourseRequest {
            id: created.id.clone(),
            expected_version: None,
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
                expected_version: None,
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
                expected_version: None,
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

/// The ids of the courses a list call answered, in order.
fn ids(list: pb::ListCoursesResponse) -> Vec<String> {
    list.courses.into_iter().map(|c| c.id).collect()
}

/// `ListCoursesByStudent` as the shared checks call it: the ids of the courses it lists.
fn by_student(
    client: CourseServiceClient<Channel>,
) -> impl AsyncFnMut(String, PageArg) -> Result<Vec<String>, Status> {
    async move |student_id, page| {
        let page = page.map(|(limit, offset)| pb::Page { limit, offset });
        let request = pb::ListCoursesByStudentRequest { student_id, page };
        let answer = client.clone().list_courses_by_student(request).await?;
        Ok(ids(answer.into_inner()))
    }
}

/// Creates two courses of `student` with, between them, one of student `elsewhere` only;
/// returns the ids of the two.
async fn two_courses_of(
    client: &mut CourseServiceClient<Channel>,
    student: &str,
    elsewhere: &str,
) -> Vec<String> {
    let mut ids = Vec::new();
    for (name, students) in [
        ("First", vec![student.to_owned()]),
        ("Elsewhere", vec![elsewhere.to_owned()]),
        ("Second", vec![elsewhere.to_owned(), student.to_owned()]),
    ] {
        let course = client.create_course(create(name, students)).await;
        ids.push(course.expect("create").into_inner().id);
    }
    ids.remove(1);
    ids
}

#[tokio::test]
async fn the_cross_query_checks_its_input_then_is_unavailable_without_students() {
    // The harness points courses at a students service that listens nowhere.
    let app = spawn().await;
    let client = grpc(&app).await;
    let students = student_ids(2);
    let ids = CrossIds {
        other: &students[0],
        linking: &[],
        unknown_other: &students[1],
        malformed_other: "not-a-uuid",
    };
    testkit::grpc::assert_cross_query_without_peer(by_student(client), ids).await;
    app.stop().await;
}

#[tokio::test]
async fn the_peer_service_lists_the_courses_of_a_student_and_tells_which_exist() {
    let app = spawn().await;
    let students = student_ids(4);
    let linking = two_courses_of(&mut grpc(&app).await, &students[0], &students[1]).await;
    let peer = CoursePeerServiceClient::new(app.channel().await);
    let list = async |student_id| {
        let request = pb::ListCoursesByStudentRequest {
            student_id,
            page: None,
        };
        let answer = peer.clone().list_courses_linking_student(request).await?;
        Ok(ids(answer.into_inner()))
    };
    let exists = async |id| {
        let answer = peer
            .clone()
            .course_exists(pb::CourseExistsRequest { id })
            .await?;
        Ok(answer.into_inner().exists)
    };
    let ids = CrossIds {
        other: &students[0],
        linking: &linking,
        unknown_other: &students[3],
        malformed_other: "not-a-uuid",
    };
    let (unknown, malformed) = ("0123456789abcdef01234567", "0123456789abcdef0123456z");
    testkit::grpc::assert_peer_service(list, exists, ids, unknown, malformed).await;
    app.stop().await;
}

#[tokio::test]
async fn health_is_serving_and_reflection_lists_only_what_the_port_serves() {
    let app = spawn().await;
    testkit::grpc::assert_port_serves(
        app.channel().await,
        &[
            "nis.v1.CourseService",
            "nis.v1.CoursePeerService",
            "nis.v1.RelationService",
        ],
    )
    .await;
    // The students services are not served here.
    let id = student_ids(1)[0].clone();
    let student = StudentServiceClient::new(app.channel().await)
        .get_student(pb::GetStudentRequest { id: id.clone() })
        .await;
    testkit::grpc::assert_code(student, Code::Unimplemented, "StudentService on courses");
    let exists = StudentPeerServiceClient::new(app.channel().await)
        .student_exists(pb::StudentExistsRequest { id })
        .await;
    testkit::grpc::assert_code(exists, Code::Unimplemented, "StudentPeerService on courses");
    app.stop().await;
}

#[tokio::test]
async fn control_and_bidi_characters_are_invalid_argument_naming_the_field() {
    let app = spawn().await;
    let client = grpc(&app).await;
    let create = async |field: &str, value: String| {
        let mut request = create("lambda", vec![]);
        *match field {
            "name" => &mut request.name,
            "description" => &mut request.description,
            "discipline" => &mut request.discipline,
            "teacher" => &mut request.teacher,
            other => panic!("courses have no text field {other}"),
        } = value;
        client.clone().create_course(request).await.map(drop)
    };
    testkit::grpc::assert_text_rule(create, KIND.text_fields, KIND.multiline_field).await;
    app.stop().await;
}

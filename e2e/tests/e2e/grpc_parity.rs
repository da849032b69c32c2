//! The public gRPC cross queries answer as their HTTP twins (docs/behaviour.md §4): with the
//! other service running, an entity it does not have is `NOT_FOUND` (HTTP: 404) and a known one
//! lists the entities linking it, the whole list without a limit. Malformed input and the peer
//! being down are checked per service, in `students/tests/api/grpc.rs` and
//! `courses/tests/api/grpc.rs`.

use e2e::System;
use nis_grpc::proto::v1::{
    self as pb, course_service_client::CourseServiceClient,
    student_service_client::StudentServiceClient,
};
use testkit::grpc::{CrossIds, PageArg};

fn page(page: PageArg) -> Option<pb::Page> {
    page.map(|(limit, offset)| pb::Page { limit, offset })
}

#[tokio::test]
async fn list_students_by_course_asks_courses_whether_the_course_exists() {
    let system = System::start().await;
    let course = system.course(1, &[]).await;
    let linking = vec![
        system.student(1, std::slice::from_ref(&course)).await,
        system.student(2, std::slice::from_ref(&course)).await,
    ];
    let ids = CrossIds {
        other: &course,
        linking: &linking,
        unknown_other: "0123456789abcdef01234567",
        malformed_other: "not-an-objectid",
    };
    let client = StudentServiceClient::new(system.students.channel().await);
    let by_course = async |course_id, page| {
        let request = pb::ListStudentsByCourseRequest {
            course_id,
            page: self::page(page),
        };
        let answer = client.clone().list_students_by_course(request).await;
        answer.map(|a| a.into_inner().students.into_iter().map(|s| s.id).collect())
    };
    testkit::grpc::assert_cross_query_with_peer(by_course, ids, "course").await;
    system.stop().await;
}

#[tokio::test]
async fn list_courses_by_student_asks_students_whether_the_student_exists() {
    let system = System::start().await;
    let student = system.student(1, &[]).await;
    let linking = vec![
        system.course(1, std::slice::from_ref(&student)).await,
        system.course(2, std::slice::from_ref(&student)).await,
    ];
    let unknown = uuid::Uuid::now_v7().to_string();
    let ids = CrossIds {
        other: &student,
        linking: &linking,
        unknown_other: &unknown,
        malformed_other: "not-a-uuid",
    };
    let client = CourseServiceClient::new(system.courses.channel().await);
    let by_student = async |student_id, page| {
        let request = pb::ListCoursesByStudentRequest {
            student_id,
            page: self::page(page),
        };
        let answer = client.clone().list_courses_by_student(request).await;
        answer.map(|a| a.into_inner().courses.into_iter().map(|c| c.id).collect())
    };
    testkit::grpc::assert_cross_query_with_peer(by_student, ids, "student").await;
    system.stop().await;
}

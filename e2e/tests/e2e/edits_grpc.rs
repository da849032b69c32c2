//! The gRPC twins of the conditional writes, one-link calls and idempotent creates
//! (docs/behaviour.md §3 and §4): `expected_version`, `Link*`/`Unlink*`, the
//! `idempotency-key` metadata, and the version in every returned entity.

use e2e::System;
use nis_grpc::proto::v1::{
    self as pb, course_service_client::CourseServiceClient,
    student_service_client::StudentServiceClient,
};
use tonic::{Code, Request};

fn keyed<T>(message: T, key: &str) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("idempotency-key", key.parse().expect("metadata"));
    request
}

fn replayed<T>(response: &tonic::Response<T>) -> bool {
    response.metadata().get("idempotent-replayed").is_some()
}

#[tokio::test]
async fn students_over_grpc_versions_conditions_links_and_keys() {
    let system = System::start().await;
    let course = system.course(1, &[]).await;
    let mut client = StudentServiceClient::new(system.students.channel().await);
    let create = || pb::CreateStudentRequest {
        name: "grpc".into(),
        first_name: "Ada".into(),
        last_name: "Lovelace".into(),
        course_ids: vec![],
    };
    let first = client
        .create_student(keyed(create(), "k-1"))
        .await
        .expect("create");
    assert!(!replayed(&first));
    let student = first.into_inner();
    assert_eq!(student.version, 0);
    let again = client
        .create_student(keyed(create(), "k-1"))
        .await
        .expect("again");
    assert!(replayed(&again));
    assert_eq!(again.into_inner().id, student.id);
    let other = pb::CreateStudentRequest {
        name: "another".into(),
        ..create()
    };
    let reused = client.create_student(keyed(other, "k-1")).await;
    assert_eq!(reused.expect_err("reused").code(), Code::InvalidArgument);

    let link = pb::StudentCourseRequest {
        student_id: student.id.clone(),
        course_id: course.clone(),
        expected_version: None,
    };
    let linked = client.link_course(link.clone()).await.expect("link");
    assert_eq!(linked.into_inner().version, 1);
    let read = client
        .get_student(pb::GetStudentRequest {
            id: student.id.clone(),
        })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(
        (read.version, read.course_ids.clone()),
        (1, vec![course.clone()])
    );

    let update = |expected_version| pb::UpdateStudentRequest {
        id: student.id.clone(),
        name: "grpc".into(),
        first_name: "Ada".into(),
        last_name: "Byron".into(),
        course_ids: vec![course.clone()],
        expected_version,
    };
    let stale = client.update_student(update(Some(0))).await;
    assert_eq!(stale.expect_err("stale").code(), Code::FailedPrecondition);
    let updated = client
        .update_student(update(Some(1)))
        .await
        .expect("update");
    assert_eq!(updated.into_inner().version, 2);
    let unlink = pb::StudentCourseRequest {
        expected_version: Some(1),
        ..link
    };
    let stale = client.unlink_course(unlink.clone()).await;
    assert_eq!(stale.expect_err("stale").code(), Code::FailedPrecondition);
    let unlinked = client
        .unlink_course(pb::StudentCourseRequest {
            expected_version: Some(2),
            ..unlink
        })
        .await
        .expect("unlink");
    assert_eq!(unlinked.into_inner().version, 3);
    let delete = |expected_version| pb::DeleteStudentRequest {
        id: student.id.clone(),
        expected_version,
    };
    let stale = client.delete_student(delete(Some(2))).await;
    assert_eq!(stale.expect_err("stale").code(), Code::FailedPrecondition);
    client
        .delete_student(delete(Some(3)))
        .await
        .expect("delete");
    system.stop().await;
}

#[tokio::test]
async fn courses_over_grpc_versions_conditions_links_and_keys() {
    let system = System::start().await;
    let student = system.student(1, &[]).await;
    let mut client = CourseServiceClient::new(system.courses.channel().await);
    let create = || pb::CreateCourseRequest {
        name: "grpc".into(),
        description: "Over gRPC".into(),
        discipline: "Maths".into(),
        teacher: "Noether".into(),
        student_ids: vec![],
    };
    let first = client
        .create_course(keyed(create(), "k-1"))
        .await
        .expect("create");
    let course = first.into_inner();
    let again = client
        .create_course(keyed(create(), "k-1"))
        .await
        .expect("again");
    assert!(replayed(&again));
    assert_eq!(again.into_inner().id, course.id);
    let bad_key = client.create_course(keyed(create(), "two words")).await;
    assert_eq!(
        bad_key.expect_err("malformed").code(),
        Code::InvalidArgument
    );

    let link = pb::CourseStudentRequest {
        course_id: course.id.clone(),
        student_id: student.clone(),
        expected_version: Some(0),
    };
    assert_eq!(
        client
            .link_student(link.clone())
            .await
            .expect("link")
            .into_inner()
            .version,
        1
    );
    let stale = client.link_student(link).await;
    assert_eq!(stale.expect_err("stale").code(), Code::FailedPrecondition);
    system
        .eventually("the student lists the course", || async {
            system.courses_of(&student).await == Some(e2e::set(&[&course.id]))
        })
        .await;
    let update = pb::UpdateCourseRequest {
        id: course.id.clone(),
        name: "grpc".into(),
        description: "Over gRPC".into(),
        discipline: "Maths".into(),
        teacher: "Noether".into(),
        student_ids: vec![],
        expected_version: Some(0),
    };
    let stale = client.update_course(update).await;
    assert_eq!(stale.expect_err("stale").code(), Code::FailedPrecondition);
    system.stop().await;
}

//! The reconciliation scan and lease of docs/behaviour.md §5.10 on PostgreSQL.

use std::time::Duration;

use nis_core::{Entity as _, ids::CourseId};
use nis_runtime::secret::Secret;
use students::{
    domain::{Student, StudentInput},
    outbound::postgres::PostgresStudents,
};

#[tokio::test]
async fn the_relation_is_scanned_in_id_order_and_the_lease_has_one_holder() {
    let database = testkit::stores::create_postgres_database("students_test").await;
    let url = Secret::new(format!("{}/{database}", testkit::postgres_url()));
    let store = PostgresStudents::connect(&url, 5, Duration::from_secs(5)).expect("connect");
    store.migrate().await.expect("migrate");
    let draft = |i: usize, links: Vec<CourseId>| {
        Student::parse_draft(StudentInput {
            name: Some(format!("name{i}")),
            first_name: Some("first".into()),
            last_name: Some("last".into()),
            course_ids: Some(links.iter().map(ToString::to_string).collect()),
        })
        .expect("valid")
    };
    let course = |i: usize| CourseId::from([u8::try_from(i).expect("small"); 12]);
    testkit::relation::assert_scan_and_lease::<Student, _>(store, draft, course).await;
    testkit::stores::drop_postgres_database(database).await;
}

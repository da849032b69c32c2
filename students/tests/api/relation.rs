//! The reconciliation scan and lease of docs/behaviour.md §5.10 on PostgreSQL.

use nis_core::{Entity as _, ids::CourseId};
use students::domain::{Student, StudentInput};

#[tokio::test]
async fn the_relation_is_scanned_in_id_order_and_the_lease_has_one_holder() {
    let (store, database) = crate::helpers::fresh_store().await;
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

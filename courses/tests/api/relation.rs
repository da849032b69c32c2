//! The reconciliation scan and lease of docs/behaviour.md §5.10 on MongoDB.

use courses::domain::{Course, CourseInput};
use nis_core::{Entity as _, ids::StudentId};

#[tokio::test]
async fn the_relation_is_scanned_in_id_order_and_the_lease_has_one_holder() {
    let (store, database) = crate::helpers::fresh_store().await;
    let draft = |i: usize, links: Vec<StudentId>| {
        Course::parse_draft(CourseInput {
            name: Some(format!("name{i}")),
            description: Some("about".into()),
            discipline: Some("math".into()),
            teacher: Some("teacher".into()),
            student_ids: Some(links.iter().map(ToString::to_string).collect()),
        })
        .expect("valid")
    };
    let student = |i: usize| {
        format!("00000000-0000-7000-8000-{:012x}", i + 1)
            .parse::<StudentId>()
            .expect("a uuid")
    };
    testkit::relation::assert_scan_and_lease::<Course, _>(store, draft, student).await;
    testkit::stores::drop_mongo_database(database).await;
}

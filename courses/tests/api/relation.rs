//! The reconciliation scan and lease of docs/behaviour.md §5.10 on MongoDB.

use std::time::Duration;

use courses::{
    domain::{Course, CourseInput},
    outbound::mongo::MongoCourses,
};
use nis_core::{Entity as _, ids::StudentId};
use nis_runtime::secret::Secret;

#[tokio::test]
async fn the_relation_is_scanned_in_id_order_and_the_lease_has_one_holder() {
    let database = testkit::unique_name("courses_test");
    let uri = Secret::new(testkit::mongodb_uri());
    let store = MongoCourses::connect(&uri, &database, Duration::from_secs(5))
        .await
        .expect("connect");
    store.migrate().await.expect("migrate");
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

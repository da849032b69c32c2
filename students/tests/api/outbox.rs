//! The outbox claims of docs/behaviour.md §5.9 on PostgreSQL: relays of several replicas share
//! the outbox (`FOR UPDATE SKIP LOCKED` under a lease).

use std::time::Duration;

use nis_runtime::secret::Secret;
use students::outbound::postgres::PostgresStudents;

#[tokio::test]
async fn relays_share_the_outbox_through_claims() {
    let database = testkit::stores::create_postgres_database("students_test").await;
    let url = Secret::new(format!("{}/{database}", testkit::postgres_url()));
    let store = PostgresStudents::connect(&url, 5, Duration::from_secs(5)).expect("connect");
    store.migrate().await.expect("migrate");
    testkit::outbox::assert_relays_share_the_outbox(store).await;
    testkit::stores::drop_postgres_database(database).await;
}

//! The outbox claims of docs/behaviour.md §5.9 on MongoDB: relays of several replicas share the
//! outbox (a conditional claim under a lease).

use std::time::Duration;

use courses::outbound::mongo::MongoCourses;
use nis_runtime::secret::Secret;

#[tokio::test]
async fn relays_share_the_outbox_through_claims() {
    let database = testkit::unique_name("courses_test");
    let uri = Secret::new(testkit::mongodb_uri());
    let store = MongoCourses::connect(&uri, &database, Duration::from_secs(5))
        .await
        .expect("connect");
    store.migrate().await.expect("migrate");
    testkit::outbox::assert_relays_share_the_outbox(store).await;
    testkit::stores::drop_mongo_database(database).await;
}

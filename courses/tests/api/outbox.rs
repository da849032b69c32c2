//! The outbox claims of docs/behaviour.md §5.9 on MongoDB: relays of several replicas share the
//! outbox (a conditional claim under a lease).

#[tokio::test]
async fn relays_share_the_outbox_through_claims() {
    let (store, database) = crate::helpers::fresh_store().await;
    testkit::outbox::assert_relays_share_the_outbox(store).await;
    testkit::stores::drop_mongo_database(database).await;
}

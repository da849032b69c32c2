//! The outbox claims of docs/behaviour.md §5.9 on PostgreSQL: relays of several replicas share
//! the outbox (`FOR UPDATE SKIP LOCKED` under a lease).

#[tokio::test]
async fn relays_share_the_outbox_through_claims() {
    let (store, database) = crate::helpers::fresh_store().await;
    testkit::outbox::assert_relays_share_the_outbox(store).await;
    testkit::stores::drop_postgres_database(database).await;
}

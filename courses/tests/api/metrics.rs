//! `/metrics` carries the request families with the labels of docs/behaviour.md §7 for both transports.

use nis_grpc::proto::v1::ListCoursesRequest;
use testkit::contract;

use crate::helpers::{KIND, grpc, spawn};

#[tokio::test]
async fn request_metrics_are_labelled_by_transport_operation_and_outcome() {
    let app = spawn().await;
    contract::make_http_calls_for_metrics(&app, &KIND).await;
    grpc(&app)
        .await
        .list_courses(ListCoursesRequest { page: None })
        .await
        .expect("list");
    contract::request_metrics_are_labelled(&app, &KIND, 1).await;
    app.stop().await;
}

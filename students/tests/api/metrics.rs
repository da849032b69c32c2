//! `/metrics` carries the request families with the CONTRACT labels for both transports.

use common::proto::v1 as pb;
use testkit::metric_value;

use crate::helpers::spawn;

#[tokio::test]
async fn request_metrics_are_labelled_by_transport_operation_and_outcome() {
    let app = spawn().await;
    app.create_student("metered").await;
    app.get("/api/students").await;
    app.get(&format!("/api/students/{}", uuid::Uuid::now_v7()))
        .await; // 404
    let mut grpc = app.grpc().await;
    grpc.list_students(pb::ListStudentsRequest { page: None })
        .await
        .expect("list");

    let metrics = app.metrics().await;
    let count = |transport: &str, operation: &str, outcome: &str| {
        metric_value(
            &metrics,
            "nis_requests_total",
            &[
                ("service", "students"),
                ("transport", transport),
                ("operation", operation),
                ("outcome", outcome),
            ],
        )
    };
    assert_eq!(count("http", "create", "ok"), 1.0, "{metrics}");
    assert_eq!(count("http", "list", "ok"), 1.0);
    assert_eq!(count("http", "get", "error"), 1.0);
    assert_eq!(count("grpc", "list", "ok"), 1.0);

    let histogram_count = |transport: &str| {
        metric_value(
            &metrics,
            "nis_request_duration_seconds_count",
            &[
                ("service", "students"),
                ("transport", transport),
                ("operation", "list"),
                ("outcome", "ok"),
            ],
        )
    };
    assert_eq!(histogram_count("http"), 1.0);
    assert_eq!(histogram_count("grpc"), 1.0);
    assert!(metrics.contains("# TYPE nis_request_duration_seconds histogram"));
    assert!(metrics.contains("nis_request_duration_seconds_bucket{"));
    app.stop().await;
}

//! Distributed traces (docs/behaviour.md §7, "Traces") across both services, exported to an
//! OTLP collector inside the test process (`testkit::otlp`). Both services run in this process,
//! so their spans share one `service.name` here; the binaries' own names are checked by the
//! services' binary tests.

use e2e::System;
use nis_runtime::{
    telemetry::{self, LogFormat},
    traces::{SamplerChoice, TraceSettings},
};
use testkit::otlp::Collector;

/// Both services, in this process whose spans go to `endpoint`, every trace kept.
async fn traced_system(endpoint: String) -> System {
    let settings = TraceSettings {
        endpoint: Some(endpoint),
        service_name: "nis-e2e".into(),
        sampler: SamplerChoice::ParentBasedRatio(1.0),
    };
    telemetry::init_tracing_with_traces(LogFormat::Json, &settings).keep_for_the_process();
    System::start().await
}

#[tokio::test]
async fn a_cross_query_is_one_trace_from_the_callers_span_through_both_services() {
    let collector = Collector::start().await;
    let system = traced_system(collector.endpoint()).await;
    let student = system.student(1, &[]).await;

    let trace = "0af7651916cd43dd8448eb211c80319c";
    let caller = "b7ad6b7169203331";
    let response = system
        .students
        .client
        .get(
            system
                .students
                .url(&format!("/api/students/{student}/courses")),
        )
        .header("traceparent", format!("00-{trace}-{caller}-01"))
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status(), 200);

    let http = collector
        .wait_for("the HTTP server span of the cross query", |s| {
            s.trace_id == trace && s.name == "GET /api/students/{id}/courses"
        })
        .await;
    assert_eq!(
        http.parent_span_id, caller,
        "it continues the caller's trace"
    );
    assert_eq!(http.kind, 2);
    let peer = collector
        .wait_for("the peer's gRPC server span, in the same trace", |s| {
            s.trace_id == trace && s.name == "nis.v1.CoursePeerService/ListCoursesLinkingStudent"
        })
        .await;
    assert_eq!(peer.kind, 2);
    assert_eq!(peer.attribute("rpc.system"), Some("grpc"));
    assert_eq!(
        peer.attribute("rpc.method"),
        Some("ListCoursesLinkingStudent")
    );
    assert_eq!(
        peer.parent_span_id, http.span_id,
        "the courses side is a child of the students request that asked it"
    );
    system.stop().await;
}

#[tokio::test]
async fn with_the_collector_down_requests_succeed_and_the_lost_spans_are_counted() {
    let closed = format!("http://127.0.0.1:{}", testkit::process::free_port());
    let system = traced_system(closed).await;
    for n in 0..20 {
        let student = system.student(n, &[]).await;
        let response = system
            .students
            .get(&format!("/api/students/{student}/courses"))
            .await;
        assert_eq!(response.status(), 200);
    }
    testkit::wait_for(
        "the spans of a failed export counted",
        std::time::Duration::from_secs(30),
        || async {
            let metrics = system.students.metrics().await;
            metrics
                .lines()
                .find(|l| l.starts_with("nis_trace_spans_dropped_total"))
                .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .filter(|n| *n > 0.0)
        },
    )
    .await;
    system.stop().await;
}

#[tokio::test]
async fn a_link_written_on_students_is_one_trace_through_the_outbox_the_queue_and_courses() {
    let collector = Collector::start().await;
    let system = traced_system(collector.endpoint()).await;
    let course = system.course(1, &[]).await;

    let trace = "5b8aa5a2d2c872e8321cf37308d69df2";
    let caller = "051581bf3cb55c13";
    let student = serde_json::json!({
        "name": "traced", "first_name": "Ada", "last_name": "Lovelace", "course_ids": [course]
    });
    let created = system
        .students
        .client
        .post(system.students.url("/api/students"))
        .header("traceparent", format!("00-{trace}-{caller}-01"))
        .json(&student)
        .send()
        .await
        .expect("POST");
    assert_eq!(created.status(), 201);

    let http = collector
        .wait_for("the POST's server span", |s| {
            s.trace_id == trace && s.name == "POST /api/students"
        })
        .await;
    assert_eq!(http.parent_span_id, caller);
    let use_case = collector
        .wait_for("the use-case span under it", |s| {
            s.trace_id == trace && s.name == "students create"
        })
        .await;
    assert_eq!(use_case.parent_span_id, http.span_id);
    assert_eq!(use_case.attribute("nis.transport"), Some("http"));
    let subject = format!("{}.links.students", system.prefix);
    let publish = collector
        .wait_for("the relay's publish, in the POST's trace", |s| {
            s.trace_id == trace && s.name == format!("publish {subject}")
        })
        .await;
    assert_eq!(publish.kind, 4, "a producer span");
    assert_eq!(publish.parent_span_id, http.span_id, "recorded by the POST");
    assert_eq!(publish.attribute("messaging.system"), Some("nats"));
    let process = collector
        .wait_for("courses' apply, in the same trace", |s| {
            s.trace_id == trace && s.name == format!("process {subject}")
        })
        .await;
    assert_eq!(process.kind, 5, "a consumer span");
    assert_eq!(
        process.parent_span_id, publish.span_id,
        "a child of the publish"
    );
    system.stop().await;
}

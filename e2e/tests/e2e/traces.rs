//! Distributed traces (docs/behaviour.md §7, "Traces") across both services, exported to an
//! OTLP collector inside the test process (`testkit::otlp`). Both services run in this process,
//! so their spans share one `service.name` and their log lines one stdout here; the last test
//! runs the two binaries instead, to read each one's log lines.

use e2e::System;
use nis_runtime::{
    telemetry::{self, LogFormat},
    traces::{SamplerChoice, TraceSettings},
};
use testkit::{
    otlp::Collector,
    process::{Running, free_port, workspace_binary},
};

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
    assert_eq!(
        http.attribute("http.route"),
        Some("/api/students/{id}/courses")
    );
    assert_eq!(http.attribute("http.response.status_code"), Some("200"));
    // The student is looked up (in the cache), then courses is asked.
    let use_case = collector
        .wait_for("the student's lookup under it", |s| {
            s.trace_id == trace && s.name == "students get"
        })
        .await;
    assert_eq!(use_case.parent_span_id, http.span_id);
    let lookup = collector
        .wait_for("its cache lookup", |s| {
            s.trace_id == trace && s.name == "MGET"
        })
        .await;
    assert_eq!(lookup.parent_span_id, use_case.span_id);
    assert_eq!(lookup.attribute("db.system.name"), Some("redis"));
    let method = "nis.v1.CoursePeerService/ListCoursesLinkingStudent";
    let peer = collector
        .wait_for("the peer's gRPC server span, in the same trace", |s| {
            s.trace_id == trace && s.name == method && s.kind == 2
        })
        .await;
    assert_eq!(peer.attribute("rpc.system"), Some("grpc"));
    assert_eq!(
        peer.attribute("rpc.method"),
        Some("ListCoursesLinkingStudent")
    );
    let client = collector
        .wait_for("the students side's gRPC client span", |s| {
            s.trace_id == trace && s.name == method && s.kind == 3
        })
        .await;
    assert_eq!(client.parent_span_id, http.span_id);
    assert_eq!(
        peer.parent_span_id, client.span_id,
        "the courses side is a child of the call that asked it"
    );
    // On the courses side: its use case, and the query that answered.
    let peer_use_case = collector
        .wait_for("the courses use case", |s| {
            s.trace_id == trace && s.name == "courses list_linked"
        })
        .await;
    assert_eq!(peer_use_case.parent_span_id, peer.span_id);
    let query = collector
        .wait_for("the MongoDB query", |s| {
            s.trace_id == trace && s.attribute("db.system.name") == Some("mongodb")
        })
        .await;
    assert_eq!(query.name, "find courses");
    assert_eq!(query.kind, 3, "a client span");
    assert_eq!(query.parent_span_id, peer_use_case.span_id);
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
    // The transaction's statements: the student, then the outbox entry of its link.
    for (statement, what) in [
        ("INSERT students", "the student's insert"),
        ("INSERT outbox", "the outbox write"),
        ("COMMIT", "the commit"),
    ] {
        let span = collector
            .wait_for(what, |s| s.trace_id == trace && s.name == statement)
            .await;
        assert_eq!(span.parent_span_id, use_case.span_id, "{statement}");
        assert_eq!(span.attribute("db.system.name"), Some("postgresql"));
        assert_eq!(span.kind, 3, "a client span");
    }
    let invalidation = collector
        .wait_for("the cache invalidation", |s| {
            s.trace_id == trace && s.attribute("db.system.name") == Some("redis")
        })
        .await;
    assert_eq!(invalidation.parent_span_id, use_case.span_id);
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
    let apply = collector
        .wait_for("courses' use case under it", |s| {
            s.trace_id == trace && s.name == "courses apply_link"
        })
        .await;
    assert_eq!(apply.parent_span_id, process.span_id);
    assert_eq!(apply.attribute("nis.transport"), Some("queue"));
    let update = collector
        .wait_for("the course's update", |s| {
            s.trace_id == trace && s.name == "update courses"
        })
        .await;
    assert_eq!(update.parent_span_id, apply.span_id);
    assert_eq!(update.attribute("db.system.name"), Some("mongodb"));
    system.stop().await;
}

/// The binary `program` with `env`, serving gRPC on port `grpc`, its peer (`{PEER}_GRPC_URL`)
/// on `peer_grpc`.
async fn start(
    program: &str,
    env: &[(String, String)],
    grpc: u16,
    (peer, peer_grpc): (&str, u16),
) -> Running {
    let binary = workspace_binary(program);
    Running::start(
        &binary.to_string_lossy(),
        env,
        &[
            ("GRPC_ADDR", format!("127.0.0.1:{grpc}")),
            (
                &format!("{peer}_GRPC_URL"),
                format!("http://127.0.0.1:{peer_grpc}"),
            ),
        ],
    )
    .await
}

/// The two binaries, each with its own JSON logs, exporting to `collector`, each other's peer:
/// (students, courses, what to remove afterwards).
async fn traced_binaries(collector: &Collector) -> (Running, Running, (String, String, String)) {
    let database = testkit::stores::create_postgres_database("students_test").await;
    let courses_database = testkit::unique_name("courses_test");
    let prefix = testkit::unique_name("t");
    testkit::queue::create_streams(&prefix).await;
    let (students_grpc, courses_grpc) = (free_port(), free_port());
    let common = [
        ("REDIS_URL".to_owned(), testkit::redis_url()),
        ("NIS_PREFIX".to_owned(), prefix.clone()),
        ("NATS_URL".to_owned(), testkit::nats_url()),
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT".to_owned(),
            collector.endpoint(),
        ),
    ];
    let students_env = [
        common.as_slice(),
        &[(
            "DATABASE_URL".to_owned(),
            format!("{}/{database}", testkit::postgres_url()),
        )],
    ]
    .concat();
    let courses_env = [
        common.as_slice(),
        &[
            ("MONGODB_URI".to_owned(), testkit::mongodb_uri()),
            ("MONGODB_DATABASE".to_owned(), courses_database.clone()),
        ],
    ]
    .concat();
    let courses = start(
        "courses",
        &courses_env,
        courses_grpc,
        ("STUDENTS", students_grpc),
    )
    .await;
    let students = start(
        "students",
        &students_env,
        students_grpc,
        ("COURSES", courses_grpc),
    )
    .await;
    (students, courses, (database, courses_database, prefix))
}

#[tokio::test]
async fn the_log_lines_of_both_services_for_one_request_name_its_trace() {
    let collector = Collector::start().await;
    let (students, courses, (database, courses_database, prefix)) =
        traced_binaries(&collector).await;
    let client = reqwest::Client::new();
    let course: serde_json::Value = client
        .post(format!("{}/api/courses", courses.base))
        .json(&serde_json::json!({
            "name": "Algebra", "description": "Groups", "discipline": "Mathematics",
            "teacher": "Emmy Noether"
        }))
        .send()
        .await
        .expect("POST course")
        .json()
        .await
        .expect("JSON");
    let course = e2e::id(&course["data"]);

    // A link written on students: students logs the POST, courses the apply of the link from
    // the queue; both in the caller's trace.
    let trace = "6e0c63257de34c926f9efcd03927272e";
    let created: serde_json::Value = client
        .post(format!("{}/api/students", students.base))
        .header("traceparent", format!("00-{trace}-b9c7c989f97918e1-01"))
        .header("x-request-id", "both-logs-1")
        .json(&serde_json::json!({
            "name": "logged", "first_name": "Ada", "last_name": "Lovelace", "course_ids": [course]
        }))
        .send()
        .await
        .expect("POST student")
        .json()
        .await
        .expect("JSON");
    let student = e2e::id(&created["data"]);
    let line = students.log_line_of("both-logs-1");
    assert_eq!(line["fields"]["transport"], "http");
    assert_eq!(line["span"]["trace_id"], trace, "students: {line}");
    let line = courses.log_line_of("both-logs-1");
    assert_eq!(line["fields"]["transport"], "queue");
    assert_eq!(line["fields"]["operation"], "apply_link");
    assert_eq!(line["span"]["trace_id"], trace, "courses, applying: {line}");
    // Each line names the span it was written in, which the collector received.
    let span_id = line["span"]["span_id"]
        .as_str()
        .expect("a span id")
        .to_owned();
    let process = collector
        .wait_for("the span the apply's line names", |s| s.span_id == span_id)
        .await;
    assert_eq!(process.trace_id, trace);
    assert_eq!(process.service, "courses");

    // A cross query: students logs the GET, courses the gRPC call it was asked.
    let trace = "a3ce929d0e0e47364bf92f3577b34da6";
    let listed = client
        .get(format!("{}/api/students/{student}/courses", students.base))
        .header("traceparent", format!("00-{trace}-d75597dee50b0cac-01"))
        .header("x-request-id", "both-logs-2")
        .send()
        .await
        .expect("GET");
    assert_eq!(listed.status(), 200);
    let line = students.log_line_of("both-logs-2");
    assert_eq!(line["span"]["trace_id"], trace, "students: {line}");
    let line = courses.log_line_of("both-logs-2");
    assert_eq!(line["fields"]["transport"], "grpc");
    assert_eq!(line["span"]["trace_id"], trace, "courses, asked: {line}");

    students.stop().await;
    courses.stop().await;
    testkit::queue::delete_streams(&prefix).await;
    testkit::stores::drop_postgres_database(database).await;
    testkit::stores::drop_mongo_database(courses_database).await;
}

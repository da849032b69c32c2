//! The deployment files held against the running services: every public route that Kong and
//! the Ingresses expose (deploy-checks/routes.txt) is really served; every metric family the
//! dashboards may use (deploy-checks/metric_families.txt) is really exported; and a real
//! Prometheus scraping both services while traffic flows over HTTP, gRPC and the queue
//! returns data for every panel query of the nis dashboards.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use async_nats::HeaderMap;
use e2e::{System, set};
use nis_grpc::proto::v1::{
    ListCoursesRequest, ListStudentsRequest, course_service_client::CourseServiceClient,
    student_service_client::StudentServiceClient,
};
use nis_queue::Topology;
use serde_json::{Value, json};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

fn data_lines(path: &str) -> Vec<Vec<String>> {
    std::fs::read_to_string(repo(path))
        .unwrap_or_else(|e| panic!("read {path}: {e}"))
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| line.split_whitespace().map(str::to_owned).collect())
        .collect()
}

#[tokio::test]
async fn every_public_route_kong_exposes_is_served() {
    let system = System::start().await;
    let s = system.student(1, &[]).await;
    let c = system.course(1, &[]).await;
    let routes = data_lines("deploy-checks/routes.txt");
    assert!(routes.len() >= 16, "{routes:?}");
    // Deletes last, so the other routes find their entity.
    let (deletes, others): (Vec<_>, Vec<_>) = routes.iter().partition(|r| r[0] == "DELETE");
    for route in others.into_iter().chain(deletes) {
        let (method, path, service) = (route[0].as_str(), route[1].as_str(), route[2].as_str());
        let (app, id, body) = match service {
            "courses" => (
                &system.courses,
                &c,
                json!({ "name": "Course 9", "description": "Routes", "discipline": "Ops", "teacher": "Kong" }),
            ),
            // POST and PUT must not clash on the unique full name.
            "students" => (
                &system.students,
                &s,
                json!({ "name": format!("student{method}"), "first_name": "Ada", "last_name": "Route" }),
            ),
            other => panic!("unknown service {other} in routes.txt"),
        };
        let url = path
            .replace("{id}", id)
            .replace("{course_id}", &c)
            .replace("{student_id}", &s);
        let response = match method {
            "GET" => app.get(&url).await,
            "POST" => app.post_json(&url, &body).await,
            "PUT" => app.put_json(&url, &body).await,
            "DELETE" => app.delete(&url).await,
            other => panic!("unknown method {other} in routes.txt"),
        };
        assert!(
            response.status().is_success(),
            "{method} {url} → {}",
            response.status()
        );
    }
    system.stop().await;
}

/// Traffic over every transport: HTTP reads (hits and misses) and writes, a 404, gRPC lists,
/// links that travel through the queue, and one poison message.
async fn traffic(system: &System, round: u32) {
    let s = system.student(round, &[]).await;
    let c = system.course(round, std::slice::from_ref(&s)).await;
    for _ in 0..2 {
        system.students.get(&format!("/api/students/{s}")).await;
        system.courses.get(&format!("/api/courses/{c}")).await;
    }
    system
        .students
        .get(&format!("/api/students/{}", uuid::Uuid::now_v7()))
        .await;
    system
        .courses
        .get(&format!("/api/courses/{c}/students"))
        .await;
    system
        .students
        .get(&format!("/api/students/{s}/courses"))
        .await;
    let mut students = StudentServiceClient::new(system.students.channel().await);
    let mut courses = CourseServiceClient::new(system.courses.channel().await);
    let _ = students
        .list_students(ListStudentsRequest { page: None })
        .await;
    let _ = courses
        .list_courses(ListCoursesRequest { page: None })
        .await;
    system.set_courses(&s, round, &[]).await;
    let js = testkit::queue::jetstream_at(None).await;
    let mut headers = HeaderMap::new();
    headers.insert("Nats-Msg-Id", format!("poison-{round}").as_str());
    let subject = Topology::new(&system.prefix).links_subject("courses");
    if let Ok(ack) = js
        .publish_with_headers(subject, headers, "poison".into())
        .await
    {
        let _ = ack.await;
    }
}

#[tokio::test]
async fn every_listed_nis_metric_family_is_exported() {
    let system = System::start().await;
    traffic(&system, 1).await;
    let s = system.student(50, &[]).await;
    let c = system.course(50, std::slice::from_ref(&s)).await;
    // One link each way, so that both services apply one (nis_link_propagation_seconds).
    let s2 = system.student(51, std::slice::from_ref(&c)).await;
    system
        .eventually("a link travels each way", || async {
            system.courses_of(&s).await == Some(set(&[&c]))
                && system.students_of(&c).await == Some(set(&[&s, &s2]))
        })
        .await;
    // One reconciliation run (nis_reconcile_*, nis_dead_letters; the metrics are the process's).
    system.reconcile_from_students(false).await;
    let families = data_lines("deploy-checks/metric_families.txt");
    for service in [&system.courses, &system.students] {
        let exposition = service.metrics().await;
        let exported: BTreeSet<&str> = exposition
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split_whitespace().next())
            .collect();
        for family in families
            .iter()
            .filter(|f| f[2].contains("courses") || f[2].contains("students"))
        {
            assert!(
                exported.contains(family[0].as_str()),
                "{} is not exported: {exported:?}",
                family[0]
            );
        }
    }
    system.stop().await;
}

/// A Prometheus server this test started, stopped on drop.
struct Prometheus {
    child: Child,
    url: String,
    _dir: TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn port_of(base: &str) -> &str {
    base.rsplit(':').next().expect("a port")
}

fn start_prometheus(system: &System) -> Prometheus {
    let binary = std::env::var("NIS_TEST_PROMETHEUS").unwrap_or_else(|_| "prometheus".into());
    let dir = TempDir(std::env::temp_dir().join(testkit::unique_name("nis-prometheus")));
    std::fs::create_dir_all(&dir.0).expect("prometheus dir");
    // The job names of monitoring/prometheus/prometheus.yml, on this test's ports.
    let config = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  \
         - job_name: nis-courses\n    static_configs: [{{targets: [\"127.0.0.1:{}\"]}}]\n  \
         - job_name: nis-students\n    static_configs: [{{targets: [\"127.0.0.1:{}\"]}}]\n",
        port_of(&system.courses.base),
        port_of(&system.students.base)
    );
    std::fs::write(dir.0.join("prometheus.yml"), config).expect("write the config");
    let port = testkit::process::free_port();
    let child = Command::new(&binary)
        .arg(format!(
            "--config.file={}",
            dir.0.join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.0.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("start {binary} (apt-get install prometheus): {e}"));
    Prometheus {
        child,
        url: format!("http://127.0.0.1:{port}"),
        _dir: dir,
    }
}

/// The PromQL of every panel of the nis dashboards (Kong's cannot have data without Kong;
/// the Loki panel is not PromQL), with Grafana's variables filled in.
fn panel_queries() -> Vec<(String, String)> {
    let mut queries = Vec::new();
    for name in ["nis-services.json", "nis-events.json"] {
        let dashboard: Value = serde_json::from_str(
            &std::fs::read_to_string(repo(&format!("monitoring/grafana/dashboards/{name}")))
                .expect("dashboard"),
        )
        .expect("dashboard JSON");
        for panel in dashboard["panels"].as_array().into_iter().flatten() {
            for target in panel["targets"].as_array().into_iter().flatten() {
                let Some(expr) = target["expr"].as_str() else {
                    continue;
                };
                if target["datasource"]["type"] == "loki" || expr.trim_start().starts_with('{') {
                    continue;
                }
                let query = expr
                    .replace("$__rate_interval", "1m")
                    .replace("$__range", "5m")
                    .replace("$__interval", "1m")
                    .replace("\"$service\"", "\".+\"")
                    .replace("\"$transport\"", "\".+\"");
                queries.push((
                    format!("{name}: {}", panel["title"].as_str().unwrap_or("?")),
                    query,
                ));
            }
        }
    }
    queries
}

#[tokio::test]
async fn a_real_prometheus_gets_data_for_every_dashboard_panel() {
    let system = System::start().await;
    let prometheus = start_prometheus(&system);
    let queries = panel_queries();
    assert!(queries.len() >= 15, "{queries:?}");
    let client = reqwest::Client::new();
    let mut round = 100;
    let mut waiting: Vec<(String, String)> = queries;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    while !waiting.is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no data within 90 s for: {waiting:#?}"
        );
        round += 1;
        traffic(&system, round).await;
        // A reconciliation run a round (its metrics are the process's, which the services
        // export), so the panels of runs, durations and dead letters have data.
        system.reconcile_from_students(false).await;
        let mut still = Vec::new();
        for (title, query) in waiting {
            let answer = client
                .get(format!("{}/api/v1/query", prometheus.url))
                .query(&[("query", query.as_str())])
                .send()
                .await;
            let has_data = match answer {
                Ok(response) => response.json::<Value>().await.is_ok_and(|body| {
                    body["data"]["result"]
                        .as_array()
                        .is_some_and(|r| !r.is_empty())
                }),
                Err(_) => false,
            };
            if !has_data {
                still.push((title, query));
            }
        }
        waiting = still;
    }
    drop(prometheus);
    system.stop().await;
}

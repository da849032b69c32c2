//! Failures lose nothing (docs/behaviour.md §5.4): a service killed between its commit and its publish
//! publishes after it restarts; NATS and Redis stopped while both services take writes, then
//! back: the relation converges.

use std::{
    path::Path,
    process::{Child, Command, Stdio},
    time::Duration,
};

use e2e::{Options, System, set};
use testkit::process::free_port;

/// A server process this test started (and only this test stops).
struct Server {
    child: Child,
}

impl Server {
    fn spawn(program: &str, args: &[&str]) -> Self {
        let child = Command::new(program)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {program}: {e}"));
        Self { child }
    }

    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn nats(port: u16, store: &Path) -> Server {
    let port = port.to_string();
    let store = store.to_string_lossy().into_owned();
    Server::spawn(
        "nats-server",
        &["-a", "127.0.0.1", "-p", &port, "-js", "-sd", &store],
    )
}

fn redis(port: u16) -> Server {
    let port = port.to_string();
    Server::spawn(
        "redis-server",
        &[
            "--bind",
            "127.0.0.1",
            "--port",
            &port,
            "--save",
            "",
            "--appendonly",
            "no",
        ],
    )
}

async fn wait_listening(port: u16) {
    testkit::wait_for(
        &format!("port {port} listening"),
        Duration::from_secs(20),
        || async move {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .ok()
                .map(|_| ())
        },
    )
    .await;
}

#[tokio::test]
async fn nats_down_during_writes_loses_nothing_and_redis_down_refuses_them_whole() {
    let store = std::env::temp_dir().join(testkit::unique_name("nis-nats"));
    let (nats_port, redis_port) = (free_port(), free_port());
    let nats_server = nats(nats_port, &store);
    let redis_server = redis(redis_port);
    wait_listening(nats_port).await;
    wait_listening(redis_port).await;
    let nats_url = format!("nats://127.0.0.1:{nats_port}");
    let system = System::start_with(Options {
        nats_url: Some(nats_url.clone()),
        redis_url: Some(format!("redis://127.0.0.1:{redis_port}")),
        ..Options::default()
    })
    .await;
    for service in [&system.courses, &system.students] {
        testkit::wait_for("ready", Duration::from_secs(20), || async {
            (service.get("/readyz").await.status() == 200).then_some(())
        })
        .await;
    }
    let s1 = system.student(1, &[]).await;
    let c1 = system.course(1, std::slice::from_ref(&s1)).await;
    system
        .eventually("the first link propagates", || async {
            system.courses_of(&s1).await == Some(set(&[&c1]))
        })
        .await;

    // NATS goes away; both services keep taking writes.
    nats_server.kill();
    let s2 = system.student(2, std::slice::from_ref(&c1)).await;
    let c2 = system.course(2, &[s1.clone(), s2.clone()]).await;
    assert_eq!(
        system.set_courses(&s1, 1, std::slice::from_ref(&c2)).await,
        200,
        "s1 leaves c1 for c2"
    );
    // What they recorded waits in their outboxes.
    for (service, name) in [(&system.courses, "courses"), (&system.students, "students")] {
        testkit::wait_for(
            &format!("{name}'s outbox holds the changes"),
            Duration::from_secs(20),
            || async {
                let pending = testkit::metric_value(
                    &service.metrics().await,
                    "nis_outbox_pending",
                    &[("service", name)],
                );
                (pending > 0.0).then_some(())
            },
        )
        .await;
    }

    // Redis goes away too: a write is refused whole, since its cache cannot be fenced
    // (docs/behaviour.md §6), and nothing of it is recorded.
    redis_server.kill();
    let refused = system
        .students
        .post_json("/api/students", &serde_json::json!({ "name": "student3", "first_name": "Ada", "last_name": "Lovelace", "course_ids": [&c1] }))
        .await;
    assert_eq!(refused.status(), 503);
    let listed = testkit::body(system.students.get("/api/students?limit=100").await).await;
    assert!(
        !listed.to_string().contains("student3"),
        "the refused create committed nothing: {listed}"
    );

    // Back again (same JetStream store): everything recorded meanwhile is published and applied.
    let nats_server = nats(nats_port, &store);
    let redis_server = redis(redis_port);
    wait_listening(nats_port).await;
    system
        .eventually("all changes made during the outage arrive", || async {
            system.students_of(&c1).await == Some(set(&[&s2]))
                && system.courses_of(&s1).await == Some(set(&[&c2]))
                && system.courses_of(&s2).await == Some(set(&[&c1, &c2]))
                && system.students_of(&c2).await == Some(set(&[&s1, &s2]))
        })
        .await;
    assert!(system.converged().await);
    system.stop().await;
    nats_server.kill();
    redis_server.kill();
    let _ = std::fs::remove_dir_all(store);
}

/// The students binary on fixed ports, with or without the crash failpoint.
fn students_binary(env: &[(String, String)], crash_before_publish: bool) -> Child {
    let mut command = Command::new(testkit::process::workspace_binary("students"));
    command
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    if crash_before_publish {
        command.env("NIS_FAILPOINT", "crash_before_publish");
    }
    command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the students binary")
}

#[tokio::test]
async fn a_service_killed_between_commit_and_publish_publishes_after_restart() {
    let prefix = testkit::unique_name("e");
    testkit::queue::create_streams(&prefix).await;
    let database = testkit::stores::create_postgres_database("students_test").await;
    let mongo_database = testkit::unique_name("courses_test");
    let [s_http, s_grpc, c_http, c_grpc] = [(); 4].map(|()| free_port());

    let mut courses_settings =
        testkit::settings_with_peer(&prefix, false, &format!("http://127.0.0.1:{s_grpc}"));
    courses_settings.http_addr = ([127, 0, 0, 1], c_http).into();
    courses_settings.grpc_addr = ([127, 0, 0, 1], c_grpc).into();
    let courses_config = courses::config::Config {
        service: courses_settings,
        mongodb_uri: nis_runtime::secret::Secret::new(testkit::mongodb_uri()),
        mongodb_database: mongo_database.clone(),
    };
    let courses = testkit::TestService::new(
        courses::app::start(&courses_config)
            .await
            .expect("courses starts"),
        prefix.clone(),
        Box::pin(testkit::stores::drop_mongo_database(mongo_database)),
    );

    let env: Vec<(String, String)> = [
        (
            "DATABASE_URL",
            format!("{}/{database}", testkit::postgres_url()),
        ),
        ("REDIS_URL", testkit::redis_url()),
        ("NATS_URL", testkit::nats_url()),
        ("NIS_PREFIX", prefix.clone()),
        ("HTTP_ADDR", format!("127.0.0.1:{s_http}")),
        ("GRPC_ADDR", format!("127.0.0.1:{s_grpc}")),
        ("COURSES_GRPC_URL", format!("http://127.0.0.1:{c_grpc}")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let client = reqwest::Client::new();
    let students_url = format!("http://127.0.0.1:{s_http}");
    let wait_ready = || async {
        testkit::wait_for("students ready", Duration::from_secs(30), || async {
            let ready = client
                .get(format!("{students_url}/readyz"))
                .send()
                .await
                .ok()?;
            (ready.status() == 200).then_some(())
        })
        .await;
    };

    let mut crashing = students_binary(&env, true);
    wait_ready().await;
    let course = e2e::id(
        &courses
            .create(
                "courses",
                &serde_json::json!({ "name": "Crash course", "description": "Survives", "discipline": "Ops", "teacher": "Murphy" }),
            )
            .await,
    );
    // The write commits; the relay then aborts the process before publishing it. Whether the
    // response made it out first does not matter.
    let _ = client
        .post(format!("{students_url}/api/students"))
        .json(&serde_json::json!({ "name": "survivor", "first_name": "Ada", "last_name": "Lovelace", "course_ids": [course] }))
        .send()
        .await;
    let status = tokio::task::spawn_blocking(move || crashing.wait())
        .await
        .expect("join")
        .expect("wait");
    assert!(
        !status.success(),
        "the failpoint should have killed students: {status}"
    );

    let mut restarted = students_binary(&env, false);
    wait_ready().await;
    let listed: serde_json::Value = client
        .get(format!("{students_url}/api/students"))
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        listed["data"][0]["name"], "survivor",
        "the write was committed before the crash"
    );
    let student = e2e::id(&listed["data"][0]);
    testkit::wait_for(
        "the change recorded before the crash reaches courses",
        Duration::from_secs(30),
        || async {
            let course = testkit::body(courses.get(&format!("/api/courses/{course}")).await).await;
            (course["data"]["student_ids"] == serde_json::json!([student])).then_some(())
        },
    )
    .await;

    let _ = restarted.kill();
    let _ = restarted.wait();
    courses.stop().await;
    testkit::stores::drop_postgres_database(database).await;
    testkit::queue::delete_streams(&prefix).await;
    testkit::delete_redis_keys(&prefix).await;
}

//! A regression test for what `make chaos` found (docs/chaos.md): students answered 503 to a
//! request still draining after SIGTERM, because the request was using a PostgreSQL connection
//! that another HTTP worker had opened on its own runtime, which the stop shut down. The HTTP API
//! now polls every service call in the application's runtime context (`nis_http::OnRuntime`).

use std::{sync::mpsc, time::Duration};

use nis_core::{Context, Core, EntityService, Page, Transport};
use nis_http::OnRuntime;
use nis_runtime::secret::Secret;
use sqlx::Connection as _;
use students::{
    domain::{Student, StudentInput},
    outbound::postgres::PostgresStudents,
};

type Service = OnRuntime<Core<PostgresStudents>>;

fn ctx() -> Context {
    Context::new(Transport::Http, "runtimes")
}

/// An HTTP worker: a thread with a current-thread runtime of its own that serves `work`, then
/// keeps running (as actix's workers do) until told to stop, when its runtime shuts down.
fn worker<T: Send + 'static>(
    work: impl Future<Output = T> + Send + 'static,
) -> (
    mpsc::Receiver<T>,
    tokio::sync::oneshot::Sender<()>,
    std::thread::JoinHandle<()>,
) {
    let (done, answer) = mpsc::channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a worker's runtime");
        runtime.block_on(async move {
            let _ = done.send(work.await);
            let _ = stopped.await;
        });
    });
    (answer, stop, thread)
}

#[test]
fn a_request_survives_the_shutdown_of_the_worker_runtime_that_opened_its_connection() {
    let app = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("the application's runtime");
    let database = app.block_on(testkit::stores::create_postgres_database("students_test"));
    let url = format!("{}/{database}", testkit::postgres_url());
    let timeout = Duration::from_secs(10);
    app.block_on(async {
        let migrator = PostgresStudents::connect(&Secret::new(url.clone()), 1, timeout);
        migrator.expect("connect").migrate().await.expect("migrate");
    });
    // One connection in the pool: opened by worker A's first request.
    let store =
        app.block_on(async { PostgresStudents::connect(&Secret::new(url.clone()), 1, timeout) });
    let service: Service = OnRuntime::new(
        Core::new(store.expect("pool"), "t.links.students"),
        app.handle().clone(),
    );

    let listing = service.clone();
    let (a_answer, stop_a, a) = worker(async move {
        let page = Page::new(None, None).expect("page");
        EntityService::<Student>::list(&listing, &ctx(), page).await
    });
    a_answer.recv().expect("A answered").expect("A's request");

    // Worker B's write waits on a lock, on the pool's connection, while A's runtime shuts down.
    let mut locker = app
        .block_on(sqlx::PgConnection::connect(&url))
        .expect("locker");
    app.block_on(
        sqlx::raw_sql("BEGIN; LOCK TABLE students IN ACCESS EXCLUSIVE MODE").execute(&mut locker),
    )
    .expect("lock");
    let writing = service.clone();
    let (b_answer, stop_b, b) = worker(async move {
        let input = StudentInput {
            name: Some("drain".into()),
            first_name: Some("Ada".into()),
            last_name: Some("Lovelace".into()),
            course_ids: None,
        };
        let draft = <Student as nis_core::Entity>::parse_draft(input).expect("draft");
        EntityService::<Student>::create(&writing, &ctx(), draft).await
    });
    app.block_on(testkit::wait_for("B's write waits on the lock", Duration::from_secs(10), || {
        let url = url.clone();
        async move {
            let mut probe = sqlx::PgConnection::connect(&url).await.ok()?;
            let waiting: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()",
            )
            .fetch_one(&mut probe)
            .await
            .ok()?;
            (waiting > 0).then_some(())
        }
    }));
    let _ = stop_a.send(());
    a.join().expect("A stopped");
    app.block_on(sqlx::query("COMMIT").execute(&mut locker))
        .expect("unlock");

    let written = b_answer.recv().expect("B answered");
    assert!(written.is_ok(), "B's write: {written:?}");
    let _ = stop_b.send(());
    b.join().expect("B stopped");
    app.block_on(testkit::stores::drop_postgres_database(database));
}

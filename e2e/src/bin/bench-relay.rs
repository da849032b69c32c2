//! bench-relay: how fast the outbox relays of REPLICAS processes of one service drain a backlog
//! of link changes, and whether each entry is published exactly once (docs/behaviour.md §5.9).
//!
//!     cargo build --release -p students -p courses -p e2e
//!     target/release/bench-relay students 20000 2 target/release
//!     target/release/bench-relay courses 5000 2 target/release
//!
//! Arguments: SERVICE ENTRIES REPLICAS BIN_DIR. It records ENTRIES link changes (valid events,
//! `linked: true` for entities that do not exist) in a fresh store of SERVICE — PostgreSQL
//! database or MongoDB database, named `bench_<random>` — with no relay running, creates the
//! JetStream streams of a fresh prefix, starts REPLICAS processes of SERVICE from BIN_DIR, and
//! times the drain from the first entry published to the outbox being empty. Nothing consumes
//! the stream (the other service is not started), so only the relays are measured. It then
//! prints publishes (the sum of `nis_events_published_total` over the replicas) against entries,
//! and the messages the stream kept. Servers: `NIS_TEST_POSTGRES_URL`, `NIS_TEST_MONGODB_URI`,
//! `NIS_TEST_REDIS_URL`, `NIS_TEST_NATS_URL` (the test defaults on loopback). Everything it made
//! is removed at the end.

use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use courses::outbound::mongo::MongoCourses;
use nis_core::{
    Entity, EntityStore,
    message::{LinkEvent, VERSION},
    outbox::{Outbox, OutboxEntry},
    store::{Change, Commit},
};
use nis_queue::Topology;
use nis_runtime::secret::Secret;
use students::outbound::postgres::PostgresStudents;
use testkit::process::free_port;

/// Entries per commit while filling the outbox.
const CHUNK: usize = 500;
/// The longest the drain may take before the run gives up.
const DRAIN_DEADLINE: Duration = Duration::from_secs(300);

struct Args {
    service: String,
    entries: usize,
    replicas: usize,
    bin_dir: String,
}

fn args() -> Args {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: bench-relay students|courses ENTRIES REPLICAS BIN_DIR";
    let [service, entries, replicas, bin_dir] = <[String; 4]>::try_from(args).expect(usage);
    assert!(
        matches!(service.as_str(), "students" | "courses"),
        "{usage}"
    );
    Args {
        service,
        entries: entries.parse().expect(usage),
        replicas: replicas.parse().expect(usage),
        bin_dir,
    }
}

/// `n` link changes of `origin` on `subject`, as its core would record them.
fn entries(origin: &str, subject: &str, n: usize) -> Vec<OutboxEntry> {
    (0..n)
        .map(|i| {
            let (entity, other) = if origin == "students" {
                (uuid::Uuid::now_v7().to_string(), format!("{i:024x}"))
            } else {
                (format!("{i:024x}"), uuid::Uuid::now_v7().to_string())
            };
            let event = LinkEvent {
                v: VERSION,
                id: uuid::Uuid::now_v7().to_string(),
                origin: origin.to_owned(),
                entity,
                other,
                linked: true,
                clock: 1,
            };
            OutboxEntry {
                id: event.id.clone(),
                subject: subject.to_owned(),
                payload: event.encode(),
                request_id: format!("bench-{i}"),
                trace_context: None,
            }
        })
        .collect()
}

async fn fill<E: Entity, S: EntityStore<E>>(store: &S, all: Vec<OutboxEntry>) {
    for chunk in all.chunks(CHUNK) {
        let commit = Commit {
            expected: None,
            change: Change::Nothing,
            outbox: chunk.to_vec(),
            key: None,
            relinked: vec![],
        };
        store.commit(commit).await.expect("record outbox entries");
    }
}

/// The replicas, killed on drop.
struct Replicas(Vec<(Child, u16)>);

impl Drop for Replicas {
    fn drop(&mut self) {
        for (child, _) in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

async fn drain_time<O: Outbox>(outbox: &O, entries: u64) -> Duration {
    let give_up = Instant::now() + DRAIN_DEADLINE;
    let mut first = None;
    loop {
        let left = outbox.backlog().await.expect("backlog");
        let now = Instant::now();
        if left < entries && first.is_none() {
            first = Some(now);
        }
        if left == 0 {
            return now - first.unwrap_or(now);
        }
        assert!(
            now < give_up,
            "{left} entries left after {DRAIN_DEADLINE:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::main]
async fn main() {
    let args = args();
    let prefix = testkit::unique_name("bench");
    let topology = Topology::new(&prefix);
    let subject = topology.links_subject(&args.service);
    let all = entries(&args.service, &subject, args.entries);
    let timeout = Duration::from_secs(30);

    let mut env: Vec<(String, String)> = vec![
        ("NATS_URL".into(), testkit::nats_url()),
        ("REDIS_URL".into(), testkit::redis_url()),
        ("NIS_PREFIX".into(), prefix.clone()),
        ("LOG_FORMAT".into(), "json".into()),
        ("RUST_LOG".into(), "warn".into()),
    ];
    let mongo_database = testkit::unique_name("bench");
    let mut postgres_database = None;
    let students_store;
    let courses_store;
    if args.service == "students" {
        let database = testkit::stores::create_postgres_database("bench").await;
        postgres_database = Some(database.clone());
        let postgres_database = database;
        let url = format!("{}/{postgres_database}", testkit::postgres_url());
        let store = PostgresStudents::connect(&Secret::new(url.clone()), 5, timeout).expect("pg");
        store.migrate().await.expect("migrate");
        fill(&store, all).await;
        env.push(("DATABASE_URL".into(), url));
        env.push(("COURSES_GRPC_URL".into(), "http://127.0.0.1:1".into()));
        students_store = Some(store);
        courses_store = None;
    } else {
        let uri = testkit::mongodb_uri();
        let store = MongoCourses::connect(&Secret::new(uri.clone()), &mongo_database, timeout)
            .await
            .expect("mongo");
        store.migrate().await.expect("migrate");
        fill(&store, all).await;
        env.push(("MONGODB_URI".into(), uri));
        env.push(("MONGODB_DATABASE".into(), mongo_database.clone()));
        env.push(("STUDENTS_GRPC_URL".into(), "http://127.0.0.1:1".into()));
        students_store = None;
        courses_store = Some(store);
    }
    testkit::queue::create_streams(&prefix).await;

    let binary = format!("{}/{}", args.bin_dir, args.service);
    let replicas = Replicas(
        (0..args.replicas)
            .map(|_| {
                let http = free_port();
                let child = Command::new(&binary)
                    .envs(env.iter().cloned())
                    .env("HTTP_ADDR", format!("127.0.0.1:{http}"))
                    .env("GRPC_ADDR", format!("127.0.0.1:{}", free_port()))
                    .stdout(Stdio::null())
                    .stderr(Stdio::inherit())
                    .spawn()
                    .unwrap_or_else(|e| panic!("start {binary}: {e}"));
                (child, http)
            })
            .collect(),
    );
    let entries = u64::try_from(args.entries).expect("count");
    let drained = match (&students_store, &courses_store) {
        (Some(store), _) => drain_time(store, entries).await,
        (_, Some(store)) => drain_time(store, entries).await,
        _ => unreachable!("one store is set"),
    };

    let client = reqwest::Client::new();
    let mut publishes = 0.0;
    for (_, http) in &replicas.0 {
        let metrics = client
            .get(format!("http://127.0.0.1:{http}/metrics"))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics text");
        publishes += testkit::metric_value(
            &metrics,
            "nis_events_published_total",
            &[("service", args.service.as_str())],
        );
    }
    let jetstream = testkit::queue::jetstream_at(None).await;
    let kept = jetstream
        .get_stream(topology.links_stream(&args.service))
        .await
        .expect("stream")
        .info()
        .await
        .expect("stream info")
        .state
        .messages;
    drop(replicas);

    let secs = drained.as_secs_f64();
    println!(
        "service={} replicas={} entries={entries} drain_s={secs:.2} published_per_s={:.0} publishes={publishes} stream_messages={kept}",
        args.service,
        args.replicas,
        entries as f64 / secs.max(f64::EPSILON),
    );

    testkit::queue::delete_streams(&prefix).await;
    match postgres_database {
        Some(database) => testkit::stores::drop_postgres_database(database).await,
        None => testkit::stores::drop_mongo_database(mongo_database).await,
    }
}

//! `make chaos`: a bounded, seeded fault campaign against two replicas of each nis service
//! (docs/chaos.md). One run starts a private world (NATS, Redis, fresh databases), the
//! replicas as child processes, a seeded load over HTTP and gRPC, and seeded faults at seeded
//! times; then it lets the system settle and checks that no acknowledged write was lost, the
//! relation is whole, nothing is left in the outboxes or dead letters, every error is explained
//! by a fault, and a SIGTERM drains what was in flight. It prints figures and one line per check.

pub mod checks;
pub mod clients;
pub mod error;
pub mod faults;
pub mod ledger;
pub mod links;
pub mod load;
pub mod logs;
pub mod model;
pub mod probe;
pub mod procs;
pub mod replicas;
pub mod report;
pub mod schedule;
pub mod world;

use std::{
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::{sync::watch, task::JoinSet};

pub use error::{Error, Result};
pub use report::Report;

use crate::{
    checks::Evidence,
    clients::{Clients, Outcome},
    faults::Injector,
    ledger::{CallOp, InFlight},
    load::Load,
    model::Kind,
    probe::Probe,
    replicas::Fleet,
    schedule::{Link, Schedule},
    world::{Disruptions, Names, World},
};

/// How a run is set up.
#[derive(Debug, Clone)]
pub struct Config {
    /// Decides the fault schedule and every worker's intended operations.
    pub seed: u64,
    /// How long the load runs.
    pub duration: Duration,
    /// Concurrent workers of the load.
    pub workers: usize,
    /// Where the `students`, `courses` and `initializer` binaries are.
    pub bin_dir: PathBuf,
    /// Where logs and the JetStream store go.
    pub run_dir: PathBuf,
    /// The PostgreSQL server (no database in the path).
    pub postgres_url: String,
    /// The MongoDB server.
    pub mongodb_uri: String,
    /// How long the system may take to settle after the load.
    pub settle_deadline: Duration,
    /// The `nats-server` program (`NIS_NATS_SERVER`, default the one on `PATH`).
    pub nats_server: String,
}

impl Config {
    /// A run of `seed` for `duration` with the servers of the environment: PostgreSQL from
    /// `NIS_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432`), MongoDB from
    /// `NIS_TEST_MONGODB_URI` or `MONGODB_URI`, NATS run from `NIS_NATS_SERVER` (scripts/chaos.sh
    /// names the release production runs).
    pub fn from_env(
        seed: u64,
        duration: Duration,
        bin_dir: PathBuf,
        run_dir: PathBuf,
    ) -> Result<Self> {
        let postgres_url = std::env::var("NIS_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
        let mongodb_uri = std::env::var("NIS_TEST_MONGODB_URI")
            .or_else(|_| std::env::var("MONGODB_URI"))
            .ok()
            .filter(|uri| !uri.is_empty())
            .ok_or_else(|| {
                Error("set NIS_TEST_MONGODB_URI or MONGODB_URI (scripts/chaos.sh starts a private MongoDB-compatible server)".into())
            })?;
        Ok(Self {
            seed,
            duration,
            workers: 8,
            bin_dir,
            run_dir,
            postgres_url: postgres_url.trim_end_matches('/').to_owned(),
            mongodb_uri,
            settle_deadline: Duration::from_secs(90),
            nats_server: std::env::var("NIS_NATS_SERVER").unwrap_or_else(|_| "nats-server".into()),
        })
    }
}

/// One run, with the names of what it creates (so they can be removed however it ends).
#[derive(Debug)]
pub struct Campaign {
    config: Config,
    names: Names,
    disruptions: Disruptions,
}

/// Aborts a task when dropped: if the caller of [`Campaign::run`] gives up (Ctrl-C), the
/// campaign's task and every task it spawned end, dropping their child processes, which kills
/// them.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Campaign {
    /// A run as `config` says, with fresh names.
    pub fn new(config: Config) -> Self {
        Self {
            config,
            names: Names::new(),
            disruptions: Disruptions::default(),
        }
    }

    /// Runs the campaign and removes its databases, also when it fails or panics. The report
    /// is what the checks found; an error means the campaign itself could not run.
    pub async fn run(&self) -> Result<Report> {
        let mut task = AbortOnDrop(tokio::spawn(execute(
            self.config.clone(),
            self.names.clone(),
            self.disruptions.clone(),
        )));
        let outcome = (&mut task.0).await;
        self.clean_up().await;
        match outcome {
            Ok(result) => result,
            Err(e) if e.is_panic() => {
                let panic = e.into_panic();
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default();
                Err(Error(format!("the campaign panicked: {message}")))
            }
            Err(e) => Err(Error(format!("the campaign did not finish: {e}"))),
        }
    }

    /// Drops the run's databases (idempotent).
    pub async fn clean_up(&self) {
        world::drop_databases(
            &self.config.postgres_url,
            &self.config.mongodb_uri,
            &self.names,
            &self.disruptions,
        )
        .await;
    }
}

/// Progress lines on stderr, timed from the start of the run.
#[derive(Debug, Clone, Copy)]
struct Progress(Instant);

impl Progress {
    fn say(self, what: &str) {
        eprintln!("[chaos {:6.1}s] {what}", self.0.elapsed().as_secs_f64());
    }
}

/// The plan a seed gives, printed before anything runs.
fn print_plan(config: &Config, schedule: &Schedule) {
    let (from, to) = schedule::fault_window(config.duration);
    println!(
        "chaos: seed {} | load {:.0}s | {} workers | faults between {:.1}s and {:.1}s",
        config.seed,
        config.duration.as_secs_f64(),
        config.workers,
        from.as_secs_f64(),
        to.as_secs_f64()
    );
    for (lane, faults) in schedule.lanes() {
        for fault in faults.iter() {
            let target = fault
                .target
                .map(|t| format!(" {}", replicas::name_of(t)))
                .unwrap_or_default();
            let pause = if fault.pause.is_zero() {
                String::new()
            } else {
                format!(" for {:.2}s", fault.pause.as_secs_f64())
            };
            println!(
                "  plan [{lane}] +{:5.1}s {}{target}{pause}",
                fault.at.as_secs_f64(),
                fault.kind
            );
        }
    }
    println!(
        "  intended operations: fingerprint {:016x} (first 500 of each worker); worker 1 begins: {}",
        schedule::fingerprint(config.seed, config.workers, 500),
        schedule::Intents::new(config.seed, 0)
            .take(4)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
}

/// Every request of the run, one a line, to `<run-dir>/requests.tsv`, for reading a failure
/// closely (start and end in seconds from the start of the load).
fn write_requests(dir: &std::path::Path, calls: &[ledger::Call], addresses: &[replicas::Address]) {
    let mut text = String::from(
        "start\tend\tworker\top\tpart\tid\tname\ttransport\treplica\tanswer\tcounter\tlinks\n",
    );
    for c in calls {
        text += &format!(
            "{:.3}\t{:.3}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
            c.start.as_secs_f64(),
            c.end.as_secs_f64(),
            c.worker,
            c.op.name(),
            c.part,
            c.id,
            c.name,
            c.transport.name(),
            addresses[c.replica].name,
            c.answer.label(),
            c.counter,
            c.links.join(",")
        );
    }
    if let Err(e) = std::fs::write(dir.join("requests.tsv"), text) {
        eprintln!("chaos: could not write requests.tsv: {e}");
    }
}

async fn execute(config: Config, names: Names, disruptions: Disruptions) -> Result<Report> {
    let progress = Progress(Instant::now());
    let schedule = schedule::faults(config.seed, config.duration, 2 * replicas::PER_SERVICE);
    print_plan(&config, &schedule);
    progress.say(&format!(
        "starting NATS, Redis, databases (prefix {}), initializer",
        names.prefix
    ));
    let world = Arc::new(World::start(&config, names).await?);
    let fleet = Arc::new(Fleet::new(&config, &world, disruptions.clone()).await?);
    let clients = Clients::new(&fleet.addresses)?;
    progress.say("starting the replicas");
    fleet.start(clients.http()).await?;
    progress.say(&format!(
        "every replica ready; load for {:.0}s",
        config.duration.as_secs_f64()
    ));

    let t0 = Instant::now();
    let in_flight = Arc::new(InFlight::new(fleet.addresses.len()));
    let load = Arc::new(Load::new(
        clients.clone(),
        fleet.addresses.clone(),
        Arc::clone(&in_flight),
        t0,
    ));
    let injector = Arc::new(Injector::new(
        Arc::clone(&fleet),
        Arc::clone(&world),
        clients.http().clone(),
        in_flight,
        disruptions,
        t0,
    ));
    // Every task lives in a JoinSet, so that ending this task (an error, a panic, Ctrl-C)
    // aborts them too and nothing keeps the child processes alive.
    let (stop_watch, watching) = watch::channel(false);
    let mut watcher = JoinSet::new();
    watcher.spawn(Arc::clone(&injector).watch_crashes(watching));
    let mut lanes = JoinSet::new();
    lanes.spawn(Arc::clone(&injector).run_lane(schedule.replicas.clone()));
    lanes.spawn(Arc::clone(&injector).run_lane(schedule.dependencies.clone()));
    lanes.spawn(Arc::clone(&injector).run_lane(schedule.links.clone()));
    let mut workers = JoinSet::new();
    for worker in 0..config.workers {
        workers.spawn(load::worker(
            Arc::clone(&load),
            config.seed,
            worker,
            t0 + config.duration,
        ));
    }
    while let Some(done) = workers.join_next().await {
        done.map_err(|e| Error(format!("a load worker failed: {e}")))?;
    }
    progress.say("load over; waiting for the last faults");
    while let Some(done) = lanes.join_next().await {
        done.map_err(|e| Error(format!("a fault lane failed: {e}")))?;
    }

    progress.say("settling");
    let probe = Probe::connect(&world, clients.clone(), fleet.addresses.clone()).await?;
    let settled = probe.settle(config.settle_deadline).await;
    progress.say(&format!(
        "settled: {} after {:.1}s",
        settled.ok,
        settled.took.as_secs_f64()
    ));
    let state = probe.state().await.map_err(|e| e.to_string());
    let outboxes = probe.outboxes().await.map_err(|e| e.to_string());
    let dead_letters = probe.dead_letters().await.map_err(|e| e.to_string());
    let calls = load.ledger.calls();
    write_requests(&config.run_dir, &calls, &fleet.addresses);
    let mut deleted = Vec::new();
    for kind in [Kind::Student, Kind::Course] {
        let ids: Vec<String> = calls
            .iter()
            .filter(|c| c.op == CallOp::Delete && c.part.kind() == kind)
            .filter(|c| c.answer.outcome() == Outcome::Acknowledged)
            .map(|c| c.id.clone())
            .collect();
        deleted.extend(probe.statuses(kind, &ids).await);
    }
    let _ = stop_watch.send(true);
    while watcher.join_next().await.is_some() {}

    progress.say("stopping the replicas and servers");
    fleet.stop().await;
    let logs = logs::read(&config.run_dir);
    world.stop().await;
    let faults = injector.records();
    let crashes = injector.crashes();
    let link_connections: Vec<(String, Link, u64)> = fleet
        .addresses
        .iter()
        .zip(&fleet.links)
        .flat_map(|(address, links)| {
            Link::ALL.map(|link| (address.name.clone(), link, links.accepted(link)))
        })
        .collect();
    Ok(checks::evaluate(&Evidence {
        seed: config.seed,
        duration: config.duration,
        workers: config.workers,
        addresses: &fleet.addresses,
        calls: &calls,
        faults: &faults,
        planned: schedule.len(),
        link_connections: &link_connections,
        crashes: &crashes,
        settled: &settled,
        state: &state,
        outboxes: &outboxes,
        dead_letters: &dead_letters,
        deleted: &deleted,
        logs: &logs,
    }))
}

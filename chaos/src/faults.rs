//! Injecting the scheduled faults (docs/chaos.md, "Faults"), recording each with its kind,
//! target, start and end, and watching for replicas that die by themselves.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use nix::sys::signal::Signal;
use tokio::sync::watch;

use crate::{
    error::{Context as _, Result},
    ledger::{InFlight, RACE_MARGIN},
    replicas::{Fleet, Service, wait_ready},
    schedule::{CutMode, FaultKind, Link, Planned},
    world::{Disruptions, World, postgres_admin},
};

/// How long a restarted replica or server may take to be ready again.
const RECOVERY_DEADLINE: Duration = Duration::from_secs(60);
/// How long a replica may take to drain after SIGTERM: the services' default
/// `SHUTDOWN_GRACE_SECS` (20 s) and a margin.
const DRAIN_DEADLINE: Duration = Duration::from_secs(30);
/// How many of a links stream's newest messages a `links-delete` fault deletes.
const NEWEST_LOST: u64 = 10;
/// How long a SIGTERM waits for the load to have a request in flight to its replica.
const IN_FLIGHT_WAIT: Duration = Duration::from_secs(2);

/// A fault as it happened.
#[derive(Debug, Clone)]
pub struct FaultRecord {
    /// What happened.
    pub kind: FaultKind,
    /// What it hit: a replica's name, `nats`, `redis` or `postgres`; for a link fault the
    /// replica's name and the link's (`students-1 redis`).
    pub target: String,
    /// The replica it hit (fleet index), for replica faults.
    pub replica: Option<usize>,
    /// When it was planned, from the start of the load.
    pub planned: Duration,
    /// When the fault began (the signal went, the server was stopped…).
    pub start: Duration,
    /// When it was over: the replica or server ready again, the stalled replica resumed.
    pub end: Duration,
    /// For SIGTERM: how the replica exited (`None`: it did not within the deadline and was
    /// killed).
    pub exit: Option<std::process::ExitStatus>,
    /// How long the replica took to exit after SIGTERM.
    pub drain: Duration,
    /// Whether what it stopped is back (ready) again.
    pub recovered: bool,
    /// Anything worth saying (connections terminated, an error).
    pub note: String,
}

/// A replica that ended without a fault (a crash).
#[derive(Debug, Clone)]
pub struct Crash {
    /// Its name.
    pub replica: String,
    /// When it was found gone.
    pub at: Duration,
    /// How it ended.
    pub status: String,
}

/// What faults act on, and what they recorded.
#[derive(Debug)]
pub struct Injector {
    fleet: Arc<Fleet>,
    world: Arc<World>,
    http: reqwest::Client,
    in_flight: Arc<InFlight>,
    disruptions: Disruptions,
    t0: Instant,
    records: Mutex<Vec<FaultRecord>>,
    crashes: Mutex<Vec<Crash>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Injector {
    /// Faults on `fleet` and `world`, timed from `t0`.
    pub fn new(
        fleet: Arc<Fleet>,
        world: Arc<World>,
        http: reqwest::Client,
        in_flight: Arc<InFlight>,
        disruptions: Disruptions,
        t0: Instant,
    ) -> Self {
        Self {
            fleet,
            world,
            http,
            in_flight,
            disruptions,
            t0,
            records: Mutex::default(),
            crashes: Mutex::default(),
        }
    }

    /// Every fault injected, by start time.
    pub fn records(&self) -> Vec<FaultRecord> {
        let mut records = lock(&self.records).clone();
        records.sort_by_key(|r| r.start);
        records
    }

    /// Every crash found.
    pub fn crashes(&self) -> Vec<Crash> {
        lock(&self.crashes).clone()
    }

    fn now(&self) -> Duration {
        self.t0.elapsed()
    }

    /// Runs a lane: each fault at its time (or as soon as the one before is over).
    pub async fn run_lane(self: Arc<Self>, lane: Vec<Planned>) {
        for planned in lane {
            tokio::time::sleep_until((self.t0 + planned.at).into()).await;
            let record = self.inject(&planned).await;
            eprintln!(
                "[chaos +{:6.1}s] {} {}: {:.1}s–{:.1}s{}{}",
                self.now().as_secs_f64(),
                record.kind,
                record.target,
                record.start.as_secs_f64(),
                record.end.as_secs_f64(),
                if record.recovered {
                    ""
                } else {
                    " NOT RECOVERED"
                },
                if record.note.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", record.note)
                }
            );
            lock(&self.records).push(record);
        }
    }

    async fn inject(&self, planned: &Planned) -> FaultRecord {
        let mut record = FaultRecord {
            kind: planned.kind,
            target: String::new(),
            replica: planned.target,
            planned: planned.at,
            start: self.now(),
            end: Duration::ZERO,
            exit: None,
            drain: Duration::ZERO,
            recovered: true,
            note: String::new(),
        };
        let outcome = match (planned.kind, planned.target) {
            (FaultKind::Kill | FaultKind::Terminate | FaultKind::Stall, Some(target)) => {
                self.on_replica(planned, target, &mut record).await
            }
            (FaultKind::LinkCut(link, mode), Some(target)) => {
                self.cut_link(link, mode, planned.pause, target, &mut record)
                    .await
            }
            (FaultKind::NatsRestart, _) => self.restart(true, planned.pause, &mut record).await,
            (FaultKind::RedisRestart, _) => self.restart(false, planned.pause, &mut record).await,
            (FaultKind::RedisFlush, _) => {
                record.target = "redis".into();
                record.start = self.now();
                self.flush_redis().await
            }
            (FaultKind::StreamPurge | FaultKind::MessagesDeleted, Some(which)) => {
                let origin = if which % 2 == 0 {
                    "students"
                } else {
                    "courses"
                };
                let topology = nis_queue::Topology::new(&self.world.names.prefix);
                // Not a replica fault: `which` only chose the stream.
                record.replica = None;
                record.target = topology.links_stream(origin);
                record.start = self.now();
                self.lose_changes(planned.kind, &record.target)
                    .await
                    .map(|note| record.note = note)
            }
            (FaultKind::PostgresTerminate, _) => {
                record.target = "postgres".into();
                record.start = self.now();
                self.terminate_postgres().await.map(|n| {
                    record.note = format!("{n} connections terminated");
                })
            }
            (kind, None) => Err(crate::error::Error(format!("{kind} without a target"))),
        };
        if let Err(e) = outcome {
            record.recovered = false;
            record.note = e.to_string();
        }
        record.end = self.now();
        record
    }

    async fn on_replica(
        &self,
        planned: &Planned,
        target: usize,
        record: &mut FaultRecord,
    ) -> Result<()> {
        let replica = Arc::clone(&self.fleet.replicas[target]);
        let mut replica = replica.lock().await;
        let address = replica.address.clone();
        record.target.clone_from(&address.name);
        record.start = self.now();
        if address.service == Service::Courses && planned.kind != FaultKind::Stall {
            self.disruptions.note();
        }
        match planned.kind {
            FaultKind::Kill => {
                replica.signal(Signal::SIGKILL)?;
                replica.kill().await;
                tokio::time::sleep(planned.pause).await;
                replica.start("after SIGKILL")?;
            }
            FaultKind::Terminate => {
                // A rollout under load: wait (briefly) for a moment when a request of the load
                // has surely reached the replica and is not answered yet, so the drain check
                // has something to check.
                let give_up = Instant::now() + IN_FLIGHT_WAIT;
                while self
                    .in_flight
                    .oldest(target)
                    .is_none_or(|age| age < RACE_MARGIN)
                    && Instant::now() < give_up
                {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                record.start = self.now();
                replica.signal(Signal::SIGTERM)?;
                record.exit = replica.wait_exit(DRAIN_DEADLINE).await;
                record.drain = self.now().saturating_sub(record.start);
                replica.start("after SIGTERM")?;
            }
            _ => {
                replica.signal(Signal::SIGSTOP)?;
                tokio::time::sleep(planned.pause).await;
                replica.signal(Signal::SIGCONT)?;
                return Ok(());
            }
        }
        wait_ready(&self.http, &address, RECOVERY_DEADLINE).await
    }

    /// Cuts one link of one replica for `pause`, heals it, and waits until the replica is ready
    /// again (a replica cut from its database reports not ready until it reconnects).
    async fn cut_link(
        &self,
        link: Link,
        mode: CutMode,
        pause: Duration,
        target: usize,
        record: &mut FaultRecord,
    ) -> Result<()> {
        // Held while the link is cut, like a replica fault: the replica lane waits instead of
        // restarting this replica meanwhile (a replica started without its database could not
        // become ready). Released at the heal, before waiting for readiness, so that a replica
        // that crashed during the cut is restarted by the crash watch (and reported) rather
        // than waited for in vain.
        let replica = Arc::clone(&self.fleet.replicas[target]);
        let replica = replica.lock().await;
        let address = replica.address.clone();
        let links = &self.fleet.links[target];
        record.target = format!("{} {}", address.name, link.name());
        record.note = format!("{} connections through it before", links.accepted(link));
        record.start = self.now();
        for proxy in links.proxies(link) {
            proxy.cut(mode.cut());
        }
        tokio::time::sleep(pause).await;
        for proxy in links.proxies(link) {
            proxy.heal();
        }
        if link == Link::Database && address.service == Service::Courses {
            // Its MongoDB connections were reset (at once, or now at the heal of a blackhole)
            // with whatever transaction they had open: the server keeps it open like a killed
            // replica's (docs/chaos.md, "Clean-up").
            self.disruptions.note();
        }
        drop(replica);
        wait_ready(&self.http, &address, RECOVERY_DEADLINE).await
    }

    async fn restart(&self, nats: bool, pause: Duration, record: &mut FaultRecord) -> Result<()> {
        let server = if nats {
            &self.world.nats
        } else {
            &self.world.redis
        };
        let mut server = server.lock().await;
        record.target = server.name().to_owned();
        record.start = self.now();
        if !server.stop().await {
            record.note = "did not stop within 10 s; killed".into();
        }
        tokio::time::sleep(pause).await;
        server.start().await
    }

    async fn flush_redis(&self) -> Result<()> {
        let flush = async {
            let client = redis::Client::open(self.world.redis_url.as_str())?;
            let mut connection = client.get_multiplexed_async_connection().await?;
            redis::cmd("FLUSHALL")
                .query_async::<()>(&mut connection)
                .await
        };
        tokio::time::timeout(Duration::from_secs(5), flush)
            .await
            .context("FLUSHALL")?
            .context("FLUSHALL")
    }

    /// Loses link changes from `stream` through the JetStream API, as an operator's purge or a
    /// broker losing acknowledged messages would: all of them, or the newest few.
    async fn lose_changes(&self, kind: FaultKind, stream: &str) -> Result<String> {
        let lose = async {
            let client = async_nats::connect(&self.world.nats_url)
                .await
                .context("connect to NATS")?;
            let mut stream = async_nats::jetstream::new(client)
                .get_stream(stream)
                .await
                .context("the links stream")?;
            if kind == FaultKind::StreamPurge {
                let purged = stream.purge().await.context("purge")?.purged;
                return Ok(format!("{purged} messages purged"));
            }
            let last = stream
                .info()
                .await
                .context("stream info")?
                .state
                .last_sequence;
            let mut deleted = 0;
            for sequence in last.saturating_sub(NEWEST_LOST - 1).max(1)..=last {
                // A message already gone (purged, expired) is not an error here.
                if stream.delete_message(sequence).await.unwrap_or(false) {
                    deleted += 1;
                }
            }
            Ok(format!("{deleted} newest messages deleted"))
        };
        tokio::time::timeout(Duration::from_secs(10), lose)
            .await
            .context("losing changes")?
    }

    /// Terminates every connection to the run's database, from a connection to another one.
    async fn terminate_postgres(&self) -> Result<i64> {
        let mut admin = postgres_admin(&self.world.postgres_url).await?;
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = $1 AND pid <> pg_backend_pid()) AS terminated",
        )
        .bind(&self.world.names.postgres_database)
        .fetch_one(&mut admin)
        .await
        .context("terminate the connections")
    }

    /// Until `stop` turns true, looks every 200 ms for a replica that ended by itself (a fault
    /// in progress holds its replica's lock, so the watch never sees an intended end), records
    /// it as a crash and starts it again.
    pub async fn watch_crashes(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        loop {
            for replica in &self.fleet.replicas {
                let Ok(mut replica) = replica.try_lock() else {
                    continue;
                };
                if let Some(status) = replica.exited() {
                    if replica.address.service == Service::Courses {
                        self.disruptions.note();
                    }
                    let name = replica.address.name.clone();
                    eprintln!(
                        "[chaos +{:6.1}s] {name} CRASHED ({status}); restarting it",
                        self.now().as_secs_f64()
                    );
                    lock(&self.crashes).push(Crash {
                        replica: name,
                        at: self.now(),
                        status: status.to_string(),
                    });
                    let _ = replica.start("after a crash");
                }
            }
            tokio::select! {
                _ = stop.changed() => return,
                () = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
        }
    }
}

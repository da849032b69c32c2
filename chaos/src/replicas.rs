//! The two replicas of each service, child processes of the service binaries on their own
//! ports (kept across restarts), each listing both replicas of the other service as its peer
//! (docs/chaos.md, "What one run does"). Every link of a replica — Redis, NATS, its database,
//! each peer replica — goes through its own fault proxy ([`crate::links`]).

use std::{
    process::ExitStatus,
    sync::Arc,
    time::{Duration, Instant},
};

use nix::sys::signal::Signal;
use tokio::sync::Mutex;

use crate::{
    Config,
    error::{Context as _, Result, fail},
    links::{self, ReplicaLinks, Upstreams},
    procs::{Proc, Spec},
    world::{Disruptions, World},
};

/// Replicas per service.
pub const PER_SERVICE: usize = 2;
/// How often the replicas reconcile the relation (the services' default is 300 s).
pub const RECONCILE_INTERVAL_SECS: &str = "5";

/// One of the two services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Service {
    /// PostgreSQL-backed students.
    Students,
    /// MongoDB-backed courses.
    Courses,
}

impl Service {
    /// Both, in fleet order.
    pub const BOTH: [Self; 2] = [Self::Students, Self::Courses];

    /// Its name, which is also its binary's.
    pub fn name(self) -> &'static str {
        match self {
            Self::Students => "students",
            Self::Courses => "courses",
        }
    }

    /// The other service: the peer of its cross queries and the consumer of its link changes.
    pub fn other(self) -> Self {
        match self {
            Self::Students => Self::Courses,
            Self::Courses => Self::Students,
        }
    }
}

/// Where one replica listens: what the load needs, fixed for the whole run.
#[derive(Debug, Clone)]
pub struct Address {
    /// Its position in the fleet.
    pub index: usize,
    /// Which service.
    pub service: Service,
    /// `students-1`, `courses-2`, … (also its log's name).
    pub name: String,
    /// `http://127.0.0.1:<port>`.
    pub http: String,
    /// `http://127.0.0.1:<port>` of its gRPC server.
    pub grpc: String,
}

/// A replica: how to start it, and its current process.
#[derive(Debug)]
pub struct Replica {
    /// Where it listens.
    pub address: Address,
    spec: Spec,
    proc: Option<Proc>,
    /// How many times it was started.
    pub starts: u32,
}

impl Replica {
    /// Starts a new incarnation (the old one must be gone).
    pub fn start(&mut self, why: &str) -> Result<()> {
        self.starts += 1;
        let banner = format!("{} start #{}: {why}", self.address.name, self.starts);
        self.proc = Some(self.spec.spawn(&banner)?);
        Ok(())
    }

    /// Sends `signal` to the current incarnation.
    pub fn signal(&self, signal: Signal) -> Result<()> {
        match &self.proc {
            Some(proc) => proc.signal(signal),
            None => fail(format!("{} is not running", self.address.name)),
        }
    }

    /// The exit status if the current incarnation has ended by itself.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.proc.as_mut().and_then(Proc::exited)
    }

    /// SIGKILL and reap.
    pub async fn kill(&mut self) {
        if let Some(mut proc) = self.proc.take() {
            proc.kill().await;
        }
    }

    /// Waits up to `deadline` for the current incarnation to end (after a SIGTERM); kills it if
    /// it does not. `None`: it had to be killed.
    pub async fn wait_exit(&mut self, deadline: Duration) -> Option<ExitStatus> {
        let mut proc = self.proc.take()?;
        let status = proc.wait_exit(deadline).await;
        if status.is_none() {
            proc.kill().await;
        }
        status
    }

    /// Stops it gracefully (SIGTERM, SIGKILL after the services' shutdown grace and a margin).
    pub async fn stop(&mut self) -> Option<ExitStatus> {
        match self.proc.take() {
            Some(mut proc) => proc.stop(Signal::SIGTERM, Duration::from_secs(25)).await,
            None => None,
        }
    }
}

/// Every replica of both services.
#[derive(Debug)]
pub struct Fleet {
    /// Where each listens, by fleet index (students first).
    pub addresses: Vec<Address>,
    /// The replicas, each locked by whoever acts on its process (a fault, the crash watch).
    pub replicas: Vec<Arc<Mutex<Replica>>>,
    /// Each replica's links, by fleet index; they live (and forward) as long as the fleet.
    pub links: Vec<ReplicaLinks>,
    disruptions: Disruptions,
}

impl Fleet {
    /// Picks the ports and environments of every replica and starts the proxies of their links;
    /// starts no replica.
    pub async fn new(config: &Config, world: &World, disruptions: Disruptions) -> Result<Self> {
        let mut addresses = Vec::new();
        // The replicas' ports stay bound here until every link proxy has its own: a proxy
        // listens on a port the kernel picks, which could otherwise be one just picked for a
        // replica, and that replica would not start.
        let mut reserved = Vec::new();
        let mut reserve = || -> Result<u16> {
            let listener =
                std::net::TcpListener::bind("127.0.0.1:0").context("find a free port")?;
            let port = listener.local_addr().context("find a free port")?.port();
            reserved.push(listener);
            Ok(port)
        };
        for service in Service::BOTH {
            for n in 1..=PER_SERVICE {
                let (http, grpc) = (reserve()?, reserve()?);
                addresses.push(Address {
                    index: addresses.len(),
                    service,
                    name: format!("{}-{n}", service.name()),
                    http: format!("http://127.0.0.1:{http}"),
                    grpc: format!("http://127.0.0.1:{grpc}"),
                });
            }
        }
        let database_url = world.database_url();
        let mut replicas = Vec::new();
        let mut all_links = Vec::new();
        for address in &addresses {
            let (links, urls) = links::start(&Upstreams {
                redis_url: &world.redis_url,
                nats_url: &world.nats_url,
                database_url: match address.service {
                    Service::Students => &database_url,
                    Service::Courses => &world.mongodb_uri,
                },
                mongodb: address.service == Service::Courses,
                peers: addresses
                    .iter()
                    .filter(|a| a.service == address.service.other())
                    .map(|a| a.grpc.as_str())
                    .collect(),
            })
            .await?;
            all_links.push(links);
            let strip = |url: &str| url.trim_start_matches("http://").to_owned();
            let mut env = vec![
                ("HTTP_ADDR".to_owned(), strip(&address.http)),
                ("GRPC_ADDR".to_owned(), strip(&address.grpc)),
                ("NATS_URL".to_owned(), urls.nats),
                ("REDIS_URL".to_owned(), urls.redis),
                ("NIS_PREFIX".to_owned(), world.names.prefix.clone()),
                ("LOG_FORMAT".to_owned(), "json".to_owned()),
                ("RUST_LOG".to_owned(), "info,nis_queue=debug".to_owned()),
                // Changes the faults lose (links-purge, links-delete) are repaired by the
                // periodic reconciliation, often enough to happen while the run settles.
                (
                    "RECONCILE_INTERVAL_SECS".to_owned(),
                    RECONCILE_INTERVAL_SECS.to_owned(),
                ),
                ("RECONCILE_GRACE_SECS".to_owned(), "2".to_owned()),
            ];
            match address.service {
                Service::Students => env.extend([
                    ("DATABASE_URL".to_owned(), urls.database),
                    ("COURSES_GRPC_URL".to_owned(), urls.peers),
                ]),
                Service::Courses => env.extend([
                    ("MONGODB_URI".to_owned(), urls.database),
                    (
                        "MONGODB_DATABASE".to_owned(),
                        world.names.mongo_database.clone(),
                    ),
                    ("STUDENTS_GRPC_URL".to_owned(), urls.peers),
                ]),
            }
            let spec = Spec {
                name: address.name.clone(),
                program: config.bin_dir.join(address.service.name()),
                args: Vec::new(),
                env,
                log: config.run_dir.join(format!("{}.log", address.name)),
            };
            replicas.push(Arc::new(Mutex::new(Replica {
                address: address.clone(),
                spec,
                proc: None,
                starts: 0,
            })));
        }
        drop(reserved);
        Ok(Self {
            addresses,
            replicas,
            links: all_links,
            disruptions,
        })
    }

    /// The fleet indexes of `service`'s replicas.
    pub fn of(&self, service: Service) -> Vec<usize> {
        self.addresses
            .iter()
            .filter(|a| a.service == service)
            .map(|a| a.index)
            .collect()
    }

    /// Starts every replica and waits until each is ready.
    pub async fn start(&self, http: &reqwest::Client) -> Result<()> {
        for replica in &self.replicas {
            replica.lock().await.start("initial start")?;
        }
        for address in &self.addresses {
            wait_ready(http, address, Duration::from_secs(60)).await?;
        }
        Ok(())
    }

    /// Stops every replica gracefully, all at once.
    pub async fn stop(&self) {
        let stops = self.replicas.iter().map(|replica| async move {
            let mut replica = replica.lock().await;
            if replica.stop().await.is_none() && replica.address.service == Service::Courses {
                self.disruptions.note();
            }
        });
        futures::future::join_all(stops).await;
    }
}

/// Whether `/readyz` answers 200 within a second.
pub async fn is_ready(http: &reqwest::Client, address: &Address) -> bool {
    let request = http
        .get(format!("{}/readyz", address.http))
        .timeout(Duration::from_secs(1))
        .send();
    matches!(request.await, Ok(response) if response.status() == 200)
}

/// Polls `/readyz` every 100 ms until it is 200, for at most `deadline`.
pub async fn wait_ready(
    http: &reqwest::Client,
    address: &Address,
    deadline: Duration,
) -> Result<()> {
    let give_up = Instant::now() + deadline;
    loop {
        if is_ready(http, address).await {
            return Ok(());
        }
        if Instant::now() >= give_up {
            return fail(format!(
                "{} not ready within {deadline:?} (see its log)",
                address.name
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The name of the replica at fleet index `index` (students first): `students-1`, …
pub fn name_of(index: usize) -> String {
    let service = Service::BOTH[(index / PER_SERVICE) % Service::BOTH.len()];
    format!("{}-{}", service.name(), index % PER_SERVICE + 1)
}

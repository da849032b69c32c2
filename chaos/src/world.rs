//! The private world of one run (docs/chaos.md, "What one run does"): its own NATS (JetStream
//! on disk, so streams survive a restart) and Redis on free loopback ports, a fresh PostgreSQL
//! database and MongoDB database, a unique `NIS_PREFIX`, and the streams made by the
//! `initializer` binary. Nothing here touches the shared servers' other databases or keys.

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use nix::sys::signal::Signal;
use sqlx::{Connection as _, Executor as _, PgConnection};
use tokio::sync::Mutex;

use crate::{
    Config,
    error::{Context as _, Result, fail},
    procs::{Proc, Spec},
};

/// The names one run gives to what it creates, unique so runs can share PostgreSQL and MongoDB.
#[derive(Debug, Clone)]
pub struct Names {
    /// `NIS_PREFIX`: streams, subjects and Redis keys.
    pub prefix: String,
    /// The students' PostgreSQL database.
    pub postgres_database: String,
    /// The courses' MongoDB database.
    pub mongo_database: String,
}

impl Names {
    /// Fresh names, `chaos_<32 hex>`.
    pub fn new() -> Self {
        let unique = format!("chaos_{}", uuid::Uuid::new_v4().simple());
        Self {
            prefix: unique.clone(),
            postgres_database: unique.clone(),
            mongo_database: unique,
        }
    }
}

impl Default for Names {
    fn default() -> Self {
        Self::new()
    }
}

/// A free TCP port on loopback (another process could take it before we bind it, which would
/// only make the start fail loudly).
pub fn free_port() -> Result<u16> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .context("find a free port")
}

/// Polls every 50 ms until something accepts connections on `port`, for at most `deadline`;
/// fails at once if `proc` exits.
pub async fn wait_listening(port: u16, proc: &mut Proc, deadline: Duration) -> Result<()> {
    let give_up = Instant::now() + deadline;
    loop {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(());
        }
        if let Some(status) = proc.exited() {
            return fail(format!("exited ({status}) before listening on {port}"));
        }
        if Instant::now() >= give_up {
            return fail(format!("nothing listens on {port} after {deadline:?}"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A server the run owns (NATS or Redis): stopped and started again on the same port.
#[derive(Debug)]
pub struct Server {
    spec: Spec,
    /// Where it listens.
    pub port: u16,
    proc: Option<Proc>,
}

impl Server {
    fn new(spec: Spec, port: u16) -> Self {
        Self {
            spec,
            port,
            proc: None,
        }
    }

    /// Its name (`nats`, `redis`).
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// Starts it and waits until it accepts connections.
    pub async fn start(&mut self) -> Result<()> {
        let mut proc = self.spec.spawn(&format!("starting {}", self.spec.name))?;
        let listening = wait_listening(self.port, &mut proc, Duration::from_secs(30)).await;
        self.proc = Some(proc);
        listening.context(format!("{} on port {}", self.spec.name, self.port))
    }

    /// Stops it with SIGTERM (SIGKILL after 10 s); true if it exited by itself.
    pub async fn stop(&mut self) -> bool {
        match self.proc.take() {
            Some(mut proc) => proc
                .stop(Signal::SIGTERM, Duration::from_secs(10))
                .await
                .is_some(),
            None => true,
        }
    }
}

/// What one run runs on.
#[derive(Debug)]
pub struct World {
    /// The run's names.
    pub names: Names,
    /// The private NATS server.
    pub nats: Mutex<Server>,
    /// The private Redis server.
    pub redis: Mutex<Server>,
    /// `nats://127.0.0.1:<port>`.
    pub nats_url: String,
    /// `redis://127.0.0.1:<port>`.
    pub redis_url: String,
    /// The PostgreSQL server, no database in the path.
    pub postgres_url: String,
    /// The MongoDB server.
    pub mongodb_uri: String,
    /// Where logs and the JetStream store go.
    pub run_dir: PathBuf,
}

impl World {
    /// Starts NATS and Redis, makes the PostgreSQL database and runs the initializer. The
    /// databases are dropped by [`drop_databases`], which the caller runs on every exit path.
    pub async fn start(config: &Config, names: Names) -> Result<Self> {
        prepare_run_dir(&config.run_dir)?;
        let (nats_port, redis_port) = (free_port()?, free_port()?);
        let store = config.run_dir.join("nats");
        let nats = Spec {
            name: "nats".into(),
            program: config.nats_server.clone().into(),
            args: [
                "-a",
                "127.0.0.1",
                "-p",
                &nats_port.to_string(),
                "-js",
                "-sd",
                &store.to_string_lossy(),
            ]
            .map(str::to_owned)
            .to_vec(),
            env: Vec::new(),
            log: config.run_dir.join("nats.log"),
        };
        let redis = Spec {
            name: "redis".into(),
            program: "redis-server".into(),
            args: [
                "--bind",
                "127.0.0.1",
                "--port",
                &redis_port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                &config.run_dir.to_string_lossy(),
            ]
            .map(str::to_owned)
            .to_vec(),
            env: Vec::new(),
            log: config.run_dir.join("redis.log"),
        };
        let world = Self {
            nats_url: format!("nats://127.0.0.1:{nats_port}"),
            redis_url: format!("redis://127.0.0.1:{redis_port}"),
            nats: Mutex::new(Server::new(nats, nats_port)),
            redis: Mutex::new(Server::new(redis, redis_port)),
            postgres_url: config.postgres_url.clone(),
            mongodb_uri: config.mongodb_uri.clone(),
            run_dir: config.run_dir.clone(),
            names,
        };
        world.nats.lock().await.start().await?;
        world.redis.lock().await.start().await?;
        let mut admin = postgres_admin(&world.postgres_url).await?;
        admin
            .execute(format!(r#"CREATE DATABASE "{}""#, world.names.postgres_database).as_str())
            .await
            .context("create the PostgreSQL database")?;
        world.initialize(&config.bin_dir).await?;
        Ok(world)
    }

    /// `DATABASE_URL` of the students replicas.
    pub fn database_url(&self) -> String {
        format!("{}/{}", self.postgres_url, self.names.postgres_database)
    }

    /// Runs the `initializer` binary, which creates the streams and consumers of the prefix.
    async fn initialize(&self, bin_dir: &Path) -> Result<()> {
        let spec = Spec {
            name: "initializer".into(),
            program: bin_dir.join("initializer"),
            args: Vec::new(),
            env: vec![
                ("NATS_URL".into(), self.nats_url.clone()),
                ("NIS_PREFIX".into(), self.names.prefix.clone()),
                ("INIT_TIMEOUT_SECS".into(), "30".into()),
            ],
            log: self.run_dir.join("initializer.log"),
        };
        let mut proc = spec.spawn("creating the streams")?;
        match proc.wait_exit(Duration::from_secs(60)).await {
            Some(status) if status.success() => Ok(()),
            Some(status) => fail(format!(
                "the initializer failed ({status}); see {}",
                spec.log.display()
            )),
            None => fail("the initializer did not finish within 60 s"),
        }
    }

    /// Stops NATS and Redis and removes the JetStream store (the logs stay).
    pub async fn stop(&self) {
        self.nats.lock().await.stop().await;
        self.redis.lock().await.stop().await;
        let _ = std::fs::remove_dir_all(self.run_dir.join("nats"));
    }
}

/// Creates the run directory, removing what an earlier run with the same directory left (its
/// logs and JetStream store), so the logs read at the end are this run's only.
fn prepare_run_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).context(format!("create {}", dir.display()))?;
    for entry in std::fs::read_dir(dir).context(format!("read {}", dir.display()))? {
        let path = entry.context("read the run directory")?.path();
        if path.file_name().is_some_and(|n| n == "nats") {
            std::fs::remove_dir_all(&path).context(format!("remove {}", path.display()))?;
        } else if path.extension().is_some_and(|e| e == "log") {
            std::fs::remove_file(&path).context(format!("remove {}", path.display()))?;
        }
    }
    Ok(())
}

/// A connection to the `postgres` database of the server, for administration. Kept out of the
/// chaos database so that terminating its connections (a fault) spares this one.
pub async fn postgres_admin(postgres_url: &str) -> Result<PgConnection> {
    PgConnection::connect(&format!("{postgres_url}/postgres"))
        .await
        .context(format!("connect to PostgreSQL at {postgres_url}"))
}

/// A MongoDB transaction whose client is gone stays open until the server's transaction
/// lifetime (`transactionLifetimeLimitSeconds`, 60 s) has passed, and is only then aborted; a
/// margin on top.
pub const TRANSACTION_LIFETIME: Duration = Duration::from_secs(65);

/// When a courses replica last ended in the middle of its work (SIGKILL, SIGTERM under load, a
/// crash, a forced stop): it may have left a MongoDB transaction open (docs/chaos.md,
/// "Clean-up").
#[derive(Debug, Clone, Default)]
pub struct Disruptions(std::sync::Arc<std::sync::Mutex<Option<Instant>>>);

impl Disruptions {
    /// A courses replica ends now.
    pub fn note(&self) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Instant::now());
    }

    /// When one last did.
    pub fn last(&self) -> Option<Instant> {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Drops the run's PostgreSQL and MongoDB databases (best effort, each bounded in time: called
/// on every exit path, also when they were never made).
///
/// A transaction left open by a courses replica that died mid-write holds its documents until
/// the server aborts it, and SecantusDB (the test server) aborts it only when a transaction
/// statement arrives after its lifetime, while its `dropDatabase` retries a conflicting delete
/// forever holding the storage lock — which would stall every other client of a shared server.
/// So the drop waits out the lifetime after the last such end, runs one statement in a
/// transaction (which lets the server abort what expired), and only then drops.
pub async fn drop_databases(
    postgres_url: &str,
    mongodb_uri: &str,
    names: &Names,
    disruptions: &Disruptions,
) {
    let postgres = async {
        let mut admin = postgres_admin(postgres_url).await?;
        admin
            .execute(
                format!(
                    r#"DROP DATABASE IF EXISTS "{}" WITH (FORCE)"#,
                    names.postgres_database
                )
                .as_str(),
            )
            .await
            .context("drop the PostgreSQL database")?;
        Ok::<_, crate::Error>(())
    };
    if !matches!(
        tokio::time::timeout(Duration::from_secs(30), postgres).await,
        Ok(Ok(()))
    ) {
        eprintln!(
            "chaos: could not drop PostgreSQL database {}",
            names.postgres_database
        );
    }
    if let Some(wait) = disruptions
        .last()
        .map(|at| (at + TRANSACTION_LIFETIME).saturating_duration_since(Instant::now()))
        .filter(|wait| !wait.is_zero())
    {
        eprintln!(
            "chaos: waiting {:.0}s for MongoDB to abort what a stopped courses replica may have left open (docs/chaos.md, \"Clean-up\")",
            wait.as_secs_f64()
        );
        // The server's lifetime runs on its clock; nothing shows when it is over.
        tokio::time::sleep(wait).await;
    }
    let mongo = async {
        let client = mongodb::Client::with_uri_str(mongodb_uri).await?;
        let database = client.database(&names.mongo_database);
        let mut session = client.start_session().await?;
        session.start_transaction().await?;
        let _ = database
            .collection::<mongodb::bson::Document>("outbox")
            .find_one(mongodb::bson::doc! {})
            .session(&mut session)
            .await;
        let _ = session.abort_transaction().await;
        database.drop().await
    };
    if !matches!(
        tokio::time::timeout(Duration::from_secs(30), mongo).await,
        Ok(Ok(()))
    ) {
        eprintln!(
            "chaos: could not drop MongoDB database {} within 30 s",
            names.mongo_database
        );
    }
}

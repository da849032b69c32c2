//! The Redis adapter's fence, settle and claim scripts against a real Redis
//! (`NIS_TEST_REDIS_URL`, keys under a prefix of the test's own, removed at the end), and a
//! failover between two private `redis-server`s, the replica reaching its primary through a
//! fault proxy (docs/behaviour.md §6).

use std::{
    net::SocketAddr,
    process::Stdio,
    sync::{Arc, Mutex},
    time::Duration,
};

use fault_proxy::{Cut, Proxy};
use nis_cache::RedisCache;
use nis_core::{
    Core, EntityService, Error,
    cache::{Cache, CacheError, Fence, Lookup},
    decorators::{Cached, Fenced},
    fakes::{
        MemoryStore,
        entities::{Key, MemberDraft, Pupil},
    },
    service::{Context, Transport},
};
use nis_runtime::{config::CacheSettings, secret::Secret};
use tokio::process::{Child, Command};

fn shared_redis() -> String {
    std::env::var("NIS_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

fn unique_prefix() -> String {
    format!("cachetest{}", uuid::Uuid::new_v4().simple())
}

fn cache(url: &str, prefix: &str, fence_replicas: u32) -> RedisCache {
    let settings = CacheSettings {
        url: Secret::new(url),
        ttl: Duration::from_secs(300),
        timeout: Duration::from_millis(500),
        fence_timeout: Duration::from_millis(500),
        fence_replicas,
    };
    RedisCache::new(&settings, prefix, "students").expect("cache")
}

async fn connect(url: &str) -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(url).expect("url");
    client
        .get_multiplexed_async_connection()
        .await
        .expect("connect")
}

/// Removes every key under `prefix`.
async fn clean(url: &str, prefix: &str) {
    let mut connection = connect(url).await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(&mut connection)
        .await
        .expect("keys");
    for key in keys {
        let _: () = redis::cmd("DEL")
            .arg(key)
            .query_async(&mut connection)
            .await
            .expect("del");
    }
}

fn settled(lookup: &Lookup) -> u64 {
    lookup.generation.expect("a settled generation")
}

#[tokio::test]
async fn a_fence_holds_its_scope_pending_until_every_fence_there_is_settled() {
    let (url, prefix) = (shared_redis(), unique_prefix());
    let cache = cache(&url, &prefix, 0);
    let scope = "id:1".to_owned();

    let first = cache.lookup(&scope, "").await.expect("lookup");
    let g0 = settled(&first);
    assert_eq!(first.value, None);
    cache
        .fill(&scope, g0, "", b"old".to_vec())
        .await
        .expect("fill");
    let hit = cache.lookup(&scope, "").await.expect("lookup");
    assert_eq!(
        (hit.generation, hit.value),
        (Some(g0), Some(b"old".to_vec()))
    );

    let one = cache
        .fence(std::slice::from_ref(&scope))
        .await
        .expect("fence");
    let two = cache
        .fence(std::slice::from_ref(&scope))
        .await
        .expect("fence");
    let pending = Lookup {
        generation: None,
        value: None,
    };
    assert_eq!(cache.lookup(&scope, "").await.expect("lookup"), pending);
    cache.settle(&one).await.expect("settle");
    assert_eq!(
        cache.lookup(&scope, "").await.expect("lookup"),
        pending,
        "another write still holds a fence"
    );
    cache.settle(&two).await.expect("settle");
    let after = cache.lookup(&scope, "").await.expect("lookup");
    assert_ne!(
        settled(&after),
        g0,
        "a settled scope has a fresh generation"
    );
    assert_eq!(after.value, None, "the entry of the old generation is gone");
    clean(&url, &prefix).await;
}

#[tokio::test]
async fn a_missing_generation_is_a_fresh_one_unless_a_fence_is_open() {
    let (url, prefix) = (shared_redis(), unique_prefix());
    let cache = cache(&url, &prefix, 0);
    let scope = "list".to_owned();
    let g0 = settled(&cache.lookup(&scope, "k").await.expect("lookup"));
    cache
        .fill(&scope, g0, "k", b"old".to_vec())
        .await
        .expect("fill");
    let mut redis = connect(&url).await;
    let gen_key = format!("{prefix}:students:{scope}:gen");
    let _: () = redis::cmd("DEL")
        .arg(&gen_key)
        .query_async(&mut redis)
        .await
        .expect("evict");
    let fresh = cache.lookup(&scope, "k").await.expect("lookup");
    assert_ne!(settled(&fresh), g0);
    assert_eq!(
        fresh.value, None,
        "an evicted generation never brings an entry back"
    );

    let fence = cache
        .fence(std::slice::from_ref(&scope))
        .await
        .expect("fence");
    let _: () = redis::cmd("DEL")
        .arg(&gen_key)
        .query_async(&mut redis)
        .await
        .expect("evict");
    assert_eq!(
        cache.lookup(&scope, "k").await.expect("lookup").generation,
        None,
        "a scope whose generation was evicted under an open fence stays pending"
    );
    cache.settle(&fence).await.expect("settle");
    assert!(
        cache
            .lookup(&scope, "k")
            .await
            .expect("lookup")
            .generation
            .is_some()
    );
    clean(&url, &prefix).await;
}

/// A `redis-server` of the test's own on a free port, killed on drop.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    async fn start(replica_of: Option<SocketAddr>) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let mut command = Command::new("redis-server");
        command.args(["--bind", "127.0.0.1", "--port", &port.to_string()]);
        command.args(["--save", "", "--appendonly", "no", "--protected-mode", "no"]);
        // A full sync writes a file: in the temp directory, not the source tree.
        command.current_dir(std::env::temp_dir());
        if let Some(primary) = replica_of {
            command.args(["--replicaof", "127.0.0.1", &primary.port().to_string()]);
        }
        let child = command
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server on PATH");
        let server = Self {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        };
        server.wait_until(|info| info.contains("role:")).await;
        server
    }

    fn url(&self) -> String {
        format!("redis://{}", self.addr)
    }

    async fn info(&self) -> Option<String> {
        let client = redis::Client::open(self.url()).ok()?;
        let mut connection = client.get_multiplexed_async_connection().await.ok()?;
        redis::cmd("INFO")
            .arg("replication")
            .query_async(&mut connection)
            .await
            .ok()
    }

    async fn wait_until(&self, ready: impl Fn(&str) -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            if self.info().await.is_some_and(|info| ready(&info)) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "redis at {} not ready",
                self.addr
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// When the replica's link to its primary is cut during a write.
#[derive(Clone, Copy, PartialEq)]
enum CutLink {
    BeforeFence,
    AfterFence,
}

/// The primary's cache, cutting the replication link at one point of a write.
#[derive(Clone)]
struct CuttingReplication {
    cache: RedisCache,
    link: Arc<Proxy>,
    when: Arc<Mutex<Option<CutLink>>>,
}

impl CuttingReplication {
    fn cut_at(&self, at: CutLink) {
        if *self.when.lock().expect("lock") == Some(at) {
            self.link.cut(Cut::Blackhole);
        }
    }
}

impl Cache for CuttingReplication {
    async fn lookup(&self, scope: &str, key: &str) -> Result<Lookup, CacheError> {
        self.cache.lookup(scope, key).await
    }
    async fn fill(&self, scope: &str, g: u64, key: &str, value: Vec<u8>) -> Result<(), CacheError> {
        self.cache.fill(scope, g, key, value).await
    }
    async fn fence(&self, scopes: &[String]) -> Result<Fence, CacheError> {
        self.cut_at(CutLink::BeforeFence);
        let fence = self.cache.fence(scopes).await?;
        self.cut_at(CutLink::AfterFence);
        Ok(fence)
    }
    async fn settle(&self, fence: &Fence) -> Result<(), CacheError> {
        self.cache.settle(fence).await
    }
    async fn ping(&self) -> Result<(), CacheError> {
        self.cache.ping().await
    }
}

fn ctx() -> Context {
    Context::new(Transport::Http, "failover")
}

fn named(name: &str) -> MemberDraft {
    MemberDraft {
        name: name.into(),
        links: vec![],
    }
}

/// What a read through the promoted replica returns after a write of "b" over "a", the
/// replication link cut at `cut`, the old primary killed and its replica promoted; or the
/// write's error.
async fn read_after_failover(fence_replicas: u32, cut: CutLink) -> Result<String, Error> {
    let prefix = unique_prefix();
    let mut primary = Server::start(None).await;
    let link = Arc::new(Proxy::start(primary.addr).await.expect("proxy"));
    let replica = Server::start(Some(link.addr())).await;
    replica
        .wait_until(|i| i.contains("master_link_status:up"))
        .await;

    let store = MemoryStore::<Pupil>::new(|n| Key(format!("s{n}")));
    let on_primary = CuttingReplication {
        cache: cache(&primary.url(), &prefix, fence_replicas),
        link: link.clone(),
        when: Arc::default(),
    };
    let fenced = Fenced::new(store.clone(), on_primary.clone());
    let service = Cached::new(Core::new(fenced, "t.links.students"), on_primary.clone());
    let id = service
        .create(&ctx(), named("a"))
        .await
        .expect("created")
        .value
        .id;
    assert_eq!(service.get(&ctx(), &id).await.expect("read").name, "a");
    // The cached entry reached the replica.
    let mut connection = connect(&primary.url()).await;
    let synced: u32 = redis::cmd("WAIT")
        .arg(1)
        .arg(5_000)
        .query_async(&mut connection)
        .await
        .expect("wait");
    assert_eq!(synced, 1);

    *on_primary.when.lock().expect("lock") = Some(cut);
    let written = service.update(&ctx(), &id, named("b")).await;
    primary.child.kill().await.expect("kill the primary");
    let mut promote = connect(&replica.url()).await;
    let _: () = redis::cmd("REPLICAOF")
        .arg("NO")
        .arg("ONE")
        .query_async(&mut promote)
        .await
        .expect("promote");

    let on_replica = cache(&replica.url(), &prefix, 0);
    let fenced = Fenced::new(store.clone(), on_replica.clone());
    let promoted = Cached::new(Core::new(fenced, "t.links.students"), on_replica);
    let read = promoted.get(&ctx(), &id).await.expect("read").name;
    written.map(|_| read)
}

#[tokio::test]
async fn a_fence_that_every_replica_holds_survives_a_failover() {
    assert_eq!(
        read_after_failover(1, CutLink::AfterFence)
            .await
            .expect("acknowledged"),
        "b",
        "the promoted replica served what the acknowledged write replaced"
    );
}

#[tokio::test]
async fn a_write_whose_fence_no_replica_acknowledged_is_refused() {
    let refused = read_after_failover(1, CutLink::BeforeFence).await;
    assert!(
        matches!(refused, Err(Error::Unavailable { .. })),
        "{refused:?}"
    );
}

/// The hazard the replica count guards against, shown: without it, an acknowledged write's
/// fence lost in the failover leaves the old entry current on the promoted replica.
#[tokio::test]
async fn without_waiting_for_replicas_a_failover_can_bring_back_the_old_value() {
    assert_eq!(
        read_after_failover(0, CutLink::BeforeFence)
            .await
            .expect("acknowledged"),
        "a"
    );
}

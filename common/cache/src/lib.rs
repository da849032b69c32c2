//! The Redis adapter of the core's cache port (`nis_core::cache`; docs/behaviour.md §6).
//!
//! Every call has a short deadline; after a failure, lookups skip Redis for a moment so that a
//! dead or slow Redis costs reads almost nothing (they go to the database). Fences are always
//! tried: a write that cannot fence is refused.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use redis::{AsyncCommands as _, Client, aio::ConnectionManager, aio::ConnectionManagerConfig};

use nis_core::cache::{Cache, CacheError, Fence, Lookup};
use nis_runtime::config::CacheSettings;
use tracing::Instrument as _;

/// How long a scope's settled generation outlives its last change. Much longer than any
/// entry's TTL; when it expires, the scope starts again under a fresh generation.
const GENERATION_TTL_SECS: u64 = 24 * 3600;

/// How long a fence's pending marks last. A write gives up its commit a second before
/// (`nis_core::decorators::Fenced`), and its store's own deadline (`REQUEST_TIMEOUT_MS`, 5 s by
/// default) is far shorter; a scope whose settle failed is read from the database this long.
const FENCE_TTL: Duration = Duration::from_secs(15);

/// How long lookups skip Redis after it failed.
const BACKOFF: Duration = Duration::from_secs(1);

/// The bytes before an entry's value: the generation it was stored under (u64, big-endian).
const STAMP: usize = 8;

/// The value of a generation key: a settled generation in decimal, or `p` and the token of the
/// fence that made it pending (readers neither serve nor fill under it).
const PENDING: char = 'p';

/// The Lua scripts of the protocol. Each scope has two keys: `gen` (a string, see [`PENDING`])
/// and `fences` (a sorted set of the open fences' tokens, scored by when they expire). Times
/// are the server's (`TIME`), so replicas with skewed clocks agree. KEYS come in pairs: the
/// `gen` and `fences` keys of each scope.
mod scripts {
    /// The server's time in milliseconds, as `now`.
    const NOW: &str = "local t = redis.call('TIME')\n\
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n";

    /// ARGV: token, fence TTL (ms). Adds the fence to each scope's open fences and makes the
    /// scope pending until the last of them expires.
    pub(super) fn fence() -> redis::Script {
        redis::Script::new(&format!(
            "{NOW}local deadline = now + tonumber(ARGV[2])\n\
             for i = 1, #KEYS, 2 do\n\
               redis.call('ZREMRANGEBYSCORE', KEYS[i + 1], '-inf', now)\n\
               redis.call('ZADD', KEYS[i + 1], deadline, ARGV[1])\n\
               local last = tonumber(redis.call('ZRANGE', KEYS[i + 1], -1, -1, 'WITHSCORES')[2])\n\
               redis.call('PEXPIREAT', KEYS[i + 1], last)\n\
               redis.call('SET', KEYS[i], 'p' .. ARGV[1], 'PXAT', last)\n\
             end\n\
             return 1"
        ))
    }

    /// ARGV: token, a fresh generation, its TTL (s). Removes the fence; a scope no other open
    /// fence holds is settled under the fresh generation, the others stay pending.
    pub(super) fn settle() -> redis::Script {
        redis::Script::new(&format!(
            "{NOW}for i = 1, #KEYS, 2 do\n\
               redis.call('ZREM', KEYS[i + 1], ARGV[1])\n\
               redis.call('ZREMRANGEBYSCORE', KEYS[i + 1], '-inf', now)\n\
               local last = redis.call('ZRANGE', KEYS[i + 1], -1, -1, 'WITHSCORES')\n\
               if #last == 0 then\n\
                 redis.call('SET', KEYS[i], ARGV[2], 'EX', ARGV[3])\n\
               else\n\
                 redis.call('SET', KEYS[i], 'p' .. ARGV[1], 'PXAT', tonumber(last[2]))\n\
               end\n\
             end\n\
             return 1"
        ))
    }

    /// ARGV: a fresh generation, its TTL (s). The scope's generation; a missing one (expired,
    /// evicted, or never set) becomes the fresh one, unless a fence is still open there.
    pub(super) fn claim() -> redis::Script {
        redis::Script::new(&format!(
            "local g = redis.call('GET', KEYS[1])\n\
             if g then return g end\n\
             {NOW}if redis.call('ZCOUNT', KEYS[2], '(' .. now, '+inf') > 0 then return 'p' end\n\
             redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])\n\
             return ARGV[1]"
        ))
    }
}

/// A generation as read from its key.
enum Generation {
    Settled(u64),
    Pending,
}

impl Generation {
    fn parse(raw: &str, scope: &str) -> Result<Self, CacheError> {
        if raw.starts_with(PENDING) {
            return Ok(Self::Pending);
        }
        raw.parse()
            .map(Self::Settled)
            .map_err(|_| CacheError(format!("corrupt generation {raw:?} in scope {scope}")))
    }
}

/// A value never used before as a generation or a token (64 random bits).
fn fresh() -> u64 {
    uuid::Uuid::new_v4().as_u64_pair().0
}

/// A cache in Redis, its keys under `{prefix}:{namespace}:`.
#[derive(Clone)]
pub struct RedisCache {
    connection: ConnectionManager,
    namespace: Arc<str>,
    ttl_secs: u64,
    timeout: Duration,
    /// The deadline of a write's fence and settle: a write can wait longer than a read, which
    /// has the database to fall back on.
    fence_timeout: Duration,
    fence_replicas: u32,
    scripts: Arc<Scripts>,
    started: Instant,
    /// Milliseconds since `started` before which lookups skip Redis.
    skip_until_ms: Arc<AtomicU64>,
}

/// The scripts, hashed once.
struct Scripts {
    fence: redis::Script,
    settle: redis::Script,
    claim: redis::Script,
}

impl std::fmt::Debug for RedisCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCache")
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

impl RedisCache {
    /// A cache for one service. Connects lazily, so a service starts while Redis is down.
    /// Must be called within a Tokio runtime.
    pub fn new(settings: &CacheSettings, prefix: &str, service: &str) -> Result<Self, CacheError> {
        let client = Client::open(settings.url.expose())
            .map_err(|e| CacheError(format!("invalid REDIS_URL: {e}")))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(settings.timeout))
            .set_response_timeout(Some(settings.timeout.max(settings.fence_timeout)))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let connection = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| CacheError(e.to_string()))?;
        Ok(Self {
            connection,
            namespace: format!("{prefix}:{service}").into(),
            ttl_secs: settings.ttl.as_secs().max(1),
            timeout: settings.timeout,
            fence_timeout: settings.fence_timeout,
            fence_replicas: settings.fence_replicas,
            scripts: Arc::new(Scripts {
                fence: scripts::fence(),
                settle: scripts::settle(),
                claim: scripts::claim(),
            }),
            started: Instant::now(),
            skip_until_ms: Arc::new(AtomicU64::new(0)),
        })
    }

    fn generation_key(&self, scope: &str) -> String {
        format!("{}:{scope}:gen", self.namespace)
    }

    fn fences_key(&self, scope: &str) -> String {
        format!("{}:{scope}:fences", self.namespace)
    }

    fn value_key(&self, scope: &str, key: &str) -> String {
        format!("{}:{scope}:v:{key}", self.namespace)
    }

    /// A script invocation over the `gen` and `fences` keys of each of `scopes`.
    fn over_scopes<'a>(
        &self,
        script: &'a redis::Script,
        scopes: &[String],
    ) -> redis::ScriptInvocation<'a> {
        let mut invocation = script.prepare_invoke();
        for scope in scopes {
            invocation
                .key(self.generation_key(scope))
                .key(self.fences_key(scope));
        }
        invocation
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn skipping(&self) -> bool {
        self.now_ms() < self.skip_until_ms.load(Ordering::Relaxed)
    }

    /// Runs one Redis call (`command`, for its span in a traced request) under `deadline`; a
    /// failure opens the short back-off.
    async fn call<T>(
        &self,
        (what, command): (&str, &'static str),
        deadline: Duration,
        call: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, CacheError> {
        let span = nis_core::trace::database("redis", command, None);
        let outcome = match tokio::time::timeout(deadline, call).instrument(span).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(e)) => format!("{what}: {e}"),
            Err(_) => format!("{what}: no answer within {deadline:?}"),
        };
        self.skip_until_ms.store(
            self.now_ms() + BACKOFF.as_millis() as u64,
            Ordering::Relaxed,
        );
        Err(CacheError(outcome))
    }

    /// The generation of `scope` when its key was missing: claimed fresh, unless a fence is
    /// still open there (one more round trip, only after an expiry or an eviction).
    async fn claim(&self, scope: &str) -> Result<Generation, CacheError> {
        let mut connection = self.connection.clone();
        let mut invocation = self.scripts.claim.prepare_invoke();
        invocation
            .key(self.generation_key(scope))
            .key(self.fences_key(scope))
            .arg(fresh())
            .arg(GENERATION_TTL_SECS);
        let raw: String = self
            .call(
                ("claim", "EVALSHA"),
                self.timeout,
                invocation.invoke_async(&mut connection),
            )
            .await?;
        Generation::parse(&raw, scope)
    }
}

impl Cache for RedisCache {
    async fn lookup(&self, scope: &str, key: &str) -> Result<Lookup, CacheError> {
        if self.skipping() {
            return Err(CacheError("skipped after a recent failure".into()));
        }
        // One plain MGET (no script): the generation, and the entry stamped with the generation
        // it was stored under, which must be the current one.
        let mut connection = self.connection.clone();
        let keys = [self.generation_key(scope), self.value_key(scope, key)];
        let (generation, entry): (Option<String>, Option<Vec<u8>>) = self
            .call(("lookup", "MGET"), self.timeout, connection.mget(&keys))
            .await?;
        let generation = match generation {
            Some(raw) => Generation::parse(&raw, scope)?,
            // Boxed: held inline, the rare claim would enlarge every lookup's future, which is
            // moved on each cached read.
            None => Box::pin(self.claim(scope)).await?,
        };
        let Generation::Settled(generation) = generation else {
            return Ok(Lookup {
                generation: None,
                value: None,
            });
        };
        let value = entry.and_then(|mut entry| {
            let stamp = entry.first_chunk::<STAMP>().copied()?;
            (u64::from_be_bytes(stamp) == generation).then(|| entry.split_off(STAMP))
        });
        Ok(Lookup {
            generation: Some(generation),
            value,
        })
    }

    async fn fill(
        &self,
        scope: &str,
        generation: u64,
        key: &str,
        value: Vec<u8>,
    ) -> Result<(), CacheError> {
        if self.skipping() {
            return Ok(());
        }
        let mut connection = self.connection.clone();
        let mut entry = Vec::with_capacity(STAMP + value.len());
        entry.extend_from_slice(&generation.to_be_bytes());
        entry.extend_from_slice(&value);
        let key = self.value_key(scope, key);
        self.call(
            ("fill", "SETEX"),
            self.timeout,
            connection.set_ex::<_, _, ()>(key, entry, self.ttl_secs),
        )
        .await
    }

    /// Always tried, even while lookups skip Redis: a write must know.
    async fn fence(&self, scopes: &[String]) -> Result<Fence, CacheError> {
        let token = fresh();
        // Taken before the call: the server's deadline is later, never earlier.
        let expires = tokio::time::Instant::now() + FENCE_TTL;
        let mut connection = self.connection.clone();
        let mut invocation = self.over_scopes(&self.scripts.fence, scopes);
        invocation.arg(token).arg(FENCE_TTL.as_millis() as u64);
        self.call(
            ("fence", "EVALSHA"),
            self.fence_timeout,
            invocation.invoke_async::<()>(&mut connection),
        )
        .await?;
        if self.fence_replicas > 0 {
            // The fence must survive a failover: every replica that could be promoted holds it.
            let acked: u32 = self
                .call(
                    ("fence", "WAIT"),
                    self.fence_timeout,
                    // Half the deadline on the server, so its answer comes within the whole.
                    redis::cmd("WAIT")
                        .arg(self.fence_replicas)
                        .arg((self.fence_timeout.as_millis() as u64 / 2).max(1))
                        .query_async(&mut connection),
                )
                .await?;
            if acked < self.fence_replicas {
                return Err(CacheError(format!(
                    "fence: {acked} of {} replicas acknowledged it",
                    self.fence_replicas
                )));
            }
        }
        Ok(Fence {
            token,
            scopes: scopes.to_vec(),
            expires,
        })
    }

    async fn settle(&self, fence: &Fence) -> Result<(), CacheError> {
        let mut connection = self.connection.clone();
        let mut invocation = self.over_scopes(&self.scripts.settle, &fence.scopes);
        invocation
            .arg(fence.token)
            .arg(fresh())
            .arg(GENERATION_TTL_SECS);
        self.call(
            ("settle", "EVALSHA"),
            self.fence_timeout,
            invocation.invoke_async::<()>(&mut connection),
        )
        .await
    }

    async fn ping(&self) -> Result<(), CacheError> {
        let mut connection = self.connection.clone();
        let answer: String = self
            .call(
                ("ping", "PING"),
                self.timeout,
                redis::cmd("PING").query_async(&mut connection),
            )
            .await?;
        // A successful ping closes the back-off early.
        self.skip_until_ms.store(0, Ordering::Relaxed);
        if answer == "PONG" {
            Ok(())
        } else {
            Err(CacheError(format!("unexpected PING answer {answer:?}")))
        }
    }
}

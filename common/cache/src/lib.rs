//! The Redis adapter of the core's cache port (`nis_core::cache`; docs/behaviour.md §6).
//!
//! Every call has a short deadline; after a failure, lookups skip Redis for a moment so that a
//! dead or slow Redis costs requests almost nothing (they go to the database).

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use redis::{AsyncCommands as _, Client, aio::ConnectionManager, aio::ConnectionManagerConfig};

use nis_core::cache::{Cache, CacheError, Lookup};
use nis_runtime::config::CacheSettings;
use tracing::Instrument as _;

/// How long a scope's generation counter outlives its last bump. Much longer than any entry's
/// TTL, so an expired counter can only bring back entries that expired long ago.
const GENERATION_TTL_SECS: i64 = 24 * 3600;

/// How long lookups skip Redis after it failed.
const BACKOFF: Duration = Duration::from_secs(1);

/// The bytes before an entry's value: the generation it was stored under (u64, big-endian).
const STAMP: usize = 8;

/// A cache in Redis, its keys under `{prefix}:{namespace}:`.
#[derive(Clone)]
pub struct RedisCache {
    connection: ConnectionManager,
    namespace: Arc<str>,
    ttl_secs: u64,
    timeout: Duration,
    started: Instant,
    /// Milliseconds since `started` before which lookups skip Redis.
    skip_until_ms: Arc<AtomicU64>,
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
            .set_response_timeout(Some(settings.timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let connection = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| CacheError(e.to_string()))?;
        Ok(Self {
            connection,
            namespace: format!("{prefix}:{service}").into(),
            ttl_secs: settings.ttl.as_secs().max(1),
            timeout: settings.timeout,
            started: Instant::now(),
            skip_until_ms: Arc::new(AtomicU64::new(0)),
        })
    }

    fn generation_key(&self, scope: &str) -> String {
        format!("{}:{scope}:gen", self.namespace)
    }

    fn value_key(&self, scope: &str, key: &str) -> String {
        format!("{}:{scope}:v:{key}", self.namespace)
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn skipping(&self) -> bool {
        self.now_ms() < self.skip_until_ms.load(Ordering::Relaxed)
    }

    /// Runs one Redis call (`command`, for its span in a traced request) under the deadline; a
    /// failure opens the short back-off.
    async fn call<T>(
        &self,
        (what, command): (&str, &'static str),
        call: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, CacheError> {
        let span = nis_core::trace::database("redis", command, None);
        let outcome = match tokio::time::timeout(self.timeout, call)
            .instrument(span)
            .await
        {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(e)) => format!("{what}: {e}"),
            Err(_) => format!("{what}: no answer within {:?}", self.timeout),
        };
        self.skip_until_ms.store(
            self.now_ms() + BACKOFF.as_millis() as u64,
            Ordering::Relaxed,
        );
        Err(CacheError(outcome))
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
            .call(("lookup", "MGET"), connection.mget(&keys))
            .await?;
        let generation = generation.map_or(Ok(0), |g| {
            g.parse()
                .map_err(|_| CacheError(format!("corrupt generation {g:?} in scope {scope}")))
        })?;
        let value = entry.and_then(|mut entry| {
            let stamp = entry.first_chunk::<STAMP>().copied()?;
            (u64::from_be_bytes(stamp) == generation).then(|| entry.split_off(STAMP))
        });
        Ok(Lookup { generation, value })
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
            connection.set_ex::<_, _, ()>(key, entry, self.ttl_secs),
        )
        .await
    }

    async fn invalidate(&self, scopes: &[String]) -> Result<(), CacheError> {
        if scopes.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        pipe.atomic();
        for scope in scopes {
            let key = self.generation_key(scope);
            pipe.incr(&key, 1).ignore();
            pipe.expire(&key, GENERATION_TTL_SECS).ignore();
        }
        let mut connection = self.connection.clone();
        self.call(
            ("invalidate", "EXEC"),
            pipe.query_async::<()>(&mut connection),
        )
        .await
    }

    async fn ping(&self) -> Result<(), CacheError> {
        let mut connection = self.connection.clone();
        let answer: String = self
            .call(
                ("ping", "PING"),
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

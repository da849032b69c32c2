//! The cache protocol under random schedules, in memory: three replicas of one service over one
//! store and one cache, each reaching the cache through its own link, which a schedule cuts and
//! heals step by step (lookup, fill, fence, settle), a cut call either lost before it arrives
//! or applied with its answer lost. Reads and writes run concurrently, with latencies, while
//! time moves on past the fences' expiries. Every read is checked against what was
//! acknowledged before it started: it never returns an older version of an entity, nor one
//! whose deletion was acknowledged (docs/behaviour.md §6).
//!
//! The same schedules against the protocol the project had before (invalidate after commit)
//! must find stale reads, so the checks are shown to catch what they are for.
//!
//! `NIS_SEED=<n>` replays one schedule; a failure names its seed.

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use futures::future::join_all;
use rand::{Rng as _, SeedableRng as _, rngs::StdRng};

use crate::{
    Core, EntityService, Error, Page,
    cache::{Cache, CacheError, Fence, Lookup},
    decorators::{Cached, Fenced},
    entity::Entity,
    fakes::{
        MemoryCache, MemoryStore, Step,
        entities::{Key, MemberDraft, Pupil},
    },
    service::{Context, Transport},
};

const SCHEDULES: u64 = 300;
const REPLICAS: usize = 3;
const ENTITIES: usize = 3;
const OPS: usize = 40;

/// What the runs did, to show that they were not vacuous.
#[derive(Default)]
struct Tally {
    hits: AtomicUsize,
    failed_calls: AtomicUsize,
    refused_writes: AtomicUsize,
    acked_writes: AtomicUsize,
    reads: AtomicUsize,
    stale_reads: AtomicUsize,
}

impl Tally {
    fn add(counter: &AtomicUsize) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
    fn get(counter: &AtomicUsize) -> usize {
        counter.load(Ordering::Relaxed)
    }
}

/// How a cut link fails a call.
#[derive(Clone, Copy, Debug)]
enum CutCall {
    /// The call never reaches the cache.
    Lost,
    /// The cache applies it; its answer is lost (a timeout).
    AnswerLost,
}

/// One replica's link to the shared cache.
#[derive(Clone)]
struct Link {
    server: MemoryCache,
    cut: Arc<Mutex<HashMap<Step, CutCall>>>,
    latency: Arc<Mutex<StdRng>>,
    tally: Arc<Tally>,
}

impl Link {
    async fn through<T>(
        &self,
        step: Step,
        call: impl Future<Output = Result<T, CacheError>>,
    ) -> Result<T, CacheError> {
        let pause = self
            .latency
            .lock()
            .map(|mut rng| rng.random_range(0..4))
            .unwrap_or(0);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        let cut = self.cut.lock().ok().and_then(|c| c.get(&step).copied());
        let outcome = match cut {
            None => call.await,
            Some(CutCall::Lost) => Err(CacheError("cut".into())),
            Some(CutCall::AnswerLost) => call.await.and(Err(CacheError("no answer".into()))),
        };
        if outcome.is_err() {
            Tally::add(&self.tally.failed_calls);
        }
        tokio::time::sleep(Duration::from_millis(pause)).await;
        outcome
    }
}

impl Cache for Link {
    async fn lookup(&self, scope: &str, key: &str) -> Result<Lookup, CacheError> {
        let found = self
            .through(Step::Lookup, self.server.lookup(scope, key))
            .await?;
        if found.value.is_some() {
            Tally::add(&self.tally.hits);
        }
        Ok(found)
    }
    async fn fill(&self, scope: &str, g: u64, key: &str, value: Vec<u8>) -> Result<(), CacheError> {
        self.through(Step::Fill, self.server.fill(scope, g, key, value))
            .await
    }
    async fn fence(&self, scopes: &[String]) -> Result<Fence, CacheError> {
        self.through(Step::Fence, self.server.fence(scopes)).await
    }
    async fn settle(&self, fence: &Fence) -> Result<(), CacheError> {
        self.through(Step::Settle, self.server.settle(fence)).await
    }
    async fn ping(&self) -> Result<(), CacheError> {
        self.through(Step::Lookup, self.server.ping()).await
    }
}

/// The protocol before fences: nothing before the commit, a new generation after it (an
/// invalidation), which may fail and leave the old entries current.
#[derive(Clone)]
struct InvalidateAfter(Link);

impl Cache for InvalidateAfter {
    async fn lookup(&self, scope: &str, key: &str) -> Result<Lookup, CacheError> {
        self.0.lookup(scope, key).await
    }
    async fn fill(&self, scope: &str, g: u64, key: &str, value: Vec<u8>) -> Result<(), CacheError> {
        self.0.fill(scope, g, key, value).await
    }
    async fn fence(&self, scopes: &[String]) -> Result<Fence, CacheError> {
        Ok(Fence {
            token: 0,
            scopes: scopes.to_vec(),
            expires: tokio::time::Instant::now() + Duration::from_secs(3600),
        })
    }
    async fn settle(&self, fence: &Fence) -> Result<(), CacheError> {
        let invalidate = async {
            let bump = self.0.server.fence(&fence.scopes).await?;
            self.0.server.settle(&bump).await
        };
        self.0.through(Step::Settle, invalidate).await
    }
    async fn ping(&self) -> Result<(), CacheError> {
        self.0.ping().await
    }
}

/// What was acknowledged of one entity.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Acked {
    Version(i64),
    Deleted,
}

#[derive(Clone, Debug)]
enum Op {
    Get {
        replica: usize,
        entity: usize,
    },
    List {
        replica: usize,
    },
    Update {
        replica: usize,
        entity: usize,
    },
    Delete {
        replica: usize,
        entity: usize,
    },
    Cut {
        replica: usize,
        step: Step,
        how: CutCall,
    },
    Heal {
        replica: usize,
    },
}

fn ctx() -> Context {
    Context::new(Transport::Http, "schedule")
}

fn draft(name: String) -> MemberDraft {
    MemberDraft {
        name,
        links: vec![],
    }
}

fn plan(rng: &mut StdRng) -> Vec<(u64, Op)> {
    let steps = [Step::Lookup, Step::Fill, Step::Fence, Step::Settle];
    (0..OPS)
        .map(|_| {
            let replica = rng.random_range(0..REPLICAS);
            let entity = rng.random_range(0..ENTITIES);
            let op = match rng.random_range(0..20) {
                0..=6 => Op::Get { replica, entity },
                7..=8 => Op::List { replica },
                9..=13 => Op::Update { replica, entity },
                14 => Op::Delete { replica, entity },
                15..=17 => Op::Cut {
                    replica,
                    step: steps[rng.random_range(0..steps.len())],
                    how: if rng.random_bool(0.5) {
                        CutCall::Lost
                    } else {
                        CutCall::AnswerLost
                    },
                },
                _ => Op::Heal { replica },
            };
            // Mostly close together (races), sometimes past a fence's expiry.
            let at = if rng.random_bool(0.1) {
                rng.random_range(0..40_000)
            } else {
                rng.random_range(0..200)
            };
            (at, op)
        })
        .collect()
}

/// Runs the schedule of `seed` against caches made by `wrap` from each replica's link.
async fn run<C: Cache>(seed: u64, tally: &Arc<Tally>, wrap: impl Fn(Link) -> C) {
    let mut rng = StdRng::seed_from_u64(seed);
    let store = MemoryStore::<Pupil>::new(|n| Key(format!("s{n}")));
    let server = MemoryCache::default();
    let links: Vec<Link> = (0..REPLICAS)
        .map(|r| Link {
            server: server.clone(),
            cut: Arc::default(),
            latency: Arc::new(Mutex::new(StdRng::seed_from_u64(seed * 31 + r as u64))),
            tally: tally.clone(),
        })
        .collect();
    let replicas: Vec<_> = links
        .iter()
        .map(|link| {
            let cache = wrap(link.clone());
            let fenced = Fenced::new(store.clone(), cache.clone());
            Cached::new(Core::new(fenced, "t.links.students"), cache)
        })
        .collect();
    let mut ids = vec![];
    let acked = Mutex::new(HashMap::new());
    for n in 0..ENTITIES {
        let created = replicas[0].create(&ctx(), draft(format!("e{n}"))).await;
        let created = created.expect("created with every link up").value;
        acked
            .lock()
            .expect("lock")
            .insert(created.id.clone(), Acked::Version(created.version()));
        ids.push(created.id);
    }
    let names = AtomicUsize::new(0);
    let snapshot = || acked.lock().expect("lock").clone();
    let check = |id: &Key, before: &HashMap<Key, Acked>, seen: Option<i64>| {
        Tally::add(&tally.reads);
        let stale = match (before.get(id), seen) {
            (Some(Acked::Version(v)), Some(seen)) => seen < *v,
            (Some(Acked::Deleted), Some(_)) => true,
            _ => false,
        };
        if stale {
            Tally::add(&tally.stale_reads);
        }
    };
    let tasks = plan(&mut rng).into_iter().map(|(at, op)| {
        let (replicas, links, ids, acked, names) = (&replicas, &links, &ids, &acked, &names);
        async move {
            tokio::time::sleep(Duration::from_millis(at)).await;
            match op {
                Op::Get { replica, entity } => {
                    let before = snapshot();
                    let id = &ids[entity];
                    match replicas[replica].get(&ctx(), id).await {
                        Ok(e) => check(id, &before, Some(e.version())),
                        Err(Error::NotFound(_)) => check(id, &before, None),
                        Err(e) => panic!("seed {seed}: a read failed: {e}"),
                    }
                }
                Op::List { replica } => {
                    let before = snapshot();
                    let listed = replicas[replica].list(&ctx(), Page::default()).await;
                    let listed = listed.unwrap_or_else(|e| panic!("seed {seed}: list: {e}"));
                    for id in ids {
                        let seen = listed.iter().find(|e| &e.id == id).map(Entity::version);
                        check(id, &before, seen);
                    }
                }
                Op::Update { replica, entity } => {
                    let name = format!("n{}", names.fetch_add(1, Ordering::Relaxed));
                    let id = &ids[entity];
                    match replicas[replica].update(&ctx(), id, draft(name)).await {
                        Ok(w) => {
                            Tally::add(&tally.acked_writes);
                            let mut acked = acked.lock().expect("lock");
                            if let Some(Acked::Version(v)) = acked.get(id).copied() {
                                acked.insert(id.clone(), Acked::Version(v.max(w.value.version())));
                            }
                        }
                        Err(Error::Unavailable { .. }) => Tally::add(&tally.refused_writes),
                        Err(_) => {}
                    }
                }
                Op::Delete { replica, entity } => {
                    let id = &ids[entity];
                    match replicas[replica].delete(&ctx(), id).await {
                        Ok(_) => {
                            Tally::add(&tally.acked_writes);
                            acked
                                .lock()
                                .expect("lock")
                                .insert(id.clone(), Acked::Deleted);
                        }
                        Err(Error::Unavailable { .. }) => Tally::add(&tally.refused_writes),
                        Err(_) => {}
                    }
                }
                Op::Cut { replica, step, how } => {
                    links[replica].cut.lock().expect("lock").insert(step, how);
                }
                Op::Heal { replica } => links[replica].cut.lock().expect("lock").clear(),
            }
        }
    });
    join_all(tasks).await;
    // Settled: every link healed, past every fence, each entity read through every replica.
    for link in &links {
        link.cut.lock().expect("lock").clear();
    }
    tokio::time::sleep(Duration::from_secs(20)).await;
    let before = snapshot();
    for replica in &replicas {
        for id in &ids {
            let seen = replica.get(&ctx(), id).await.ok().map(|e| e.version());
            check(id, &before, seen);
        }
    }
}

fn seeds() -> Vec<u64> {
    match std::env::var("NIS_SEED").ok().and_then(|s| s.parse().ok()) {
        Some(seed) => vec![seed],
        None => (0..SCHEDULES).collect(),
    }
}

#[tokio::test(start_paused = true)]
async fn no_read_returns_an_older_version_than_an_acknowledged_write() {
    let tally = Arc::new(Tally::default());
    let mut failing = HashSet::new();
    for seed in seeds() {
        let stale = Tally::get(&tally.stale_reads);
        run(seed, &tally, |link| link).await;
        if Tally::get(&tally.stale_reads) > stale {
            failing.insert(seed);
        }
    }
    assert!(
        failing.is_empty(),
        "stale reads in the schedules of seeds {failing:?}"
    );
    if std::env::var_os("NIS_SEED").is_none() {
        // Not vacuous: links failed at every step, writes were refused and acknowledged, and
        // the cache served reads.
        let t = &tally;
        eprintln!(
            "reads {} (hits {}), writes acked {} / refused {}, failed cache calls {}",
            Tally::get(&t.reads),
            Tally::get(&t.hits),
            Tally::get(&t.acked_writes),
            Tally::get(&t.refused_writes),
            Tally::get(&t.failed_calls)
        );
        assert!(
            Tally::get(&t.hits) > 1_000,
            "the cache served too few reads"
        );
        assert!(
            Tally::get(&t.refused_writes) > 100,
            "too few refused writes"
        );
        assert!(
            Tally::get(&t.acked_writes) > 1_000,
            "too few acknowledged writes"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn the_same_schedules_find_stale_reads_when_writes_only_invalidate_after_commit() {
    let tally = Arc::new(Tally::default());
    for seed in seeds() {
        run(seed, &tally, InvalidateAfter).await;
    }
    if std::env::var_os("NIS_SEED").is_none() {
        assert!(
            Tally::get(&tally.stale_reads) > 0,
            "the checks found nothing wrong with a protocol that is known to serve stale reads"
        );
    }
}

//! Everything a seed decides, drawn before anything runs: the fault schedule and each worker's
//! sequence of intended operations (docs/chaos.md, "Replaying a run"). The same seed and
//! duration give the same schedule and the same intents; what the intents become (which
//! entity an update touches) then depends on what earlier writes answered.

use std::{fmt, time::Duration};

use rand::{Rng as _, SeedableRng as _, rngs::StdRng, seq::SliceRandom as _};

use crate::{clients::Transport, model::Part};

/// The kinds of fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FaultKind {
    /// SIGKILL a replica, restart it after a pause.
    Kill,
    /// SIGTERM a replica (a rollout): it drains, then is restarted.
    Terminate,
    /// SIGSTOP a replica past the peer timeout, then SIGCONT.
    Stall,
    /// Stop NATS, start it again on the same port and store.
    NatsRestart,
    /// Stop Redis (losing every key), start it again.
    RedisRestart,
    /// Redis `FLUSHALL`.
    RedisFlush,
    /// Terminate every PostgreSQL connection to the run's database.
    PostgresTerminate,
    /// Purge a links stream through the JetStream API: every change not yet applied is lost.
    StreamPurge,
    /// Delete the newest messages of a links stream: the changes among them not yet applied
    /// are lost.
    MessagesDeleted,
    /// Cut one link of one replica (its fault proxy) the way the mode says, then heal it; the
    /// replica's other links and every other replica are untouched.
    LinkCut(Link, CutMode),
}

/// A link between one replica and one of its dependencies, each through its own fault proxy
/// (docs/chaos.md, "Link faults").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Link {
    /// Its `REDIS_URL`: the cache.
    Redis,
    /// Its `NATS_URL`: the relay's publishes and the consumer.
    Nats,
    /// Its `DATABASE_URL` (students, PostgreSQL) or `MONGODB_URI` (courses).
    Database,
    /// Its `COURSES_GRPC_URL` / `STUDENTS_GRPC_URL`: every replica of the other service.
    Peer,
}

impl Link {
    /// Every link.
    pub const ALL: [Self; 4] = [Self::Redis, Self::Nats, Self::Database, Self::Peer];

    /// Its name in the report.
    pub fn name(self) -> &'static str {
        match self {
            Self::Redis => "redis",
            Self::Nats => "nats",
            Self::Database => "db",
            Self::Peer => "peer",
        }
    }
}

/// How a link is cut (what [`fault_proxy::Cut`] does).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CutMode {
    /// Every connection reset, new ones reset at once: the client is told.
    Reset,
    /// No byte passes, new connections accepted and never forwarded: only timeouts tell.
    Blackhole,
}

impl CutMode {
    /// The proxy's cut.
    pub fn cut(self) -> fault_proxy::Cut {
        match self {
            Self::Reset => fault_proxy::Cut::Reset,
            Self::Blackhole => fault_proxy::Cut::Blackhole,
        }
    }
}

impl FaultKind {
    /// Every kind.
    pub const ALL: [Self; 17] = [
        Self::Kill,
        Self::Terminate,
        Self::Stall,
        Self::NatsRestart,
        Self::RedisRestart,
        Self::RedisFlush,
        Self::PostgresTerminate,
        Self::StreamPurge,
        Self::MessagesDeleted,
        Self::LinkCut(Link::Redis, CutMode::Reset),
        Self::LinkCut(Link::Redis, CutMode::Blackhole),
        Self::LinkCut(Link::Nats, CutMode::Reset),
        Self::LinkCut(Link::Nats, CutMode::Blackhole),
        Self::LinkCut(Link::Database, CutMode::Reset),
        Self::LinkCut(Link::Database, CutMode::Blackhole),
        Self::LinkCut(Link::Peer, CutMode::Reset),
        Self::LinkCut(Link::Peer, CutMode::Blackhole),
    ];

    /// The kinds that hit a replica (one lane), the others hit a shared dependency (the other).
    pub const ON_REPLICAS: [Self; 3] = [Self::Kill, Self::Terminate, Self::Stall];

    /// The kinds that hit a dependency.
    pub const ON_DEPENDENCIES: [Self; 6] = [
        Self::NatsRestart,
        Self::RedisRestart,
        Self::RedisFlush,
        Self::PostgresTerminate,
        Self::StreamPurge,
        Self::MessagesDeleted,
    ];

    /// The kinds that cut one link of one replica (a third lane).
    pub const ON_LINKS: [Self; 8] = [
        Self::LinkCut(Link::Redis, CutMode::Reset),
        Self::LinkCut(Link::Redis, CutMode::Blackhole),
        Self::LinkCut(Link::Nats, CutMode::Reset),
        Self::LinkCut(Link::Nats, CutMode::Blackhole),
        Self::LinkCut(Link::Database, CutMode::Reset),
        Self::LinkCut(Link::Database, CutMode::Blackhole),
        Self::LinkCut(Link::Peer, CutMode::Reset),
        Self::LinkCut(Link::Peer, CutMode::Blackhole),
    ];

    /// The link kinds a run too short for all of [`Self::ON_LINKS`] still gets: a replica cut
    /// from Redis while the others keep theirs is what can make a read stale (issue 26).
    pub const SHORT_RUN_LINKS: [Self; 2] = [
        Self::LinkCut(Link::Redis, CutMode::Reset),
        Self::LinkCut(Link::Redis, CutMode::Blackhole),
    ];

    /// Its name in the report.
    pub fn name(self) -> &'static str {
        match self {
            Self::Kill => "sigkill",
            Self::Terminate => "sigterm",
            Self::Stall => "sigstop",
            Self::NatsRestart => "nats-restart",
            Self::RedisRestart => "redis-restart",
            Self::RedisFlush => "redis-flushall",
            Self::PostgresTerminate => "pg-terminate",
            Self::StreamPurge => "links-purge",
            Self::MessagesDeleted => "links-delete",
            Self::LinkCut(link, mode) => match (link, mode) {
                (Link::Redis, CutMode::Reset) => "link-redis-reset",
                (Link::Redis, CutMode::Blackhole) => "link-redis-blackhole",
                (Link::Nats, CutMode::Reset) => "link-nats-reset",
                (Link::Nats, CutMode::Blackhole) => "link-nats-blackhole",
                (Link::Database, CutMode::Reset) => "link-db-reset",
                (Link::Database, CutMode::Blackhole) => "link-db-blackhole",
                (Link::Peer, CutMode::Reset) => "link-peer-reset",
                (Link::Peer, CutMode::Blackhole) => "link-peer-blackhole",
            },
        }
    }

    /// The link it cuts, for link faults.
    pub fn link(self) -> Option<Link> {
        match self {
            Self::LinkCut(link, _) => Some(link),
            _ => None,
        }
    }

    /// Whether it hits a replica.
    pub fn on_replica(self) -> bool {
        Self::ON_REPLICAS.contains(&self)
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One planned fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    /// When it is due, from the start of the load. A lane runs its faults one after another,
    /// so one may start later than planned if the one before took longer.
    pub at: Duration,
    /// What happens.
    pub kind: FaultKind,
    /// The replica (fleet index) it hits, for replica faults.
    pub target: Option<usize>,
    /// How long the thing stays down (or stalled) before it is brought back.
    pub pause: Duration,
}

/// The faults of a run, in three lanes that run side by side: one on replicas, one on
/// dependencies, one on single links; each lane runs its faults one after another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// Faults on replicas.
    pub replicas: Vec<Planned>,
    /// Faults on NATS, Redis and PostgreSQL.
    pub dependencies: Vec<Planned>,
    /// Cuts of one link of one replica.
    pub links: Vec<Planned>,
}

impl Schedule {
    /// Every planned fault, lane by lane, with its lane's name.
    pub fn lanes(&self) -> [(&'static str, &[Planned]); 3] {
        [
            ("replicas", &self.replicas),
            ("dependencies", &self.dependencies),
            ("links", &self.links),
        ]
    }

    /// How many faults are planned.
    pub fn len(&self) -> usize {
        self.replicas.len() + self.dependencies.len() + self.links.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The fault window a run needs for every link kind to be planned: eight cuts of up to 4 s,
/// each followed by the replica becoming ready again, with room between them. Shorter runs
/// (the one in `make test`) get [`FaultKind::SHORT_RUN_LINKS`].
pub const ALL_LINKS_SPAN: Duration = Duration::from_secs(48);

/// The kinds every run of `duration` is planned with at least once (and the `faults` check
/// demands): every kind, but in a run whose window is shorter than [`ALL_LINKS_SPAN`] only
/// the Redis link cuts among the link kinds.
pub fn guaranteed_kinds(duration: Duration) -> Vec<FaultKind> {
    let (from, to) = fault_window(duration);
    let links: &[FaultKind] = if to.saturating_sub(from) >= ALL_LINKS_SPAN {
        &FaultKind::ON_LINKS
    } else {
        &FaultKind::SHORT_RUN_LINKS
    };
    FaultKind::ON_REPLICAS
        .iter()
        .chain(&FaultKind::ON_DEPENDENCIES)
        .chain(links)
        .copied()
        .collect()
}

/// The part of the load in which faults start: from a short lead-in to a quiet tail, so that
/// the last fault is over, and the 30 s JetStream ack wait of messages a killed replica held
/// has mostly run out, while load still flows (docs/chaos.md, "Faults").
pub fn fault_window(duration: Duration) -> (Duration, Duration) {
    let lead = (duration / 20).min(Duration::from_secs(5));
    let tail = (duration / 4).clamp(Duration::from_secs(12), Duration::from_secs(45));
    let end = duration.saturating_sub(tail).max(lead);
    (lead, end)
}

/// The fault schedule of `seed` for a load of `duration` over `replicas` replicas: every kind
/// of [`guaranteed_kinds`] at least once, more when the window is long (a replica fault every
/// ~12 s, a dependency fault every ~15 s, a link cut every ~8 s on average).
pub fn faults(seed: u64, duration: Duration, replicas: usize) -> Schedule {
    let mut rng = StdRng::seed_from_u64(seed);
    let (from, to) = fault_window(duration);
    let span = to.saturating_sub(from);
    let guaranteed = guaranteed_kinds(duration);
    // `kinds`: what the lane may draw; those among them that are guaranteed come first.
    let mut lane = |kinds: &[FaultKind], every: Duration| {
        let mut chosen: Vec<FaultKind> = kinds
            .iter()
            .filter(|k| guaranteed.contains(k))
            .copied()
            .collect();
        let count = chosen
            .len()
            .max(usize::try_from(span.as_millis() / every.as_millis()).unwrap_or(0));
        while chosen.len() < count {
            chosen.push(kinds[rng.random_range(0..kinds.len())]);
        }
        chosen.shuffle(&mut rng);
        let mut times: Vec<Duration> = (0..count)
            .map(|_| from + span.mul_f64(rng.random::<f64>()))
            .collect();
        times.sort();
        times
            .into_iter()
            .zip(chosen)
            .map(|(at, kind)| {
                // Both drawn for every fault, so the draws don't depend on the kind.
                let replica = rng.random_range(0..replicas);
                let share = rng.random::<f64>();
                let between = |lo: u64, hi: u64| {
                    Duration::from_millis(lo) + Duration::from_millis(hi - lo).mul_f64(share)
                };
                let (target, pause) = match kind {
                    FaultKind::Kill => (Some(replica), between(500, 3_000)),
                    FaultKind::Terminate => (Some(replica), Duration::ZERO),
                    FaultKind::Stall => (Some(replica), between(2_000, 4_000)),
                    FaultKind::NatsRestart | FaultKind::RedisRestart => (None, between(500, 3_000)),
                    FaultKind::RedisFlush | FaultKind::PostgresTerminate => (None, Duration::ZERO),
                    FaultKind::StreamPurge | FaultKind::MessagesDeleted => {
                        (Some(replica), Duration::ZERO)
                    }
                    // Long enough for a blackhole to outlast the services' 1–1.5 s timeouts
                    // (cache, peer), short enough for the load to write through it many times.
                    FaultKind::LinkCut(..) => (Some(replica), between(1_500, 4_000)),
                };
                Planned {
                    at,
                    kind,
                    target,
                    pause,
                }
            })
            .collect::<Vec<_>>()
    };
    let replica_lane = lane(&FaultKind::ON_REPLICAS, Duration::from_secs(12));
    let dependency_lane = lane(&FaultKind::ON_DEPENDENCIES, Duration::from_secs(15));
    // Drawn last, so the first two lanes of a seed are what they were before link faults.
    let link_lane = lane(&FaultKind::ON_LINKS, Duration::from_secs(8));
    Schedule {
        replicas: replica_lane,
        dependencies: dependency_lane,
        links: link_lane,
    }
}

/// What a worker means to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Create an entity of the partition.
    Create(Part),
    /// Update an owned entity of the partition (S1 or C2).
    Update(Part),
    /// Delete an owned entity of the partition.
    Delete(Part),
    /// Read an owned entity of the partition.
    Read(Part),
    /// Ask the other service for an owned entity's linked entities (a cross query).
    Cross(Part),
}

/// One intended operation of a worker, with every random choice it may need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Intent {
    /// What to do.
    pub op: Op,
    /// Over which transport.
    pub transport: Transport,
    /// To which replica of the service (0 or 1).
    pub replica: usize,
    /// Which owned entity (modulo how many there are).
    pub pick: u32,
    /// Which entity of the other kind to link or unlink.
    pub other: u32,
    /// Whether a link change adds (else removes) an id.
    pub add: bool,
    /// A pause before the request, so workers don't move in lockstep.
    pub think: Duration,
}

impl fmt::Display for Intent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let transport = match self.transport {
            Transport::Http => "http",
            Transport::Grpc => "grpc",
        };
        write!(
            f,
            "{:?} via {transport} to replica {}",
            self.op,
            self.replica + 1
        )
    }
}

/// The endless intents of one worker of a run.
#[derive(Debug)]
pub struct Intents {
    rng: StdRng,
}

impl Intents {
    /// The intents of worker `worker` under `seed` (independent of the fault schedule's draws).
    pub fn new(seed: u64, worker: usize) -> Self {
        let stream = (worker as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        Self {
            rng: StdRng::seed_from_u64(seed ^ stream),
        }
    }
}

impl Iterator for Intents {
    type Item = Intent;

    /// Draws every field every time, so the sequence does not depend on what earlier intents
    /// turned into.
    fn next(&mut self) -> Option<Intent> {
        let roll = self.rng.random_range(0..100u32);
        let part = Part::ALL[self.rng.random_range(0..4usize)];
        let op = match roll {
            0..5 => Op::Create(Part::S1),
            5..10 => Op::Create(Part::C1),
            10..15 => Op::Create(Part::S2),
            15..19 => Op::Create(Part::C2),
            19..47 => Op::Update(Part::S1),
            47..75 => Op::Update(Part::C2),
            75..80 => Op::Delete(part),
            80..92 => Op::Read(part),
            _ => Op::Cross(part),
        };
        Some(Intent {
            op,
            transport: if self.rng.random::<bool>() {
                Transport::Http
            } else {
                Transport::Grpc
            },
            replica: self.rng.random_range(0..2),
            pick: self.rng.random(),
            other: self.rng.random(),
            add: self.rng.random_bool(0.6),
            think: Duration::from_millis(self.rng.random_range(0..20)),
        })
    }
}

/// A fingerprint of the first `count` intents of `workers` workers (FNV-1a of their text), to
/// show at a glance that two runs intended the same operations.
pub fn fingerprint(seed: u64, workers: usize, count: usize) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for worker in 0..workers {
        for intent in Intents::new(seed, worker).take(count) {
            for byte in format!("{intent:?}").bytes() {
                hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
            }
        }
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_schedule_and_intents() {
        let d = Duration::from_secs(180);
        assert_eq!(faults(7, d, 4), faults(7, d, 4));
        assert_ne!(faults(7, d, 4), faults(8, d, 4));
        let a: Vec<_> = Intents::new(7, 3).take(100).collect();
        let b: Vec<_> = Intents::new(7, 3).take(100).collect();
        assert_eq!(a, b);
        assert_eq!(fingerprint(7, 8, 50), fingerprint(7, 8, 50));
        assert_ne!(fingerprint(7, 8, 50), fingerprint(8, 8, 50));
    }

    #[test]
    fn every_kind_is_scheduled_inside_the_window_even_in_a_short_run() {
        for (seed, secs) in [(1, 25), (2, 180), (3, 120), (4, 90)] {
            let d = Duration::from_secs(secs);
            let schedule = faults(seed, d, 4);
            let all: Vec<_> = schedule
                .replicas
                .iter()
                .chain(&schedule.dependencies)
                .chain(&schedule.links)
                .collect();
            assert_eq!(all.len(), schedule.len());
            let guaranteed = guaranteed_kinds(d);
            // A full run (90 s and more) gets every kind; the short one of `make test` every
            // kind but the link cuts other than Redis's.
            let expected: &[FaultKind] = if secs >= 90 {
                &FaultKind::ALL
            } else {
                assert!(guaranteed.contains(&FaultKind::SHORT_RUN_LINKS[0]));
                &guaranteed
            };
            for kind in expected {
                assert!(
                    all.iter().any(|f| f.kind == *kind),
                    "{kind} in a {secs} s run"
                );
            }
            let (from, to) = fault_window(d);
            assert!(all.iter().all(|f| f.at >= from && f.at <= to));
            assert!(
                schedule
                    .replicas
                    .iter()
                    .all(|f| f.kind.on_replica() && f.target.is_some())
            );
            assert!(schedule.dependencies.iter().all(|f| !f.kind.on_replica()));
            assert!(
                schedule
                    .links
                    .iter()
                    .all(|f| f.kind.link().is_some() && f.target.is_some())
            );
        }
    }
}

//! Looking at the system from outside once the load is over (docs/chaos.md, "Settling"):
//! readiness, the outboxes, the durable consumers, the dead letters, and every entity read
//! over HTTP; and waiting until all of it has settled.

use std::{
    collections::{BTreeSet, HashMap},
    time::{Duration, Instant},
};

use async_nats::jetstream;
use mongodb::bson::{Document, doc};
use nis_queue::Topology;
use sqlx::PgPool;

use crate::{
    clients::Clients,
    error::{Context as _, Result},
    model::{Entity, Kind},
    replicas::{Address, Service, is_ready},
    world::World,
};

/// How long one probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// Every entity of both kinds, as HTTP shows them.
#[derive(Debug, Clone, Default)]
pub struct State {
    /// The students.
    pub students: Vec<Entity>,
    /// The courses.
    pub courses: Vec<Entity>,
}

impl State {
    /// The entities of `kind`.
    pub fn of(&self, kind: Kind) -> &[Entity] {
        match kind {
            Kind::Student => &self.students,
            Kind::Course => &self.courses,
        }
    }

    /// Every entity by id.
    pub fn by_id(&self) -> HashMap<&str, &Entity> {
        self.students
            .iter()
            .chain(&self.courses)
            .map(|e| (e.id.as_str(), e))
            .collect()
    }
}

/// What breaks the relation invariant (docs/behaviour.md §5.1): a link held on one side only,
/// a link to an entity that does not exist, a list over its limit.
pub fn relation_problems(state: &State) -> Vec<String> {
    let mut problems = Vec::new();
    let pairs = |entities: &[Entity], student_first: bool| -> BTreeSet<(String, String)> {
        entities
            .iter()
            .flat_map(|e| {
                e.links.iter().map(move |other| {
                    if student_first {
                        (e.id.clone(), other.clone())
                    } else {
                        (other.clone(), e.id.clone())
                    }
                })
            })
            .collect()
    };
    let from_students = pairs(&state.students, true);
    let from_courses = pairs(&state.courses, false);
    let students: BTreeSet<&str> = state.students.iter().map(|e| e.id.as_str()).collect();
    let courses: BTreeSet<&str> = state.courses.iter().map(|e| e.id.as_str()).collect();
    for (s, c) in from_students.difference(&from_courses) {
        problems.push(format!(
            "student {s} lists course {c}, which does not list it"
        ));
    }
    for (s, c) in from_courses.difference(&from_students) {
        problems.push(format!(
            "course {c} lists student {s}, which does not list it"
        ));
    }
    for (s, c) in from_students.union(&from_courses) {
        if !students.contains(s.as_str()) {
            problems.push(format!(
                "course {c} lists student {s}, which does not exist"
            ));
        }
        if !courses.contains(c.as_str()) {
            problems.push(format!(
                "student {s} lists course {c}, which does not exist"
            ));
        }
    }
    for entity in state.students.iter().chain(&state.courses) {
        let max = entity.kind.max_links();
        if entity.links.len() > max {
            problems.push(format!(
                "{} {} holds {} links (at most {max})",
                entity.kind.plural(),
                entity.id,
                entity.links.len()
            ));
        }
    }
    problems
}

/// Connections for looking at the system.
#[derive(Debug)]
pub struct Probe {
    clients: Clients,
    addresses: Vec<Address>,
    postgres: PgPool,
    mongo: mongodb::Database,
    jetstream: jetstream::Context,
    topology: Topology,
}

/// How the wait for a settled system ended.
#[derive(Debug, Clone)]
pub struct Settled {
    /// Whether everything settled within the deadline.
    pub ok: bool,
    /// How long it took (or the deadline).
    pub took: Duration,
    /// What was still unsettled at the last look (empty if settled).
    pub problem: String,
}

impl Probe {
    /// Connects to the run's databases and NATS.
    pub async fn connect(world: &World, clients: Clients, addresses: Vec<Address>) -> Result<Self> {
        let postgres = sqlx::postgres::PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(PROBE_TIMEOUT)
            .connect(&world.database_url())
            .await
            .context("connect to the students database")?;
        let mongo = mongodb::Client::with_uri_str(&world.mongodb_uri)
            .await
            .context("connect to MongoDB")?
            .database(&world.names.mongo_database);
        let nats = async_nats::connect(&world.nats_url)
            .await
            .context("connect to NATS")?;
        Ok(Self {
            clients,
            addresses,
            postgres,
            mongo,
            jetstream: jetstream::new(nats),
            topology: Topology::new(&world.names.prefix),
        })
    }

    /// The replicas whose `/readyz` is not 200.
    pub async fn not_ready(&self) -> Vec<String> {
        let mut names = Vec::new();
        for address in &self.addresses {
            if !is_ready(self.clients.http(), address).await {
                names.push(address.name.clone());
            }
        }
        names
    }

    /// Entries left in the students' outbox table and the courses' outbox collection.
    pub async fn outboxes(&self) -> Result<(i64, u64)> {
        let students = tokio::time::timeout(
            PROBE_TIMEOUT,
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM outbox").fetch_one(&self.postgres),
        )
        .await
        .context("count the students outbox")?
        .context("count the students outbox")?;
        let courses = tokio::time::timeout(
            PROBE_TIMEOUT,
            self.mongo
                .collection::<Document>("outbox")
                .count_documents(doc! {}),
        )
        .await
        .context("count the courses outbox")?
        .context("count the courses outbox")?;
        Ok((students, courses))
    }

    /// Each durable consumer with its messages not yet delivered and delivered but not yet
    /// acknowledged.
    pub async fn consumers(&self) -> Result<Vec<(String, u64, usize)>> {
        let mut all = Vec::new();
        for service in Service::BOTH {
            let (stream, config) = self.topology.consumer(service.name());
            let name = config.durable_name.unwrap_or_default();
            let info = tokio::time::timeout(PROBE_TIMEOUT, async {
                let stream = self.jetstream.get_stream(&stream).await?;
                stream
                    .consumer_info(&name)
                    .await
                    .map_err(async_nats::Error::from)
            })
            .await
            .context(format!("consumer {name}"))?
            .context(format!("consumer {name}"))?;
            all.push((name, info.num_pending, info.num_ack_pending));
        }
        Ok(all)
    }

    /// Messages in the dead-letter stream.
    pub async fn dead_letters(&self) -> Result<u64> {
        let name = self.topology.dead_letter_stream();
        let stream = tokio::time::timeout(PROBE_TIMEOUT, self.jetstream.get_stream(&name))
            .await
            .context(format!("stream {name}"))?
            .context(format!("stream {name}"))?;
        Ok(stream.cached_info().state.messages)
    }

    /// Every entity, read over HTTP from the first replica of each service.
    pub async fn state(&self) -> Result<State> {
        let first = |service: Service| {
            self.addresses
                .iter()
                .find(|a| a.service == service)
                .expect("every service has a replica")
        };
        Ok(State {
            students: self
                .clients
                .list_all(first(Service::Students), Kind::Student)
                .await?,
            courses: self
                .clients
                .list_all(first(Service::Courses), Kind::Course)
                .await?,
        })
    }

    /// What is not settled yet, or `None`: every replica ready, no message waiting in a
    /// consumer, both outboxes empty, and the relation invariant holding.
    async fn unsettled(&self) -> Option<String> {
        let not_ready = self.not_ready().await;
        if !not_ready.is_empty() {
            return Some(format!("not ready: {}", not_ready.join(", ")));
        }
        match self.consumers().await {
            Ok(consumers) => {
                let busy: Vec<String> = consumers
                    .iter()
                    .filter(|(_, pending, ack_pending)| *pending > 0 || *ack_pending > 0)
                    .map(|(name, pending, ack_pending)| {
                        format!("consumer {name}: {pending} pending, {ack_pending} unacknowledged")
                    })
                    .collect();
                if !busy.is_empty() {
                    return Some(busy.join("; "));
                }
            }
            Err(e) => return Some(e.to_string()),
        }
        match self.outboxes().await {
            Ok((0, 0)) => {}
            Ok((students, courses)) => {
                return Some(format!("outboxes: students {students}, courses {courses}"));
            }
            Err(e) => return Some(e.to_string()),
        }
        match self.state().await {
            Ok(state) => {
                let problems = relation_problems(&state);
                if let Some(first) = problems.first() {
                    return Some(format!(
                        "relation: {} problems, e.g. {first}",
                        problems.len()
                    ));
                }
            }
            Err(e) => return Some(e.to_string()),
        }
        None
    }

    /// Waits, looking every 500 ms, until the system has looked settled twice in a row, for at
    /// most `deadline`.
    pub async fn settle(&self, deadline: Duration) -> Settled {
        let started = Instant::now();
        let mut in_a_row = 0;
        loop {
            let problem = self.unsettled().await;
            if problem.is_none() {
                in_a_row += 1;
                if in_a_row == 2 {
                    return Settled {
                        ok: true,
                        took: started.elapsed(),
                        problem: String::new(),
                    };
                }
            } else {
                in_a_row = 0;
            }
            if started.elapsed() >= deadline {
                return Settled {
                    ok: false,
                    took: started.elapsed(),
                    problem: problem.unwrap_or_default(),
                };
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// The HTTP status of every id in `ids` (of `kind`), asked of the first replica.
    pub async fn statuses(&self, kind: Kind, ids: &[String]) -> Vec<(String, String)> {
        let replica = self
            .addresses
            .iter()
            .find(|a| a.service == kind.service())
            .expect("every service has a replica");
        let mut statuses = Vec::new();
        for id in ids {
            let answer = self.clients.status_of(replica, kind, id).await;
            statuses.push((id.clone(), answer.label()));
        }
        statuses
    }
}

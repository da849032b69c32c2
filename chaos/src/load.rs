//! The load (docs/chaos.md, "The load"): workers that follow their seeded intents for the
//! duration, each owning the entities it created so that writes to one entity are sequential,
//! and recording every request in the ledger.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU32, Ordering},
    },
    time::{Duration, Instant},
};

use crate::{
    clients::{Clients, Outcome, Transport},
    ledger::{Call, CallOp, InFlight, Ledger},
    model::{Entity, Part},
    replicas::{Address, PER_SERVICE},
    schedule::{Intent, Intents, Op},
};

/// At most this many S1 students are ever attempted, so no C1 course is ever asked to take a
/// 61st student: a compensation for the limit would drop a link the check expects.
pub const S1_CAP: u32 = 60;
/// At most this many C2 courses are ever attempted.
pub const C2_CAP: u32 = 60;
/// C2 course `k` links only S2 students of band `k % BANDS`, and S2 student `j` is in band
/// `j % BANDS`: so at most `C2_CAP / BANDS` = 15 courses ever link one S2 student, its limit.
pub const BANDS: u32 = 4;
/// After a write whose outcome is unknown, its entity is left alone this long: longer than a
/// server could still be working on that write (a database call is bounded by 5 s), so a late
/// commit of it can't overtake the next write.
pub const QUARANTINE: Duration = Duration::from_secs(15);

/// The ids a worker may link: created with an acknowledgement and not (being) deleted.
#[derive(Debug, Default)]
struct Registry {
    c1: Vec<String>,
    s2: Vec<(String, u32)>,
}

/// What the workers share.
#[derive(Debug)]
pub struct Load {
    clients: Clients,
    addresses: Vec<Address>,
    /// Every request made.
    pub ledger: Ledger,
    in_flight: Arc<InFlight>,
    registry: Mutex<Registry>,
    s1_attempts: AtomicU32,
    c2_attempts: AtomicU32,
    s2_attempts: AtomicU32,
    t0: Instant,
}

/// An entity a worker owns.
#[derive(Debug, Clone)]
struct Owned {
    part: Part,
    /// As last written.
    entity: Entity,
    updates: u32,
    band: u32,
    quiet_until: Option<Instant>,
}

impl Owned {
    fn quiet(&self, now: Instant) -> bool {
        self.quiet_until.is_some_and(|until| now < until)
    }
}

impl Load {
    /// A load over `addresses` whose times count from `t0`.
    pub fn new(
        clients: Clients,
        addresses: Vec<Address>,
        in_flight: Arc<InFlight>,
        t0: Instant,
    ) -> Self {
        Self {
            clients,
            addresses,
            ledger: Ledger::default(),
            in_flight,
            registry: Mutex::default(),
            s1_attempts: AtomicU32::new(0),
            c2_attempts: AtomicU32::new(0),
            s2_attempts: AtomicU32::new(0),
            t0,
        }
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The replica `n` (0 or 1) of the service that answers for `part`'s kind.
    fn replica(&self, service: crate::replicas::Service, n: usize) -> &Address {
        let of: Vec<&Address> = self
            .addresses
            .iter()
            .filter(|a| a.service == service)
            .collect();
        of[n % of.len()]
    }

    fn now(&self) -> Duration {
        self.t0.elapsed()
    }
}

/// Runs worker `worker` until `until`.
pub async fn worker(load: Arc<Load>, seed: u64, worker: usize, until: Instant) {
    let mut state = Worker {
        load,
        worker,
        owned: Vec::new(),
        created: 0,
    };
    for intent in Intents::new(seed, worker) {
        if Instant::now() >= until {
            break;
        }
        // Pacing, not waiting for a condition: it keeps workers from moving in lockstep.
        tokio::time::sleep(intent.think).await;
        if Instant::now() >= until {
            break;
        }
        state.act(&intent).await;
    }
}

struct Worker {
    load: Arc<Load>,
    worker: usize,
    owned: Vec<Owned>,
    created: u32,
}

impl Worker {
    async fn act(&mut self, intent: &Intent) {
        match intent.op {
            Op::Create(part) => self.create(part, intent).await,
            Op::Update(part) => {
                if !self.update(part, intent).await {
                    self.create(part, intent).await;
                }
            }
            Op::Delete(part) => self.delete(part, intent).await,
            Op::Read(part) => self.read(part, intent, false).await,
            Op::Cross(part) => self.read(part, intent, true).await,
        }
    }

    /// The index in `owned` of the entity of `part` the intent picks, skipping quarantined ones.
    fn pick(&self, part: Part, pick: u32) -> Option<usize> {
        let now = Instant::now();
        let candidates: Vec<usize> = (0..self.owned.len())
            .filter(|&i| self.owned[i].part == part && !self.owned[i].quiet(now))
            .collect();
        if candidates.is_empty() {
            return None;
        }
        Some(candidates[pick as usize % candidates.len()])
    }

    fn call(
        &self,
        op: CallOp,
        part: Part,
        entity: &Entity,
        intent: &Intent,
        replica: &Address,
    ) -> Call {
        Call {
            worker: self.worker,
            op,
            part,
            id: entity.id.clone(),
            name: entity.name.clone(),
            transport: intent.transport,
            replica: replica.index,
            start: self.load.now(),
            end: Duration::ZERO,
            answer: crate::clients::Answer::Timeout,
            counter: entity.counter.clone(),
            links: entity.links.clone(),
        }
    }

    /// Draws up to `count` distinct linkable ids for a new entity of `part` in `band`.
    fn initial_links(&self, part: Part, band: u32, seed: u32, count: u32) -> Vec<String> {
        let registry = self.load.registry();
        let pool: Vec<&String> = match part {
            Part::S1 => registry.c1.iter().collect(),
            Part::C2 => registry
                .s2
                .iter()
                .filter(|(_, b)| *b == band)
                .map(|(id, _)| id)
                .collect(),
            Part::C1 | Part::S2 => Vec::new(),
        };
        let mut links = Vec::new();
        for k in 0..count {
            if pool.is_empty() {
                break;
            }
            let id = pool[(seed as usize).wrapping_add(k as usize * 7919) % pool.len()];
            if !links.contains(id) {
                links.push(id.clone());
            }
        }
        links
    }

    async fn create(&mut self, part: Part, intent: &Intent) {
        let attempts = match part {
            Part::S1 => Some((&self.load.s1_attempts, S1_CAP)),
            Part::C2 => Some((&self.load.c2_attempts, C2_CAP)),
            Part::C1 | Part::S2 => None,
        };
        let mut band = 0;
        if let Some((counter, cap)) = attempts {
            match counter.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < cap).then_some(n + 1)
            }) {
                Ok(n) => band = n % BANDS,
                // The partition is full: this intent changes nothing.
                Err(_) => return,
            }
        }
        if part == Part::S2 {
            band = self.load.s2_attempts.fetch_add(1, Ordering::SeqCst) % BANDS;
        }
        self.created += 1;
        let links = self.initial_links(part, band, intent.other, intent.other % 4);
        let entity = Entity {
            kind: part.kind(),
            id: String::new(),
            name: format!("w{}n{}", self.worker, self.created),
            tag: part.tag().into(),
            counter: "v00".into(),
            links,
        };
        let replica = self
            .load
            .replica(part.kind().service(), intent.replica)
            .clone();
        let mut call = self.call(CallOp::Create, part, &entity, intent, &replica);
        let flying = self.load.in_flight.enter(replica.index);
        let (answer, stored) = self
            .load
            .clients
            .create(intent.transport, &replica, &entity)
            .await;
        call.end = self.load.now();
        drop(flying);
        call.answer = answer;
        let id = stored
            .map(|s| s.id)
            .filter(|_| call.answer.outcome() == Outcome::Acknowledged);
        if let Some(id) = &id {
            call.id.clone_from(id);
        }
        self.load.ledger.record(call);
        let Some(id) = id else { return };
        match part {
            Part::C1 => self.load.registry().c1.push(id.clone()),
            Part::S2 => self.load.registry().s2.push((id.clone(), band)),
            Part::S1 | Part::C2 => {}
        }
        self.owned.push(Owned {
            part,
            entity: Entity { id, ..entity },
            updates: 0,
            band,
            quiet_until: None,
        });
    }

    /// Updates an owned S1 student or C2 course; false if there is none to update.
    async fn update(&mut self, part: Part, intent: &Intent) -> bool {
        let Some(i) = self.pick(part, intent.pick) else {
            return false;
        };
        let owned = &self.owned[i];
        let (band, max) = (owned.band, part.kind().max_links());
        // Keep the links the worker believes exist, then add or remove one.
        let pool: Vec<String> = {
            let registry = self.load.registry();
            match part {
                Part::S1 => registry.c1.clone(),
                _ => registry
                    .s2
                    .iter()
                    .filter(|(_, b)| *b == band)
                    .map(|(id, _)| id.clone())
                    .collect(),
            }
        };
        let mut links: Vec<String> = owned
            .entity
            .links
            .iter()
            .filter(|id| pool.contains(id))
            .cloned()
            .collect();
        let fresh: Vec<&String> = pool.iter().filter(|id| !links.contains(id)).collect();
        if intent.add && links.len() < max && !fresh.is_empty() {
            links.push(fresh[intent.other as usize % fresh.len()].clone());
        } else if !links.is_empty() {
            let at = intent.other as usize % links.len();
            links.remove(at);
        }
        let updates = owned.updates + 1;
        let entity = Entity {
            counter: format!("v{updates:02}"),
            links,
            ..owned.entity.clone()
        };
        let replica = self
            .load
            .replica(part.kind().service(), intent.replica)
            .clone();
        let mut call = self.call(CallOp::Update, part, &entity, intent, &replica);
        let flying = self.load.in_flight.enter(replica.index);
        let (answer, _) = self
            .load
            .clients
            .update(intent.transport, &replica, &entity)
            .await;
        call.end = self.load.now();
        drop(flying);
        call.answer = answer;
        let outcome = call.answer.outcome();
        self.load.ledger.record(call);
        if outcome == Outcome::Acknowledged {
            self.read_back(part, &entity, intent, &replica).await;
        }
        let owned = &mut self.owned[i];
        owned.entity = entity;
        owned.updates = updates;
        owned.quiet_until = (outcome == Outcome::Unknown).then(|| Instant::now() + QUARANTINE);
        true
    }

    async fn delete(&mut self, part: Part, intent: &Intent) {
        // Keep a few of each partition alive, so the writes keep having something to link.
        if self.owned.iter().filter(|o| o.part == part).count() < 3 {
            return;
        }
        let Some(i) = self.pick(part, intent.pick) else {
            return;
        };
        let owned = self.owned.remove(i);
        {
            // Out of the registry before the delete goes, so that no new link to it is made
            // after it may be gone (links made before are unlinked by the delete).
            let mut registry = self.load.registry();
            registry.c1.retain(|id| *id != owned.entity.id);
            registry.s2.retain(|(id, _)| *id != owned.entity.id);
        }
        let replica = self
            .load
            .replica(part.kind().service(), intent.replica)
            .clone();
        let mut call = self.call(CallOp::Delete, part, &owned.entity, intent, &replica);
        let flying = self.load.in_flight.enter(replica.index);
        call.counter.clear();
        call.links.clear();
        call.answer = self
            .load
            .clients
            .delete(intent.transport, &replica, part.kind(), &owned.entity.id)
            .await;
        call.end = self.load.now();
        drop(flying);
        let acknowledged = call.answer.outcome() == Outcome::Acknowledged;
        self.load.ledger.record(call);
        if acknowledged {
            self.read_back(part, &owned.entity, intent, &replica).await;
        }
    }

    /// Reads an entity back through the other replica of its service than `written`, right
    /// after a write to it was acknowledged there: the read must show that write (or, after a
    /// delete, answer 404). A replica that lost only its own link to Redis could otherwise
    /// acknowledge a write whose cache invalidation failed while another one keeps serving the
    /// old entry (issue 26); the stale-reads check judges these reads (docs/chaos.md).
    async fn read_back(&self, part: Part, entity: &Entity, intent: &Intent, written: &Address) {
        let service = part.kind().service();
        let replica = self
            .load
            .replica(service, (intent.replica + 1) % PER_SERVICE)
            .clone();
        debug_assert_ne!(replica.index, written.index);
        let mut call = self.call(CallOp::ReadBack, part, entity, intent, &replica);
        self.get(&mut call, intent.transport, &replica).await;
        self.load.ledger.record(call);
    }

    /// Sends the GET of `call`'s entity to `replica`; records its answer, its end and, if it
    /// answered OK, the counter it showed.
    async fn get(&self, call: &mut Call, transport: Transport, replica: &Address) {
        let flying = self.load.in_flight.enter(replica.index);
        let (answer, read) = self
            .load
            .clients
            .get(transport, replica, call.part.kind(), &call.id)
            .await;
        call.end = self.load.now();
        drop(flying);
        call.answer = answer;
        call.counter = read.map(|e| e.counter).unwrap_or_default();
        call.links.clear();
    }

    async fn read(&mut self, part: Part, intent: &Intent, cross: bool) {
        let Some(i) = self.pick(part, intent.pick) else {
            return;
        };
        let entity = self.owned[i].entity.clone();
        let kind = part.kind();
        let service = if cross {
            Clients::cross_service(kind, intent.transport)
        } else {
            kind.service()
        };
        let replica = self.load.replica(service, intent.replica).clone();
        let op = if cross { CallOp::Cross } else { CallOp::Get };
        let mut call = self.call(op, part, &entity, intent, &replica);
        if !cross {
            self.get(&mut call, intent.transport, &replica).await;
            self.load.ledger.record(call);
            return;
        }
        let flying = self.load.in_flight.enter(replica.index);
        call.counter.clear();
        call.links.clear();
        call.answer = self
            .load
            .clients
            .cross(intent.transport, &replica, kind, &entity.id)
            .await;
        call.end = self.load.now();
        drop(flying);
        self.load.ledger.record(call);
    }
}

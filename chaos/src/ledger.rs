//! The record of every request the load made (docs/chaos.md, "The checks"): what it was, where
//! it went, when it started and ended, and how it ended. The checks are computed from it.

use std::{sync::Mutex, time::Duration};

use crate::{clients::Answer, clients::Transport, model::Part};

/// What a request did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CallOp {
    /// POST / Create*.
    Create,
    /// PUT / Update*.
    Update,
    /// DELETE / Delete*.
    Delete,
    /// GET / Get*.
    Get,
    /// A cross query.
    Cross,
    /// GET / Get* through another replica than an acknowledged write went to, right after it
    /// (the stale-reads check).
    ReadBack,
}

impl CallOp {
    /// Whether it writes.
    pub fn is_write(self) -> bool {
        matches!(self, Self::Create | Self::Update | Self::Delete)
    }

    /// Whether it reads one entity (and records the counter it showed).
    pub fn reads_entity(self) -> bool {
        matches!(self, Self::Get | Self::ReadBack)
    }

    /// Its name in the report.
    pub fn name(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Update => "update",
            Self::Delete => "delete",
            Self::Get => "get",
            Self::Cross => "cross",
            Self::ReadBack => "read-back",
        }
    }
}

/// One request and how it ended.
#[derive(Debug, Clone)]
pub struct Call {
    /// The worker that made it.
    pub worker: usize,
    /// What it did.
    pub op: CallOp,
    /// The partition of its entity.
    pub part: Part,
    /// The entity's id (empty for a create that got no id back).
    pub id: String,
    /// The entity's name (which identifies a create whose outcome is unknown).
    pub name: String,
    /// HTTP or gRPC.
    pub transport: Transport,
    /// The replica it went to (fleet index).
    pub replica: usize,
    /// When it was sent, from the start of the load.
    pub start: Duration,
    /// When it ended.
    pub end: Duration,
    /// How it ended.
    pub answer: Answer,
    /// For creates and updates: the counter it wrote; for reads of an entity answered OK, the
    /// counter they showed.
    pub counter: String,
    /// For creates and updates: the links it wrote.
    pub links: Vec<String>,
}

/// Every call of a run, in the order they ended.
#[derive(Debug, Default)]
pub struct Ledger {
    calls: Mutex<Vec<Call>>,
}

impl Ledger {
    /// Adds a call.
    pub fn record(&self, call: Call) {
        self.calls
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(call);
    }

    /// Every call so far, in the order they started.
    pub fn calls(&self) -> Vec<Call> {
        let mut calls = self
            .calls
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        calls.sort_by_key(|c| c.start);
        calls
    }
}

/// A request sent this long before a SIGTERM is taken to have reached the server: on loopback
/// its connection is accepted and its bytes read well within it. One sent later races the
/// signal, and the drain check does not judge it (docs/chaos.md, "The checks").
pub const RACE_MARGIN: Duration = Duration::from_millis(20);

/// The requests in flight to each replica right now, with when each was sent, so a SIGTERM can
/// be sent while one is surely in flight (docs/chaos.md, "Faults").
#[derive(Debug)]
pub struct InFlight {
    next: std::sync::atomic::AtomicU64,
    replicas: Mutex<Vec<std::collections::BTreeMap<u64, std::time::Instant>>>,
}

/// One request in flight, until dropped.
#[derive(Debug)]
pub struct Flying<'a> {
    in_flight: &'a InFlight,
    replica: usize,
    key: u64,
}

impl Drop for Flying<'_> {
    fn drop(&mut self) {
        self.in_flight.replicas()[self.replica].remove(&self.key);
    }
}

impl InFlight {
    /// None in flight, to `replicas` replicas.
    pub fn new(replicas: usize) -> Self {
        Self {
            next: std::sync::atomic::AtomicU64::new(0),
            replicas: Mutex::new(vec![std::collections::BTreeMap::new(); replicas]),
        }
    }

    fn replicas(
        &self,
    ) -> std::sync::MutexGuard<'_, Vec<std::collections::BTreeMap<u64, std::time::Instant>>> {
        self.replicas
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A request to `replica` is sent now; it is over when the guard is dropped.
    pub fn enter(&self, replica: usize) -> Flying<'_> {
        let key = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.replicas()[replica].insert(key, std::time::Instant::now());
        Flying {
            in_flight: self,
            replica,
            key,
        }
    }

    /// How long the oldest request in flight to `replica` has been.
    pub fn oldest(&self, replica: usize) -> Option<Duration> {
        self.replicas()[replica]
            .values()
            .next()
            .map(std::time::Instant::elapsed)
    }
}

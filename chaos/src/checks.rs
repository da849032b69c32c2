//! The checks and figures of a run (docs/chaos.md, "The checks"), computed from the ledger of
//! requests, the faults as they happened, and the system as it looks once settled.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    time::Duration,
};

use tonic::Code;

use crate::{
    clients::{Answer, Class, Outcome},
    faults::{Crash, FaultRecord},
    ledger::{Call, CallOp, RACE_MARGIN},
    logs::{LogFigures, percentile},
    model::{Entity, Kind},
    probe::{Settled, State, relation_problems},
    replicas::{Address, Service},
    report::Report,
    schedule::{self, CutMode, FaultKind, Link},
};

/// How long after a fault its effects may still show (reconnects, back-offs, caches).
pub const GRACE: Duration = Duration::from_secs(5);

/// At most this many examples are printed per check.
const EXAMPLES: usize = 5;

/// Everything the checks look at.
#[derive(Debug)]
pub struct Evidence<'a> {
    /// The seed of the run.
    pub seed: u64,
    /// How long the load ran.
    pub duration: Duration,
    /// How many workers it had.
    pub workers: usize,
    /// The replicas.
    pub addresses: &'a [Address],
    /// Every request of the load.
    pub calls: &'a [Call],
    /// Every fault as it happened.
    pub faults: &'a [FaultRecord],
    /// How many faults the schedule had.
    pub planned: usize,
    /// How many connections each replica (by name) opened over each of its links, all through
    /// the link's fault proxy.
    pub link_connections: &'a [(String, Link, u64)],
    /// Replicas that ended by themselves.
    pub crashes: &'a [Crash],
    /// How the wait for a settled system ended.
    pub settled: &'a Settled,
    /// The system once settled, or why it could not be read.
    pub state: &'a Result<State, String>,
    /// Entries left in the outboxes (students, courses).
    pub outboxes: &'a Result<(i64, u64), String>,
    /// Messages in the dead-letter stream.
    pub dead_letters: &'a Result<u64, String>,
    /// The HTTP answer to `GET` of every entity whose delete was acknowledged.
    pub deleted: &'a [(String, String)],
    /// What the logs say.
    pub logs: &'a LogFigures,
}

fn secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

fn examples(problems: &[String]) -> String {
    if problems.is_empty() {
        return String::new();
    }
    let shown: Vec<&str> = problems.iter().take(EXAMPLES).map(String::as_str).collect();
    let more = problems.len().saturating_sub(EXAMPLES);
    let tail = if more > 0 {
        format!(" (and {more} more)")
    } else {
        String::new()
    };
    format!("; {}{tail}", shown.join("; "))
}

fn counts<K: Ord + std::fmt::Display>(map: &BTreeMap<K, usize>) -> String {
    if map.is_empty() {
        return "none".into();
    }
    map.iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Judges a run.
pub fn evaluate(e: &Evidence<'_>) -> Report {
    let mut report = Report::default();
    figures(e, &mut report);
    report.check(
        "settled",
        e.settled.ok,
        if e.settled.ok {
            format!(
                "every replica ready, consumers drained, outboxes empty and the relation whole {} after the load",
                secs(e.settled.took)
            )
        } else {
            format!(
                "not within {}: {}",
                secs(e.settled.took),
                e.settled.problem
            )
        },
    );
    match e.state {
        Ok(state) => {
            lost_writes(e, state, &mut report);
            let problems = relation_problems(state);
            report.check(
                "relation invariant",
                problems.is_empty(),
                format!(
                    "{} students, {} courses, {} links read over HTTP; {} problems{}",
                    state.students.len(),
                    state.courses.len(),
                    state.students.iter().map(|s| s.links.len()).sum::<usize>(),
                    problems.len(),
                    examples(&problems)
                ),
            );
        }
        Err(error) => {
            report.check(
                "lost writes",
                false,
                format!("the final state could not be read: {error}"),
            );
            report.check(
                "relation invariant",
                false,
                format!("the final state could not be read: {error}"),
            );
        }
    }
    refused(e, &mut report);
    stale_reads(e, &mut report);
    match e.outboxes {
        Ok((students, courses)) => report.check(
            "outbox left",
            *students == 0 && *courses == 0,
            format!("students {students}, courses {courses}"),
        ),
        Err(error) => report.check("outbox left", false, error.clone()),
    }
    match e.dead_letters {
        Ok(n) => report.check(
            "dead letters",
            *n == 0,
            format!("{n} messages in the dead-letter stream"),
        ),
        Err(error) => report.check("dead letters", false, error.clone()),
    }
    responses(e, &mut report);
    drain(e, &mut report);
    report.check(
        "no crashes",
        e.crashes.is_empty(),
        if e.crashes.is_empty() {
            "no replica ended by itself".to_owned()
        } else {
            e.crashes
                .iter()
                .map(|c| format!("{} at {} ({})", c.replica, secs(c.at), c.status))
                .collect::<Vec<_>>()
                .join("; ")
        },
    );
    faults_check(e, &mut report);
    report
}

fn figures(e: &Evidence<'_>, report: &mut Report) {
    report.figure(format!(
        "seed {} | load {} | {} workers | {} replicas ({})",
        e.seed,
        secs(e.duration),
        e.workers,
        e.addresses.len(),
        e.addresses
            .iter()
            .map(|a| a.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let mut by_op: BTreeMap<&str, usize> = BTreeMap::new();
    for call in e.calls {
        *by_op.entry(call.op.name()).or_default() += 1;
    }
    report.figure(format!(
        "requests: {} ({:.0}/s): {}",
        e.calls.len(),
        e.calls.len() as f64 / e.duration.as_secs_f64().max(1.0),
        counts(&by_op)
    ));
    let mut acknowledged: BTreeMap<String, usize> = BTreeMap::new();
    let mut unknown: BTreeMap<&str, usize> = BTreeMap::new();
    // The only refusals of a valid write: 503 / UNAVAILABLE while the replica could not reach
    // Redis (any other refusal fails `refused requests`).
    let mut fenced: BTreeMap<&str, usize> = BTreeMap::new();
    for call in e.calls.iter().filter(|c| c.op.is_write()) {
        match outcome(e, call) {
            Outcome::Acknowledged => {
                let key = format!(
                    "{} {} {}",
                    call.op.name(),
                    call.part.kind().plural(),
                    call.transport.name()
                );
                *acknowledged.entry(key).or_default() += 1;
            }
            Outcome::Unknown => *unknown.entry(call.op.name()).or_default() += 1,
            // A 4xx is counted (and failed) by `refused requests`.
            Outcome::Refused if call.answer.class() == Class::Unavailable => {
                *fenced.entry(call.op.name()).or_default() += 1;
            }
            Outcome::Refused => {}
        }
    }
    report.figure(format!(
        "acknowledged writes: {} ({})",
        acknowledged.values().sum::<usize>(),
        counts(&acknowledged)
    ));
    report.figure(format!(
        "writes of unknown outcome: {} ({})",
        unknown.values().sum::<usize>(),
        counts(&unknown)
    ));
    report.figure(format!(
        "writes refused while their replica could not reach Redis (its link cut, or Redis restarting; 503 / UNAVAILABLE, nothing may be committed): {} ({})",
        fenced.values().sum::<usize>(),
        counts(&fenced)
    ));
    let mut by_status: BTreeMap<String, usize> = BTreeMap::new();
    for call in e.calls {
        *by_status.entry(call.answer.label()).or_default() += 1;
    }
    report.figure(format!("responses: {}", counts(&by_status)));
    let mut by_kind: BTreeMap<&str, usize> = BTreeMap::new();
    for fault in e.faults {
        *by_kind.entry(fault.kind.name()).or_default() += 1;
    }
    report.figure(format!(
        "faults injected: {} of {} planned ({})",
        e.faults.len(),
        e.planned,
        counts(&by_kind)
    ));
    let mut by_link: BTreeMap<&str, u64> = BTreeMap::new();
    for (_, link, n) in e.link_connections {
        *by_link.entry(link.name()).or_default() += n;
    }
    report.figure(format!(
        "connections through the link proxies, all replicas: {}",
        by_link
            .iter()
            .map(|(link, n)| format!("{link} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    for fault in e.faults {
        let mut line = format!(
            "  fault {} {} {}–{} (planned {})",
            fault.kind,
            fault.target,
            secs(fault.start),
            secs(fault.end),
            secs(fault.planned)
        );
        if fault.kind == FaultKind::Terminate {
            match fault.exit {
                Some(status) => line += &format!(", exited {status} after {}", secs(fault.drain)),
                None => line += ", did not exit within the drain deadline (killed)",
            }
        }
        if !fault.note.is_empty() {
            line += &format!(", {}", fault.note);
        }
        report.figure(line);
    }
    let lags = &e.logs.lags_ms;
    let ms = |p: f64| percentile(lags, p).map_or_else(|| "-".into(), |v| v.to_string());
    report.figure(format!(
        "propagation latency (change recorded → applied on the other side): {} changes, p50 {} ms, p99 {} ms, max {} ms",
        lags.len(),
        ms(50.0),
        ms(99.0),
        ms(100.0)
    ));
    report.figure(format!("settle: {}", secs(e.settled.took)));
    report.figure(format!(
        "service log lines at ERROR: {}",
        counts(&e.logs.errors)
    ));
    report.figure(format!(
        "service log lines at WARN: {}",
        counts(&e.logs.warnings)
    ));
}

/// The writes of every entity that got an id, in the order they started.
fn writes_by_id(calls: &[Call]) -> BTreeMap<&str, Vec<&Call>> {
    let mut writes: BTreeMap<&str, Vec<&Call>> = BTreeMap::new();
    for call in calls.iter().filter(|c| c.op.is_write() && !c.id.is_empty()) {
        writes.entry(call.id.as_str()).or_default().push(call);
    }
    writes
}

/// Lost writes (docs/chaos.md, "The checks"): acknowledged creates exist unless a delete was
/// attempted, acknowledged deletes are gone, and each entity shows its last acknowledged write
/// or a later one of unknown outcome, its own links cut to what still exists.
fn lost_writes(e: &Evidence<'_>, state: &State, report: &mut Report) {
    let existing = state.by_id();
    let ids_of =
        |kind: Kind| -> BTreeSet<&str> { state.of(kind).iter().map(|x| x.id.as_str()).collect() };
    let (students, courses) = (ids_of(Kind::Student), ids_of(Kind::Course));
    let writes = writes_by_id(e.calls);
    let mut problems = Vec::new();
    let mut checked = 0;
    for (id, writes) in &writes {
        let Some(create) = writes.iter().find(|c| c.op == CallOp::Create) else {
            continue;
        };
        let part = create.part;
        // A delete refused while Redis was out of reach promised to change nothing: it does not
        // excuse the entity's absence.
        let deletes: Vec<&&Call> = writes
            .iter()
            .filter(|c| c.op == CallOp::Delete && outcome(e, c) != Outcome::Refused)
            .collect();
        let deleted = deletes
            .iter()
            .any(|c| outcome(e, c) == Outcome::Acknowledged);
        let stored = existing.get(id).copied();
        checked += 1;
        if deleted {
            if stored.is_some() {
                problems.push(format!(
                    "{part} {id}: its delete was acknowledged, yet it is listed"
                ));
            }
            continue;
        }
        let Some(stored) = stored else {
            if deletes.is_empty() {
                problems.push(format!(
                    "{part} {id}: created ({} {} at {}) and never deleted, yet it is gone",
                    create.transport.name(),
                    e.addresses[create.replica].name,
                    secs(create.start)
                ));
            }
            continue;
        };
        let content: Vec<&&Call> = writes
            .iter()
            .filter(|c| matches!(c.op, CallOp::Create | CallOp::Update))
            .collect();
        let Some(last) = content
            .iter()
            .rposition(|c| outcome(e, c) == Outcome::Acknowledged)
        else {
            continue;
        };
        let others = match part.kind().other() {
            Kind::Student => &students,
            Kind::Course => &courses,
        };
        let expected = |call: &Call| -> BTreeSet<String> {
            call.links
                .iter()
                .filter(|l| others.contains(l.as_str()))
                .cloned()
                .collect()
        };
        let matches = |call: &Call| {
            stored.counter == call.counter
                && (!part.owns_links()
                    || stored.links.iter().cloned().collect::<BTreeSet<_>>() == expected(call))
        };
        let candidates: Vec<&&&Call> = content[last..]
            .iter()
            .enumerate()
            .filter(|(j, c)| *j == 0 || outcome(e, c) == Outcome::Unknown)
            .map(|(_, c)| c)
            .collect();
        if let Some(refused) = content[last..]
            .iter()
            .find(|c| outcome(e, c) == Outcome::Refused && c.counter == stored.counter)
        {
            problems.push(format!(
                "{part} {id}: stored {}, written by a {} refused with {} at {} by {} while Redis was out of its reach (nothing may be committed)",
                stored.counter,
                refused.op.name(),
                refused.answer.label(),
                secs(refused.end),
                e.addresses[refused.replica].name,
            ));
        } else if !candidates.iter().any(|c| matches(c)) {
            let acked = content[last];
            problems.push(format!(
                "{part} {id}: stored {} {:?}, expected {} {:?} (acknowledged {} over {} by {} at {}){}",
                stored.counter,
                stored.links,
                acked.counter,
                expected(acked),
                acked.op.name(),
                acked.transport.name(),
                e.addresses[acked.replica].name,
                secs(acked.end),
                if candidates.len() > 1 {
                    format!(", or one of {} later writes of unknown outcome", candidates.len() - 1)
                } else {
                    String::new()
                }
            ));
        }
    }
    for (id, answer) in e.deleted {
        if answer != "HTTP 404" {
            problems.push(format!(
                "{id}: its delete was acknowledged, yet GET answers {answer}"
            ));
        }
    }
    // Creates without an id: refused (never applied) or of unknown outcome (maybe applied).
    let names: HashMap<&str, &Entity> = state
        .students
        .iter()
        .chain(&state.courses)
        .map(|x| (x.name.as_str(), x))
        .collect();
    let mut maybe = 0;
    let mut applied = 0;
    for call in e
        .calls
        .iter()
        .filter(|c| c.op == CallOp::Create && c.id.is_empty())
    {
        let found = names.contains_key(call.name.as_str());
        match outcome(e, call) {
            Outcome::Unknown => {
                maybe += 1;
                applied += usize::from(found);
            }
            Outcome::Refused if found => {
                problems.push(format!(
                    "{} {}: its create was refused, yet it exists",
                    call.part, call.name
                ));
            }
            _ => {}
        }
    }
    let acknowledged = e
        .calls
        .iter()
        .filter(|c| c.op.is_write() && outcome(e, c) == Outcome::Acknowledged)
        .count();
    report.check(
        "lost writes",
        problems.is_empty(),
        format!(
            "{} lost; {acknowledged} acknowledged writes over {checked} entities checked, {} deletes confirmed 404; {applied} of {maybe} creates of unknown outcome were applied{}",
            problems.len(),
            e.deleted.len(),
            examples(&problems)
        ),
    );
}

/// Every request the load sends is valid and names entities its worker believes exist, so any
/// refusal (4xx, INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS…) is a bug. A read-back after a
/// delete must answer 404: `stale reads` judges those.
fn refused(e: &Evidence<'_>, report: &mut Report) {
    let problems: Vec<String> = e
        .calls
        .iter()
        .filter(|c| c.answer.class() == Class::Refused && c.op != CallOp::ReadBack)
        .map(|c| {
            format!(
                "{} {} {} over {} to {} at {}: {}",
                c.op.name(),
                c.part,
                if c.id.is_empty() { &c.name } else { &c.id },
                c.transport.name(),
                e.addresses[c.replica].name,
                secs(c.start),
                c.answer.label()
            )
        })
        .collect();
    report.check(
        "refused requests",
        problems.is_empty(),
        format!(
            "{} of {} requests refused{}",
            problems.len(),
            e.calls.len(),
            examples(&problems)
        ),
    );
}

/// What a write's answer says about whether it was applied, knowing the faults: a 503 /
/// UNAVAILABLE that only Redis being out of the replica's reach explains — a cut of its own
/// Redis link, or Redis restarting — is a refusal with nothing committed: the replica could not
/// make the cache safe for the write first (issue 26, docs/behaviour.md §6), and `lost writes`
/// holds it to that. Anything else as the answer says.
pub fn outcome(e: &Evidence<'_>, call: &Call) -> Outcome {
    let fenced = call.op.is_write() && call.answer.class() == Class::Unavailable && {
        let causes = unavailable_causes(e, call);
        !causes.is_empty()
            && causes.iter().all(|(fault, _)| {
                fault.kind == FaultKind::RedisRestart
                    || (fault.kind.link() == Some(Link::Redis)
                        && fault.replica == Some(call.replica))
            })
    };
    if fenced {
        Outcome::Refused
    } else {
        call.answer.outcome()
    }
}

/// The version a counter (`v00`, `v01`, …) names.
fn version(counter: &str) -> Option<u32> {
    counter.strip_prefix('v')?.parse().ok()
}

/// Stale reads (docs/chaos.md, "The checks"): every read of an entity — the load's reads, and
/// the read-back through the other replica right after each acknowledged update and delete —
/// shows the last write acknowledged before it was sent, or a later one; after an acknowledged
/// delete it answers 404 / NOT_FOUND; and it never shows a write that was refused.
fn stale_reads(e: &Evidence<'_>, report: &mut Report) {
    let writes = writes_by_id(e.calls);
    let redis_cut = |call: &Call| {
        e.faults.iter().any(|f| {
            f.kind.link() == Some(Link::Redis)
                && f.replica == Some(call.replica)
                && call.start <= f.end
                && call.end >= f.start
        })
    };
    let mut problems = Vec::new();
    let (mut judged, mut elsewhere, mut after_cut) = (0, 0, 0);
    for read in e
        .calls
        .iter()
        .filter(|c| c.op.reads_entity() && !c.id.is_empty())
    {
        let writes = writes.get(read.id.as_str()).map_or(&[][..], Vec::as_slice);
        let Some(last) = writes
            .iter()
            .filter(|w| outcome(e, w) == Outcome::Acknowledged && w.end <= read.start)
            .max_by_key(|w| w.end)
        else {
            continue;
        };
        let not_found = matches!(
            read.answer,
            Answer::Http(404) | Answer::Grpc(Code::NotFound)
        );
        let problem = match (read.answer.class(), last.op) {
            // No answer to judge: `responses` explains it.
            (Class::Unavailable | Class::Internal | Class::NoAnswer, _) => continue,
            (Class::Ok, CallOp::Delete) => Some(format!(
                "served {} after its delete was acknowledged",
                read.counter
            )),
            (Class::Ok, _) if version(&read.counter) < version(&last.counter) => Some(format!(
                "showed {}, older than the acknowledged {}",
                read.counter, last.counter
            )),
            (Class::Ok, _) => writes
                .iter()
                .find(|w| outcome(e, w) == Outcome::Refused && w.counter == read.counter)
                .map(|w| {
                    format!(
                        "showed {}, written by a {} refused at {}",
                        read.counter,
                        w.op.name(),
                        secs(w.end)
                    )
                }),
            (Class::Refused, CallOp::Delete) if not_found => None,
            // A 404 before any delete is a refusal `refused requests` reports for the load's
            // reads; a read-back is judged here only.
            (Class::Refused, _) if read.op == CallOp::ReadBack => {
                Some(format!("answered {}", read.answer.label()))
            }
            (Class::Refused, _) => continue,
        };
        judged += 1;
        elsewhere += usize::from(read.replica != last.replica);
        after_cut += usize::from(redis_cut(last));
        if let Some(problem) = problem {
            problems.push(format!(
                "{} {} {} over {} to {} at {}: {problem} ({} acknowledged by {} at {})",
                read.op.name(),
                read.part,
                read.id,
                read.transport.name(),
                e.addresses[read.replica].name,
                secs(read.start),
                last.op.name(),
                e.addresses[last.replica].name,
                secs(last.end)
            ));
        }
    }
    report.check(
        "stale reads",
        problems.is_empty() && elsewhere > 0,
        format!(
            "{} stale of {judged} reads judged against the last write acknowledged before them ({elsewhere} through another replica than that write's, {after_cut} after a write acknowledged by a replica cut from Redis at the time){}",
            problems.len(),
            examples(&problems)
        ),
    );
}

/// The dependencies whose faults may make `service` answer 503.
fn dependencies(service: Service) -> &'static [FaultKind] {
    match service {
        Service::Students => &[
            FaultKind::NatsRestart,
            FaultKind::RedisRestart,
            FaultKind::RedisFlush,
            FaultKind::PostgresTerminate,
        ],
        Service::Courses => &[
            FaultKind::NatsRestart,
            FaultKind::RedisRestart,
            FaultKind::RedisFlush,
        ],
    }
}

/// How long MongoDB keeps the open transaction of a client that died: its
/// `transactionLifetimeLimitSeconds`, 60 s on mongod and on the test server (the deployments set
/// 15 s, docs/behaviour.md §5.9). Until then every write to a document that transaction wrote
/// conflicts, and courses answers it 503 after its retries.
pub const ORPHANED_TRANSACTION: Duration = Duration::from_secs(60);

/// The fault that explains a 503 / UNAVAILABLE, or no answer within the client's timeout, to a
/// write long after a fault or on another replica than the one it hit: a transaction another
/// replica left holding what the write needs. A courses replica killed, or cut from MongoDB, in
/// the middle of a transaction leaves it open on the server (and its documents locked) for
/// [`ORPHANED_TRANSACTION`]; courses retries the write until it gives up, which may take longer
/// than the client waits. A students replica whose PostgreSQL link is blackholed keeps its
/// transactions and their row locks open until the heal resets the connection.
fn orphaned_transaction_cause(e: &Evidence<'_>, call: &Call) -> Option<String> {
    if !call.op.is_write() {
        return None;
    }
    let service = e.addresses[call.replica].service;
    let of_service = |f: &FaultRecord| f.replica.is_some_and(|r| e.addresses[r].service == service);
    e.faults.iter().find_map(|f| {
        let held_until = match (service, f.kind) {
            // The transaction is left at the kill; at a reset (or the heal of a blackhole),
            // which ends the cut.
            (Service::Courses, FaultKind::Kill) => f.start + ORPHANED_TRANSACTION,
            (Service::Courses, FaultKind::LinkCut(Link::Database, _)) => {
                f.end + ORPHANED_TRANSACTION
            }
            (Service::Students, FaultKind::LinkCut(Link::Database, CutMode::Blackhole)) => f.end,
            _ => return None,
        };
        (of_service(f) && f.start <= call.end && call.start <= held_until + GRACE).then(|| {
            format!(
                "transaction left open by a {} of {}",
                f.kind,
                service.name()
            )
        })
    })
}

fn overlaps(call: &Call, fault: &FaultRecord) -> bool {
    call.start <= fault.end + GRACE && call.end >= fault.start
}

/// Whether a cut of `link` of the replica a request was sent to explains its failing: its
/// database or NATS, any request; its Redis, only a write (refused before it commits, as it
/// cannot make the cache safe — a read never fails because of the cache); its peer, only a
/// cross query (the only request that asks the peer).
fn link_explains(link: Link, call: &Call) -> bool {
    match link {
        Link::Database | Link::Nats => true,
        Link::Redis => call.op.is_write(),
        Link::Peer => call.op == CallOp::Cross,
    }
}

/// Every fault that may explain a 503 / UNAVAILABLE, with the cause it names: a fault of a
/// dependency of a service the call involved (a cross query involves both); a cut of a link of
/// the replica asked ([`link_explains`]); for a cross query, a fault of a replica of the peer
/// it asked, or a cut of such a replica's database link.
fn unavailable_causes<'f>(e: &'f Evidence<'_>, call: &Call) -> Vec<(&'f FaultRecord, String)> {
    let service = e.addresses[call.replica].service;
    let cross = call.op == CallOp::Cross;
    let mut involved = vec![service];
    if cross {
        involved.push(service.other());
    }
    e.faults
        .iter()
        .filter(|f| overlaps(call, f))
        .filter_map(|f| {
            let cause = match (f.replica, f.kind.link()) {
                (None, _) => involved
                    .iter()
                    .any(|s| dependencies(*s).contains(&f.kind))
                    .then(|| f.kind.name().to_owned()),
                (Some(r), Some(link)) if r == call.replica => {
                    link_explains(link, call).then(|| f.kind.name().to_owned())
                }
                (Some(r), link) => (cross
                    && e.addresses[r].service != service
                    && link.is_none_or(|link| link == Link::Database))
                .then(|| format!("{} of a peer", f.kind.name())),
            }?;
            Some((f, cause))
        })
        .collect()
}

/// The fault that explains a 503 / UNAVAILABLE: of [`unavailable_causes`], one in progress
/// when the request was sent, if there is one, else the most recent one.
fn unavailable_cause(e: &Evidence<'_>, call: &Call) -> Option<String> {
    unavailable_causes(e, call)
        .into_iter()
        .max_by_key(|(f, _)| (f.start <= call.start && call.start <= f.end, f.start))
        .map(|(_, cause)| cause)
}

/// The fault that explains no answer at all: the replica asked was killed, terminated or
/// stalled at the time, or one of its links that the request needed was cut.
fn no_answer_cause(e: &Evidence<'_>, call: &Call) -> Option<String> {
    e.faults
        .iter()
        .rev()
        .find(|f| {
            f.replica == Some(call.replica)
                && overlaps(call, f)
                && f.kind.link().is_none_or(|link| link_explains(link, call))
        })
        .map(|f| f.kind.name().to_owned())
}

fn responses(e: &Evidence<'_>, report: &mut Report) {
    let mut problems = Vec::new();
    let mut unavailable: BTreeMap<String, usize> = BTreeMap::new();
    let mut no_answer: BTreeMap<String, usize> = BTreeMap::new();
    let describe = |c: &Call| {
        format!(
            "{} {} over {} to {} at {}–{}: {}",
            c.op.name(),
            c.part,
            c.transport.name(),
            e.addresses[c.replica].name,
            secs(c.start),
            secs(c.end),
            c.answer.label()
        )
    };
    for call in e.calls {
        match call.answer.class() {
            Class::Ok | Class::Refused => {}
            Class::Internal => problems.push(describe(call)),
            Class::Unavailable => {
                match unavailable_cause(e, call).or_else(|| orphaned_transaction_cause(e, call)) {
                    Some(cause) => *unavailable.entry(cause).or_default() += 1,
                    None => {
                        *unavailable.entry("unexplained".into()).or_default() += 1;
                        problems.push(format!("{} (no fault to explain it)", describe(call)));
                    }
                }
            }
            Class::NoAnswer => {
                match no_answer_cause(e, call).or_else(|| orphaned_transaction_cause(e, call)) {
                    Some(cause) => *no_answer.entry(cause).or_default() += 1,
                    None => {
                        *no_answer.entry("unexplained".into()).or_default() += 1;
                        problems.push(format!("{} (the replica was not down)", describe(call)));
                    }
                }
            }
        }
    }
    report.figure(format!(
        "5xx / UNAVAILABLE by cause: {}",
        counts(&unavailable)
    ));
    report.figure(format!(
        "no answer (connection errors, timeouts) by cause: {}",
        counts(&no_answer)
    ));
    report.check(
        "responses",
        problems.is_empty(),
        format!(
            "{} unexplained of {} requests: no 500 / INTERNAL, every 503 / UNAVAILABLE during a fault of a dependency or peer (+{} s), every connection error to a replica down at the time{}",
            problems.len(),
            e.calls.len(),
            GRACE.as_secs(),
            examples(&problems)
        ),
    );
}

/// Whether `call` was sent so shortly before the SIGTERM of `fault` that it raced the signal.
fn raced(call: &Call, fault: &FaultRecord) -> bool {
    call.start + RACE_MARGIN > fault.start
}

/// Requests in flight to a replica when it got SIGTERM completed OK, and it exited 0.
fn drain(e: &Evidence<'_>, report: &mut Report) {
    let mut problems = Vec::new();
    let mut in_flight = 0;
    let mut racing = 0;
    let mut other_fault = 0;
    let terms: Vec<&FaultRecord> = e
        .faults
        .iter()
        .filter(|f| f.kind == FaultKind::Terminate)
        .collect();
    for fault in &terms {
        let Some(replica) = fault.replica else {
            continue;
        };
        for call in e
            .calls
            .iter()
            .filter(|c| c.replica == replica && c.start < fault.start && c.end > fault.start)
        {
            if raced(call, fault) {
                racing += 1;
                continue;
            }
            in_flight += 1;
            // A 503 / UNAVAILABLE that another fault explains (Redis down, so the write could
            // not be fenced; a link of this replica cut just before the signal) is that fault's,
            // judged by `responses`; the drain is at fault only for what nothing else explains.
            if call.answer.class() == Class::Unavailable && unavailable_cause(e, call).is_some() {
                other_fault += 1;
                continue;
            }
            if call.answer.class() != Class::Ok {
                problems.push(format!(
                    "{} {} over {} to {}, sent {} ms before SIGTERM at {}: {}",
                    call.op.name(),
                    call.part,
                    call.transport.name(),
                    fault.target,
                    (fault.start - call.start).as_millis(),
                    secs(fault.start),
                    call.answer.label()
                ));
            }
        }
        match fault.exit {
            Some(status) if status.success() => {}
            Some(status) => {
                problems.push(format!("{} exited {status} after SIGTERM", fault.target))
            }
            None => problems.push(format!(
                "{} did not exit within the drain deadline",
                fault.target
            )),
        }
    }
    report.check(
        "SIGTERM drain",
        problems.is_empty() && !terms.is_empty(),
        format!(
            "{} SIGTERMs, {in_flight} requests in flight (sent {} ms or more before the signal), {} failed, {other_fault} answered 503 / UNAVAILABLE because of another fault; {racing} sent closer to it not judged{}",
            terms.len(),
            RACE_MARGIN.as_millis(),
            problems.len(),
            examples(&problems)
        ),
    );
}

fn faults_check(e: &Evidence<'_>, report: &mut Report) {
    let injected: BTreeSet<FaultKind> = e.faults.iter().map(|f| f.kind).collect();
    let missing: Vec<&str> = schedule::guaranteed_kinds(e.duration)
        .iter()
        .filter(|k| !injected.contains(k))
        .map(|k| k.name())
        .collect();
    // A cut proves something only if the replica's traffic really goes through the proxy.
    let unproxied: Vec<String> = e
        .link_connections
        .iter()
        .filter(|(_, _, n)| *n == 0)
        .map(|(replica, link, _)| format!("{replica} {}", link.name()))
        .collect();
    let unrecovered: Vec<String> = e
        .faults
        .iter()
        .filter(|f| !f.recovered)
        .map(|f| format!("{} {} at {}: {}", f.kind, f.target, secs(f.start), f.note))
        .collect();
    report.check(
        "faults",
        missing.is_empty()
            && unrecovered.is_empty()
            && unproxied.is_empty()
            && e.faults.len() == e.planned,
        format!(
            "{} of {} planned injected, every kind: {}, all recovered: {}, every link of every replica through its proxy: {}{}",
            e.faults.len(),
            e.planned,
            if missing.is_empty() {
                "yes".to_owned()
            } else {
                format!("no (missing {})", missing.join(", "))
            },
            if unrecovered.is_empty() { "yes" } else { "no" },
            if unproxied.is_empty() {
                "yes".to_owned()
            } else {
                format!("no (no connection: {})", unproxied.join(", "))
            },
            examples(&unrecovered)
        ),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        clients::{Answer, Transport},
        model::Part,
    };

    fn address(index: usize) -> Address {
        Address {
            index,
            service: if index < 2 {
                Service::Students
            } else {
                Service::Courses
            },
            name: crate::replicas::name_of(index),
            http: String::new(),
            grpc: String::new(),
        }
    }

    fn write(op: CallOp, id: &str, at: u64, answer: Answer, counter: &str, links: &[&str]) -> Call {
        Call {
            worker: 0,
            op,
            part: Part::S1,
            id: id.into(),
            name: format!("n-{id}"),
            transport: Transport::Http,
            replica: 0,
            start: Duration::from_secs(at),
            end: Duration::from_secs(at) + Duration::from_millis(10),
            answer,
            counter: counter.into(),
            links: links.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    fn entity(kind: Kind, id: &str, counter: &str, links: &[&str]) -> Entity {
        Entity {
            kind,
            id: id.into(),
            name: format!("n-{id}"),
            tag: "t".into(),
            counter: counter.into(),
            links: links.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    /// The verdict of `lost writes` for these calls and final state.
    fn lost(calls: &[Call], state: State) -> (bool, String) {
        verdict(calls, state, &[], "lost writes")
    }

    /// The verdict of check `name` for these calls, final state and faults.
    fn verdict(calls: &[Call], state: State, faults: &[FaultRecord], name: &str) -> (bool, String) {
        let addresses: Vec<Address> = (0..4).map(address).collect();
        let settled = Settled {
            ok: true,
            took: Duration::ZERO,
            problem: String::new(),
        };
        let evidence = Evidence {
            seed: 1,
            duration: Duration::from_secs(1),
            workers: 1,
            addresses: &addresses,
            calls,
            faults,
            planned: 0,
            link_connections: &[],
            crashes: &[],
            settled: &settled,
            state: &Ok(state),
            outboxes: &Ok((0, 0)),
            dead_letters: &Ok(0),
            deleted: &[],
            logs: &LogFigures::default(),
        };
        let report = evaluate(&evidence);
        let check = report
            .checks
            .iter()
            .find(|c| c.name == name)
            .expect("the check is made");
        (check.passed, check.detail.clone())
    }

    /// A read of `id` through replica `replica` at `at` ms that answered `answer`, showing
    /// `counter`.
    fn read(
        op: CallOp,
        id: &str,
        at_ms: u64,
        replica: usize,
        answer: Answer,
        counter: &str,
    ) -> Call {
        Call {
            op,
            replica,
            start: Duration::from_millis(at_ms),
            end: Duration::from_millis(at_ms + 5),
            answer,
            ..write(op, id, 0, Answer::Timeout, counter, &[])
        }
    }

    /// A cut of replica 0's Redis link from 1.5 s to 2.5 s.
    fn redis_cut() -> FaultRecord {
        FaultRecord {
            kind: FaultKind::LinkCut(Link::Redis, CutMode::Reset),
            target: "students-1 redis".into(),
            replica: Some(0),
            planned: Duration::from_millis(1_500),
            start: Duration::from_millis(1_500),
            end: Duration::from_millis(2_500),
            exit: None,
            drain: Duration::ZERO,
            recovered: true,
            note: String::new(),
        }
    }

    const OK: Answer = Answer::Http(200);

    #[test]
    fn the_last_acknowledged_write_must_be_what_is_stored() {
        let calls = [
            write(CallOp::Create, "s", 1, Answer::Http(201), "v00", &["c1"]),
            write(CallOp::Update, "s", 2, OK, "v01", &["c1", "c2"]),
        ];
        let courses = vec![
            entity(Kind::Course, "c1", "v00", &["s"]),
            entity(Kind::Course, "c2", "v00", &["s"]),
        ];
        let stored = |counter: &str, links: &[&str]| State {
            students: vec![entity(Kind::Student, "s", counter, links)],
            courses: courses.clone(),
        };
        assert!(lost(&calls, stored("v01", &["c2", "c1"])).0);
        let (passed, detail) = lost(&calls, stored("v00", &["c1"]));
        assert!(!passed, "the update was lost: {detail}");
        assert!(!lost(&calls, stored("v01", &["c1"])).0, "a link was lost");
    }

    #[test]
    fn a_later_write_of_unknown_outcome_may_have_won_and_gone_links_are_cut() {
        let calls = [
            write(CallOp::Create, "s", 1, Answer::Http(201), "v00", &[]),
            write(CallOp::Update, "s", 2, OK, "v01", &["c1", "gone"]),
            write(
                CallOp::Update,
                "s",
                3,
                Answer::Timeout,
                "v02",
                &["c1", "c2"],
            ),
        ];
        let state = |counter: &str, links: &[&str]| State {
            students: vec![entity(Kind::Student, "s", counter, links)],
            courses: vec![
                entity(Kind::Course, "c1", "v00", &[]),
                entity(Kind::Course, "c2", "v00", &[]),
            ],
        };
        assert!(
            lost(&calls, state("v01", &["c1"])).0,
            "the acknowledged one, minus a gone course"
        );
        assert!(
            lost(&calls, state("v02", &["c1", "c2"])).0,
            "the unknown one"
        );
        assert!(!lost(&calls, state("v02", &["c1"])).0, "a mix of both");
    }

    #[test]
    fn acknowledged_creates_stay_and_acknowledged_deletes_go() {
        let created = [write(CallOp::Create, "s", 1, Answer::Http(201), "v00", &[])];
        let empty = State::default();
        assert!(
            !lost(&created, empty.clone()).0,
            "an acknowledged create is missing"
        );
        let mut deleted = created.to_vec();
        deleted.push(write(CallOp::Delete, "s", 2, Answer::Http(204), "", &[]));
        assert!(lost(&deleted, empty).0);
        let still_there = State {
            students: vec![entity(Kind::Student, "s", "v00", &[])],
            courses: vec![],
        };
        assert!(
            !lost(&deleted, still_there.clone()).0,
            "an acknowledged delete left it"
        );
        deleted[1].answer = Answer::Connection("http connect".into());
        assert!(
            lost(&deleted, still_there).0,
            "a delete of unknown outcome may not have happened"
        );
    }

    #[test]
    fn a_read_after_an_acknowledged_write_on_another_replica_must_show_it() {
        let writes = [
            write(CallOp::Create, "s", 1, Answer::Http(201), "v00", &[]),
            write(CallOp::Update, "s", 2, OK, "v01", &[]),
        ];
        let state = State {
            students: vec![entity(Kind::Student, "s", "v01", &[])],
            courses: vec![],
        };
        let with = |read: Call| {
            let mut calls = writes.to_vec();
            calls.push(read);
            verdict(&calls, state.clone(), &[], "stale reads")
        };
        // The update ended at 2.010 s; a read sent after it, through replica 1.
        assert!(with(read(CallOp::ReadBack, "s", 2_020, 1, OK, "v01")).0);
        let (passed, detail) = with(read(CallOp::ReadBack, "s", 2_020, 1, OK, "v00"));
        assert!(
            !passed,
            "an old version through the other replica: {detail}"
        );
        assert!(
            detail.contains("older than the acknowledged v01"),
            "{detail}"
        );
        // Sent before the update was acknowledged: either version may show.
        assert!(
            with(read(CallOp::Get, "s", 2_005, 1, OK, "v00"))
                .1
                .contains("0 stale")
        );
        assert!(
            !with(read(CallOp::ReadBack, "s", 2_020, 1, Answer::Http(404), "")).0,
            "not found after an acknowledged update"
        );
        // Unanswered reads are for `responses`, not judged here (and with nothing judged through
        // another replica, the check lacks its evidence).
        let (passed, detail) = with(read(CallOp::ReadBack, "s", 2_020, 1, Answer::Http(503), ""));
        assert!(
            !passed && detail.starts_with("0 stale of 0 reads judged"),
            "{detail}"
        );
    }

    #[test]
    fn a_read_after_an_acknowledged_delete_must_not_find_it() {
        let writes = [
            write(CallOp::Create, "s", 1, Answer::Http(201), "v00", &[]),
            write(CallOp::Delete, "s", 2, Answer::Http(204), "", &[]),
        ];
        let with = |read: Call| {
            let mut calls = writes.to_vec();
            calls.push(read);
            verdict(&calls, State::default(), &[], "stale reads")
        };
        assert!(with(read(CallOp::ReadBack, "s", 2_020, 1, Answer::Http(404), "")).0);
        assert!(
            with(read(
                CallOp::ReadBack,
                "s",
                2_020,
                1,
                Answer::Grpc(Code::NotFound),
                ""
            ))
            .0
        );
        assert!(!with(read(CallOp::ReadBack, "s", 2_020, 1, OK, "v00")).0);
    }

    #[test]
    fn a_write_refused_during_a_redis_cut_of_its_replica_must_not_be_committed() {
        let calls = [
            write(CallOp::Create, "s", 1, Answer::Http(201), "v00", &[]),
            write(CallOp::Update, "s", 2, Answer::Http(503), "v01", &[]),
        ];
        let stored = |counter: &str| State {
            students: vec![entity(Kind::Student, "s", counter, &[])],
            courses: vec![],
        };
        let cut = [redis_cut()];
        assert!(verdict(&calls, stored("v00"), &cut, "lost writes").0);
        let (passed, detail) = verdict(&calls, stored("v01"), &cut, "lost writes");
        assert!(!passed, "the refused update was committed: {detail}");
        // Without the cut the same 503 is of unknown outcome: either version may be stored...
        assert!(verdict(&calls, stored("v01"), &[], "lost writes").0);
        // ...and it is explained by no fault.
        assert!(!verdict(&calls, stored("v01"), &[], "responses").0);
        // Redis restarting holds the write to the same promise.
        let restart = [FaultRecord {
            kind: FaultKind::RedisRestart,
            target: "redis".into(),
            replica: None,
            ..redis_cut()
        }];
        assert!(!verdict(&calls, stored("v01"), &restart, "lost writes").0);
        // With another fault that could explain it, its outcome is unknown.
        let both = [
            redis_cut(),
            FaultRecord {
                kind: FaultKind::PostgresTerminate,
                target: "postgres".into(),
                replica: None,
                ..redis_cut()
            },
        ];
        assert!(verdict(&calls, stored("v01"), &both, "lost writes").0);
        assert!(verdict(&calls, stored("v00"), &cut, "responses").0);
        // A read during the cut fails because of the cache: never explained by it.
        let mut with_read = calls.to_vec();
        with_read.push(read(CallOp::Get, "s", 2_100, 0, Answer::Http(503), ""));
        assert!(!verdict(&with_read, stored("v00"), &cut, "responses").0);
    }

    #[test]
    fn a_request_in_flight_at_sigterm_fails_the_drain_unless_another_fault_explains_it() {
        let term = FaultRecord {
            kind: FaultKind::Terminate,
            target: "students-1".into(),
            replica: Some(0),
            exit: Some(std::os::unix::process::ExitStatusExt::from_raw(0)),
            ..redis_cut()
        };
        let restart = FaultRecord {
            kind: FaultKind::RedisRestart,
            target: "redis".into(),
            replica: None,
            ..redis_cut()
        };
        // Sent at 1.4 s, answered at 1.6 s: in flight at the SIGTERM at 1.5 s.
        let in_flight = |answer: Answer| Call {
            end: Duration::from_millis(1_600),
            ..read(CallOp::Update, "s", 1_400, 0, answer, "v01")
        };
        let drained = |answer: Answer, faults: &[FaultRecord]| {
            verdict(
                &[in_flight(answer)],
                State::default(),
                faults,
                "SIGTERM drain",
            )
        };
        assert!(drained(OK, std::slice::from_ref(&term)).0);
        let (passed, detail) = drained(Answer::Http(503), std::slice::from_ref(&term));
        assert!(!passed, "nothing but the SIGTERM explains it: {detail}");
        assert!(drained(Answer::Http(503), &[term.clone(), restart.clone()]).0);
        assert!(!drained(Answer::Connection("http request".into()), &[term, restart]).0);
    }

    #[test]
    fn the_relation_must_be_whole() {
        let whole = State {
            students: vec![entity(Kind::Student, "s", "v00", &["c"])],
            courses: vec![entity(Kind::Course, "c", "v00", &["s"])],
        };
        assert!(relation_problems(&whole).is_empty());
        let one_sided = State {
            students: vec![entity(Kind::Student, "s", "v00", &["c"])],
            courses: vec![entity(Kind::Course, "c", "v00", &[])],
        };
        assert_eq!(relation_problems(&one_sided).len(), 1);
        let dangling = State {
            students: vec![entity(Kind::Student, "s", "v00", &["x"])],
            courses: vec![],
        };
        assert!(
            relation_problems(&dangling)
                .iter()
                .any(|p| p.contains("does not exist"))
        );
    }
}

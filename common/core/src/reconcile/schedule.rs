//! When reconciliation runs: every `RECONCILE_INTERVAL_SECS` in every replica, the replica
//! holding the lease doing the run, so one run happens per interval across replicas; and on
//! demand (`students reconcile`). Both record the same metrics and logs.

use std::{future::Future, time::Duration};

use tokio::sync::watch;

use super::{Reconciler, RelationPeer, RelationStore, Report};
use crate::{
    entity::Entity,
    error::Error,
    links::now_micros,
    metric_names::{
        DEAD_LETTERS, RECONCILE_DURATION, RECONCILE_INTERVAL, RECONCILE_LAST_SUCCESS,
        RECONCILE_REPAIRED_TOTAL, RECONCILE_RUNS_TOTAL,
    },
    service::{Context, EntityService, Transport},
};

/// The name of the lease the replicas of a service share.
pub const LEASE: &str = "reconcile";

/// Counts the dead letters of this service (messages no retry will apply by itself).
pub trait DeadLetters: Send + Sync {
    /// How many there are now.
    fn count(&self) -> impl Future<Output = Result<u64, Error>> + Send;
}

/// Nowhere to count dead letters (the fakes).
impl DeadLetters for () {
    async fn count(&self) -> Result<u64, Error> {
        Ok(0)
    }
}

/// A finished run, with the dead letters counted after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    /// What the run found and did.
    pub report: Report,
    /// The dead letters of this service after the run (`None`: they could not be counted).
    pub dead_letters: Option<u64>,
}

fn seconds_since_epoch() -> f64 {
    now_micros() as f64 / 1e6
}

/// Runs reconciliation once against `peer` and records it: metrics (unless `dry_run`), a log
/// line, the dead letters counted.
pub async fn once<E, St, Sv, P, D>(
    reconciler: &Reconciler<E, St, Sv>,
    peer: &P,
    dead: &D,
    dry_run: bool,
) -> Result<Finished, Error>
where
    E: Entity,
    St: RelationStore,
    Sv: EntityService<E>,
    P: RelationPeer,
    D: DeadLetters,
{
    let ctx = Context::new(Transport::Reconcile, uuid::Uuid::new_v4().to_string());
    let service = E::KIND;
    let run = reconciler.run(&ctx, peer, dry_run).await;
    let report = match run {
        Ok(report) => report,
        Err(e) => {
            metrics::counter!(RECONCILE_RUNS_TOTAL, "service" => service, "outcome" => "failed")
                .increment(1);
            tracing::warn!(service, request_id = %ctx.request_id, error = %e.chain(), "reconcile: the run failed");
            return Err(e);
        }
    };
    let dead_letters = match dead.count().await {
        Ok(n) => Some(n),
        Err(e) => {
            tracing::warn!(service, error = %e.chain(), "reconcile: the dead letters could not be counted");
            None
        }
    };
    if !dry_run {
        metrics::counter!(RECONCILE_RUNS_TOTAL, "service" => service, "outcome" => "ok")
            .increment(1);
        metrics::counter!(RECONCILE_REPAIRED_TOTAL, "service" => service, "direction" => "here")
            .increment(report.repaired_here);
        metrics::counter!(RECONCILE_REPAIRED_TOTAL, "service" => service, "direction" => "peer")
            .increment(report.repaired_peer);
        metrics::histogram!(RECONCILE_DURATION, "service" => service)
            .record(report.duration.as_secs_f64());
        metrics::gauge!(RECONCILE_LAST_SUCCESS, "service" => service).set(seconds_since_epoch());
        if let Some(n) = dead_letters {
            metrics::gauge!(DEAD_LETTERS, "service" => service).set(n as f64);
        }
    }
    // One line per run with every figure of the report (`make bench` reads it): a warning when
    // it repaired something, since each repair is a change lost upstream.
    macro_rules! run_line {
        ($level:ident, $message:literal) => {
            tracing::$level!(
                service,
                request_id = %ctx.request_id,
                dry_run,
                pairs = report.pairs_checked,
                buckets_differed = report.buckets_differed,
                repaired_here = report.repaired_here,
                repaired_peer = report.repaired_peer,
                compensated = report.compensated,
                in_flight = report.in_flight,
                dead_letters,
                bytes_exchanged = report.bytes_exchanged,
                duration_s = report.duration.as_secs_f64(),
                $message
            )
        };
    }
    if report.repaired_here + report.repaired_peer > 0 && !dry_run {
        run_line!(
            warn,
            "reconcile: repaired pairs the queue had not delivered"
        );
    } else {
        run_line!(info, "reconcile: run finished");
    }
    Ok(Finished {
        report,
        dead_letters,
    })
}

/// Every `interval` (none when it is zero), the replica that takes the lease runs
/// reconciliation against `peer`; returns when `shutdown` turns true.
pub async fn every<E, St, Sv, P, D>(
    reconciler: Reconciler<E, St, Sv>,
    peer: P,
    dead: D,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) where
    E: Entity,
    St: RelationStore,
    Sv: EntityService<E>,
    P: RelationPeer,
    D: DeadLetters,
{
    let service = E::KIND;
    metrics::gauge!(RECONCILE_INTERVAL, "service" => service).set(interval.as_secs_f64());
    // Until a run succeeds, "the last success" is the start: the alert on missing runs then
    // measures from there.
    metrics::gauge!(RECONCILE_LAST_SUCCESS, "service" => service).set(seconds_since_epoch());
    // Every series exists from the start at 0, so that the first repair a process makes is an
    // increase an alert can see, not the first sample of a new series.
    for direction in ["here", "peer"] {
        metrics::counter!(RECONCILE_REPAIRED_TOTAL, "service" => service, "direction" => direction)
            .increment(0);
    }
    for outcome in ["ok", "failed"] {
        metrics::counter!(RECONCILE_RUNS_TOTAL, "service" => service, "outcome" => outcome)
            .increment(0);
    }
    if interval.is_zero() {
        return;
    }
    // This process's claim on the lease: a restarted one waits out its predecessor's.
    let holder = uuid::Uuid::new_v4().to_string();
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            () = tokio::time::sleep(interval) => {}
        }
        if *shutdown.borrow() {
            return;
        }
        match reconciler.store().try_lease(LEASE, &holder, interval).await {
            Ok(true) => {
                // Failures are counted and logged by `once`; the next interval tries again.
                let _ = once(&reconciler, &peer, &dead, false).await;
            }
            Ok(false) => tracing::debug!(service, "reconcile: another replica holds the lease"),
            Err(e) => {
                metrics::counter!(RECONCILE_RUNS_TOTAL, "service" => service, "outcome" => "failed")
                    .increment(1);
                tracing::warn!(service, error = %e.chain(), "reconcile: the lease could not be taken");
            }
        }
    }
}

//! The relay: publishes what the outbox holds, oldest first, and forgets what the queue
//! acknowledged. It runs on a tick and whenever a commit signals new entries; after a failure
//! it backs off (doubling up to [`MAX_BACKOFF`]) and keeps the unpublished entries for the next
//! round, so nothing is lost and order is kept.

use std::time::Duration;

use tokio::sync::watch;

use super::{Outbox, OutboxSignal, Publisher};
use crate::{
    error::Error,
    metric_names::{EVENTS_PUBLISHED_TOTAL, OUTBOX_PENDING},
};

/// Entries published per round.
pub const BATCH: usize = 100;
/// How often the relay looks even when not signalled (entries left by a crash, other replicas).
pub const TICK: Duration = Duration::from_millis(500);
/// The shortest pause after a failure.
pub const MIN_BACKOFF: Duration = Duration::from_millis(200);
/// The longest pause after failures.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The test-only failpoint: with `NIS_FAILPOINT=crash_before_publish`, the process aborts
/// (like SIGKILL) the first time it is about to publish committed entries.
const FAILPOINT: &str = "crash_before_publish";

/// What one round of the relay found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Round {
    /// The outbox was empty.
    Empty,
    /// A batch went out; `more` when it was full, so more may wait.
    Published {
        /// Whether another round should follow at once.
        more: bool,
    },
}

/// The pause after a round: none after success, doubling from [`MIN_BACKOFF`] to
/// [`MAX_BACKOFF`] after each failure in a row.
pub fn next_backoff(previous: Duration, failed: bool) -> Duration {
    if failed {
        (previous * 2).clamp(MIN_BACKOFF, MAX_BACKOFF)
    } else {
        Duration::ZERO
    }
}

/// Publishes one batch, in order, stopping at the first failure; what was acknowledged is
/// forgotten, the rest stays for the next round.
pub async fn publish_round<O: Outbox, P: Publisher>(
    outbox: &O,
    publisher: &P,
    service: &'static str,
) -> Result<Round, Error> {
    let entries = outbox.pending(BATCH).await?;
    if entries.is_empty() {
        return Ok(Round::Empty);
    }
    if failpoint_set() {
        tracing::error!(
            service,
            pending = entries.len(),
            "failpoint {FAILPOINT}: aborting"
        );
        std::process::abort();
    }
    let mut done = Vec::with_capacity(entries.len());
    let mut failure = None;
    for entry in &entries {
        match publisher.publish(entry).await {
            Ok(()) => {
                metrics::counter!(EVENTS_PUBLISHED_TOTAL, "service" => service, "subject" => entry.subject.clone())
                    .increment(1);
                done.push(entry.id.clone());
            }
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    if !done.is_empty() {
        outbox.published(&done).await?;
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(Round::Published {
            more: entries.len() == BATCH,
        }),
    }
}

fn failpoint_set() -> bool {
    std::env::var("NIS_FAILPOINT").is_ok_and(|f| f == FAILPOINT)
}

/// Publishes `outbox` through `publisher` until `shutdown` turns true.
pub async fn run<O: Outbox, P: Publisher>(
    outbox: O,
    publisher: P,
    signal: OutboxSignal,
    service: &'static str,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut backoff = Duration::ZERO;
    let mut again = false;
    loop {
        if !again {
            let pause = if backoff.is_zero() { TICK } else { backoff };
            tokio::select! {
                _ = shutdown.changed() => return,
                () = signal.recorded() => {},
                () = tokio::time::sleep(pause) => {},
            }
        }
        if *shutdown.borrow() {
            return;
        }
        let pending = metrics::gauge!(OUTBOX_PENDING, "service" => service);
        let round = publish_round(&outbox, &publisher, service).await;
        backoff = next_backoff(backoff, round.is_err());
        again = false;
        match round {
            // Nothing waits: the idle relay costs one cheap query per tick, not a count.
            Ok(Round::Empty) => {
                pending.set(0.0);
                continue;
            }
            Ok(Round::Published { more }) => again = more,
            Err(e) => {
                tracing::warn!(service, error = %e, retry_in = ?backoff, "outbox relay: publishing failed; will retry");
            }
        }
        if let Ok(backlog) = outbox.backlog().await {
            pending.set(backlog as f64);
        }
    }
}

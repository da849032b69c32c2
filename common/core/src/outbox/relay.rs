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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        Core,
        fakes::{
            MemoryStore, RecordingPublisher,
            entities::{Key, MemberDraft, Pupil},
        },
        service::{Context, EntityService, Transport},
    };

    /// A store whose outbox holds `n` entries (one create with `n` links).
    async fn outbox_with(n: usize) -> (MemoryStore<Pupil>, Vec<String>) {
        let store = MemoryStore::<Pupil>::new(|i| Key(format!("s{i}")));
        let core = Core::new(store.clone(), "t.links.students");
        let links = (0..n).map(|i| Key(format!("c{i}"))).collect();
        let ctx = Context::new(Transport::Http, "r");
        core.create(
            &ctx,
            MemberDraft {
                name: "a".into(),
                links,
            },
        )
        .await
        .expect("created");
        let ids = store
            .pending(usize::MAX)
            .await
            .expect("pending")
            .into_iter()
            .map(|e| e.id)
            .collect();
        (store, ids)
    }

    #[tokio::test]
    async fn a_round_publishes_in_order_and_forgets_what_was_acknowledged() {
        let (store, ids) = outbox_with(3).await;
        let publisher = RecordingPublisher::default();
        let round = publish_round(&store, &publisher, "students")
            .await
            .expect("published");
        assert_eq!(round, Round::Published { more: false });
        assert_eq!(publisher.published_ids(), ids);
        assert_eq!(store.backlog().await.expect("backlog"), 0);
        let idle = publish_round(&store, &publisher, "students")
            .await
            .expect("idle");
        assert_eq!(idle, Round::Empty);
    }

    #[tokio::test]
    async fn a_failure_keeps_the_rest_for_the_next_round_in_order() {
        let (store, ids) = outbox_with(5).await;
        let publisher = RecordingPublisher::default();
        publisher.fail_after(Some(2));
        publish_round(&store, &publisher, "students")
            .await
            .expect_err("the third publish fails");
        assert_eq!(publisher.published_ids(), ids[..2]);
        assert_eq!(
            store.backlog().await.expect("backlog"),
            3,
            "unacknowledged entries stay"
        );
        publisher.fail_after(None);
        publish_round(&store, &publisher, "students")
            .await
            .expect("published");
        assert_eq!(
            publisher.published_ids(),
            ids,
            "nothing lost, nothing reordered"
        );
    }

    #[tokio::test]
    async fn a_full_batch_asks_for_another_round_at_once() {
        let (store, _) = outbox_with(BATCH + 1).await;
        let publisher = RecordingPublisher::default();
        let first = publish_round(&store, &publisher, "students")
            .await
            .expect("published");
        assert_eq!(first, Round::Published { more: true });
        assert_eq!(store.backlog().await.expect("backlog"), 1);
    }

    #[test]
    fn the_backoff_doubles_from_its_floor_to_its_ceiling_and_resets() {
        let mut pause = Duration::ZERO;
        let mut seen = vec![];
        for _ in 0..7 {
            pause = next_backoff(pause, true);
            seen.push(pause.as_millis());
        }
        assert_eq!(seen, [200, 400, 800, 1_600, 3_200, 5_000, 5_000]);
        assert_eq!(next_backoff(pause, false), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn the_relay_publishes_what_is_signalled_and_stops_when_told() {
        let (store, ids) = outbox_with(2).await;
        let publisher = RecordingPublisher::default();
        let signal = OutboxSignal::default();
        let (stop, stopped) = watch::channel(false);
        let relay = tokio::spawn(run(
            store.clone(),
            publisher.clone(),
            signal.clone(),
            "students",
            stopped,
        ));
        signal.notify();
        while publisher.published_ids().len() < 2 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(publisher.published_ids(), ids);
        stop.send(true).expect("relay listens");
        relay.await.expect("relay returns");
    }
}

//! The relay: claims a batch of the outbox, oldest first, publishes it pipelined and forgets what
//! the queue acknowledged. It runs on a tick and whenever a commit signals new entries; after a
//! failure it backs off (doubling up to [`MAX_BACKOFF`]) and keeps the unacknowledged entries
//! (still claimed by it) for its next round, so nothing is lost. Order between entries does not
//! matter to the receiver, which goes by the pair clocks (docs/behaviour.md §5.1).

use std::time::Duration;

use tokio::sync::watch;

use super::{Outbox, OutboxSignal, Publisher};
use crate::{
    error::Error,
    metric_names::{EVENTS_PUBLISHED_TOTAL, OUTBOX_PENDING},
};

/// Entries claimed and published per round.
pub const BATCH: usize = 250;
/// How long a relay holds the entries it claimed: longer than a round takes (a publish waits
/// at most 5 s for its acknowledgement), so another relay takes them over only from a relay
/// that died or hung.
pub const LEASE: Duration = Duration::from_secs(15);
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

/// Claims one batch for relay `relay` and publishes it pipelined; what was acknowledged is
/// forgotten, the rest stays claimed for the next round.
pub async fn publish_round<O: Outbox, P: Publisher>(
    outbox: &O,
    publisher: &P,
    service: &'static str,
    relay: &str,
) -> Result<Round, Error> {
    let entries = outbox.claim(relay, BATCH, LEASE).await?;
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
    let answers = publisher.publish_all(&entries).await;
    for (entry, answer) in entries.iter().zip(answers) {
        match answer {
            Ok(()) => {
                metrics::counter!(EVENTS_PUBLISHED_TOTAL, "service" => service, "subject" => entry.subject.clone())
                    .increment(1);
                done.push(entry.id.clone());
            }
            Err(e) => {
                failure.get_or_insert(e);
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
    // This relay's claims: a new id per process, so a restarted one does not inherit the claims
    // of the process it replaces before their lease ends.
    let relay = uuid::Uuid::new_v4().to_string();
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
        let round = publish_round(&outbox, &publisher, service, &relay).await;
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
        let ids = store.outbox_ids();
        (store, ids)
    }

    #[tokio::test]
    async fn a_round_publishes_in_order_and_forgets_what_was_acknowledged() {
        let (store, ids) = outbox_with(3).await;
        let publisher = RecordingPublisher::default();
        let round = publish_round(&store, &publisher, "students", "r1")
            .await
            .expect("published");
        assert_eq!(round, Round::Published { more: false });
        assert_eq!(publisher.published_ids(), ids);
        assert_eq!(store.backlog().await.expect("backlog"), 0);
        let idle = publish_round(&store, &publisher, "students", "r1")
            .await
            .expect("idle");
        assert_eq!(idle, Round::Empty);
    }

    #[tokio::test]
    async fn a_failure_keeps_what_was_not_acknowledged_for_the_relays_next_round() {
        let (store, ids) = outbox_with(5).await;
        let publisher = RecordingPublisher::default();
        publisher.fail_after(Some(2));
        publish_round(&store, &publisher, "students", "r1")
            .await
            .expect_err("the third publish fails");
        assert_eq!(publisher.published_ids(), ids[..2]);
        assert_eq!(
            store.backlog().await.expect("backlog"),
            3,
            "unacknowledged entries stay"
        );
        // Still claimed by r1 for the lease: another relay leaves them alone, r1 takes them up.
        let other = store.claim("r2", BATCH, LEASE).await.expect("claim");
        assert!(other.is_empty(), "{other:?}");
        publisher.fail_after(None);
        publish_round(&store, &publisher, "students", "r1")
            .await
            .expect("published");
        assert_eq!(publisher.published_ids(), ids, "nothing lost");
    }

    #[tokio::test]
    async fn two_relays_claim_disjoint_batches_and_publish_each_entry_once() {
        let (store, ids) = outbox_with(BATCH + 50).await;
        let publisher = RecordingPublisher::default();
        let (first, second) = tokio::join!(
            publish_round(&store, &publisher, "students", "r1"),
            publish_round(&store, &publisher, "students", "r2"),
        );
        first.expect("r1 published");
        second.expect("r2 published");
        let mut published = publisher.published_ids();
        published.sort();
        let mut expected = ids;
        expected.sort();
        assert_eq!(published, expected, "every entry exactly once");
        assert_eq!(store.backlog().await.expect("backlog"), 0);
    }

    #[tokio::test]
    async fn the_claims_of_a_relay_that_died_pass_to_another_when_its_lease_ends() {
        let (store, ids) = outbox_with(3).await;
        // A relay that claimed everything with a lease that has already run out, then died.
        let dead = store.claim("dead", BATCH, Duration::ZERO).await;
        assert_eq!(dead.expect("claim").len(), 3);
        let publisher = RecordingPublisher::default();
        publish_round(&store, &publisher, "students", "r2")
            .await
            .expect("published");
        assert_eq!(publisher.published_ids(), ids);
    }

    #[tokio::test]
    async fn a_full_batch_asks_for_another_round_at_once() {
        let (store, _) = outbox_with(BATCH + 1).await;
        let publisher = RecordingPublisher::default();
        let first = publish_round(&store, &publisher, "students", "r1")
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

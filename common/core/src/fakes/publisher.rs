//! A [`Publisher`] that records what it was given, and fails when told to.

use std::sync::{Arc, Mutex, MutexGuard};

use crate::{
    error::Error,
    outbox::{OutboxEntry, Publisher},
};

#[derive(Default)]
struct State {
    published: Vec<OutboxEntry>,
    /// Publishes that succeed before every further one fails (`None`: never fail).
    failing_after: Option<usize>,
}

/// Records published entries. Clones share the record.
#[derive(Clone, Default)]
pub struct RecordingPublisher {
    state: Arc<Mutex<State>>,
}

impl std::fmt::Debug for RecordingPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecordingPublisher")
    }
}

impl RecordingPublisher {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// From now on, `n` more publishes succeed and then every one fails (`None`: all succeed).
    pub fn fail_after(&self, n: Option<usize>) {
        self.lock().failing_after = n;
    }

    /// The ids of what was published, in order.
    pub fn published_ids(&self) -> Vec<String> {
        self.lock().published.iter().map(|e| e.id.clone()).collect()
    }

    /// Removes and returns what was published, in order.
    pub fn take(&self) -> Vec<OutboxEntry> {
        std::mem::take(&mut self.lock().published)
    }
}

impl Publisher for RecordingPublisher {
    async fn publish_all(&self, entries: &[OutboxEntry]) -> Vec<Result<(), Error>> {
        let mut state = self.lock();
        entries
            .iter()
            .map(|entry| {
                match state.failing_after {
                    Some(0) => return Err(Error::unavailable("the queue did not acknowledge")),
                    Some(n) => state.failing_after = Some(n - 1),
                    None => {}
                }
                state.published.push(entry.clone());
                Ok(())
            })
            .collect()
    }
}

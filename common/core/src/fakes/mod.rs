//! In-memory fakes of the ports, for tests that need no server: a store with its outbox, a
//! cache with generations, a peer and a publisher. They keep the ports' semantics (conditional
//! commits, generation-scoped entries, acknowledged publishes) so the core and the adapters can
//! be tested in milliseconds; the real adapters are tested against real servers.
//!
//! Available to this crate's tests and, with the `fakes` feature, to other crates' tests.

mod cache;
pub mod entities;
mod publisher;
mod store;

pub use cache::MemoryCache;
pub use publisher::RecordingPublisher;
pub use store::MemoryStore;

use crate::{error::Error, paging::Page, peer::Peer, service::Context};

/// A peer that answers every cross query with the same list, or fails when told to.
#[derive(Debug, Clone, Default)]
pub struct FakePeer {
    answer: Option<Vec<serde_json::Value>>,
}

impl FakePeer {
    /// A peer that answers with `items`.
    pub fn answering(items: Vec<serde_json::Value>) -> Self {
        Self {
            answer: Some(items),
        }
    }

    /// A peer that is down: every call is [`Error::Unavailable`].
    pub fn down() -> Self {
        Self { answer: None }
    }
}

impl Peer for FakePeer {
    type Item = serde_json::Value;

    async fn linked_to(
        &self,
        _ctx: &Context,
        _id: &str,
        page: Page,
    ) -> Result<Vec<serde_json::Value>, Error> {
        let items = self
            .answer
            .clone()
            .ok_or_else(|| Error::unavailable("the peer service did not answer: down"))?;
        let skip = usize::try_from(page.offset).unwrap_or(usize::MAX);
        Ok(items
            .into_iter()
            .skip(skip)
            .take(page.limit as usize)
            .collect())
    }
}

//! In-memory fakes of the ports, for tests that need no server: a store with its outbox, a
//! cache with generations, a peer and a publisher. They keep the ports' semantics (conditional
//! commits, generation-scoped entries, acknowledged publishes) so the core and the adapters can
//! be tested in milliseconds; the real adapters are tested against real servers.
//!
//! Available to this crate's tests and, with the `fakes` feature, to other crates' tests.

pub mod cache;
pub mod entities;
mod publisher;
mod store;

pub use cache::{MemoryCache, Step};
pub use publisher::RecordingPublisher;
pub use store::MemoryStore;

use std::collections::BTreeSet;

use crate::{error::Error, paging::Page, peer::Peer, service::Context};

/// A peer that answers every cross query with the same list, or fails when told to. Every
/// entity exists on it unless [`FakePeer::knowing`] names the ones that do.
#[derive(Debug, Clone, Default)]
pub struct FakePeer {
    answer: Option<Vec<serde_json::Value>>,
    /// `None`: every id exists.
    known: Option<BTreeSet<String>>,
}

impl FakePeer {
    /// A peer that answers with `items`, on which every entity exists.
    pub fn answering(items: Vec<serde_json::Value>) -> Self {
        Self {
            answer: Some(items),
            known: None,
        }
    }

    /// A peer that is down: every call is [`Error::Unavailable`].
    pub fn down() -> Self {
        Self {
            answer: None,
            known: None,
        }
    }

    /// This peer with only the entities `ids` existing on it; any other is not found.
    #[must_use]
    pub fn knowing<I: Into<String>>(self, ids: impl IntoIterator<Item = I>) -> Self {
        Self {
            known: Some(ids.into_iter().map(Into::into).collect()),
            ..self
        }
    }

    fn up(&self) -> Result<&[serde_json::Value], Error> {
        self.answer
            .as_deref()
            .ok_or_else(|| Error::unavailable("the peer service did not answer: down"))
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
        let skip = usize::try_from(page.offset).unwrap_or(usize::MAX);
        Ok(self
            .up()?
            .iter()
            .skip(skip)
            .take(page.limit as usize)
            .cloned()
            .collect())
    }

    async fn ensure_exists(&self, _ctx: &Context, id: &str) -> Result<(), Error> {
        self.up()?;
        match &self.known {
            Some(known) if !known.contains(id) => {
                Err(Error::NotFound(format!("peer entity {id} not found")))
            }
            _ => Ok(()),
        }
    }
}

//! The peer port: the other service, asked which of its entities link an entity of ours (the
//! cross queries). Adapters bound every call in time; a peer that is down or slow is
//! [`Error::Unavailable`], never a hang.

use std::future::Future;

use serde::Serialize;

use crate::{error::Error, paging::Page, service::Context};

/// The other service, asked which of its entities link an entity of ours.
pub trait Peer: Clone + Send + Sync + 'static {
    /// The other service's entity, as it is shown in JSON.
    type Item: Serialize + Send + 'static;

    /// A page of the other service's entities that link our entity `id`.
    fn linked_to(
        &self,
        ctx: &Context,
        id: &str,
        page: Page,
    ) -> impl Future<Output = Result<Vec<Self::Item>, Error>> + Send;
}

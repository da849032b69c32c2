//! The peer port: the other service, asked for what only it knows when answering a cross query
//! (docs/behaviour.md §3 and §4): which of its entities link an entity of ours, and whether an
//! entity of its kind exists. Adapters bound every call in time; a peer that is down, slow or
//! erring is [`Error::Unavailable`], never a hang.

use std::future::Future;

use serde::Serialize;

use crate::{error::Error, paging::Page, service::Context};

/// The other service, as the cross queries of this one need it.
pub trait Peer: Clone + Send + Sync + 'static {
    /// The other service's entity, as it is shown in JSON.
    type Item: Serialize + Send + 'static;

    /// A page of the other service's entities that link our entity `id` (the HTTP cross query
    /// of this service, which has already checked that `id` exists here).
    fn linked_to(
        &self,
        ctx: &Context,
        id: &str,
        page: Page,
    ) -> impl Future<Output = Result<Vec<Self::Item>, Error>> + Send;

    /// `Ok` when the other service has the entity `id` (a well-formed id of its kind);
    /// [`Error::NotFound`] ("course … not found") when it has not, so that the gRPC cross query
    /// of this service answers for an unknown entity as HTTP does.
    fn ensure_exists(
        &self,
        ctx: &Context,
        id: &str,
    ) -> impl Future<Output = Result<(), Error>> + Send;
}

//! The transport-neutral half of the RPCs (docs/behaviour.md §4): parse what the request carries,
//! call the service (and, for the public cross query, the peer), map errors to statuses. Each
//! service's tonic adapters only convert their messages, so both services behave alike.
//!
//! - the CRUD methods of the public services: [`list`], [`get`], [`create`], [`update`],
//!   [`delete`];
//! - the public cross query ([`list_by_other`]): `NOT_FOUND` for an unknown entity of the other
//!   kind, as HTTP answers 404;
//! - what the peer services answer the other service: [`list_linking`] and [`exists`].

use nis_core::{
    Context, Entity, EntityService, Error, Page, Written,
    conditions::Expected,
    idempotency::{self, IdempotencyKey},
    peer::Peer,
    service::LinkEdit,
};
use tonic::{Request, Response, Status, metadata::MetadataValue};

use crate::{proto::v1 as pb, status};

/// The page of a `List*` call: absent or limit 0 means the default limit (50).
fn page(page: Option<pb::Page>) -> Result<Page, Error> {
    let page = page.unwrap_or_default();
    Page::from_grpc(page.limit, page.offset)
}

/// The page of a cross query: absent or limit 0 means the largest page, so the whole list comes
/// back, as the HTTP cross query does without `limit` (docs/behaviour.md §3).
fn cross_page(page: Option<pb::Page>) -> Result<Page, Error> {
    let page = page.unwrap_or_default();
    let limit = if page.limit == 0 {
        Page::MAX_LIMIT
    } else {
        page.limit
    };
    Page::new(Some(limit), Some(page.offset))
}

/// The arguments of a cross query: the other kind's id as sent, then the page (each malformed
/// one a bad request, in that order, as in HTTP).
fn cross_args<E: Entity>(other: &str, page: Option<pb::Page>) -> Result<(E::OtherId, Page), Error> {
    let other = other.parse::<E::OtherId>().map_err(Error::BadRequest)?;
    Ok((other, cross_page(page)?))
}

/// List a page (`None` or limit 0 means the default limit).
pub async fn list<E: Entity, S: EntityService<E>>(
    service: &S,
    ctx: &Context,
    page: Option<pb::Page>,
) -> Result<Vec<E>, Status> {
    async { service.list(ctx, self::page(page)?).await }
        .await
        .map_err(status)
}

/// Get one entity by its id as sent.
pub async fn get<E: Entity, S: EntityService<E>>(
    service: &S,
    ctx: &Context,
    id: &str,
) -> Result<E, Status> {
    async { service.get(ctx, &E::parse_id(id)?).await }
        .await
        .map_err(status)
}

/// The idempotency key in a request's metadata, if any (malformed or sent twice:
/// `INVALID_ARGUMENT`), read as HTTP reads the header.
pub fn idempotency_key<T>(request: &Request<T>) -> Result<Option<IdempotencyKey>, Status> {
    let values = request.metadata().get_all(idempotency::HEADER).iter();
    idempotency::from_values(values.map(|v| v.to_str().ok())).map_err(status)
}

/// The condition of an optional expected version.
fn expected(version: Option<i64>) -> Expected {
    version.map_or(Expected::Unconditional, |v| Expected::OneOf(vec![v]))
}

/// Validate `input` and create an entity (once per idempotency `key`).
pub async fn create<E: Entity, S: EntityService<E>>(
    service: &S,
    ctx: &Context,
    input: E::Input,
    key: Option<IdempotencyKey>,
) -> Result<Written<E>, Status> {
    async { service.create_keyed(ctx, E::parse_draft(input)?, key).await }
        .await
        .map_err(status)
}

/// The response to a create: the entity as message `M`, marked when it is the first answer
/// given again.
pub fn created<E, M: From<E>>(written: Written<E>) -> Response<M> {
    let mut response = Response::new(M::from(written.value));
    if written.replayed {
        response.metadata_mut().insert(
            idempotency::REPLAYED_HEADER,
            MetadataValue::from_static("true"),
        );
    }
    response
}

/// Validate `input` and replace entity `id` with it, if at `expected_version` (when given).
pub async fn update<E: Entity, S: EntityService<E>>(
    service: &S,
    ctx: &Context,
    id: &str,
    input: E::Input,
    expected_version: Option<i64>,
) -> Result<E, Status> {
    async {
        let id = E::parse_id(id)?;
        let draft = E::parse_draft(input)?;
        let expected = expected(expected_version);
        Ok(service.update_if(ctx, &id, draft, expected).await?.value)
    }
    .await
    .map_err(status)
}

/// Delete entity `id`, if at `expected_version` (when given).
pub async fn delete<E: Entity, S: EntityService<E>>(
    service: &S,
    ctx: &Context,
    id: &str,
    expected_version: Option<i64>,
) -> Result<(), Status> {
    async {
        let id = E::parse_id(id)?;
        service
            .delete_if(ctx, &id, expected(expected_version))
            .await
    }
    .await
    .map(|_| ())
    .map_err(status)
}

/// A one-link request of either public service: its entity's id, the other entity's id (both
/// as sent), and the optional expected version.
pub trait LinkRequest {
    /// `(id, other)`.
    fn ids(&self) -> (&str, &str);
    /// The version the entity must be at, if any.
    fn expected_version(&self) -> Option<i64>;
}

impl LinkRequest for pb::StudentCourseRequest {
    fn ids(&self) -> (&str, &str) {
        (&self.student_id, &self.course_id)
    }

    fn expected_version(&self) -> Option<i64> {
        self.expected_version
    }
}

impl LinkRequest for pb::CourseStudentRequest {
    fn ids(&self) -> (&str, &str) {
        (&self.course_id, &self.student_id)
    }

    fn expected_version(&self) -> Option<i64> {
        self.expected_version
    }
}

/// `Link*` (`linked`) and `Unlink*`: sets or removes one link, if the entity is at the
/// expected version (when given); answers the entity's version after it.
pub async fn set_link<E: Entity, S: EntityService<E>>(
    service: &S,
    request: Request<impl LinkRequest>,
    linked: bool,
) -> Result<Response<pb::LinkResponse>, Status> {
    let ctx = crate::context(&request);
    let request = request.into_inner();
    async {
        let (id, other) = request.ids();
        let id = E::parse_id(id)?;
        let other = other.parse::<E::OtherId>().map_err(Error::BadRequest)?;
        let edit = LinkEdit { other, linked };
        let expected = expected(request.expected_version());
        let written = service.set_link(&ctx, &id, edit, expected).await?;
        Ok(Response::new(pb::LinkResponse {
            version: written.value,
        }))
    }
    .await
    .map_err(status)
}

/// The public cross query (`ListStudentsByCourse`, `ListCoursesByStudent`): a page of our
/// entities that link `other`, an entity of the other kind, as HTTP's
/// `GET /api/{other kind}/{id}/{our kind}` answers it. The other service owns `other`, so it is
/// asked whether it exists first: unknown is `NOT_FOUND`, a peer that fails or does not answer
/// within its deadline `UNAVAILABLE`. The list itself comes from our own (cached) service.
pub async fn list_by_other<E: Entity, S: EntityService<E>, P: Peer>(
    service: &S,
    peer: &P,
    ctx: &Context,
    other: &str,
    page: Option<pb::Page>,
) -> Result<Vec<E>, Status> {
    // Malformed input is refused before the peer is asked.
    async {
        let (other, _) = cross_args::<E>(other, page)?;
        peer.ensure_exists(ctx, &other.to_string()).await
    }
    .await
    .map_err(status)?;
    list_linking(service, ctx, other, page).await
}

/// For the peer service: a page of our entities that link `other` (an id of the other kind, as
/// sent), with no check that `other` exists — the caller owns it and has checked.
pub async fn list_linking<E: Entity, S: EntityService<E>>(
    service: &S,
    ctx: &Context,
    other: &str,
    page: Option<pb::Page>,
) -> Result<Vec<E>, Status> {
    async {
        let (other, page) = cross_args::<E>(other, page)?;
        service.list_linked(ctx, &other, page).await
    }
    .await
    .map_err(status)
}

/// For the peer service: whether our entity `id` (as sent) exists. Asked of the service's `get`,
/// so it is answered from the cache like any read; only "not found" is `false`, any other
/// failure stays an error.
pub async fn exists<E: Entity, S: EntityService<E>>(
    service: &S,
    ctx: &Context,
    id: &str,
) -> Result<bool, Status> {
    async {
        match service.get(ctx, &E::parse_id(id)?).await {
            Ok(_) => Ok(true),
            Err(Error::NotFound(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }
    .await
    .map_err(status)
}

#[cfg(test)]
mod tests {
    use nis_core::{
        Core, Transport,
        fakes::{
            FakePeer, MemoryStore,
            entities::{Key, MemberDraft, Pupil},
        },
    };
    use tonic::Code;

    use super::*;

    type Pupils = Core<MemoryStore<Pupil>>;

    fn ctx() -> Context {
        Context::new(Transport::Grpc, "test")
    }

    /// The core over a store of `n` pupils (`p0`, `p1`, …), each linking the class `c1`.
    async fn pupils_linking_c1(n: u64) -> Pupils {
        let service = Core::new(MemoryStore::<Pupil>::new(|n| Key(format!("p{n}"))), "links");
        for i in 0..n {
            let draft = MemberDraft {
                name: format!("pupil {i}"),
                links: vec![Key("c1".into())],
            };
            service.create(&ctx(), draft).await.expect("create");
        }
        service
    }

    fn names(pupils: &[Pupil]) -> Vec<&str> {
        pupils.iter().map(|p| p.name.as_str()).collect()
    }

    fn limit(limit: u32, offset: u64) -> Option<pb::Page> {
        Some(pb::Page { limit, offset })
    }

    #[tokio::test]
    async fn the_cross_query_checks_the_other_entity_with_the_peer() {
        let service = pupils_linking_c1(2).await;
        let peer = FakePeer::answering(vec![]).knowing(["c1"]);
        let found = list_by_other(&service, &peer, &ctx(), "c1", None).await;
        assert_eq!(names(&found.expect("c1 exists")), ["pupil 0", "pupil 1"]);

        let unknown = list_by_other(&service, &peer, &ctx(), "c2", None).await;
        assert_eq!(unknown.expect_err("c2 unknown").code(), Code::NotFound);

        let down = list_by_other(&service, &FakePeer::down(), &ctx(), "c1", None).await;
        assert_eq!(down.expect_err("peer down").code(), Code::Unavailable);
    }

    #[tokio::test]
    async fn a_malformed_cross_query_is_rejected_before_the_peer_is_asked() {
        let service = pupils_linking_c1(0).await;
        let down = FakePeer::down();
        for (other, page) in [("not a key", None), ("c1", limit(501, 0))] {
            let answer = list_by_other(&service, &down, &ctx(), other, page).await;
            assert_eq!(answer.expect_err("malformed").code(), Code::InvalidArgument);
        }
    }

    #[tokio::test]
    async fn without_a_limit_a_cross_query_is_the_whole_list() {
        let service = pupils_linking_c1(Page::DEFAULT_LIMIT as u64 + 1).await;
        let peer = FakePeer::answering(vec![]);
        let whole = Page::DEFAULT_LIMIT as usize + 1;
        for page in [None, limit(0, 0)] {
            let all = list_by_other(&service, &peer, &ctx(), "c1", page).await;
            assert_eq!(all.expect("list").len(), whole);
            let linking = list_linking(&service, &ctx(), "c1", page).await;
            assert_eq!(linking.expect("list").len(), whole);
        }
        let paged = list_by_other(&service, &peer, &ctx(), "c1", limit(1, 2)).await;
        assert_eq!(names(&paged.expect("page")), ["pupil 2"]);
    }

    #[tokio::test]
    async fn the_peer_service_lists_without_an_existence_check_and_answers_existence() {
        let service = pupils_linking_c1(1).await;
        let linking = list_linking(&service, &ctx(), "c1", None).await;
        assert_eq!(names(&linking.expect("list")), ["pupil 0"]);
        let nobody = list_linking(&service, &ctx(), "unknown", None).await;
        assert!(nobody.expect("an unknown id is an empty list").is_empty());

        assert!(exists(&service, &ctx(), "p0").await.expect("exists"));
        assert!(!exists(&service, &ctx(), "p9").await.expect("exists"));
        let malformed = exists(&service, &ctx(), "not a key").await;
        assert_eq!(
            malformed.expect_err("malformed").code(),
            Code::InvalidArgument
        );
    }
}

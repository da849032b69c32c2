//! What the generic core, decorators and HTTP routes need to know about an entity.

use std::{fmt, hash::Hash, str::FromStr};

use serde::{Serialize, de::DeserializeOwned};

use crate::{error::Error, links::Side};

/// An id of an entity: parsed from and shown as a string.
pub trait EntityId:
    Clone
    + Eq
    + Hash
    + fmt::Display
    + fmt::Debug
    + FromStr<Err = String>
    + Serialize
    + DeserializeOwned
    + Send
    + Sync
    + 'static
{
    /// A regular expression (ECMA 262, as JSON Schema uses) matching exactly the strings
    /// [`FromStr`] accepts, for the OpenAPI documents.
    const PATTERN: &'static str;
}

/// A stored entity (a student, a course).
pub trait Entity:
    Clone + fmt::Debug + Serialize + DeserializeOwned + Send + Sync + 'static
{
    /// Its id.
    type Id: EntityId;
    /// The id of the entities of the other kind it links to.
    type OtherId: EntityId;
    /// The raw, unvalidated fields of a create or update, as a transport received them.
    type Input: Default + Send + 'static;
    /// The validated fields of a create or update: everything but the id. Serialized only to
    /// fingerprint a create for its idempotency key ([`crate::idempotency`]).
    type Draft: Clone + fmt::Debug + Serialize + Send + Sync + 'static;

    /// Plural, lowercase: names the service, the HTTP path (`/api/{KIND}`) and cache keys.
    const KIND: &'static str;
    /// Singular, for messages ("student not found").
    const SINGULAR: &'static str;
    /// The other kind, plural (`courses` for a student): names the cross-query route.
    const OTHER_KIND: &'static str;
    /// The most links one entity may hold (15 for a student, 60 for a course).
    const LINK_LIMIT: usize;
    /// The field that holds its links (`course_ids` for a student), for error details.
    const LINKS_FIELD: &'static str;
    /// Which side of the relation it is on: the parity of the clocks it stamps.
    const SIDE: Side;

    /// The entity's id.
    fn id(&self) -> &Self::Id;

    /// The ids of the entities of the other kind it links to.
    fn links(&self) -> &[Self::OtherId];

    /// Its version: changes with every change of the entity, including a link applied from
    /// the other side (the store's commit counter; 0 when created). Not part of its JSON: HTTP
    /// shows it as the `ETag`.
    fn version(&self) -> i64;

    /// The entity at `version`.
    #[must_use]
    fn with_version(self, version: i64) -> Self;

    /// The entity `id` with the fields of `draft`, at version 0.
    fn assemble(id: Self::Id, draft: Self::Draft) -> Self;

    /// The links a draft asks for, in list order.
    fn draft_links(draft: &Self::Draft) -> &[Self::OtherId];

    /// The entity with its links replaced (a list the relation rules produced, so within
    /// [`Self::LINK_LIMIT`]; more is an internal error).
    fn with_links(self, links: Vec<Self::OtherId>) -> Result<Self, Error>;

    /// Validates raw input, reporting every broken field rule at once.
    fn parse_draft(input: Self::Input) -> Result<Self::Draft, Error>;

    /// The error for an id that names no entity.
    fn not_found(id: &Self::Id) -> Error {
        Error::NotFound(format!("{} {id} not found", Self::SINGULAR))
    }

    /// Parses an id given by a caller (path segment, gRPC field): malformed is a bad request.
    fn parse_id(raw: &str) -> Result<Self::Id, Error> {
        raw.parse::<Self::Id>().map_err(Error::BadRequest)
    }
}

//! The tonic adapter (docs/behaviour.md §4): the generated `nis.v1` code ([`proto`]), the
//! mapping of the core's errors to statuses, the request context, the CRUD handlers every
//! service's gRPC API shares ([`crud`]), reflection, and the clients of the peer service
//! ([`peers`]).

pub mod peers;
pub mod proto;

use nis_core::{Context, Error, Transport, request_id};
use tonic::{Code, Request, Status};
use tonic_types::{ErrorDetails, StatusExt as _};

/// The status of a core error (a function, not `From`: neither type is this crate's).
pub fn status(error: Error) -> Status {
    let message = error.public_message();
    match &error {
        Error::Validation(details) => {
            let violations = details
                .iter()
                .map(|d| tonic_types::FieldViolation::new(d.field.clone(), d.message.clone()))
                .collect::<Vec<_>>();
            Status::with_error_details(
                Code::InvalidArgument,
                message,
                ErrorDetails::with_bad_request(violations),
            )
        }
        Error::BadRequest(_) => Status::invalid_argument(message),
        Error::NotFound(_) => Status::not_found(message),
        Error::Conflict(_) => Status::already_exists(message),
        Error::Unavailable { .. } => Status::unavailable(message),
        Error::Internal { .. } => Status::internal(message),
    }
}

/// The service context of a gRPC request (request id from `x-request-id` metadata, or new).
pub fn context<T>(request: &Request<T>) -> Context {
    let id = request_id::sanitize(
        request
            .metadata()
            .get(request_id::HEADER)
            .and_then(|v| v.to_str().ok()),
    );
    Context::new(Transport::Grpc, id)
}

/// The transport-neutral half of the CRUD RPCs: parse what the request carries, call the
/// service, map errors to statuses. Each service's tonic adapter only converts its messages.
pub mod crud {
    use nis_core::{Context, Entity, EntityService, Error, Page};
    use tonic::Status;

    use super::status;
    use crate::proto::v1 as pb;

    fn page(page: Option<pb::Page>) -> Result<Page, Error> {
        let page = page.unwrap_or_default();
        Page::from_grpc(page.limit, page.offset)
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

    /// Validate `input` and create an entity.
    pub async fn create<E: Entity, S: EntityService<E>>(
        service: &S,
        ctx: &Context,
        input: E::Input,
    ) -> Result<E, Status> {
        async { Ok(service.create(ctx, E::parse_draft(input)?).await?.value) }
            .await
            .map_err(status)
    }

    /// Validate `input` and replace entity `id` with it.
    pub async fn update<E: Entity, S: EntityService<E>>(
        service: &S,
        ctx: &Context,
        id: &str,
        input: E::Input,
    ) -> Result<E, Status> {
        async {
            let id = E::parse_id(id)?;
            let draft = E::parse_draft(input)?;
            Ok(service.update(ctx, &id, draft).await?.value)
        }
        .await
        .map_err(status)
    }

    /// Delete entity `id`.
    pub async fn delete<E: Entity, S: EntityService<E>>(
        service: &S,
        ctx: &Context,
        id: &str,
    ) -> Result<(), Status> {
        async { service.delete(ctx, &E::parse_id(id)?).await.map(|_| ()) }
            .await
            .map_err(status)
    }

    /// A page of the entities that link `other` (an id of the other kind, as sent).
    pub async fn list_linked<E: Entity, S: EntityService<E>>(
        service: &S,
        ctx: &Context,
        other: &str,
        page: Option<pb::Page>,
    ) -> Result<Vec<E>, Status> {
        async {
            let other = other.parse::<E::OtherId>().map_err(Error::BadRequest)?;
            service.list_linked(ctx, &other, self::page(page)?).await
        }
        .await
        .map_err(status)
    }
}

/// The gRPC server reflection service for `nis.v1`.
pub fn reflection() -> Result<
    tonic_reflection::server::v1::ServerReflectionServer<
        impl tonic_reflection::server::v1::ServerReflection,
    >,
    tonic_reflection::server::Error,
> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
}

#[cfg(test)]
mod tests {
    use nis_core::FieldError;

    use super::*;

    #[test]
    fn validation_becomes_invalid_argument_with_field_details() {
        let mapped = status(Error::Validation(vec![FieldError::new(
            "name",
            "too short",
        )]));
        assert_eq!(mapped.code(), Code::InvalidArgument);
        let details = mapped.get_error_details();
        let bad_request = details.bad_request().expect("bad request details");
        assert_eq!(bad_request.field_violations[0].field, "name");
    }

    #[test]
    fn each_error_has_its_code() {
        assert_eq!(status(Error::NotFound("x".into())).code(), Code::NotFound);
        assert_eq!(
            status(Error::Conflict("x".into())).code(),
            Code::AlreadyExists
        );
        assert_eq!(status(Error::unavailable("x")).code(), Code::Unavailable);
        assert_eq!(
            status(Error::BadRequest("x".into())).code(),
            Code::InvalidArgument
        );
        let internal = status(Error::internal("secret detail"));
        assert_eq!(internal.code(), Code::Internal);
        assert!(!internal.message().contains("secret"));
    }
}

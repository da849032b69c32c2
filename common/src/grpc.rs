//! The gRPC side every service shares: error mapping, request context, health and reflection.

use tonic::{Code, Request, Status, transport::server::Router};
use tonic_types::{ErrorDetails, StatusExt as _};

use crate::{
    entity::Entity,
    error::Error,
    http::REQUEST_ID_HEADER,
    service::EntityService,
    service::{Context, Transport},
};

impl From<Error> for Status {
    fn from(error: Error) -> Self {
        let message = error.public_message();
        match &error {
            Error::Validation(details) => {
                let violations = details
                    .iter()
                    .map(|d| (d.field.clone(), d.message.clone()))
                    .collect::<Vec<_>>();
                Status::with_error_details(
                    Code::InvalidArgument,
                    message,
                    ErrorDetails::with_bad_request(
                        violations
                            .into_iter()
                            .map(|(field, description)| {
                                tonic_types::FieldViolation::new(field, description)
                            })
                            .collect::<Vec<_>>(),
                    ),
                )
            }
            Error::BadRequest(_)
            | Error::MethodNotAllowed(_)
            | Error::PayloadTooLarge(_)
            | Error::UnsupportedMediaType => Status::invalid_argument(message),
            Error::NotFound(_) => Status::not_found(message),
            Error::Conflict(_) => Status::already_exists(message),
            Error::Unavailable(_) => Status::unavailable(message),
            Error::Internal(detail) => {
                tracing::error!(error = %detail, "internal error");
                Status::internal(message)
            }
        }
    }
}

/// An entity whose service has a gRPC API, and whose cross query asks the other service.
pub trait GrpcEntity: Entity {
    /// The fully qualified gRPC service name, e.g. `nis.v1.StudentService` (its health key).
    const GRPC_SERVICE: &'static str;
    /// The client of the other service that answers this entity's cross query.
    type Peer: crate::peers::Peer;

    /// Adds the entity's gRPC service, backed by `service`, to `router`.
    fn add_grpc_service<S: EntityService<Self>>(router: Router, service: S) -> Router;

    /// The client of the other service at `url`, each call bounded by `timeout`.
    fn peer(url: &str, timeout: std::time::Duration) -> Result<Self::Peer, String>;
}

/// The service context of a gRPC request (request id from `x-request-id` metadata, or new).
pub fn context<T>(request: &Request<T>) -> Context {
    let id = crate::http::sanitize_request_id(
        request
            .metadata()
            .get(REQUEST_ID_HEADER)
            .and_then(|v| v.to_str().ok()),
    );
    Context::new(Transport::Grpc, id)
}

/// The transport-neutral half of the CRUD RPCs: parse what the request carries, call the
/// service, map errors to statuses. Each service's tonic adapter only converts its messages.
pub mod crud {
    use tonic::Status;

    use crate::{Context, Entity, EntityService, Error, Page, proto::v1 as pb};

    /// List a page (`None` or limit 0 means the default limit).
    pub async fn list<E: Entity, S: EntityService<E>>(
        service: &S,
        ctx: &Context,
        page: Option<pb::Page>,
    ) -> Result<Vec<E>, Status> {
        let page = page.unwrap_or_default();
        let page = Page::from_grpc(page.limit, page.offset)?;
        Ok(service.list(ctx, page).await?)
    }

    /// Get one entity by its id as sent.
    pub async fn get<E: Entity, S: EntityService<E>>(
        service: &S,
        ctx: &Context,
        id: &str,
    ) -> Result<E, Status> {
        Ok(service.get(ctx, &E::parse_id(id)?).await?)
    }

    /// Validate `input` and create an entity.
    pub async fn create<E: Entity, S: EntityService<E>>(
        service: &S,
        ctx: &Context,
        input: E::Input,
    ) -> Result<E, Status> {
        Ok(service.create(ctx, E::parse_draft(input)?).await?.value)
    }

    /// Validate `input` and replace entity `id` with it.
    pub async fn update<E: Entity, S: EntityService<E>>(
        service: &S,
        ctx: &Context,
        id: &str,
        input: E::Input,
    ) -> Result<E, Status> {
        let id = E::parse_id(id)?;
        Ok(service
            .update(ctx, &id, E::parse_draft(input)?)
            .await?
            .value)
    }

    /// Delete entity `id`.
    pub async fn delete<E: Entity, S: EntityService<E>>(
        service: &S,
        ctx: &Context,
        id: &str,
    ) -> Result<(), Status> {
        service.delete(ctx, &E::parse_id(id)?).await?;
        Ok(())
    }

    /// A page of the entities that link `other` (an id of the other kind, as sent).
    pub async fn list_linked<E: Entity, S: EntityService<E>>(
        service: &S,
        ctx: &Context,
        other: &str,
        page: Option<pb::Page>,
    ) -> Result<Vec<E>, Status> {
        let other = other.parse::<E::OtherId>().map_err(Error::BadRequest)?;
        let page = page.unwrap_or_default();
        let page = Page::from_grpc(page.limit, page.offset)?;
        Ok(service.list_linked(ctx, &other, page).await?)
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
        .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::FieldError;

    #[test]
    fn validation_becomes_invalid_argument_with_field_details() {
        let status = Status::from(Error::Validation(vec![FieldError::new(
            "name",
            "too short",
        )]));
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = status.get_error_details();
        let bad_request = details.bad_request().expect("bad request details");
        assert_eq!(bad_request.field_violations[0].field, "name");
    }

    #[test]
    fn each_error_has_its_code() {
        assert_eq!(
            Status::from(Error::NotFound("x".into())).code(),
            Code::NotFound
        );
        assert_eq!(
            Status::from(Error::Conflict("x".into())).code(),
            Code::AlreadyExists
        );
        assert_eq!(
            Status::from(Error::Unavailable("x".into())).code(),
            Code::Unavailable
        );
        assert_eq!(
            Status::from(Error::BadRequest("x".into())).code(),
            Code::InvalidArgument
        );
        let internal = Status::from(Error::Internal("secret detail".into()));
        assert_eq!(internal.code(), Code::Internal);
        assert!(!internal.message().contains("secret"));
    }
}

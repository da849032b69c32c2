//! The tonic adapter (docs/behaviour.md §4): the generated `nis.v1` code ([`proto`]), the
//! mapping of the core's errors to statuses, the request context, the handlers every service's
//! public and peer gRPC services share ([`crud`]), reflection, and the clients of the other
//! service's peer service ([`peers`]).

pub mod crud;
pub mod peers;
pub mod proto;
pub mod relation;

use nis_core::{Context, Error, Transport, request_id};
use std::task::Poll;

use tonic::{Code, Request, Status, codegen::http};
use tonic_types::{ErrorDetails, StatusExt as _};
use tracing::{Instrument as _, instrument::Instrumented};

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
        Error::PreconditionFailed(_) => Status::failed_precondition(message),
        Error::KeyReused(_) => Status::invalid_argument(message),
        Error::Unavailable { .. } => Status::unavailable(message),
        Error::Internal { .. } => Status::internal(message),
    }
}

/// The spans of the incoming gRPC calls (docs/behaviour.md §7, "Traces"), a layer of the
/// server: for a traced call (traces on, and sampled), the RPC server span of the
/// OpenTelemetry semantic conventions, continuing the caller's W3C trace context from the
/// metadata, and under it the span that names the trace in the call's log lines; nothing for
/// the others.
#[derive(Debug, Clone, Copy, Default)]
pub struct ServerSpans;

impl<S> tower_layer::Layer<S> for ServerSpans {
    type Service = WithServerSpans<S>;

    fn layer(&self, inner: S) -> Self::Service {
        WithServerSpans(inner)
    }
}

/// A gRPC server in [`ServerSpans`].
#[derive(Debug, Clone)]
pub struct WithServerSpans<S>(S);

impl<S, B> tonic::codegen::Service<http::Request<B>> for WithServerSpans<S>
where
    S: tonic::codegen::Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Instrumented<Instrumented<S::Future>>;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let (trace, logs, traceparent) = server_entry(&request).into_spans();
        // The handler's [`context`] takes the decision from here instead of making it again.
        if let Some(traceparent) = traceparent {
            request.extensions_mut().insert(TraceParent(traceparent));
        }
        self.0.call(request).instrument(logs).instrument(trace)
    }
}

/// The `traceparent` [`ServerSpans`] gave a call, for its [`context`].
#[derive(Debug, Clone)]
struct TraceParent(String);

fn server_entry<B>(request: &http::Request<B>) -> nis_runtime::traces::Entry {
    let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok());
    nis_runtime::traces::enter(header("traceparent"), header("tracestate"), || {
        let path = request.uri().path().trim_start_matches('/');
        let (service, method) = path.split_once('/').unwrap_or((path, ""));
        tracing::info_span!(
            target: nis_core::trace::TARGET,
            "grpc",
            otel.name = %path,
            otel.kind = "server",
            rpc.system = "grpc",
            rpc.service = %service,
            rpc.method = %method,
        )
    })
}

/// The service context of a gRPC request (request id from `x-request-id` metadata, or new; the
/// trace context [`ServerSpans`] decided on).
pub fn context<T>(request: &Request<T>) -> Context {
    let id = request_id::sanitize(
        request
            .metadata()
            .get(request_id::HEADER)
            .and_then(|v| v.to_str().ok()),
    );
    let traceparent = request
        .extensions()
        .get::<TraceParent>()
        .map(|t| t.0.clone());
    Context::new(Transport::Grpc, id).with_trace_context(traceparent)
}

/// The gRPC server reflection service of a port that serves `services` (fully qualified names,
/// e.g. `nis.v1.StudentService` and `grpc.health.v1.Health`): it lists exactly those and
/// itself, not every service of the `nis.v1` descriptor, so a client sees only what this port
/// answers (docs/behaviour.md §4). The whole descriptor stays registered, so the messages of the
/// listed services resolve.
pub fn reflection(
    services: &[&str],
) -> Result<
    tonic_reflection::server::v1::ServerReflectionServer<
        impl tonic_reflection::server::v1::ServerReflection,
    >,
    tonic_reflection::server::Error,
> {
    let itself = tonic_reflection::pb::v1::server_reflection_server::SERVICE_NAME;
    services
        .iter()
        .copied()
        .chain([itself])
        .fold(
            tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET),
            tonic_reflection::server::Builder::with_service_name,
        )
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

//! gRPC checks every service shares (docs/behaviour.md §4): health and reflection of a port, the
//! public cross query with its peer down or up, the peer service, and the character rule. The
//! checks know no proto: each service's tests pass its calls as closures, so both services are
//! held to the same behaviour by one piece of code.

use std::{collections::BTreeSet, fmt::Debug, time::Duration};

use crate::odd_text;

use tonic::{Code, Status, transport::Channel};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use tonic_reflection::pb::v1::{
    ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
    server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
};
use tonic_types::StatusExt as _;

/// The health service every port serves.
pub const HEALTH: &str = "grpc.health.v1.Health";
/// The reflection service every port serves.
pub const REFLECTION: &str = "grpc.reflection.v1.ServerReflection";

/// A cross query's page as the checks ask for it: `(limit, offset)`, or `None` for no `Page`.
pub type PageArg = Option<(u32, u64)>;

/// Waits until gRPC health reports `service` (and the server, `""`) as SERVING.
pub async fn assert_serving(channel: Channel, service: &str) {
    let health = HealthClient::new(channel);
    for name in [service, ""] {
        super::wait_for(
            &format!("gRPC health of {name:?} SERVING"),
            Duration::from_secs(10),
            || {
                let mut health = health.clone();
                let request = HealthCheckRequest {
                    service: name.to_owned(),
                };
                async move {
                    let status = health.check(request).await.ok()?.into_inner().status;
                    (status == ServingStatus::Serving as i32).then_some(())
                }
            },
        )
        .await;
    }
}

/// The services a server lists through gRPC reflection.
pub async fn reflected_services(channel: Channel) -> Vec<String> {
    let mut client = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = client
        .server_reflection_info(futures::stream::iter([request]))
        .await
        .expect("reflection")
        .into_inner();
    let answer = stream
        .message()
        .await
        .expect("answer")
        .expect("one message");
    match answer.message_response {
        Some(MessageResponse::ListServicesResponse(list)) => {
            list.service.into_iter().map(|s| s.name).collect()
        }
        other => panic!("unexpected reflection answer {other:?}"),
    }
}

/// A port that serves `services` (its public, peer and relation services): health reports each of them
/// SERVING, and reflection lists exactly them, health and reflection — nothing of the other
/// service's API.
pub async fn assert_port_serves(channel: Channel, services: &[&str]) {
    for service in services {
        assert_serving(channel.clone(), service).await;
    }
    let listed: BTreeSet<String> = reflected_services(channel).await.into_iter().collect();
    let expected: BTreeSet<String> = services
        .iter()
        .chain(&[HEALTH, REFLECTION])
        .map(|s| (*s).to_owned())
        .collect();
    assert_eq!(listed, expected, "the services reflection lists");
}

/// Asserts that `answer` failed with `code`; `what` names the call.
#[track_caller]
pub fn assert_code<T: Debug>(answer: Result<T, Status>, code: Code, what: &str) -> Status {
    match answer {
        Ok(value) => panic!("{what}: expected {code:?}, got OK {value:?}"),
        Err(status) => {
            assert_eq!(status.code(), code, "{what}: {status:?}");
            status
        }
    }
}

/// Ids for the checks of a port's cross query and peer service.
#[derive(Debug, Clone, Copy)]
pub struct CrossIds<'a> {
    /// An entity of the other kind; with the peer up, one that exists there.
    pub other: &'a str,
    /// Our entities whose id lists hold `other`, oldest first; at least two.
    pub linking: &'a [String],
    /// A well-formed id of the other kind that no entity of ours links (and, with the peer up,
    /// that names nothing there).
    pub unknown_other: &'a str,
    /// A malformed id of the other kind.
    pub malformed_other: &'a str,
}

/// The public cross query, `query(other id, page)` answering the ids it lists, on a port whose
/// peer is down: malformed input is `INVALID_ARGUMENT` before the peer is asked; a well-formed
/// id is `UNAVAILABLE`, since only the peer can tell whether it exists.
pub async fn assert_cross_query_without_peer(
    mut query: impl AsyncFnMut(String, PageArg) -> Result<Vec<String>, Status>,
    ids: CrossIds<'_>,
) {
    let malformed = query(ids.malformed_other.to_owned(), None).await;
    assert_code(malformed, Code::InvalidArgument, "a malformed id");
    let too_long = query(ids.other.to_owned(), Some((501, 0))).await;
    assert_code(too_long, Code::InvalidArgument, "limit 501");
    let down = query(ids.other.to_owned(), None).await;
    assert_code(down, Code::Unavailable, "the peer down");
}

/// The public cross query, `query(other id, page)` answering the ids it lists, on a port whose
/// peer is up: an entity the peer does not have is `NOT_FOUND` naming it (`singular` is the
/// other kind, e.g. "course"), as HTTP answers 404; a known one lists `linking` — all of them
/// with no page or limit 0, as HTTP without `limit` — and pages as asked.
pub async fn assert_cross_query_with_peer(
    mut query: impl AsyncFnMut(String, PageArg) -> Result<Vec<String>, Status>,
    ids: CrossIds<'_>,
    singular: &str,
) {
    let unknown = query(ids.unknown_other.to_owned(), None).await;
    let status = assert_code(unknown, Code::NotFound, "an unknown entity");
    assert_eq!(
        status.message(),
        format!("{singular} {} not found", ids.unknown_other)
    );
    let malformed = query(ids.malformed_other.to_owned(), None).await;
    assert_code(malformed, Code::InvalidArgument, "a malformed id");

    for page in [None, Some((0, 0))] {
        let all = query(ids.other.to_owned(), page).await;
        assert_eq!(all.expect("the cross query"), ids.linking, "page {page:?}");
    }
    let second = query(ids.other.to_owned(), Some((1, 1))).await;
    assert_eq!(
        second.expect("a page"),
        ids.linking[1..2],
        "limit 1, offset 1"
    );
}

/// The peer service of a port: `linking(other id)` answers the ids of our entities that link it,
/// with no check that it exists (an id nothing links is an empty list, not `NOT_FOUND`);
/// `exists(id)` whether an entity of ours exists. Malformed ids are `INVALID_ARGUMENT`.
/// `unknown` is a well-formed id of ours that names nothing, `malformed` a malformed one.
pub async fn assert_peer_service(
    mut linking: impl AsyncFnMut(String) -> Result<Vec<String>, Status>,
    mut exists: impl AsyncFnMut(String) -> Result<bool, Status>,
    ids: CrossIds<'_>,
    unknown: &str,
    malformed: &str,
) {
    let linked = linking(ids.other.to_owned()).await;
    assert_eq!(linked.expect("the linked listing"), ids.linking);
    let nobody = linking(ids.unknown_other.to_owned()).await;
    assert_eq!(nobody.expect("an id nothing links"), Vec::<String>::new());
    let bad = linking(ids.malformed_other.to_owned()).await;
    assert_code(bad, Code::InvalidArgument, "listing with a malformed id");

    for id in ids.linking {
        assert!(exists(id.clone()).await.expect("exists"), "{id} exists");
    }
    assert!(
        !exists(unknown.to_owned()).await.expect("exists"),
        "{unknown}"
    );
    let bad = exists(malformed.to_owned()).await;
    assert_code(bad, Code::InvalidArgument, "existence of a malformed id");
}

/// The character rule over gRPC, as HTTP checks it (docs/behaviour.md §2): `create(field,
/// value)` creates an entity whose text `field` is `value` and the rest valid. Control characters
/// and bidi controls in any of `text_fields`, and 10,000-character texts, are `INVALID_ARGUMENT`
/// with one field violation naming the field; line feed and tab are accepted only in
/// `multiline_field`.
pub async fn assert_text_rule(
    mut create: impl AsyncFnMut(&str, String) -> Result<(), Status>,
    text_fields: &[&str],
    multiline_field: Option<&str>,
) {
    for field in text_fields {
        let long = "x".repeat(10_000);
        for bad in odd_text::CONTROL
            .iter()
            .chain(odd_text::BIDI)
            .chain([&long.as_str()])
        {
            let answer = create(field, (*bad).to_owned()).await;
            assert_violation(answer, field, bad);
        }
        let lines = create(field, odd_text::LINES.to_owned()).await;
        if multiline_field == Some(*field) {
            lines.unwrap_or_else(|e| panic!("{field} keeps line feeds and tabs: {e:?}"));
        } else {
            assert_violation(lines, field, odd_text::LINES);
        }
    }
}

#[track_caller]
fn assert_violation(answer: Result<(), Status>, field: &str, value: &str) {
    let status = assert_code(
        answer,
        Code::InvalidArgument,
        &format!("{field} = {value:?}"),
    );
    let details = status.get_error_details();
    let violations: Vec<&str> = details
        .bad_request()
        .map(|b| {
            b.field_violations
                .iter()
                .map(|v| v.field.as_str())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(violations, [field], "{value:?}: {status:?}");
}

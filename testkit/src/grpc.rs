//! gRPC checks every service shares: health and reflection.

use std::time::Duration;

use tonic::transport::Channel;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use tonic_reflection::pb::v1::{
    ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
    server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
};

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

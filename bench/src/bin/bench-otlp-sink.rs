//! `bench-otlp-sink --listen ADDR`: an OTLP/gRPC trace endpoint that accepts every export and
//! keeps nothing but a count, the local collector of the benchmark's case with traces on
//! (docs/benchmarks.md). Prints the spans received when it stops (SIGINT/SIGTERM).

use std::{
    convert::Infallible,
    net::SocketAddr,
    process::ExitCode,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    task::{Context, Poll},
};

use clap::Parser as _;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceResponse, trace_service_server::SERVICE_NAME,
};
use tonic::{
    Request, Response, Status,
    codegen::{Body, BoxFuture, Service, StdError, http},
    server::{Grpc, NamedService, UnaryService},
};

#[derive(Debug, clap::Parser)]
#[command(
    name = "bench-otlp-sink",
    about = "An OTLP/gRPC trace endpoint that only counts"
)]
struct Config {
    /// Where to listen.
    #[arg(long)]
    listen: SocketAddr,
}

/// An `ExportTraceServiceRequest` read only as deep as its spans, each kept as its undecoded
/// bytes. The sink shares the benchmark's cores with the replica it measures, so it must cost
/// as little as a collector on another machine would cost that replica: decoding every span
/// (names, ids, attributes) cost about a quarter of what the replica spent tracing the request
/// (docs/performance.md, "Traces").
#[derive(Clone, PartialEq, prost::Message)]
struct Export {
    #[prost(message, repeated, tag = "1")]
    resource_spans: Vec<ResourceSpans>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ResourceSpans {
    #[prost(message, repeated, tag = "2")]
    scope_spans: Vec<ScopeSpans>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ScopeSpans {
    #[prost(bytes = "bytes", repeated, tag = "2")]
    spans: Vec<bytes::Bytes>,
}

impl Export {
    /// How many spans the export carries.
    fn spans(&self) -> usize {
        self.resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len())
            .sum()
    }
}

/// The trace service, by hand rather than generated, for the message type above.
#[derive(Debug, Clone, Default)]
struct Count(Arc<AtomicU64>);

impl NamedService for Count {
    const NAME: &'static str = SERVICE_NAME;
}

impl<B> Service<http::Request<B>> for Count
where
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let count = self.clone();
        Box::pin(async move {
            if !request.uri().path().ends_with("/Export") {
                return Ok(Status::unimplemented("only Export").into_http());
            }
            let codec = tonic_prost::ProstCodec::<ExportTraceServiceResponse, Export>::default();
            Ok(Grpc::new(codec).unary(count, request).await)
        })
    }
}

impl UnaryService<Export> for Count {
    type Response = ExportTraceServiceResponse;
    type Future = std::future::Ready<Result<Response<Self::Response>, Status>>;

    fn call(&mut self, request: Request<Export>) -> Self::Future {
        self.0
            .fetch_add(request.get_ref().spans() as u64, Ordering::Relaxed);
        std::future::ready(Ok(Response::new(ExportTraceServiceResponse::default())))
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    let count = Count::default();
    let served = tonic::transport::Server::builder()
        .add_service(count.clone())
        .serve_with_shutdown(config.listen, async {
            let _ = bench::signals::stopped().await;
        })
        .await;
    println!("{{\"spans\":{}}}", count.0.load(Ordering::Relaxed));
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-otlp-sink: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::{
        collector::trace::v1::ExportTraceServiceRequest,
        common::v1::{AnyValue, KeyValue, any_value::Value},
        trace::v1::{ResourceSpans, ScopeSpans, Span},
    };
    use prost::Message as _;

    use super::Export;

    fn span(name: &str) -> Span {
        Span {
            trace_id: vec![7; 16],
            span_id: vec![9; 8],
            name: name.to_owned(),
            kind: 2,
            attributes: vec![KeyValue {
                key: "http.route".to_owned(),
                value: Some(AnyValue {
                    value: Some(Value::StringValue("/api/students/{id}".to_owned())),
                }),
                ..KeyValue::default()
            }],
            ..Span::default()
        }
    }

    #[test]
    fn an_export_as_an_sdk_sends_it_is_counted_span_by_span_without_decoding_them() {
        let scope = |names: &[&str]| ScopeSpans {
            spans: names.iter().map(|n| span(n)).collect(),
            ..ScopeSpans::default()
        };
        let export = ExportTraceServiceRequest {
            resource_spans: vec![
                ResourceSpans {
                    scope_spans: vec![scope(&["GET", "students get", "MGET"]), scope(&["x"])],
                    ..ResourceSpans::default()
                },
                ResourceSpans {
                    scope_spans: vec![scope(&["publish"]), scope(&[])],
                    ..ResourceSpans::default()
                },
            ],
        };
        let read = Export::decode(export.encode_to_vec().as_slice()).expect("an OTLP export");
        assert_eq!(read.spans(), 5);
        let empty = Export::decode(
            ExportTraceServiceRequest::default()
                .encode_to_vec()
                .as_slice(),
        );
        assert_eq!(empty.map(|e| e.spans()), Ok(0));
    }
}

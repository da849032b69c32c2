//! `bench-otlp-sink --listen ADDR`: an OTLP/gRPC trace endpoint that accepts every export and
//! keeps nothing but a count, the local collector of the benchmark's case with traces on
//! (docs/benchmarks.md). Prints the spans received when it stops (SIGINT/SIGTERM).

use std::{
    net::SocketAddr,
    process::ExitCode,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use clap::Parser as _;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
    trace_service_server::{TraceService, TraceServiceServer},
};
use tonic::{Request, Response, Status};

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

#[derive(Debug, Clone, Default)]
struct Count(Arc<AtomicU64>);

#[tonic::async_trait]
impl TraceService for Count {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let spans: usize = request
            .get_ref()
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len())
            .sum();
        self.0.fetch_add(spans as u64, Ordering::Relaxed);
        Ok(Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    let count = Count::default();
    let served = tonic::transport::Server::builder()
        .add_service(TraceServiceServer::new(count.clone()))
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

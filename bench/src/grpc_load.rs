//! `bench-grpc`: a small unary gRPC load client. `connections` channels, each its own HTTP/2
//! connection, each driving `GetStudent` or `GetCourse` calls back to back (one in flight per
//! connection) — the gRPC counterpart of `wrk -c N` on `GET /api/{kind}/{id}`. An unmeasured
//! warm-up comes first; then every call that starts and ends inside the measured window counts,
//! its latency recorded if it succeeded. All connections run on one client thread unless
//! `--threads` says otherwise, so the client takes as little CPU from the server as it can.

use std::time::Duration;

use nis_grpc::proto::v1::{
    GetCourseRequest, GetStudentRequest, course_service_client::CourseServiceClient,
    student_service_client::StudentServiceClient,
};
use serde::Serialize;
use tokio::time::Instant;
use tonic::{
    Status,
    transport::{Channel, Endpoint},
};

use crate::{BoxError, cli, error::chain, latency::Latencies};

/// How long a connection pauses after a failed call, so a dead server is not spun on.
const PAUSE_AFTER_ERROR: Duration = Duration::from_millis(1);

/// Which public service's `Get` is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    Students,
    Courses,
}

/// One load run: the command line of `bench-grpc`.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "bench-grpc")]
pub struct Config {
    /// The service's gRPC URL.
    #[arg(long)]
    pub url: String,
    #[arg(long, value_enum)]
    pub kind: Kind,
    /// The id to get.
    #[arg(long)]
    pub id: String,
    #[arg(long, default_value = "10", value_parser = cli::positive)]
    pub connections: usize,
    #[arg(long = "duration-secs", default_value = "10", value_parser = cli::positive_seconds)]
    pub duration: Duration,
    #[arg(long = "warmup-secs", default_value = "2", value_parser = cli::seconds)]
    pub warmup: Duration,
    /// The deadline of connecting and of each call.
    #[arg(long = "timeout-ms", default_value = "5000", value_parser = cli::millis)]
    pub timeout: Duration,
    /// The client's threads: 1 (the default) runs every connection on one thread, which
    /// costs the machine the least CPU beside the server (a multi-threaded client spends more
    /// on waking its threads than it gains on a 2-core machine).
    #[arg(long, default_value = "1", value_parser = cli::positive)]
    pub threads: usize,
}

/// The JSON line of `bench-grpc`.
#[derive(Debug, Serialize)]
pub struct Outcome {
    /// Calls answered in the measured window, failed ones included.
    pub requests: u64,
    /// Of those, the ones that failed (any status but OK, or no answer in time).
    pub errors: u64,
    /// `requests` per second of the window (one decimal).
    pub rps: f64,
    /// Percentiles of the successful calls.
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
}

/// A client of the public service of `kind` on one channel.
#[derive(Clone)]
enum Client {
    Students(StudentServiceClient<Channel>),
    Courses(CourseServiceClient<Channel>),
}

impl Client {
    fn new(kind: Kind, channel: Channel) -> Self {
        match kind {
            Kind::Students => Self::Students(StudentServiceClient::new(channel)),
            Kind::Courses => Self::Courses(CourseServiceClient::new(channel)),
        }
    }

    async fn get(&mut self, id: &str) -> Result<(), Status> {
        let id = id.to_owned();
        match self {
            Self::Students(client) => client.get_student(GetStudentRequest { id }).await.map(drop),
            Self::Courses(client) => client.get_course(GetCourseRequest { id }).await.map(drop),
        }
    }
}

/// What one connection counted.
#[derive(Default)]
struct Tally {
    latencies: Latencies,
    requests: u64,
    errors: u64,
    first_error: Option<Status>,
}

/// Connects every channel, checks one call, runs the warm-up and the measured window.
pub async fn run(config: &Config) -> Result<Outcome, BoxError> {
    let endpoint = Endpoint::from_shared(config.url.clone())
        .map_err(|e| format!("--url: {e}"))?
        .connect_timeout(config.timeout)
        .timeout(config.timeout)
        .tcp_nodelay(true);
    let mut clients = Vec::with_capacity(config.connections);
    for _ in 0..config.connections {
        // Each `connect` opens its own HTTP/2 connection.
        let channel = tokio::time::timeout(config.timeout, endpoint.connect())
            .await
            .map_err(|_| format!("{}: no connection within {:?}", config.url, config.timeout))?
            .map_err(|e| format!("{}: {}", config.url, chain(&e)))?;
        clients.push(Client::new(config.kind, channel));
    }
    if let Some(first) = clients.first_mut() {
        first
            .get(&config.id)
            .await
            .map_err(|status| format!("the first call failed: {status}"))?;
    }

    let measure_from = Instant::now() + config.warmup;
    let end = measure_from + config.duration;
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|client| tokio::spawn(drive(client, config.id.clone(), measure_from, end)))
        .collect();
    let mut total = Tally::default();
    for task in tasks {
        let tally = task.await?;
        total.latencies.merge(&tally.latencies);
        total.requests += tally.requests;
        total.errors += tally.errors;
        total.first_error = total.first_error.or(tally.first_error);
    }
    if let Some(status) = &total.first_error {
        eprintln!(
            "bench-grpc: {} of {} calls failed; the first: {status}",
            total.errors, total.requests
        );
    }
    let percentiles = total.latencies.percentiles();
    Ok(Outcome {
        requests: total.requests,
        errors: total.errors,
        rps: (total.requests as f64 / config.duration.as_secs_f64() * 10.0).round() / 10.0,
        p50_ms: percentiles.p50_ms,
        p99_ms: percentiles.p99_ms,
        max_ms: percentiles.max_ms,
    })
}

/// Calls back to back until `end`; counts the calls inside `[measure_from, end]`.
async fn drive(mut client: Client, id: String, measure_from: Instant, end: Instant) -> Tally {
    let mut tally = Tally::default();
    loop {
        let start = Instant::now();
        if start >= end {
            return tally;
        }
        let result = client.get(&id).await;
        let done = Instant::now();
        let measured = start >= measure_from && done <= end;
        match result {
            Ok(()) if measured => {
                tally.requests += 1;
                tally.latencies.record(done - start);
            }
            Ok(()) => {}
            Err(status) => {
                if measured {
                    tally.requests += 1;
                    tally.errors += 1;
                    tally.first_error.get_or_insert(status);
                }
                tokio::time::sleep(PAUSE_AFTER_ERROR).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use clap::Parser as _;

    fn parse(args: &[&str]) -> Result<Config, clap::Error> {
        Config::try_parse_from(std::iter::once("bench-grpc").chain(args.iter().copied()))
    }

    #[test]
    fn defaults_and_kinds() {
        let config = parse(&[
            "--url",
            "http://127.0.0.1:50020",
            "--kind",
            "courses",
            "--id",
            "x",
        ])
        .expect("valid");
        assert_eq!(config.kind, Kind::Courses);
        assert_eq!(config.connections, 10);
        assert_eq!(config.duration, Duration::from_secs(10));
        assert_eq!(config.warmup, Duration::from_secs(2));
        assert_eq!(config.threads, 1);
        let bad = parse(&["--url", "u", "--kind", "teachers", "--id", "x"]);
        assert!(bad.is_err());
    }
}

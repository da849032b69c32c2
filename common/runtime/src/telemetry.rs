//! Logs (tracing) and metrics (Prometheus): set up once per process. The metric names live in
//! `nis_core::metric_names`.

use std::{io::IsTerminal as _, str::FromStr, sync::OnceLock, time::Duration};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use nis_core::metric_names::{
    CACHE_FENCE_REFUSALS_TOTAL, CACHE_LOOKUPS_TOTAL, CACHE_SETTLE_FAILURES_TOTAL, DEAD_LETTERS,
    EVENTS_CONSUMED_TOTAL, EVENTS_PUBLISHED_TOTAL, LINK_PROPAGATION, OUTBOX_PENDING,
    RECONCILE_DURATION, RECONCILE_INTERVAL, RECONCILE_LAST_SUCCESS, RECONCILE_REPAIRED_TOTAL,
    RECONCILE_RUNS_TOTAL, REQUEST_DURATION, REQUESTS_TOTAL, TRACE_SPANS_DROPPED_TOTAL,
};
use tracing_subscriber::{
    EnvFilter,
    filter::{FilterExt as _, filter_fn},
    fmt,
    prelude::*,
};

/// How log lines are written to stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines (development).
    #[default]
    Text,
    /// One JSON object per line (containers).
    Json,
}

impl FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            other => Err(format!("expected `text` or `json`, got `{other}`")),
        }
    }
}

/// How long the log writer rests after writing out a batch.
const BATCH_PAUSE: Duration = Duration::from_millis(5);

/// Stdout for the background log writer, in batches: the writer drains every line queued since
/// it last looked, then flushes — once per batch — and rests for [`BATCH_PAUSE`]. While it
/// rests nobody waits on the queue, so a request that logs a line only appends it; without the
/// rest, the writer would sleep on the queue after each line and every request would pay for
/// waking it (a tenth of a cached read's cost in `make bench`, docs/benchmarks.md). A line
/// reaches stdout at most that much later.
struct Batches(std::io::BufWriter<std::io::Stdout>);

impl Default for Batches {
    fn default() -> Self {
        Self(std::io::BufWriter::with_capacity(
            64 * 1024,
            std::io::stdout(),
        ))
    }
}

impl std::io::Write for Batches {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()?;
        std::thread::sleep(BATCH_PAUSE);
        Ok(())
    }
}

/// Keeps the background log writer of [`init_tracing`] running; dropping it writes out what
/// is still buffered, so the program keeps it until it exits.
#[must_use = "dropping it stops the log writer"]
pub struct LogGuard {
    _writer: Option<tracing_appender::non_blocking::WorkerGuard>,
    traces: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        // Exports the spans still batched, within the exporter's timeout.
        if let Some(traces) = self.traces.take() {
            let _ = traces.shutdown();
        }
    }
}

impl LogGuard {
    /// Keeps the writer for the life of the process (tests and in-process servers, which
    /// have no `main` to hold it).
    pub fn keep_for_the_process(self) {
        std::mem::forget(self);
    }
}

/// Installs the global tracing subscriber (level from `RUST_LOG`, default `info`).
///
/// Lines go to stdout through a background writer, so a request never waits on the terminal
/// or the pipe (see [`Batches`]); if the writer falls far behind (more than 128k lines) new lines are dropped
/// rather than slowing requests down. Colour codes only when stdout is a terminal: a log
/// collector gets plain text. A second call in the same process is a no-op, which keeps
/// tests simple.
pub fn init_tracing(format: LogFormat) -> LogGuard {
    install(format, None)
}

/// [`init_tracing`], and spans exported as OpenTelemetry traces when the environment names a
/// collector ([`crate::traces`]; `program` is the default service name). Must run on a Tokio
/// runtime, which the exporter's gRPC channel uses.
pub fn init_tracing_and_traces(format: LogFormat, program: &str) -> LogGuard {
    let (settings, problems) = crate::traces::TraceSettings::from_env(program);
    let guard = init_tracing_with_traces(format, &settings);
    for problem in problems {
        tracing::warn!("traces: {problem}");
    }
    guard
}

/// [`init_tracing`], and spans exported as `settings` say (tests give them explicitly).
pub fn init_tracing_with_traces(
    format: LogFormat,
    settings: &crate::traces::TraceSettings,
) -> LogGuard {
    let (provider, failed) = match crate::traces::provider(settings) {
        Ok(provider) => (provider, None),
        Err(e) => (None, Some(e)),
    };
    let guard = install(format, provider);
    if let Some(e) = failed {
        tracing::warn!(error = %e, "traces: no exporter; spans are not exported");
    } else if let Some(endpoint) = &settings.endpoint {
        tracing::info!(%endpoint, service = %settings.service_name, sampler = ?settings.sampler, "traces: exporting spans");
    }
    guard
}

fn install(
    format: LogFormat,
    traces: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
) -> LogGuard {
    // `RUST_LOG` chooses the log lines only, and the exported trace spans stay out of them
    // (see `nis_core::trace`); the trace spans have their own filter (`traces::layer`), so
    // quieter logs do not lose traces.
    let filter = || {
        EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| EnvFilter::new("info"))
            .and(filter_fn(|meta| {
                !(meta.is_span() && meta.target() == nis_core::trace::TARGET)
            }))
    };
    let (writer, guard) = tracing_appender::non_blocking(Batches::default());
    let registry = tracing_subscriber::registry().with(traces.as_ref().map(crate::traces::layer));
    let result = match format {
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .json()
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_writer(writer)
                    .with_filter(filter()),
            )
            .try_init(),
        LogFormat::Text => registry
            .with(
                fmt::layer()
                    .with_ansi(std::io::stdout().is_terminal())
                    .with_writer(writer)
                    .with_filter(filter()),
            )
            .try_init(),
    };
    // Already installed (tests start several apps in one process): keep the first.
    match result {
        Ok(()) => LogGuard {
            _writer: Some(guard),
            traces,
        },
        Err(_) => LogGuard {
            _writer: None,
            traces: None,
        },
    }
}

const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A reconciliation run: a tenth of a second over agreeing sides, minutes to repair a wiped one.
const RECONCILE_BUCKETS: &[f64] = &[
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

static METRICS: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the Prometheus recorder once per process and returns the handle that renders
/// `/metrics`. Safe to call from every app started in the process.
pub fn metrics() -> PrometheusHandle {
    METRICS
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full(REQUEST_DURATION.to_owned()), LATENCY_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(LINK_PROPAGATION.to_owned()),
                        LATENCY_BUCKETS,
                    )
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(RECONCILE_DURATION.to_owned()),
                        RECONCILE_BUCKETS,
                    )
                })
                .and_then(|b| b.install_recorder())
                .unwrap_or_else(|e| {
                    // Only fails if another recorder was installed first: a programming error.
                    panic!("cannot install the Prometheus recorder: {e}")
                });
            describe_metrics();
            spawn_upkeep(handle.clone());
            handle
        })
        .clone()
}

fn describe_metrics() {
    metrics::describe_counter!(REQUESTS_TOTAL, "Requests handled by the core service");
    metrics::describe_histogram!(
        REQUEST_DURATION,
        metrics::Unit::Seconds,
        "Time spent handling a request in the core service"
    );
    metrics::describe_counter!(CACHE_LOOKUPS_TOTAL, "Redis cache lookups by result");
    metrics::describe_counter!(
        CACHE_FENCE_REFUSALS_TOTAL,
        "Writes refused, nothing committed, because the cache could not be fenced"
    );
    metrics::describe_counter!(
        CACHE_SETTLE_FAILURES_TOTAL,
        "Cache settles that failed after a commit (scopes uncached until the fence expires)"
    );
    metrics::describe_counter!(EVENTS_PUBLISHED_TOTAL, "Relation events published");
    metrics::describe_counter!(
        EVENTS_CONSUMED_TOTAL,
        "Relation events consumed, by outcome"
    );
    metrics::describe_histogram!(
        LINK_PROPAGATION,
        metrics::Unit::Seconds,
        "Time from recording a link change to applying it on the other side"
    );
    metrics::describe_gauge!(
        OUTBOX_PENDING,
        "Relation changes recorded but not yet published"
    );
    metrics::describe_counter!(RECONCILE_RUNS_TOTAL, "Reconciliation runs, by outcome");
    metrics::describe_counter!(
        RECONCILE_REPAIRED_TOTAL,
        "Pairs a reconciliation run repaired, by the side that was behind (here, peer)"
    );
    metrics::describe_histogram!(
        RECONCILE_DURATION,
        metrics::Unit::Seconds,
        "How long a reconciliation run took"
    );
    metrics::describe_gauge!(
        RECONCILE_LAST_SUCCESS,
        "When this process's last successful reconciliation run ended (Unix seconds; its start until one did)"
    );
    metrics::describe_gauge!(
        RECONCILE_INTERVAL,
        "RECONCILE_INTERVAL_SECS (0: periodic runs off)"
    );
    metrics::describe_counter!(
        TRACE_SPANS_DROPPED_TOTAL,
        "Spans whose export to the OpenTelemetry collector failed"
    );
    metrics::describe_gauge!(
        DEAD_LETTERS,
        "Messages of this service in the dead letters, as the last reconciliation run counted them"
    );
}

fn spawn_upkeep(handle: PrometheusHandle) {
    // Keeps the recorder's internal buffers bounded; a thread so it works outside a runtime.
    let spawned = std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || {
            loop {
                std::thread::sleep(Duration::from_secs(5));
                handle.run_upkeep();
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "metrics upkeep thread did not start");
    }
}

//! Distributed traces (docs/behaviour.md §7, "Traces"): `tracing` spans exported as
//! OpenTelemetry spans over OTLP/gRPC, configured the standard way:
//!
//! - `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or `OTEL_EXPORTER_OTLP_ENDPOINT`: the collector. Unset
//!   (or `OTEL_SDK_DISABLED=true`): no exporter, no OpenTelemetry layer, nothing costs more
//!   than without traces.
//! - `OTEL_SERVICE_NAME`: the `service.name` of the spans (default: the program).
//! - `OTEL_TRACES_SAMPLER` / `OTEL_TRACES_SAMPLER_ARG`: `parentbased_traceidratio` (the
//!   default) with a ratio (default 1.0), `parentbased_always_on`, `parentbased_always_off`,
//!   `traceidratio`, `always_on`, `always_off`.
//!
//! Spans are exported in batches from a background task; an exporter that fails or is slow
//! never delays a request, and the spans of a failed export are counted
//! (`nis_trace_spans_dropped_total`).

use std::{
    collections::HashMap,
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use nis_core::metric_names::TRACE_SPANS_DROPPED_TOTAL;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::{
    Resource,
    error::OTelSdkResult,
    propagation::TraceContextPropagator,
    runtime,
    trace::{
        BatchConfigBuilder, Sampler, SdkTracerProvider, SpanData, SpanExporter,
        span_processor_with_async_runtime::BatchSpanProcessor,
    },
};

/// How long one export may take before it is given up (and its spans counted as dropped).
const EXPORT_TIMEOUT: Duration = Duration::from_secs(5);

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Whether spans are exported: the adapters read and write trace context only then.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// What the environment says about traces.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceSettings {
    /// The OTLP/gRPC endpoint; `None`: traces off.
    pub endpoint: Option<String>,
    /// `service.name`.
    pub service_name: String,
    /// The sampler.
    pub sampler: SamplerChoice,
}

/// A sampler named by `OTEL_TRACES_SAMPLER`.
#[derive(Debug, Clone, PartialEq)]
pub enum SamplerChoice {
    /// Follow the parent's decision; for a trace starting here, keep this share.
    ParentBasedRatio(f64),
    /// Follow the parent's decision; keep every trace starting here.
    ParentBasedAlwaysOn,
    /// Follow the parent's decision; keep no trace starting here.
    ParentBasedAlwaysOff,
    /// Keep this share of traces, whatever the parent decided.
    Ratio(f64),
    /// Keep everything.
    AlwaysOn,
    /// Keep nothing.
    AlwaysOff,
}

impl TraceSettings {
    /// Reads the `OTEL_*` variables of `vars`; `program` is the default service name.
    /// Problems (a sampler or ratio it does not know) fall back to the default, with a reason.
    pub fn from_vars(vars: &HashMap<String, String>, program: &str) -> (Self, Vec<String>) {
        let get = |name: &str| {
            vars.get(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let mut problems = Vec::new();
        let disabled = get("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let endpoint = get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            .or_else(|| get("OTEL_EXPORTER_OTLP_ENDPOINT"))
            .filter(|_| !disabled);
        let ratio = match get("OTEL_TRACES_SAMPLER_ARG").map(|a| a.parse::<f64>()) {
            None => 1.0,
            Some(Ok(r)) if (0.0..=1.0).contains(&r) => r,
            Some(_) => {
                problems.push("OTEL_TRACES_SAMPLER_ARG is not a ratio in 0..=1; using 1.0".into());
                1.0
            }
        };
        let sampler = match get("OTEL_TRACES_SAMPLER").as_deref() {
            None | Some("parentbased_traceidratio") => SamplerChoice::ParentBasedRatio(ratio),
            Some("parentbased_always_on") => SamplerChoice::ParentBasedAlwaysOn,
            Some("parentbased_always_off") => SamplerChoice::ParentBasedAlwaysOff,
            Some("traceidratio") => SamplerChoice::Ratio(ratio),
            Some("always_on") => SamplerChoice::AlwaysOn,
            Some("always_off") => SamplerChoice::AlwaysOff,
            Some(other) => {
                problems.push(format!(
                    "OTEL_TRACES_SAMPLER {other:?} is not supported; using parentbased_traceidratio"
                ));
                SamplerChoice::ParentBasedRatio(ratio)
            }
        };
        let settings = Self {
            endpoint,
            service_name: get("OTEL_SERVICE_NAME").unwrap_or_else(|| program.to_owned()),
            sampler,
        };
        (settings, problems)
    }

    /// [`from_vars`](Self::from_vars) of the process environment.
    pub fn from_env(program: &str) -> (Self, Vec<String>) {
        Self::from_vars(&std::env::vars().collect(), program)
    }
}

impl SamplerChoice {
    fn sampler(&self) -> Sampler {
        let parent_based = |root: Sampler| Sampler::ParentBased(Box::new(root));
        match *self {
            Self::ParentBasedRatio(r) => parent_based(Sampler::TraceIdRatioBased(r)),
            Self::ParentBasedAlwaysOn => parent_based(Sampler::AlwaysOn),
            Self::ParentBasedAlwaysOff => parent_based(Sampler::AlwaysOff),
            Self::Ratio(r) => Sampler::TraceIdRatioBased(r),
            Self::AlwaysOn => Sampler::AlwaysOn,
            Self::AlwaysOff => Sampler::AlwaysOff,
        }
    }
}

/// An exporter that counts the spans of the exports that failed.
#[derive(Debug)]
struct Counting<E>(E);

impl<E: SpanExporter> SpanExporter for Counting<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let spans = batch.len() as u64;
        let exported = self.0.export(batch).await;
        if exported.is_err() {
            metrics::counter!(TRACE_SPANS_DROPPED_TOTAL).increment(spans);
        }
        exported
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.0.set_resource(resource);
    }
}

/// The tracer provider of `settings`, its spans exported to the endpoint in batches from a
/// task on the current Tokio runtime; `None` when traces are off. Installs the W3C trace
/// context propagator.
pub fn provider(settings: &TraceSettings) -> Result<Option<SdkTracerProvider>, String> {
    let Some(endpoint) = &settings.endpoint else {
        return Ok(None);
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint.clone())
        .with_timeout(EXPORT_TIMEOUT)
        .build()
        .map_err(|e| format!("OTEL_EXPORTER_OTLP_ENDPOINT {endpoint}: {e}"))?;
    let batches = BatchConfigBuilder::default()
        .with_max_export_timeout(EXPORT_TIMEOUT)
        .build();
    let processor = BatchSpanProcessor::builder(Counting(exporter), runtime::Tokio)
        .with_batch_config(batches)
        .build();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_sampler(settings.sampler.sampler())
        .with_resource(
            Resource::builder()
                .with_service_name(settings.service_name.clone())
                .build(),
        )
        .build();
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    ENABLED.store(true, Ordering::Relaxed);
    Ok(Some(provider))
}

/// The W3C trace context headers (and gRPC metadata keys) a trace continues from.
pub const CONTEXT_HEADERS: [&str; 2] = ["traceparent", "tracestate"];

/// Makes `span` continue the trace of the caller's W3C `traceparent` and `tracestate` (a new
/// trace when there is none) and records its `trace_id` and `span_id` fields, so that the log
/// lines written inside it name them. Returns the span's own `traceparent`, for what the
/// request records (the outbox entries of a write).
pub fn continue_trace(
    span: &tracing::Span,
    traceparent: Option<&str>,
    tracestate: Option<&str>,
) -> Option<String> {
    use opentelemetry::trace::TraceContextExt as _;
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;

    let carrier: HashMap<&str, &str> = CONTEXT_HEADERS
        .into_iter()
        .zip([traceparent, tracestate])
        .filter_map(|(name, value)| Some((name, value?)))
        .collect();
    let parent = opentelemetry::global::get_text_map_propagator(|p| p.extract(&Carrier(&carrier)));
    let _ = span.set_parent(parent);
    let context = span.context();
    let ids = context.span().span_context().clone();
    if !ids.is_valid() {
        return None;
    }
    let (trace_id, span_id) = (ids.trace_id().to_string(), ids.span_id().to_string());
    span.record("trace_id", trace_id.as_str());
    span.record("span_id", span_id.as_str());
    Some(format!(
        "00-{trace_id}-{span_id}-{:02x}",
        ids.trace_flags().to_u8()
    ))
}

/// Header values as the propagator reads them.
struct Carrier<'a>(&'a HashMap<&'a str, &'a str>);

impl opentelemetry::propagation::Extractor for Carrier<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).copied()
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().copied().collect()
    }
}

/// The W3C trace context of the current span, as (header, value) pairs to send with an
/// outgoing call (gRPC metadata, message headers); none when traces are off.
pub fn current_context_headers() -> Vec<(&'static str, String)> {
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;

    if !enabled() {
        return Vec::new();
    }
    let mut carrier: HashMap<String, String> = HashMap::new();
    let context = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&context, &mut carrier));
    CONTEXT_HEADERS
        .iter()
        .filter_map(|name| carrier.remove(*name).map(|value| (*name, value)))
        .collect()
}

/// The W3C `traceparent` of the current span (traces on), to record with what it causes.
pub fn current_traceparent() -> Option<String> {
    current_context_headers()
        .into_iter()
        .find(|(name, _)| *name == "traceparent")
        .map(|(_, value)| value)
}

/// A span of kind `kind` (`producer`, `consumer`) for the messaging operation `operation`
/// (`publish`, `process`) on `subject`, continuing the trace whose `traceparent` is given;
/// with the span's own `traceparent`.
pub fn messaging_span(
    kind: &'static str,
    operation: &'static str,
    subject: &str,
    traceparent: Option<&str>,
) -> (tracing::Span, Option<String>) {
    let span = tracing::info_span!(
        "message",
        otel.name = %format!("{operation} {subject}"),
        otel.kind = kind,
        messaging.system = "nats",
        messaging.operation.name = operation,
        messaging.destination.name = %subject,
        trace_id = tracing::field::Empty,
        span_id = tracing::field::Empty,
    );
    let own = continue_trace(&span, traceparent, None);
    (span, own)
}

/// The `tracing` layer that turns spans into OpenTelemetry spans of `provider`.
pub fn layer<S>(
    provider: &SdkTracerProvider,
) -> tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::Tracer>
where
    S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
{
    tracing_opentelemetry::layer().with_tracer(provider.tracer("nis"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> (TraceSettings, Vec<String>) {
        let vars = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        TraceSettings::from_vars(&vars, "students")
    }

    #[test]
    fn no_endpoint_no_traces_and_parent_based_ratio_by_default() {
        let (s, problems) = settings(&[]);
        assert_eq!(s.endpoint, None);
        assert_eq!(s.service_name, "students");
        assert_eq!(s.sampler, SamplerChoice::ParentBasedRatio(1.0));
        assert!(problems.is_empty());
        assert_eq!(provider(&s).map(|p| p.is_some()), Ok(false));
    }

    #[test]
    fn the_standard_variables_are_read() {
        let (s, problems) = settings(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317"),
            ("OTEL_SERVICE_NAME", "students-eu"),
            ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.1"),
        ]);
        assert_eq!(s.endpoint.as_deref(), Some("http://collector:4317"));
        assert_eq!(s.service_name, "students-eu");
        assert_eq!(s.sampler, SamplerChoice::ParentBasedRatio(0.1));
        assert!(problems.is_empty());
        let (traces_endpoint, _) = settings(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4317"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://b:4317"),
        ]);
        assert_eq!(traces_endpoint.endpoint.as_deref(), Some("http://b:4317"));
    }

    #[test]
    fn the_sdk_can_be_disabled_and_odd_values_fall_back_with_a_reason() {
        let (s, _) = settings(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317"),
            ("OTEL_SDK_DISABLED", "true"),
        ]);
        assert_eq!(s.endpoint, None);
        let (s, problems) = settings(&[
            ("OTEL_TRACES_SAMPLER", "jaeger_remote"),
            ("OTEL_TRACES_SAMPLER_ARG", "2"),
        ]);
        assert_eq!(s.sampler, SamplerChoice::ParentBasedRatio(1.0));
        assert_eq!(problems.len(), 2, "{problems:?}");
    }
}

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
//! The sampler decides once per unit of work entering the process ([`enter`]): a sampled one
//! gets spans, an unsampled one none at all, only a `traceparent` flagged unsampled to pass on.
//! Spans are exported in batches from a thread of their own; an exporter that fails or is slow
//! never delays a request, and the spans of a failed export are counted
//! (`nis_trace_spans_dropped_total`).

use std::{collections::HashMap, sync::OnceLock, time::Duration};

use nis_core::metric_names::TRACE_SPANS_DROPPED_TOTAL;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::{
    Resource,
    error::OTelSdkResult,
    propagation::TraceContextPropagator,
    trace::{BatchSpanProcessor, Sampler, SdkTracerProvider, SpanData, SpanExporter},
};

/// How long one export may take before it is given up (and its spans counted as dropped).
const EXPORT_TIMEOUT: Duration = Duration::from_secs(5);

/// The sampler of the process that exports traces, which [`enter`] asks.
static SAMPLER: OnceLock<Sampler> = OnceLock::new();

/// Whether spans are exported: the adapters read and write trace context only then.
pub fn enabled() -> bool {
    SAMPLER.get().is_some()
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
/// thread of its own over a gRPC channel of the current Tokio runtime; `None` when traces are
/// off. Installs the sampler [`enter`] asks.
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
    // The SDK's own batch processor: spans queue up without waking anything, and a thread of
    // its own exports them every few seconds or once a batch is full. (The processor on the
    // async runtime wakes its task for every span ended, which cost a sampled request more than
    // the rest of its spans together: docs/performance.md, "Traces".)
    let processor = BatchSpanProcessor::builder(Counting(exporter)).build();
    // Whether a trace is sampled is decided where it enters the process (`enter`): only the
    // spans of a sampled one are made, and they are all kept.
    let provider = SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_sampler(Sampler::AlwaysOn)
        .with_resource(
            Resource::builder()
                .with_service_name(settings.service_name.clone())
                .build(),
        )
        .build();
    let _ = SAMPLER.set(settings.sampler.sampler());
    Ok(Some(provider))
}

/// The W3C trace context headers (and gRPC metadata keys) a trace continues from.
pub const CONTEXT_HEADERS: [&str; 2] = ["traceparent", "tracestate"];

/// How a unit of work entering this process (a request, a message) takes part in traces.
#[derive(Debug)]
pub enum Entry {
    /// Traces are off.
    Off,
    /// Not sampled: nothing is exported. The `traceparent` to pass on with what it causes (the
    /// caller's trace, flagged unsampled), so the services after this one drop it too.
    Unsampled(String),
    /// Sampled.
    Sampled(Sampled),
}

/// The trace span of a sampled unit of work, and its ids.
#[derive(Debug)]
pub struct Sampled {
    /// The span, exported; it continues the caller's trace.
    pub span: tracing::Span,
    /// Its W3C `traceparent` (`00-{trace id}-{span id}-{flags}`), to record with, and send
    /// along with, what the work causes.
    pub traceparent: String,
}

impl Sampled {
    /// Its trace id (32 hex digits), for the log lines.
    pub fn trace_id(&self) -> &str {
        self.traceparent.get(3..35).unwrap_or_default()
    }

    /// Its span id (16 hex digits), for the log lines.
    pub fn span_id(&self) -> &str {
        self.traceparent.get(36..52).unwrap_or_default()
    }

    /// A span under the trace span for the log lines of the work: it names the trace's
    /// `trace_id` and `span_id` (docs/behaviour.md §7, "Traces").
    pub fn log_span(&self) -> tracing::Span {
        tracing::info_span!(
            target: nis_core::trace::LOG_TARGET,
            parent: &self.span,
            "trace",
            trace_id = self.trace_id(),
            span_id = self.span_id(),
        )
    }
}

impl Entry {
    /// The spans to run the work in — the trace span, and under it [`Sampled::log_span`]
    /// (both disabled unless sampled; enter the trace span first, so that the spans made
    /// inside find it as their parent) — and the `traceparent` (when traces are on).
    pub fn into_spans(self) -> (tracing::Span, tracing::Span, Option<String>) {
        match self {
            Self::Sampled(sampled) => {
                let logs = sampled.log_span();
                (sampled.span, logs, Some(sampled.traceparent))
            }
            untraced => (
                tracing::Span::none(),
                tracing::Span::none(),
                untraced.into_parts().1,
            ),
        }
    }

    /// The trace span (when sampled) and the `traceparent` (when traces are on).
    pub fn into_parts(self) -> (Option<tracing::Span>, Option<String>) {
        match self {
            Self::Off => (None, None),
            Self::Unsampled(traceparent) => (None, Some(traceparent)),
            Self::Sampled(sampled) => (Some(sampled.span), Some(sampled.traceparent)),
        }
    }
}

/// Decides whether the work that enters with the caller's W3C `traceparent` and `tracestate`
/// (none: a trace begins here) is traced, by the configured sampler, and for a sampled one
/// makes its span with `make` (of target [`nis_core::trace::TARGET`]), continuing the
/// caller's trace. An unsampled one gets no span: it costs next to nothing.
pub fn enter(
    traceparent: Option<&str>,
    tracestate: Option<&str>,
    make: impl FnOnce() -> tracing::Span,
) -> Entry {
    match SAMPLER.get() {
        Some(sampler) => enter_with(sampler, traceparent, tracestate, make),
        None => Entry::Off,
    }
}

/// [`enter`], asking `sampler`.
fn enter_with(
    sampler: &Sampler,
    traceparent: Option<&str>,
    tracestate: Option<&str>,
    make: impl FnOnce() -> tracing::Span,
) -> Entry {
    use opentelemetry::{
        propagation::TextMapPropagator as _,
        trace::{SpanKind, TraceContextExt as _},
    };
    use opentelemetry_sdk::trace::{IdGenerator as _, SamplingDecision, ShouldSample as _};
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;

    let parent = match traceparent {
        Some(traceparent) => TraceContextPropagator::new().extract(&Carrier {
            traceparent,
            tracestate,
        }),
        None => opentelemetry::Context::new(),
    };
    let remote = parent.span().span_context().clone();
    let ids = opentelemetry_sdk::trace::RandomIdGenerator::default();
    let trace_id = if remote.is_valid() {
        remote.trace_id()
    } else {
        ids.new_trace_id()
    };
    let sampled = sampler
        .should_sample(Some(&parent), trace_id, "", &SpanKind::Server, &[], &[])
        .decision
        == SamplingDecision::RecordAndSample;
    let unsampled = || {
        let span_id = if remote.is_valid() {
            remote.span_id()
        } else {
            ids.new_span_id()
        };
        Entry::Unsampled(format!("00-{trace_id}-{span_id}-00"))
    };
    if !sampled {
        return unsampled();
    }
    let span = make();
    if remote.is_valid() {
        let _ = span.set_parent(parent);
    }
    let context = span.context();
    let own = context.span().span_context().clone();
    if !own.is_valid() {
        // A subscriber that does not export the span: nothing to trace.
        return unsampled();
    }
    let traceparent = format!(
        "00-{}-{}-{:02x}",
        own.trace_id(),
        own.span_id(),
        own.trace_flags().to_u8()
    );
    Entry::Sampled(Sampled { span, traceparent })
}

/// The caller's trace context headers as the propagator reads them (without collecting them
/// into a map: most requests behind the gateway carry a `traceparent`).
struct Carrier<'a> {
    traceparent: &'a str,
    tracestate: Option<&'a str>,
}

impl opentelemetry::propagation::Extractor for Carrier<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        match key {
            "traceparent" => Some(self.traceparent),
            "tracestate" => self.tracestate,
            _ => None,
        }
    }

    fn keys(&self) -> Vec<&str> {
        CONTEXT_HEADERS.to_vec()
    }
}

/// The W3C trace context to send with an outgoing call (gRPC metadata) made by work whose
/// `traceparent` is `here`, as (header, value) pairs: the current span's inside a sampled
/// trace (so the callee's spans are its children), `here` otherwise (an unsampled trace, so
/// the callee drops it too); none when traces are off.
pub fn outgoing_context(here: Option<&str>) -> Vec<(&'static str, String)> {
    use opentelemetry::propagation::TextMapPropagator as _;
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;

    if !enabled() {
        return Vec::new();
    }
    if !nis_core::trace::in_trace() {
        return here
            .map(|traceparent| vec![("traceparent", traceparent.to_owned())])
            .unwrap_or_default();
    }
    let mut carrier: HashMap<String, String> = HashMap::new();
    let context = tracing::Span::current().context();
    TraceContextPropagator::new().inject_context(&context, &mut carrier);
    CONTEXT_HEADERS
        .iter()
        .filter_map(|name| carrier.remove(*name).map(|value| (*name, value)))
        .collect()
}

/// The entry of one messaging operation (OpenTelemetry's messaging conventions) of kind `kind`
/// (`producer`, `consumer`), `operation` (`publish`, `process`), on `subject`, in the trace
/// whose `traceparent` the entry or message carries.
pub fn messaging(
    kind: &'static str,
    operation: &'static str,
    subject: &str,
    traceparent: Option<&str>,
) -> Entry {
    enter(traceparent, None, || {
        tracing::info_span!(
            target: nis_core::trace::TARGET,
            "message",
            otel.name = %format_args!("{operation} {subject}"),
            otel.kind = kind,
            messaging.system = "nats",
            messaging.operation.name = operation,
            messaging.destination.name = %subject,
        )
    })
}

/// The `tracing` layer that turns the trace spans (target [`nis_core::trace::TARGET`]) into
/// OpenTelemetry spans of `provider`, with the warnings and errors written inside them as span
/// events. Nothing else reaches it: the spans of an unsampled request, of the libraries, and
/// the ordinary log lines cost it nothing.
pub fn layer<S>(provider: &SdkTracerProvider) -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
{
    use tracing_subscriber::{
        Layer as _,
        filter::{LevelFilter, filter_fn},
    };

    let traced = filter_fn(|meta| {
        if meta.is_span() {
            meta.target() == nis_core::trace::TARGET
        } else {
            *meta.level() <= tracing::Level::WARN
        }
    })
    .with_max_level_hint(LevelFilter::INFO);
    tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("nis"))
        // What the spans say is in their fields; where in the code, which thread, how long
        // idle, and an OpenTelemetry context made current on every poll would each cost every
        // span of a sampled request and tell an operator nothing.
        .with_location(false)
        .with_threads(false)
        .with_target(false)
        .with_tracked_inactivity(false)
        .with_context_activation(false)
        .with_filter(traced)
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

    /// What [`enter_with`] decided, and whether it asked for a span.
    fn decide(sampler: SamplerChoice, traceparent: Option<&str>) -> (Entry, bool) {
        let made = std::cell::Cell::new(false);
        let entry = enter_with(&sampler.sampler(), traceparent, None, || {
            made.set(true);
            tracing::Span::none()
        });
        (entry, made.get())
    }

    #[test]
    fn an_unsampled_request_gets_no_span_and_passes_the_callers_trace_on_unsampled() {
        let caller = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
        let (entry, made) = decide(SamplerChoice::ParentBasedRatio(1.0), Some(caller));
        assert!(!made, "the caller did not sample it");
        assert!(matches!(entry, Entry::Unsampled(t) if t == caller));

        let (entry, made) = decide(SamplerChoice::ParentBasedRatio(0.0), None);
        assert!(!made);
        let Entry::Unsampled(new) = entry else {
            panic!("a new trace, not kept")
        };
        let parts: Vec<&str> = new.split('-').collect();
        assert_eq!(parts.len(), 4, "{new}");
        assert_eq!((parts[1].len(), parts[2].len(), parts[3]), (32, 16, "00"));
    }

    #[test]
    fn a_sampled_requests_ids_are_those_of_its_traceparent() {
        let sampled = Sampled {
            span: tracing::Span::none(),
            traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into(),
        };
        assert_eq!(sampled.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(sampled.span_id(), "00f067aa0ba902b7");
        let odd = Sampled {
            span: tracing::Span::none(),
            traceparent: "00-short".into(),
        };
        assert_eq!((odd.trace_id(), odd.span_id()), ("", ""));
    }

    #[test]
    fn the_sampler_follows_the_caller_or_the_ratio_as_configured() {
        let sampled = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let unsampled = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
        // Parent-based: the caller's decision, whatever the ratio.
        assert!(decide(SamplerChoice::ParentBasedRatio(0.0), Some(sampled)).1);
        assert!(!decide(SamplerChoice::ParentBasedAlwaysOn, Some(unsampled)).1);
        // Not parent-based: the ratio (or the fixed answer) decides.
        assert!(decide(SamplerChoice::Ratio(1.0), Some(unsampled)).1);
        assert!(!decide(SamplerChoice::AlwaysOff, Some(sampled)).1);
        // A new trace: the ratio.
        assert!(decide(SamplerChoice::ParentBasedRatio(1.0), None).1);
        assert!(!decide(SamplerChoice::ParentBasedAlwaysOff, None).1);
    }
}

//! The names of the metric families nis exports (docs/behaviour.md §7), named once here for the
//! decorators and workers that record them and the runtime that describes them.

/// Requests handled, by `service`, `transport`, `operation`, `outcome` and `code`.
pub const REQUESTS_TOTAL: &str = "nis_requests_total";
/// Request latency histogram, by `service`, `transport`, `operation`, `outcome`.
pub const REQUEST_DURATION: &str = "nis_request_duration_seconds";
/// Cache lookups by `service`, `operation`, `result` (`hit`, `miss`, `error`).
pub const CACHE_LOOKUPS_TOTAL: &str = "nis_cache_lookups_total";
/// Writes refused, with nothing committed, because the cache could not be fenced, by
/// `service` (docs/behaviour.md §6).
pub const CACHE_FENCE_REFUSALS_TOTAL: &str = "nis_cache_fence_refusals_total";
/// Settle steps that failed after a commit, by `service`: the scopes stay uncached until their
/// pending marks expire (docs/behaviour.md §6).
pub const CACHE_SETTLE_FAILURES_TOTAL: &str = "nis_cache_settle_failures_total";
/// Events published by `service`, `subject`.
pub const EVENTS_PUBLISHED_TOTAL: &str = "nis_events_published_total";
/// Events consumed by `service`, `subject`, `outcome`.
pub const EVENTS_CONSUMED_TOTAL: &str = "nis_events_consumed_total";
/// Time from recording a link change (its event id is a UUIDv7) to applying it on the other
/// side, by the applying `service`.
pub const LINK_PROPAGATION: &str = "nis_link_propagation_seconds";
/// Relation changes recorded but not yet published, by `service`.
pub const OUTBOX_PENDING: &str = "nis_outbox_pending";
/// Reconciliation runs by `service` and `outcome` (`ok`, `failed`).
pub const RECONCILE_RUNS_TOTAL: &str = "nis_reconcile_runs_total";
/// Pairs a reconciliation run repaired, by `service` and `direction` (`here`: this side was
/// behind; `peer`: the other side was).
pub const RECONCILE_REPAIRED_TOTAL: &str = "nis_reconcile_repaired_pairs_total";
/// How long a reconciliation run took, by `service`.
pub const RECONCILE_DURATION: &str = "nis_reconcile_duration_seconds";
/// When the last successful reconciliation run of this process ended (Unix seconds; the start
/// of the process until then), by `service`.
pub const RECONCILE_LAST_SUCCESS: &str = "nis_reconcile_last_success_timestamp_seconds";
/// `RECONCILE_INTERVAL_SECS` of this process (0: periodic runs off), by `service`.
pub const RECONCILE_INTERVAL: &str = "nis_reconcile_interval_seconds";
/// Messages in the dead letters of this service, as the last reconciliation run counted them.
pub const DEAD_LETTERS: &str = "nis_dead_letters";
/// Spans whose export to the OpenTelemetry collector failed (docs/behaviour.md §7, "Traces").
pub const TRACE_SPANS_DROPPED_TOTAL: &str = "nis_trace_spans_dropped_total";

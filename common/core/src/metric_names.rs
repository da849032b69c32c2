//! The names of the metric families nis exports (docs/behaviour.md §7), named once here for the
//! decorators and workers that record them and the runtime that describes them.

/// Requests handled, by `service`, `transport`, `operation`, `outcome` and `code`.
pub const REQUESTS_TOTAL: &str = "nis_requests_total";
/// Request latency histogram, by `service`, `transport`, `operation`, `outcome`.
pub const REQUEST_DURATION: &str = "nis_request_duration_seconds";
/// Cache lookups by `service`, `operation`, `result` (`hit`, `miss`, `error`).
pub const CACHE_LOOKUPS_TOTAL: &str = "nis_cache_lookups_total";
/// Events published by `service`, `subject`.
pub const EVENTS_PUBLISHED_TOTAL: &str = "nis_events_published_total";
/// Events consumed by `service`, `subject`, `outcome`.
pub const EVENTS_CONSUMED_TOTAL: &str = "nis_events_consumed_total";
/// Time from recording a link change (its event id is a UUIDv7) to applying it on the other
/// side, by the applying `service`.
pub const LINK_PROPAGATION: &str = "nis_link_propagation_seconds";
/// Relation changes recorded but not yet published, by `service`.
pub const OUTBOX_PENDING: &str = "nis_outbox_pending";

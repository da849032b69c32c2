//! What every nis program needs from its process, whatever it serves: configuration from the
//! environment ([`config`]), secrets that never reach a log ([`secret`]), logs and the metrics
//! recorder ([`telemetry`]), distributed traces ([`traces`]), dependency checks ([`readiness`]), and start-up retries and
//! shutdown signals ([`lifecycle`]). No transport or store technology lives here, so the
//! initializer uses it without compiling any server.

pub mod config;
pub mod context;
pub mod lifecycle;
pub mod readiness;
pub mod secret;
pub mod telemetry;
pub mod traces;

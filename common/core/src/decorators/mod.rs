//! Cross-cutting behaviour as decorators around [`EntityService`](crate::EntityService), stacked
//! once in each service's `main` (cache → use-case span → metrics → logging) so every
//! transport shares them.

mod around;
mod caching;
mod fencing;
mod logging;
mod metrics;
#[cfg(test)]
mod schedules;
mod spans;

pub use around::{Around, Aspect};
pub use caching::Cached;
pub use fencing::Fenced;
pub use logging::{Logged, Logging};
pub use metrics::{Metered, Metrics};
pub use spans::{Spanned, Spans};

/// The stack every service runs: logging around metrics around the use-case span around
/// caching around the core.
pub type Stack<S, C> = Logged<Metered<Spanned<Cached<S, C>>>>;

/// Wraps `core` in the standard decorator stack.
pub fn stack<S, C>(core: S, cache: C) -> Stack<S, C> {
    Around::new(
        Around::new(Around::new(Cached::new(core, cache), Spans), Metrics),
        Logging,
    )
}

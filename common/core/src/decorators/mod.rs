//! Cross-cutting behaviour as decorators around [`EntityService`](crate::EntityService), stacked
//! once in each service's `main` (cache → metrics → logging) so every transport shares them.

mod around;
mod caching;
mod logging;
mod metrics;

pub use around::{Around, Aspect};
pub use caching::Cached;
pub use logging::{Logged, Logging};
pub use metrics::{Metered, Metrics};

/// The stack every service runs: logging around metrics around caching around the core.
pub type Stack<S, C> = Logged<Metered<Cached<S, C>>>;

/// Wraps `core` in the standard decorator stack.
pub fn stack<S, C>(core: S, cache: C) -> Stack<S, C> {
    Around::new(Around::new(Cached::new(core, cache), Metrics), Logging)
}

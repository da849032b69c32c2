//! Work polled where it is, but in another runtime's context.
//!
//! actix-web runs each HTTP worker on a runtime of its own, while the stores' connection pools
//! are shared by the whole process. A connection belongs to the runtime whose context it was
//! opened in: one opened by a worker dies with that worker's runtime, which a graceful stop
//! shuts down while other workers still drain their requests (found by `make chaos`,
//! docs/chaos.md). [`within`] polls a future on the thread that awaits it but inside the
//! application runtime's context, so every socket, timer and task it creates belongs to the
//! runtime that lives as long as the process. Spawning the work onto that runtime instead would
//! give the same guarantee at the price of two thread hand-offs, which `make bench` measured as
//! the largest single cost of a cached read (docs/performance.md).

use std::{future::Future, pin::pin, task::Poll};

use tokio::runtime::Handle;

/// Polls `work` to completion, entering `runtime`'s context for each poll (the guard is never
/// held across a suspension, so the caller's own runtime is untouched in between).
pub async fn within<T>(runtime: &Handle, work: impl Future<Output = T>) -> T {
    let mut work = pin!(work);
    std::future::poll_fn(|cx| -> Poll<T> {
        let _entered = runtime.enter();
        work.as_mut().poll(cx)
    })
    .await
}

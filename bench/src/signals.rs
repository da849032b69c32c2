//! Stopping on SIGINT or SIGTERM: the script stops the baseline server with SIGTERM, and an
//! interrupted probe still removes what it created.

use crate::BoxError;

/// Completes at the first SIGINT or SIGTERM.
pub async fn stopped() -> Result<(), BoxError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = terminate.recv() => {}
        _ = interrupt.recv() => {}
    }
    Ok(())
}

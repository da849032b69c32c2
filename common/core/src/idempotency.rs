//! Idempotent creates (docs/behaviour.md §3, "Idempotent creates"), after the IETF draft "The
//! Idempotency-Key HTTP Header Field": a create that carries a key is stored together with the
//! key, in the same commit, so a retry of a request that did commit — even one whose answer
//! was lost to a crash — finds the key and gets the first answer again instead of a second
//! entity. The same key with another request is refused.

use std::{fmt, str::FromStr, time::Duration};

use serde::Serialize;
use sha2::{Digest as _, Sha256};
use tokio::sync::watch;

use crate::{entity::Entity, error::Error, store::EntityStore};

/// The HTTP header, and the gRPC metadata, a create's key comes in.
pub const HEADER: &str = "idempotency-key";

/// The HTTP header, and the gRPC metadata, that marks the first answer given again.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";

/// How long a key is remembered unless configured otherwise (`IDEMPOTENCY_RETENTION_SECS`).
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(24 * 3600);

/// The longest key accepted.
pub const MAX_KEY_LEN: usize = 255;

/// A client's idempotency key: 1 to 255 visible ASCII characters (a UUID is typical).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// The key as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for IdempotencyKey {
    type Err = Error;

    fn from_str(raw: &str) -> Result<Self, Error> {
        // The draft makes the key a structured-field string; quotes around it are allowed.
        let key = raw
            .strip_prefix('"')
            .and_then(|k| k.strip_suffix('"'))
            .unwrap_or(raw);
        if key.is_empty() || key.len() > MAX_KEY_LEN || !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::BadRequest(format!(
                "the idempotency key must be 1 to {MAX_KEY_LEN} visible ASCII characters"
            )));
        }
        Ok(Self(key.to_owned()))
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The key a request carries among the `values` of its [`HEADER`] (each `None` when it is not
/// text), as both transports read it: none, or one well-formed key; the header given twice or a
/// malformed key is a bad request.
pub fn from_values<'a>(
    mut values: impl Iterator<Item = Option<&'a str>>,
) -> Result<Option<IdempotencyKey>, Error> {
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(Error::BadRequest(format!(
            "{HEADER} is given more than once"
        )));
    }
    let raw = value.ok_or_else(|| Error::BadRequest(format!("{HEADER} is malformed")))?;
    raw.parse().map(Some)
}

/// What a create stores with its key, in the same commit as the new entity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewKey {
    /// The key.
    pub key: IdempotencyKey,
    /// The request's [`fingerprint`].
    pub fingerprint: String,
    /// The id of the entity the request created.
    pub entity: String,
    /// How long the store keeps the key (it stamps the expiry with its own clock).
    pub retention: Duration,
}

/// A key a store still holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    /// The [`fingerprint`] of the request that stored it.
    pub fingerprint: String,
    /// The id of the entity that request created.
    pub entity: String,
}

/// What identifies a create's request: a SHA-256 of its validated fields, so the same fields
/// sent over HTTP or gRPC, with any spelling the validation accepts, give the same fingerprint.
pub fn fingerprint(draft: &impl Serialize) -> Result<String, Error> {
    let bytes = serde_json::to_vec(draft)
        .map_err(|e| Error::internal_because("cannot fingerprint the request", e))?;
    Ok(Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// How often expired keys are purged when they are kept for `retention`: twice per
/// retention period, between once a second and once every ten minutes. Purging is only
/// housekeeping: an expired key is never found, and a new create may take it over at once.
pub fn purge_interval(retention: Duration) -> Duration {
    (retention / 2).clamp(Duration::from_secs(1), Duration::from_secs(600))
}

/// Removes expired idempotency keys from `store` every `every`, until `shutdown` turns true.
pub async fn purge<E: Entity, S: EntityStore<E>>(
    store: S,
    every: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
        match store.purge_keys().await {
            Ok(0) => {}
            Ok(purged) => tracing::debug!(
                service = E::KIND,
                purged,
                "expired idempotency keys removed"
            ),
            Err(e) => {
                tracing::warn!(service = E::KIND, error = %e.chain(), "could not remove expired idempotency keys")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_visible_ascii_of_bounded_length() {
        for good in [
            "a",
            "8e03978e-40d5-43e8-bc93-6894a57f9324",
            &"k".repeat(255),
        ] {
            assert_eq!(good.parse::<IdempotencyKey>().expect(good).as_str(), good);
        }
        assert_eq!(
            "\"quoted\""
                .parse::<IdempotencyKey>()
                .expect("quoted")
                .as_str(),
            "quoted"
        );
        for bad in ["", "\"\"", "with space", "tab\t", "é", &"k".repeat(256)] {
            let error = bad.parse::<IdempotencyKey>().expect_err(bad);
            assert_eq!(error.code(), "bad_request", "{bad:?}");
        }
    }

    #[test]
    fn the_fingerprint_follows_the_fields() {
        let a = fingerprint(&("Ada", vec!["x"])).expect("a");
        assert_eq!(a.len(), 64);
        assert_eq!(a, fingerprint(&("Ada", vec!["x"])).expect("again"));
        assert_ne!(a, fingerprint(&("Ada", vec!["y"])).expect("other"));
    }
}

//! The relation-change message (version 1) and its headers.
//!
//! One message says "entity `entity` of `origin` now does (`linked`) or does not link `other`",
//! stamped with the pair's logical `clock`. The receiving side keeps, per pair, the clock of the
//! last change it applied and applies a change only if its clock is greater, so duplicates and
//! stale messages change nothing and both sides settle on the newest change (see
//! [`crate::links`] and docs/behaviour.md §5).

use serde::{Deserialize, Serialize};

/// The header that carries the request id of the write that caused a message.
pub use crate::request_id::HEADER as REQUEST_ID_HEADER;
/// The header naming why a message was dead-lettered.
pub const DEAD_LETTER_REASON_HEADER: &str = "nis-dead-letter-reason";
/// The header naming where a dead letter was first published.
pub const ORIGINAL_SUBJECT_HEADER: &str = "nis-original-subject";

/// The message format version this code writes and reads.
pub const VERSION: u32 = 1;

/// One link change between a course and a student.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkEvent {
    /// Format version ([`VERSION`]).
    pub v: u32,
    /// Unique id (the `Nats-Msg-Id`), a UUID.
    pub id: String,
    /// Who made the change: `courses` or `students`.
    pub origin: String,
    /// The id of the entity of `origin` whose list changed.
    pub entity: String,
    /// The id of the entity of the other kind that was linked or unlinked.
    pub other: String,
    /// Whether the pair is now linked.
    pub linked: bool,
    /// The pair's logical clock at this change (greater wins).
    pub clock: i64,
}

/// Why a message cannot be applied, ever: it goes to the dead letters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Undecodable {
    /// Not JSON, or not this shape.
    #[error("undecodable message: {0}")]
    Malformed(String),
    /// A version this code does not know.
    #[error("unknown message version {0}")]
    UnknownVersion(u64),
}

impl LinkEvent {
    /// How long ago the change was recorded: its id is a UUIDv7, whose first 48 bits are the
    /// recording time in milliseconds. `None` for an id that carries no time, or a time ahead of
    /// this clock.
    pub fn age(&self) -> Option<std::time::Duration> {
        let (secs, nanos) = uuid::Uuid::parse_str(&self.id)
            .ok()?
            .get_timestamp()?
            .to_unix();
        let recorded = std::time::UNIX_EPOCH + std::time::Duration::new(secs, nanos);
        std::time::SystemTime::now().duration_since(recorded).ok()
    }

    /// The JSON payload.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads a payload, telling apart an unknown version from garbage.
    pub fn decode(payload: &[u8]) -> Result<Self, Undecodable> {
        let value: serde_json::Value =
            serde_json::from_slice(payload).map_err(|e| Undecodable::Malformed(e.to_string()))?;
        match value.get("v").and_then(serde_json::Value::as_u64) {
            Some(1) => {
                serde_json::from_value(value).map_err(|e| Undecodable::Malformed(e.to_string()))
            }
            Some(other) => Err(Undecodable::UnknownVersion(other)),
            None => Err(Undecodable::Malformed("no version field `v`".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_age_comes_from_the_uuid_v7_id() {
        let mut fresh = event();
        fresh.id = uuid::Uuid::now_v7().to_string();
        let age = fresh.age().expect("a v7 id has a time");
        assert!(age < std::time::Duration::from_secs(60), "{age:?}");
        fresh.id = uuid::Uuid::new_v4().to_string();
        assert_eq!(fresh.age(), None, "a v4 id has no time");
    }

    fn event() -> LinkEvent {
        LinkEvent {
            v: VERSION,
            id: "0190c1a2-0000-7000-8000-000000000001".into(),
            origin: "courses".into(),
            entity: "0123456789abcdef01234567".into(),
            other: "0190c1a2-0000-7000-8000-000000000002".into(),
            linked: true,
            clock: 42,
        }
    }

    #[test]
    fn round_trips() {
        assert_eq!(LinkEvent::decode(&event().encode()), Ok(event()));
    }

    #[test]
    fn garbage_and_unknown_versions_are_told_apart() {
        assert!(matches!(
            LinkEvent::decode(b"not json"),
            Err(Undecodable::Malformed(_))
        ));
        assert!(matches!(
            LinkEvent::decode(br#"{"v":1}"#),
            Err(Undecodable::Malformed(_))
        ));
        assert_eq!(
            LinkEvent::decode(br#"{"v":2,"anything":true}"#),
            Err(Undecodable::UnknownVersion(2))
        );
    }
}

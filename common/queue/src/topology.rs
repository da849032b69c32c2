//! Every stream, subject and durable consumer of the system, in one place, so the initializer
//! that creates them and the services that use them can't disagree.
//!
//! With prefix `nis`:
//!
//! | stream | subjects | published by | consumed by (durable) |
//! |---|---|---|---|
//! | `NIS_LINKS_COURSES` | `nis.links.courses` | courses | students (`students`) |
//! | `NIS_LINKS_STUDENTS` | `nis.links.students` | students | courses (`courses`) |
//! | `NIS_DEAD_LETTERS` | `nis.dead.>` | both, for messages they cannot apply | people (inspect) |

use std::time::Duration;

use async_nats::jetstream::{
    consumer::{AckPolicy, DeliverPolicy, pull},
    stream::{self, DiscardPolicy, RetentionPolicy, StorageType},
};

/// The two services, which publish and consume relation changes.
pub const SERVICES: [&str; 2] = ["courses", "students"];

/// How many times a message is delivered before it is dead-lettered.
pub const MAX_DELIVER: i64 = 50;

/// How long a consumer has to acknowledge a message before it is redelivered.
pub const ACK_WAIT: Duration = Duration::from_secs(30);

/// Settings of the streams that an operator chooses (the initializer reads them from the
/// environment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSettings {
    /// Copies of each stream: 1 on a single server, 3 on a clustered NATS.
    pub replicas: usize,
    /// How long messages are kept (0 = forever). Relation streams only need to outlive an
    /// outage of a consumer; dead letters are kept for people to inspect.
    pub max_age: Duration,
    /// The window in which JetStream drops a message whose `Nats-Msg-Id` it has seen.
    pub duplicate_window: Duration,
}

impl Default for StreamSettings {
    fn default() -> Self {
        Self {
            replicas: 1,
            max_age: Duration::from_secs(7 * 24 * 3600),
            duplicate_window: Duration::from_secs(10 * 60),
        }
    }
}

/// The names under one prefix (`NIS_PREFIX`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    prefix: String,
}

impl Topology {
    /// The topology of the system copy named `prefix` (letters, digits, `_`, `-`).
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
        }
    }

    /// The subject on which `origin` (`courses` or `students`) publishes its link changes.
    pub fn links_subject(&self, origin: &str) -> String {
        format!("{}.links.{origin}", self.prefix)
    }

    /// The stream that keeps the link changes of `origin`.
    pub fn links_stream(&self, origin: &str) -> String {
        format!("{}_LINKS_{}", self.prefix, origin).to_uppercase()
    }

    /// The subject under which `service` dead-letters what it cannot apply.
    pub fn dead_letter_subject(&self, service: &str) -> String {
        format!("{}.dead.{service}", self.prefix)
    }

    /// The stream of dead letters.
    pub fn dead_letter_stream(&self) -> String {
        format!("{}_DEAD_LETTERS", self.prefix).to_uppercase()
    }

    /// The other service: the one whose changes `service` consumes.
    pub fn peer_of(service: &str) -> &'static str {
        if service == "courses" {
            "students"
        } else {
            "courses"
        }
    }

    /// Every stream the system needs, as JetStream configurations.
    pub fn streams(&self, settings: &StreamSettings) -> Vec<stream::Config> {
        let base = |name: String, subjects: Vec<String>, description: &str| stream::Config {
            name,
            subjects,
            description: Some(description.to_owned()),
            retention: RetentionPolicy::Limits,
            storage: StorageType::File,
            discard: DiscardPolicy::Old,
            num_replicas: settings.replicas,
            max_age: settings.max_age,
            duplicate_window: settings.duplicate_window,
            ..Default::default()
        };
        let mut streams: Vec<stream::Config> = SERVICES
            .iter()
            .map(|origin| {
                base(
                    self.links_stream(origin),
                    vec![self.links_subject(origin)],
                    &format!("course-student link changes made by {origin}"),
                )
            })
            .collect();
        let mut dead = base(
            self.dead_letter_stream(),
            vec![format!("{}.dead.>", self.prefix)],
            "messages a service could not apply (undecodable, unknown version, or out of retries)",
        );
        dead.max_age = Duration::ZERO;
        streams.push(dead);
        streams
    }

    /// The durable consumer of `service` on its peer's stream: explicit acks, bounded
    /// redelivery; shared by every replica of the service.
    pub fn consumer(&self, service: &str) -> (String, pull::Config) {
        let config = pull::Config {
            durable_name: Some(service.to_owned()),
            description: Some(format!(
                "{service} applies the link changes of {}",
                Self::peer_of(service)
            )),
            ack_policy: AckPolicy::Explicit,
            deliver_policy: DeliverPolicy::All,
            ack_wait: ACK_WAIT,
            max_deliver: MAX_DELIVER,
            max_ack_pending: 1_000,
            ..Default::default()
        };
        (self.links_stream(Self::peer_of(service)), config)
    }

    /// Every durable consumer, with the stream it reads.
    pub fn consumers(&self) -> Vec<(String, pull::Config)> {
        SERVICES
            .iter()
            .map(|service| self.consumer(service))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_prefix() {
        let t = Topology::new("nis");
        assert_eq!(t.links_subject("courses"), "nis.links.courses");
        assert_eq!(t.links_stream("courses"), "NIS_LINKS_COURSES");
        assert_eq!(t.dead_letter_stream(), "NIS_DEAD_LETTERS");
        assert_eq!(t.dead_letter_subject("students"), "nis.dead.students");
        let (stream, consumer) = t.consumer("students");
        assert_eq!(stream, "NIS_LINKS_COURSES");
        assert_eq!(consumer.durable_name.as_deref(), Some("students"));
    }

    #[test]
    fn every_stream_has_its_subjects_and_settings() {
        let settings = StreamSettings {
            replicas: 3,
            ..StreamSettings::default()
        };
        let streams = Topology::new("t-1").streams(&settings);
        let names: Vec<_> = streams.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "T-1_LINKS_COURSES",
                "T-1_LINKS_STUDENTS",
                "T-1_DEAD_LETTERS"
            ]
        );
        assert!(streams.iter().all(|s| s.num_replicas == 3));
        assert_eq!(streams[2].subjects, ["t-1.dead.>"]);
    }
}

//! What one run did to each stream and consumer.

use std::fmt;

/// What was done to one stream or consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It did not exist and was created.
    Created,
    /// It existed with other settings, which were brought in line.
    Updated,
    /// It existed with the wanted settings and was left alone.
    Unchanged,
}

impl Outcome {
    /// The lowercase word for logs: `created`, `updated` or `unchanged`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Updated => "updated",
            Self::Unchanged => "unchanged",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A JetStream object the initializer owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resource {
    /// A stream, by name.
    Stream {
        /// The stream's name.
        name: String,
    },
    /// A durable consumer on a stream.
    Consumer {
        /// The stream it reads.
        stream: String,
        /// Its durable name.
        name: String,
    },
}

impl Resource {
    /// `stream` or `consumer`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Stream { .. } => "stream",
            Self::Consumer { .. } => "consumer",
        }
    }

    /// The stream's name, or the consumer's durable name.
    pub fn name(&self) -> &str {
        match self {
            Self::Stream { name } | Self::Consumer { name, .. } => name,
        }
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Stream { name } => write!(f, "stream {name}"),
            Self::Consumer { stream, name } => write!(f, "consumer {name} on stream {stream}"),
        }
    }
}

/// The outcome for one stream or consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// What it is.
    pub resource: Resource,
    /// What was done.
    pub outcome: Outcome,
    /// The settings that differed on the server (empty unless [`Outcome::Updated`]).
    pub changed: Vec<&'static str>,
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.resource, self.outcome)?;
        if !self.changed.is_empty() {
            write!(f, " ({})", self.changed.join(", "))?;
        }
        Ok(())
    }
}

/// Every stream, then every consumer, in the order of the topology.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// One entry per stream or consumer.
    pub entries: Vec<Entry>,
}

impl Report {
    /// The entry of the stream named `name`.
    pub fn stream(&self, name: &str) -> Option<&Entry> {
        self.entries
            .iter()
            .find(|e| matches!(&e.resource, Resource::Stream { name: n } if n == name))
    }

    /// The entry of the consumer `name` on `stream`.
    pub fn consumer(&self, stream: &str, name: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| {
            matches!(&e.resource, Resource::Consumer { stream: s, name: n } if s == stream && n == name)
        })
    }

    /// How many entries had `outcome`.
    pub fn count(&self, outcome: Outcome) -> usize {
        self.entries.iter().filter(|e| e.outcome == outcome).count()
    }
}

impl fmt::Display for Report {
    /// One line per entry.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for entry in &self.entries {
            writeln!(f, "{entry}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_read_as_sentences() {
        let report = Report {
            entries: vec![
                Entry {
                    resource: Resource::Stream {
                        name: "NIS_LINKS_COURSES".into(),
                    },
                    outcome: Outcome::Updated,
                    changed: vec!["max_age", "num_replicas"],
                },
                Entry {
                    resource: Resource::Consumer {
                        stream: "NIS_LINKS_COURSES".into(),
                        name: "students".into(),
                    },
                    outcome: Outcome::Unchanged,
                    changed: vec![],
                },
            ],
        };
        assert_eq!(
            report.to_string(),
            "stream NIS_LINKS_COURSES: updated (max_age, num_replicas)\n\
             consumer students on stream NIS_LINKS_COURSES: unchanged\n"
        );
        assert_eq!(report.count(Outcome::Updated), 1);
        assert!(report.consumer("NIS_LINKS_COURSES", "students").is_some());
        assert!(report.stream("NIS_LINKS_STUDENTS").is_none());
    }
}

//! The service's connection to NATS JetStream: where the outbox relay publishes, where the
//! consumer reads, and the readiness probe that checks the streams exist.

use std::time::Duration;

use async_nats::jetstream;
use futures::TryStreamExt as _;
use nis_core::{Error, reconcile::schedule::DeadLetters};
use nis_queue::{JetStreamPublisher, StreamSettings, Topology};
use nis_runtime::{config::ServiceSettings, lifecycle::StartError};

/// A connection to NATS and the topology under the service's prefix.
#[derive(Debug, Clone)]
pub struct Queue {
    client: async_nats::Client,
    jetstream: jetstream::Context,
    topology: Topology,
    kind: &'static str,
}

impl Queue {
    /// Connects service `kind` to `NATS_URL`; keeps reconnecting in the background, so the
    /// service starts (not ready) while NATS is away.
    pub async fn connect(
        settings: &ServiceSettings,
        kind: &'static str,
    ) -> Result<Self, StartError> {
        let client = async_nats::ConnectOptions::new()
            .name(format!("nis-{kind}"))
            .retry_on_initial_connect()
            .connection_timeout(Duration::from_secs(2))
            .request_timeout(Some(Duration::from_secs(5)))
            .connect(settings.nats_url.as_str())
            .await
            .map_err(|e| StartError::setup(format!("NATS_URL {}", settings.nats_url), e))?;
        Ok(Self {
            jetstream: jetstream::new(client.clone()),
            client,
            topology: Topology::new(&settings.prefix),
            kind,
        })
    }

    /// The subject this service publishes its link changes on.
    pub fn links_subject(&self) -> String {
        self.topology.links_subject(self.kind)
    }

    /// The publisher the outbox relay sends through.
    pub fn publisher(&self) -> JetStreamPublisher {
        JetStreamPublisher::new(self.jetstream.clone())
    }

    /// The JetStream context the consumer reads from.
    pub fn jetstream(&self) -> jetstream::Context {
        self.jetstream.clone()
    }

    /// The names under the service's prefix.
    pub fn topology(&self) -> Topology {
        self.topology.clone()
    }

    /// Ready when NATS is connected and every stream of the topology exists; the error names
    /// what is missing.
    pub async fn streams_ready(&self) -> Result<(), String> {
        if self.client.connection_state() != async_nats::connection::State::Connected {
            return Err("not connected to NATS".into());
        }
        for stream in self.topology.streams(&StreamSettings::default()) {
            if self.jetstream.get_stream(&stream.name).await.is_err() {
                return Err(format!(
                    "stream {} is missing (run the initializer)",
                    stream.name
                ));
            }
        }
        Ok(())
    }
}

/// The dead letters of this service: the messages on its subject of the dead-letter stream.
impl DeadLetters for Queue {
    async fn count(&self) -> Result<u64, Error> {
        let failed = |e: &dyn std::fmt::Display| {
            Error::unavailable(format!("counting the dead letters: {e}"))
        };
        let count = async {
            let stream = self
                .jetstream
                .get_stream(self.topology.dead_letter_stream())
                .await
                .map_err(|e| failed(&e))?;
            let subject = self.topology.dead_letter_subject(self.kind);
            let subjects = stream
                .info_with_subjects(&subject)
                .await
                .map_err(|e| failed(&e))?;
            let counts: Vec<(String, usize)> =
                subjects.try_collect().await.map_err(|e| failed(&e))?;
            Ok(counts.iter().map(|(_, n)| *n as u64).sum())
        };
        tokio::time::timeout(Duration::from_secs(5), count)
            .await
            .unwrap_or_else(|_| Err(failed(&"no answer within 5 s")))
    }
}

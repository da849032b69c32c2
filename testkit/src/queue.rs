//! JetStream for tests: the streams of a test's prefix, made by the initializer's own code and
//! deleted afterwards.

use std::time::Duration;

use async_nats::jetstream;
use nis_queue::{StreamSettings, Topology};

/// A JetStream context on `url` (default: the test NATS).
pub async fn jetstream_at(url: Option<&str>) -> jetstream::Context {
    let url = url.map_or_else(super::nats_url, str::to_owned);
    let client = async_nats::connect(url).await.expect("connect to NATS");
    jetstream::new(client)
}

/// Creates the streams and consumers of `prefix` on the test NATS, as the initializer does.
pub async fn create_streams(prefix: &str) {
    create_streams_at(None, prefix).await;
}

/// Creates the streams and consumers of `prefix` on the NATS at `url` (default: the test one).
pub async fn create_streams_at(url: Option<&str>, prefix: &str) {
    initializer::apply(
        &jetstream_at(url).await,
        &Topology::new(prefix),
        &test_stream_settings(),
    )
    .await
    .expect("create the test streams");
}

/// Stream settings for tests: short retention, so leftovers of a crashed test expire.
pub fn test_stream_settings() -> StreamSettings {
    StreamSettings {
        max_age: Duration::from_secs(3600),
        ..StreamSettings::default()
    }
}

/// Deletes the streams of `prefix` (with their consumers).
pub async fn delete_streams(prefix: &str) {
    let Ok(client) = async_nats::connect(super::nats_url()).await else {
        return;
    };
    let js = jetstream::new(client);
    for stream in Topology::new(prefix).streams(&StreamSettings::default()) {
        let _ = js.delete_stream(&stream.name).await;
    }
}

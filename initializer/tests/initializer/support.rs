//! What the initializer's tests share: the NATS server, and a namespace of streams of their own
//! that is removed again when the test ends, passed or not.

use std::collections::HashMap;

use async_nats::jetstream::{self, consumer, stream};
use nis_queue::{StreamSettings, Topology};

/// The NATS server for tests (`NIS_TEST_NATS_URL`).
pub fn nats_url() -> String {
    std::env::var("NIS_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

/// A JetStream context on the test server.
pub async fn jetstream() -> jetstream::Context {
    let client = async_nats::connect(nats_url())
        .await
        .unwrap_or_else(|e| panic!("connect to NATS at {}: {e}", nats_url()));
    jetstream::new(client)
}

/// A prefix no other test uses. Dropping it deletes its streams (the initializer never
/// deletes anything; the tests clean up after themselves).
pub struct Namespace {
    /// `NIS_PREFIX` of this test.
    pub prefix: String,
    /// Its streams and consumers.
    pub topology: Topology,
}

impl Namespace {
    pub fn unique() -> Self {
        let prefix = testkit::unique_name("i");
        Self {
            topology: Topology::new(&prefix),
            prefix,
        }
    }

    /// The server's configuration of every stream and consumer of the namespace, by name.
    pub async fn server_configs(&self, js: &jetstream::Context) -> ServerConfigs {
        let mut configs = ServerConfigs::default();
        for wanted in self.topology.streams(&StreamSettings::default()) {
            let stream = js.get_stream(&wanted.name).await.expect("stream exists");
            configs
                .streams
                .insert(wanted.name.clone(), stream.cached_info().config.clone());
        }
        for (stream, wanted) in self.topology.consumers() {
            let name = wanted.durable_name.expect("durable");
            let info = js
                .get_stream_no_info(&stream)
                .await
                .expect("stream handle")
                .consumer_info(&name)
                .await
                .expect("consumer exists");
            configs
                .consumers
                .insert(format!("{stream}/{name}"), info.config);
        }
        configs
    }
}

/// Stream and consumer configurations as the server has them.
#[derive(Debug, Default, PartialEq)]
pub struct ServerConfigs {
    pub streams: HashMap<String, stream::Config>,
    pub consumers: HashMap<String, consumer::Config>,
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let streams: Vec<String> = self
            .topology
            .streams(&StreamSettings::default())
            .into_iter()
            .map(|s| s.name)
            .collect();
        // A runtime of its own on a thread of its own: this also runs while a test unwinds.
        let cleanup = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                let Ok(client) = async_nats::connect(nats_url()).await else {
                    return;
                };
                let js = jetstream::new(client);
                for stream in streams {
                    let _ = js.delete_stream(stream).await;
                }
            });
        });
        let _ = cleanup.join();
    }
}

//! Black-box tests of the initializer against the real NATS server (`NIS_TEST_NATS_URL`,
//! default `nats://127.0.0.1:4222`). Every test works under a prefix of its own and deletes
//! its streams afterwards.

mod apply;
mod binary;
mod support;

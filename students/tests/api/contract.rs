//! The checks every service must pass (CONTRACT §3, §6): one test each.

use crate::helpers::{KIND, spawn, spawn_without_redis};

testkit::contract_tests!(kind: KIND, spawn: spawn, spawn_without_redis: spawn_without_redis);

//! The checks every service must pass (docs/behaviour.md §3, §6): one test each, those of the HTTP
//! adapter in process over fakes (`contract::in_process::*`), the others on the real stores
//! (`contract::full_stack::*`).

use crate::helpers::{KIND, in_process, spawn, spawn_without_redis};

testkit::contract_tests!(
    kind: KIND,
    in_process: in_process,
    spawn: spawn,
    spawn_without_redis: spawn_without_redis,
);

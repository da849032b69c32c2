//! Black-box tests of the courses service against a real MongoDB(-compatible) server and
//! Redis: each test starts the service on free ports with its own database and key prefix.
//! The checks every service shares live in `testkit::contract`; those that touch only the HTTP
//! adapter run in process over fakes (`testkit::in_process`). This crate adds what is
//! particular to courses.

mod binary;
mod cache;
mod cache_links;
mod contract;
mod grpc;
mod helpers;
mod http;
mod metrics;
mod outbox;
mod relation;

//! Adapters to the outside: the MongoDB store.

pub mod mongo;

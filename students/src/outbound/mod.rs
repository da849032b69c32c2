//! Adapters to the outside: the PostgreSQL store.

pub mod postgres;

//! `bench-baseline`: the "bare" ceiling the services are measured against. An actix-web 4
//! server with the services' worker count, no middleware and no per-request logging, whose
//! routes do the least a cached or uncached read can: one Redis GET, one PostgreSQL select by
//! primary key, or nothing at all (a body from memory). The store calls run right on the actix
//! workers (the services hand them to their Tokio runtime), so every cost the services add —
//! middleware, logging, metrics, the cache layer, the hop — shows as the gap to this server.

mod routes;

use std::time::Duration;

use actix_web::{App, HttpServer, web};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use sqlx::postgres::PgPoolOptions;

use crate::{BoxError, cli, error::chain};

/// The PostgreSQL pool size (the services' default).
const POOL_SIZE: u32 = 10;

/// How long requests in flight may finish after SIGTERM.
const SHUTDOWN_GRACE_SECS: u64 = 5;

/// What `bench-baseline` serves and where: its command line.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "bench-baseline")]
pub struct Config {
    /// `host:port` (port 0 picks a free one, shown on stderr).
    #[arg(long)]
    pub listen: String,
    #[arg(long = "redis-url")]
    pub redis_url: String,
    #[arg(long = "database-url")]
    pub database_url: String,
    /// actix workers (default: one per core, like the services).
    #[arg(long, default_value_t = cores(), value_parser = cli::positive)]
    pub workers: usize,
    /// The deadline of each Redis and PostgreSQL call (and of connecting).
    #[arg(long = "timeout-ms", default_value = "5000", value_parser = cli::millis)]
    pub timeout: Duration,
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// Connects to Redis and PostgreSQL (failing fast if either is unreachable), then serves until
/// SIGINT or SIGTERM and stops gracefully.
pub async fn serve(config: &Config) -> Result<(), BoxError> {
    let redis = connect_redis(config).await?;
    let pool = tokio::time::timeout(
        config.timeout,
        PgPoolOptions::new()
            .max_connections(POOL_SIZE)
            .acquire_timeout(config.timeout)
            .connect(&config.database_url),
    )
    .await
    .map_err(|_| format!("PostgreSQL: no connection within {:?}", config.timeout))?
    .map_err(|e| format!("PostgreSQL: {}", chain(&e)))?;
    let state = web::Data::new(routes::State::new(redis, pool, config.timeout));

    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .configure(routes::configure)
    })
    .workers(config.workers)
    .disable_signals()
    .shutdown_timeout(SHUTDOWN_GRACE_SECS)
    .bind(config.listen.as_str())
    .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let addrs = server.addrs();
    let server = server.run();
    let handle = server.handle();
    let mut running = tokio::spawn(server);
    eprintln!(
        "bench-baseline: listening on {addrs:?} with {} workers",
        config.workers
    );

    tokio::select! {
        stopped = crate::signals::stopped() => {
            stopped?;
            eprintln!("bench-baseline: stopping");
            handle.stop(true).await;
            running.await??;
        }
        ended = &mut running => ended??,
    }
    Ok(())
}

/// One multiplexed Redis connection (reconnecting by itself), like the services' cache.
async fn connect_redis(config: &Config) -> Result<ConnectionManager, BoxError> {
    let client =
        redis::Client::open(config.redis_url.as_str()).map_err(|e| format!("--redis-url: {e}"))?;
    let manager_config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(config.timeout))
        .set_response_timeout(Some(config.timeout))
        .set_number_of_retries(1);
    tokio::time::timeout(
        config.timeout,
        ConnectionManager::new_with_config(client, manager_config),
    )
    .await
    .map_err(|_| format!("Redis: no connection within {:?}", config.timeout))?
    .map_err(|e| format!("Redis: {}", chain(&e)).into())
}

//! Databases of one test on the shared test servers: made with a unique name, dropped after.

use sqlx::{Connection as _, Executor as _, PgConnection};

async fn postgres_admin() -> PgConnection {
    PgConnection::connect(&format!("{}/postgres", super::postgres_url()))
        .await
        .expect("connect to the test PostgreSQL")
}

/// Creates a PostgreSQL database named `{stem}_{unique}` and returns its name.
pub async fn create_postgres_database(stem: &str) -> String {
    let database = super::unique_name(stem);
    postgres_admin()
        .await
        .execute(format!(r#"CREATE DATABASE "{database}""#).as_str())
        .await
        .expect("create the test database");
    database
}

/// Drops a PostgreSQL test database, closing its connections.
pub async fn drop_postgres_database(database: String) {
    let _ = postgres_admin()
        .await
        .execute(format!(r#"DROP DATABASE IF EXISTS "{database}" WITH (FORCE)"#).as_str())
        .await;
}

/// Makes a PostgreSQL test database refuse every connection (closing the open ones), as a
/// database that is down would, or accept them again.
pub async fn set_postgres_available(database: &str, available: bool) {
    let mut admin = postgres_admin().await;
    admin
        .execute(
            format!(r#"ALTER DATABASE "{database}" WITH ALLOW_CONNECTIONS {available}"#).as_str(),
        )
        .await
        .expect("alter the test database");
    if !available {
        admin
            .execute(
                format!(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database}'"
                )
                .as_str(),
            )
            .await
            .expect("close its connections");
    }
}

/// Drops a MongoDB test database.
pub async fn drop_mongo_database(database: String) {
    if let Ok(client) = mongodb::Client::with_uri_str(super::mongodb_uri()).await {
        let _ = client.database(&database).drop().await;
    }
}

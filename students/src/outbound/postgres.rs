//! The PostgreSQL adapter of the store port and of the outbox (sqlx; migrations embedded).
//!
//! The core plans every write; this store only loads a student's links with its `version` and
//! commits a change together with its outbox rows in one transaction, on the condition that
//! `version` is unchanged (`UPDATE … WHERE id = $1 AND version = $2`; under PostgreSQL's row
//! locks a concurrent writer waits, then finds the version moved and reports a conflict).

use std::{str::FromStr as _, time::Duration};

use nis_core::{
    Error, Page,
    idempotency::{KeyRecord, NewKey},
    ids::{CourseId, StudentId},
    links::Clocks,
    outbox::{Outbox, OutboxEntry},
    reconcile::{RelationRow, RelationStore},
    store::{Change, Commit, Committed, EntityStore, LinkState},
};
use nis_runtime::secret::Secret;
use sqlx::{
    PgPool, Postgres, Transaction,
    migrate::Migrator,
    postgres::{PgConnectOptions, PgPoolOptions},
    types::Json,
};
use tracing::Instrument as _;
use uuid::Uuid;

use crate::domain::{CourseIds, PersonName, Student};

/// The span of one statement in a traced request (docs/behaviour.md §7, "Traces").
fn statement(operation: &'static str, table: Option<&str>) -> tracing::Span {
    nis_core::trace::database("postgresql", operation, table)
}

/// The schema migrations, compiled into the binary.
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// Students in PostgreSQL.
#[derive(Debug, Clone)]
pub struct PostgresStudents {
    pool: PgPool,
    timeout: Duration,
}

#[derive(sqlx::FromRow)]
struct StudentRow {
    id: Uuid,
    name: String,
    first_name: String,
    last_name: String,
    course_ids: Vec<String>,
    version: i64,
}

impl TryFrom<StudentRow> for Student {
    type Error = Error;

    fn try_from(row: StudentRow) -> Result<Self, Error> {
        let corrupt =
            |what: String| Error::internal(format!("stored student {} is invalid: {what}", row.id));
        Ok(Student {
            id: StudentId::from(row.id),
            name: PersonName::stored(&row.name).map_err(corrupt)?,
            first_name: PersonName::stored(&row.first_name).map_err(corrupt)?,
            last_name: PersonName::stored(&row.last_name).map_err(corrupt)?,
            course_ids: CourseIds::parse("course_ids", &row.course_ids)
                .map_err(|problems| corrupt(format!("{problems:?}")))?,
            version: row.version,
        })
    }
}

#[derive(sqlx::FromRow)]
struct LinkRow {
    course_ids: Vec<String>,
    link_clocks: Json<Clocks>,
    version: i64,
}

const COLUMNS: &str = "id, name, first_name, last_name, course_ids, version";

fn strings(ids: &CourseIds) -> Vec<String> {
    ids.as_slice().iter().map(ToString::to_string).collect()
}

fn map_error(error: sqlx::Error) -> Error {
    match &error {
        sqlx::Error::Database(db) if db.code().as_deref() == Some("23505") => Error::Conflict(
            "a student with this name, first_name and last_name already exists".into(),
        ),
        // 57014: statement_timeout; 57P01..03: the server is shutting down or starting.
        sqlx::Error::Database(db)
            if matches!(
                db.code().as_deref(),
                Some("57014" | "57P01" | "57P02" | "57P03")
            ) =>
        {
            Error::unavailable_because("the database is unavailable", error)
        }
        sqlx::Error::PoolTimedOut
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolClosed => {
            Error::unavailable_because("the database is unavailable", error)
        }
        _ => Error::internal_because("database error", error),
    }
}

impl PostgresStudents {
    /// A store whose pool connects on first use, so the service starts (not ready) while the
    /// database is away. Every statement is bounded by `timeout`, on the server and the client.
    pub fn connect(
        url: &Secret,
        max_connections: u32,
        timeout: Duration,
    ) -> Result<Self, sqlx::Error> {
        let options = PgConnectOptions::from_str(url.expose())?
            .options([("statement_timeout", format!("{}", timeout.as_millis()))])
            .application_name("nis-students");
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(timeout)
            .connect_lazy_with(options);
        Ok(Self { pool, timeout })
    }

    /// Applies the embedded migrations.
    pub async fn migrate(&self) -> Result<(), sqlx::migrate::MigrateError> {
        MIGRATOR.run(&self.pool).await
    }

    /// Runs `work` (one statement or a whole transaction) under the deadline, in `span`.
    async fn bounded<T>(
        &self,
        span: tracing::Span,
        work: impl Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        tokio::time::timeout(self.timeout, work.instrument(span))
            .await
            .unwrap_or_else(|_| {
                Err(Error::unavailable(format!(
                    "the database did not answer within {:?}",
                    self.timeout
                )))
            })
    }

    async fn fetch_students(
        &self,
        query: sqlx::query::QueryAs<'_, Postgres, StudentRow, sqlx::postgres::PgArguments>,
    ) -> Result<Vec<Student>, Error> {
        let rows = self
            .bounded(statement("SELECT", Some("students")), async {
                query.fetch_all(&self.pool).await.map_err(map_error)
            })
            .await?;
        rows.into_iter().map(Student::try_from).collect()
    }

    /// Stores an idempotency key in `tx` (replacing an expired one); `false` when it is taken.
    async fn store_key(
        tx: &mut Transaction<'static, Postgres>,
        key: NewKey,
    ) -> Result<bool, Error> {
        sqlx::query("DELETE FROM idempotency_keys WHERE key = $1 AND expires_at <= now()")
            .bind(key.key.as_str())
            .execute(&mut **tx)
            .instrument(statement("DELETE", Some("idempotency_keys")))
            .await
            .map_err(map_error)?;
        let entity = Uuid::parse_str(&key.entity)
            .map_err(|e| Error::internal_because("the id of a new student", e))?;
        let stored = sqlx::query(
            "INSERT INTO idempotency_keys (key, fingerprint, entity_id, expires_at) \
             VALUES ($1, $2, $3, now() + make_interval(secs => $4)) ON CONFLICT (key) DO NOTHING",
        )
        .bind(key.key.as_str())
        .bind(key.fingerprint)
        .bind(entity)
        .bind(key.retention.as_secs_f64())
        .execute(&mut **tx)
        .instrument(statement("INSERT", Some("idempotency_keys")))
        .await
        .map_err(map_error)?;
        Ok(stored.rows_affected() == 1)
    }

    /// Writes `change` in `tx`; `false` when the student is not at version `expected`.
    async fn write(
        tx: &mut Transaction<'static, Postgres>,
        change: Change<Student>,
        expected: Option<i64>,
    ) -> Result<bool, Error> {
        let version = expected.unwrap_or(0);
        let (operation, query) = match change {
            Change::Insert { id, draft, clocks } => ("INSERT", sqlx::query(
                "INSERT INTO students (id, name, first_name, last_name, course_ids, link_clocks) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(id.as_uuid())
            .bind(draft.name.as_str().to_owned())
            .bind(draft.first_name.as_str().to_owned())
            .bind(draft.last_name.as_str().to_owned())
            .bind(strings(&draft.course_ids))
            .bind(Json(clocks))),
            Change::Replace { id, draft, clocks } => ("UPDATE", sqlx::query(
                "UPDATE students SET name = $3, first_name = $4, last_name = $5, course_ids = $6, \
                 link_clocks = $7, version = version + 1, updated_at = now() \
                 WHERE id = $1 AND version = $2",
            )
            .bind(id.as_uuid())
            .bind(version)
            .bind(draft.name.as_str().to_owned())
            .bind(draft.first_name.as_str().to_owned())
            .bind(draft.last_name.as_str().to_owned())
            .bind(strings(&draft.course_ids))
            .bind(Json(clocks))),
            Change::Delete { id } => (
                "DELETE",
                sqlx::query("DELETE FROM students WHERE id = $1 AND version = $2")
                    .bind(id.as_uuid())
                    .bind(version),
            ),
            Change::Relink { id, links, clocks } => ("UPDATE", sqlx::query(
                "UPDATE students SET course_ids = COALESCE($3, course_ids), link_clocks = $4, \
                 version = version + 1, updated_at = now() WHERE id = $1 AND version = $2",
            )
            .bind(id.as_uuid())
            .bind(version)
            .bind(links)
            .bind(Json(clocks))),
            Change::Nothing => return Ok(true),
        };
        let done = query
            .execute(&mut **tx)
            .instrument(statement(operation, Some("students")))
            .await
            .map_err(map_error)?;
        Ok(done.rows_affected() == 1)
    }
}

impl EntityStore<Student> for PostgresStudents {
    async fn list(&self, page: Page) -> Result<Vec<Student>, Error> {
        self.fetch_students(
            sqlx::query_as(&format!(
                "SELECT {COLUMNS} FROM students ORDER BY seq LIMIT $1 OFFSET $2"
            ))
            .bind(i64::from(page.limit))
            .bind(page.offset_i64()),
        )
        .await
    }

    async fn get(&self, id: &StudentId) -> Result<Option<Student>, Error> {
        let row: Option<StudentRow> = self
            .bounded(statement("SELECT", Some("students")), async {
                sqlx::query_as(&format!("SELECT {COLUMNS} FROM students WHERE id = $1"))
                    .bind(id.as_uuid())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(map_error)
            })
            .await?;
        row.map(Student::try_from).transpose()
    }

    async fn list_linked(&self, course: &CourseId, page: Page) -> Result<Vec<Student>, Error> {
        self.fetch_students(
            sqlx::query_as(&format!(
                "SELECT {COLUMNS} FROM students WHERE course_ids @> ARRAY[$1]::text[] \
                 ORDER BY seq LIMIT $2 OFFSET $3"
            ))
            .bind(course.to_string())
            .bind(i64::from(page.limit))
            .bind(page.offset_i64()),
        )
        .await
    }

    fn next_id(&self) -> StudentId {
        StudentId::generate()
    }

    async fn load_links(&self, id: &StudentId) -> Result<Option<LinkState>, Error> {
        let row: Option<LinkRow> = self
            .bounded(statement("SELECT", Some("students")), async {
                sqlx::query_as(
                    "SELECT course_ids, link_clocks, version FROM students WHERE id = $1",
                )
                .bind(id.as_uuid())
                .fetch_optional(&self.pool)
                .await
                .map_err(map_error)
            })
            .await?;
        Ok(row.map(|row| LinkState {
            links: row.course_ids,
            clocks: row.link_clocks.0,
            version: row.version,
        }))
    }

    async fn commit(&self, commit: Commit<Student>) -> Result<Committed, Error> {
        self.bounded(tracing::Span::none(), async {
            let mut tx = self
                .pool
                .begin()
                .instrument(statement("BEGIN", None))
                .await
                .map_err(map_error)?;
            // The key first: a request made twice at once then waits here for the other to
            // commit, and finds its key taken, not the student's unique names.
            if let Some(key) = commit.key
                && !Self::store_key(&mut tx, key).await?
            {
                return Ok(Committed::Conflict);
            }
            if !Self::write(&mut tx, commit.change, commit.expected).await? {
                // Dropping the transaction rolls it back.
                return Ok(Committed::Conflict);
            }
            for entry in commit.outbox {
                let id = Uuid::parse_str(&entry.id)
                    .map_err(|e| Error::internal_because("outbox entry id", e))?;
                sqlx::query(
                    "INSERT INTO outbox (id, subject, payload, request_id, trace_context) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(id)
                .bind(entry.subject)
                .bind(entry.payload)
                .bind(entry.request_id)
                .bind(entry.trace_context)
                .execute(&mut *tx)
                .instrument(statement("INSERT", Some("outbox")))
                .await
                .map_err(map_error)?;
            }
            tx.commit()
                .instrument(statement("COMMIT", None))
                .await
                .map_err(map_error)?;
            Ok(Committed::Done)
        })
        .await
    }

    async fn find_key(&self, key: &str) -> Result<Option<KeyRecord>, Error> {
        let row: Option<(String, Uuid)> = self
            .bounded(statement("SELECT", Some("idempotency_keys")), async {
                sqlx::query_as(
                    "SELECT fingerprint, entity_id FROM idempotency_keys \
                     WHERE key = $1 AND expires_at > now()",
                )
                .bind(key)
                .fetch_optional(&self.pool)
                .await
                .map_err(map_error)
            })
            .await?;
        Ok(row.map(|(fingerprint, entity)| KeyRecord {
            fingerprint,
            entity: entity.to_string(),
        }))
    }

    async fn purge_keys(&self) -> Result<u64, Error> {
        self.bounded(statement("DELETE", Some("idempotency_keys")), async {
            sqlx::query("DELETE FROM idempotency_keys WHERE expires_at <= now()")
                .execute(&self.pool)
                .await
                .map_err(map_error)
        })
        .await
        .map(|done| done.rows_affected())
    }

    async fn ping(&self) -> Result<(), Error> {
        self.bounded(statement("SELECT", None), async {
            sqlx::query("SELECT 1")
                .execute(&self.pool)
                .await
                .map_err(map_error)
        })
        .await
        .map(|_| ())
    }
}

/// Students read per query of a reconciliation scan.
const SCAN_PAGE: i64 = 1_000;

#[derive(sqlx::FromRow)]
struct RelationDbRow {
    id: Uuid,
    course_ids: Vec<String>,
    link_clocks: Json<Clocks>,
}

impl RelationStore for PostgresStudents {
    async fn relation_scan<F>(&self, mut visit: F) -> Result<(), Error>
    where
        F: FnMut(RelationRow) + Send,
    {
        // Keyset pages on the primary key: each one a short indexed query within the
        // statement timeout, however large the table.
        let mut after: Option<Uuid> = None;
        loop {
            let rows: Vec<RelationDbRow> = self
                .bounded(statement("SELECT", Some("students")), async {
                    sqlx::query_as(
                        "SELECT id, course_ids, link_clocks FROM students \
                         WHERE $1::uuid IS NULL OR id > $1 ORDER BY id LIMIT $2",
                    )
                    .bind(after)
                    .bind(SCAN_PAGE)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(map_error)
                })
                .await?;
            let full = rows.len() == SCAN_PAGE as usize;
            after = rows.last().map(|row| row.id);
            for row in rows {
                visit(RelationRow {
                    id: row.id.to_string(),
                    links: row.course_ids,
                    clocks: row.link_clocks.0,
                });
            }
            if !full {
                return Ok(());
            }
        }
    }

    async fn try_lease(
        &self,
        name: &'static str,
        holder: &str,
        ttl: Duration,
    ) -> Result<bool, Error> {
        let taken: Option<(String,)> = self
            .bounded(statement("INSERT", Some("leases")), async {
                sqlx::query_as(
                    "INSERT INTO leases (name, holder, until) \
                     VALUES ($1, $2, now() + make_interval(secs => $3)) \
                     ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, until = EXCLUDED.until \
                     WHERE leases.holder = EXCLUDED.holder OR leases.until <= now() \
                     RETURNING holder",
                )
                .bind(name)
                .bind(holder)
                .bind(ttl.as_secs_f64())
                .fetch_optional(&self.pool)
                .await
                .map_err(map_error)
            })
            .await?;
        Ok(taken.is_some())
    }
}

#[derive(sqlx::FromRow)]
struct OutboxRow {
    seq: i64,
    id: Uuid,
    subject: String,
    payload: Vec<u8>,
    request_id: String,
    trace_context: Option<String>,
}

impl Outbox for PostgresStudents {
    async fn claim(
        &self,
        relay: &str,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<OutboxEntry>, Error> {
        let relay = Uuid::parse_str(relay).map_err(|e| Error::internal_because("relay id", e))?;
        // SKIP LOCKED: two relays claiming at once take disjoint rows instead of waiting for
        // each other; the lease is the server's clock, the same for every replica.
        let mut rows: Vec<OutboxRow> = self
            .bounded(statement("UPDATE", Some("outbox")), async {
                sqlx::query_as(
                    "UPDATE outbox SET claimed_by = $1, \
                     claimed_until = now() + make_interval(secs => $2) \
                     WHERE seq IN (SELECT seq FROM outbox \
                       WHERE claimed_until IS NULL OR claimed_until <= now() OR claimed_by = $1 \
                       ORDER BY seq LIMIT $3 FOR UPDATE SKIP LOCKED) \
                     RETURNING seq, id, subject, payload, request_id, trace_context",
                )
                .bind(relay)
                .bind(lease.as_secs_f64())
                .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                .fetch_all(&self.pool)
                .await
                .map_err(map_error)
            })
            .await?;
        rows.sort_by_key(|row| row.seq);
        Ok(rows
            .into_iter()
            .map(|row| OutboxEntry {
                id: row.id.to_string(),
                subject: row.subject,
                payload: row.payload,
                request_id: row.request_id,
                trace_context: row.trace_context,
            })
            .collect())
    }

    async fn published(&self, ids: &[String]) -> Result<(), Error> {
        let ids: Vec<Uuid> = ids
            .iter()
            .filter_map(|id| Uuid::parse_str(id).ok())
            .collect();
        self.bounded(statement("DELETE", Some("outbox")), async {
            sqlx::query("DELETE FROM outbox WHERE id = ANY($1)")
                .bind(ids)
                .execute(&self.pool)
                .await
                .map_err(map_error)
        })
        .await
        .map(|_| ())
    }

    async fn backlog(&self) -> Result<u64, Error> {
        let count: i64 = self
            .bounded(statement("SELECT", Some("outbox")), async {
                sqlx::query_scalar("SELECT count(*) FROM outbox")
                    .fetch_one(&self.pool)
                    .await
                    .map_err(map_error)
            })
            .await?;
        Ok(u64::try_from(count).unwrap_or(0))
    }
}

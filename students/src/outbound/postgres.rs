//! The PostgreSQL adapter of `Repository<Student>` and of the outbox (sqlx; migrations embedded).
//!
//! Every write runs in one transaction that locks the student's row (`FOR UPDATE`), computes
//! the link changes with `common::links`, writes the row with its pair clocks, and records the
//! outgoing changes in `outbox` — so a concurrent PUT and an applied queue message cannot
//! overwrite each other, and nothing committed is left unpublished.

use std::{str::FromStr as _, sync::Arc, time::Duration};

use common::{
    Context, Entity as _, Error, Page, Repository,
    ids::{CourseId, StudentId},
    links::{self, Clocks, Outcome, Side},
    queue::{Outbox, OutboxEntry, Topology},
    secret::Secret,
    service::{IncomingLink, Written},
};
use sqlx::{
    PgPool, Postgres, Transaction,
    migrate::Migrator,
    postgres::{PgConnectOptions, PgPoolOptions},
    types::Json,
};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::domain::{CourseIds, PersonName, Student, StudentDraft};

/// The schema migrations, compiled into the binary.
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// Students in PostgreSQL.
#[derive(Debug, Clone)]
pub struct PostgresStudents {
    pool: PgPool,
    timeout: Duration,
    subject: Arc<str>,
    notify: Arc<Notify>,
}

#[derive(sqlx::FromRow)]
struct StudentRow {
    id: Uuid,
    name: String,
    first_name: String,
    last_name: String,
    course_ids: Vec<String>,
}

impl TryFrom<StudentRow> for Student {
    type Error = Error;

    fn try_from(row: StudentRow) -> Result<Self, Error> {
        let corrupt =
            |what: String| Error::Internal(format!("stored student {} is invalid: {what}", row.id));
        Ok(Student {
            id: StudentId::from(row.id),
            name: PersonName::parse(&row.name).map_err(corrupt)?,
            first_name: PersonName::parse(&row.first_name).map_err(corrupt)?,
            last_name: PersonName::parse(&row.last_name).map_err(corrupt)?,
            course_ids: CourseIds::parse("course_ids", &row.course_ids)
                .map_err(|problems| corrupt(format!("{problems:?}")))?,
        })
    }
}

/// The links of a locked row.
#[derive(sqlx::FromRow)]
struct LinkRow {
    course_ids: Vec<String>,
    link_clocks: Json<Clocks>,
}

const COLUMNS: &str = "id, name, first_name, last_name, course_ids";

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
            Error::Unavailable(format!("the database is unavailable: {}", db.message()))
        }
        sqlx::Error::PoolTimedOut
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolClosed => {
            Error::Unavailable(format!("the database is unavailable: {error}"))
        }
        _ => Error::Internal(format!("database error: {error}")),
    }
}

impl PostgresStudents {
    /// A store whose pool connects on first use, so the service starts (not ready) while the
    /// database is away. Every statement is bounded by `timeout`, on the server and the client.
    /// Link changes are recorded for the subject of students under `prefix`.
    pub fn connect(
        url: &Secret,
        max_connections: u32,
        timeout: Duration,
        prefix: &str,
    ) -> Result<Self, String> {
        let options = PgConnectOptions::from_str(url.expose())
            .map_err(|e| format!("DATABASE_URL is not a valid PostgreSQL URL: {e}"))?
            .options([("statement_timeout", format!("{}", timeout.as_millis()))])
            .application_name("nis-students");
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(timeout)
            .connect_lazy_with(options);
        Ok(Self {
            pool,
            timeout,
            subject: Topology::new(prefix).links_subject(Student::KIND).into(),
            notify: Arc::new(Notify::new()),
        })
    }

    /// Applies the embedded migrations.
    pub async fn migrate(&self) -> Result<(), String> {
        MIGRATOR
            .run(&self.pool)
            .await
            .map_err(|e| format!("migrations failed: {e}"))
    }

    /// Runs one database call under the deadline, mapping its errors.
    async fn bounded<T>(
        &self,
        call: impl Future<Output = Result<T, sqlx::Error>>,
    ) -> Result<T, Error> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(outcome) => outcome.map_err(map_error),
            Err(_) => Err(Error::Unavailable(format!(
                "the database did not answer within {:?}",
                self.timeout
            ))),
        }
    }

    /// Runs a whole transaction under the deadline.
    async fn deadline<T>(&self, work: impl Future<Output = Result<T, Error>>) -> Result<T, Error> {
        tokio::time::timeout(self.timeout, work)
            .await
            .unwrap_or_else(|_| {
                Err(Error::Unavailable(format!(
                    "the database did not answer within {:?}",
                    self.timeout
                )))
            })
    }

    async fn begin(&self) -> Result<Transaction<'static, Postgres>, Error> {
        self.pool.begin().await.map_err(map_error)
    }

    /// Commits, then wakes the relay for what the transaction recorded.
    async fn commit(&self, tx: Transaction<'static, Postgres>) -> Result<(), Error> {
        tx.commit().await.map_err(map_error)?;
        self.notify.notify_one();
        Ok(())
    }

    fn entry(&self, student: &StudentId, change: &links::Outgoing, ctx: &Context) -> OutboxEntry {
        OutboxEntry::link_change(
            &self.subject,
            Student::KIND,
            &student.to_string(),
            change,
            &ctx.request_id,
        )
    }
}

async fn lock(
    tx: &mut Transaction<'static, Postgres>,
    id: &StudentId,
) -> Result<Option<LinkRow>, Error> {
    sqlx::query_as("SELECT course_ids, link_clocks FROM students WHERE id = $1 FOR UPDATE")
        .bind(id.as_uuid())
        .fetch_optional(&mut **tx)
        .await
        .map_err(map_error)
}

async fn record(
    tx: &mut Transaction<'static, Postgres>,
    entries: &[OutboxEntry],
) -> Result<(), Error> {
    for entry in entries {
        let id =
            Uuid::parse_str(&entry.id).map_err(|e| Error::Internal(format!("event id: {e}")))?;
        sqlx::query(
            "INSERT INTO outbox (id, subject, payload, request_id) VALUES ($1, $2, $3, $4)",
        )
        .bind(id)
        .bind(&entry.subject)
        .bind(&entry.payload)
        .bind(&entry.request_id)
        .execute(&mut **tx)
        .await
        .map_err(map_error)?;
    }
    Ok(())
}

impl Repository<Student> for PostgresStudents {
    async fn list(&self, page: Page) -> Result<Vec<Student>, Error> {
        let rows: Vec<StudentRow> = self
            .bounded(
                sqlx::query_as(&format!(
                    "SELECT {COLUMNS} FROM students ORDER BY seq LIMIT $1 OFFSET $2"
                ))
                .bind(i64::from(page.limit))
                .bind(page.offset_i64())
                .fetch_all(&self.pool),
            )
            .await?;
        rows.into_iter().map(Student::try_from).collect()
    }

    async fn get(&self, id: &StudentId) -> Result<Option<Student>, Error> {
        let row: Option<StudentRow> = self
            .bounded(
                sqlx::query_as(&format!("SELECT {COLUMNS} FROM students WHERE id = $1"))
                    .bind(id.as_uuid())
                    .fetch_optional(&self.pool),
            )
            .await?;
        row.map(Student::try_from).transpose()
    }

    async fn insert(&self, ctx: &Context, draft: StudentDraft) -> Result<Written<Student>, Error> {
        let id = StudentId::generate();
        let courses = strings(&draft.course_ids);
        let mut clocks = Clocks::new();
        let changes = links::plan_write(
            Side::Students,
            &[],
            &courses,
            &mut clocks,
            links::now_micros(),
        );
        let entries: Vec<_> = changes.iter().map(|c| self.entry(&id, c, ctx)).collect();
        self.deadline(async {
            let mut tx = self.begin().await?;
            sqlx::query(
                "INSERT INTO students (id, name, first_name, last_name, course_ids, link_clocks) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(id.as_uuid())
            .bind(draft.name.as_str())
            .bind(draft.first_name.as_str())
            .bind(draft.last_name.as_str())
            .bind(&courses)
            .bind(Json(&clocks))
            .execute(&mut *tx)
            .await
            .map_err(map_error)?;
            record(&mut tx, &entries).await?;
            self.commit(tx).await
        })
        .await?;
        Ok(Written::new(draft.into_student(id), courses))
    }

    async fn replace(
        &self,
        ctx: &Context,
        id: &StudentId,
        draft: StudentDraft,
    ) -> Result<Option<Written<Student>>, Error> {
        let courses = strings(&draft.course_ids);
        let relinked = self
            .deadline(async {
                let mut tx = self.begin().await?;
                let Some(row) = lock(&mut tx, id).await? else { return Ok(None) };
                let mut clocks = row.link_clocks.0;
                let changes = links::plan_write(Side::Students, &row.course_ids, &courses, &mut clocks, links::now_micros());
                sqlx::query(
                    "UPDATE students SET name = $2, first_name = $3, last_name = $4, course_ids = $5, \
                     link_clocks = $6, updated_at = now() WHERE id = $1",
                )
                .bind(id.as_uuid())
                .bind(draft.name.as_str())
                .bind(draft.first_name.as_str())
                .bind(draft.last_name.as_str())
                .bind(&courses)
                .bind(Json(&clocks))
                .execute(&mut *tx)
                .await
                .map_err(map_error)?;
                let entries: Vec<_> = changes.iter().map(|c| self.entry(id, c, ctx)).collect();
                record(&mut tx, &entries).await?;
                self.commit(tx).await?;
                Ok(Some(changes.into_iter().map(|c| c.other).collect::<Vec<_>>()))
            })
            .await?;
        Ok(relinked.map(|relinked| Written::new(draft.into_student(*id), relinked)))
    }

    async fn delete(&self, ctx: &Context, id: &StudentId) -> Result<Option<Written<()>>, Error> {
        self.deadline(async {
            let mut tx = self.begin().await?;
            let Some(row) = lock(&mut tx, id).await? else {
                return Ok(None);
            };
            let mut clocks = row.link_clocks.0;
            let changes = links::plan_write(
                Side::Students,
                &row.course_ids,
                &[],
                &mut clocks,
                links::now_micros(),
            );
            sqlx::query("DELETE FROM students WHERE id = $1")
                .bind(id.as_uuid())
                .execute(&mut *tx)
                .await
                .map_err(map_error)?;
            let entries: Vec<_> = changes.iter().map(|c| self.entry(id, c, ctx)).collect();
            record(&mut tx, &entries).await?;
            self.commit(tx).await?;
            Ok(Some(Written::new((), row.course_ids)))
        })
        .await
    }

    async fn list_linked(&self, course: &CourseId, page: Page) -> Result<Vec<Student>, Error> {
        let rows: Vec<StudentRow> = self
            .bounded(
                sqlx::query_as(&format!(
                    "SELECT {COLUMNS} FROM students WHERE course_ids @> ARRAY[$1]::text[] \
                     ORDER BY seq LIMIT $2 OFFSET $3"
                ))
                .bind(course.to_string())
                .bind(i64::from(page.limit))
                .bind(page.offset_i64())
                .fetch_all(&self.pool),
            )
            .await?;
        rows.into_iter().map(Student::try_from).collect()
    }

    async fn apply_link(
        &self,
        ctx: &Context,
        change: &IncomingLink<Student>,
    ) -> Result<Written<Outcome>, Error> {
        let received = change.received();
        self.deadline(async {
            let mut tx = self.begin().await?;
            let row = lock(&mut tx, &change.entity).await?;
            let mut clocks = row
                .as_ref()
                .map(|r| r.link_clocks.0.clone())
                .unwrap_or_default();
            let before = clocks.clone();
            let plan = links::plan_apply(
                Side::Students,
                row.as_ref().map(|r| r.course_ids.as_slice()),
                &mut clocks,
                &received,
                Student::LINK_LIMIT,
                links::now_micros(),
            );
            if row.is_some() && (plan.new_links.is_some() || clocks != before) {
                sqlx::query(
                    "UPDATE students SET course_ids = COALESCE($2, course_ids), link_clocks = $3, \
                     updated_at = now() WHERE id = $1",
                )
                .bind(change.entity.as_uuid())
                .bind(plan.new_links.as_ref())
                .bind(Json(&clocks))
                .execute(&mut *tx)
                .await
                .map_err(map_error)?;
            }
            if let Some(compensation) = &plan.compensation {
                record(&mut tx, &[self.entry(&change.entity, compensation, ctx)]).await?;
            }
            self.commit(tx).await?;
            let relinked = if plan.new_links.is_some() {
                vec![received.other.clone()]
            } else {
                vec![]
            };
            Ok(Written::new(plan.outcome, relinked))
        })
        .await
    }

    async fn ping(&self) -> Result<(), Error> {
        self.bounded(sqlx::query("SELECT 1").execute(&self.pool))
            .await
            .map(|_| ())
    }
}

#[derive(sqlx::FromRow)]
struct OutboxRow {
    id: Uuid,
    subject: String,
    payload: Vec<u8>,
    request_id: String,
}

impl Outbox for PostgresStudents {
    async fn pending(&self, limit: usize) -> Result<Vec<OutboxEntry>, Error> {
        let rows: Vec<OutboxRow> = self
            .bounded(
                sqlx::query_as(
                    "SELECT id, subject, payload, request_id FROM outbox ORDER BY seq LIMIT $1",
                )
                .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                .fetch_all(&self.pool),
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(|row| OutboxEntry {
                id: row.id.to_string(),
                subject: row.subject,
                payload: row.payload,
                request_id: row.request_id,
            })
            .collect())
    }

    async fn published(&self, ids: &[String]) -> Result<(), Error> {
        let ids: Vec<Uuid> = ids
            .iter()
            .filter_map(|id| Uuid::parse_str(id).ok())
            .collect();
        self.bounded(
            sqlx::query("DELETE FROM outbox WHERE id = ANY($1)")
                .bind(ids)
                .execute(&self.pool),
        )
        .await
        .map(|_| ())
    }

    async fn backlog(&self) -> Result<u64, Error> {
        let count: i64 = self
            .bounded(sqlx::query_scalar("SELECT count(*) FROM outbox").fetch_one(&self.pool))
            .await?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    fn notifier(&self) -> Arc<Notify> {
        self.notify.clone()
    }
}

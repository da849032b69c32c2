//! The PostgreSQL adapter of `Repository<Student>` (sqlx; migrations embedded).

use std::{str::FromStr as _, time::Duration};

use common::{Error, Page, Repository, ids::StudentId, secret::Secret};
use sqlx::{
    PgPool,
    migrate::Migrator,
    postgres::{PgConnectOptions, PgPoolOptions},
};
use uuid::Uuid;

use crate::domain::{CourseIds, PersonName, Student, StudentDraft};

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

const COLUMNS: &str = "id, name, first_name, last_name, course_ids";

fn course_id_strings(draft: &StudentDraft) -> Vec<String> {
    draft
        .course_ids
        .as_slice()
        .iter()
        .map(ToString::to_string)
        .collect()
}

impl PostgresStudents {
    /// A store whose pool connects on first use, so the service starts (not ready) while the
    /// database is away. Every statement is bounded by `timeout`, on the server and the client.
    pub fn connect(url: &Secret, max_connections: u32, timeout: Duration) -> Result<Self, String> {
        let options = PgConnectOptions::from_str(url.expose())
            .map_err(|e| format!("DATABASE_URL is not a valid PostgreSQL URL: {e}"))?
            .options([("statement_timeout", format!("{}", timeout.as_millis()))])
            .application_name("nis-students");
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(timeout)
            .connect_lazy_with(options);
        Ok(Self { pool, timeout })
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

    async fn insert(&self, draft: StudentDraft) -> Result<Student, Error> {
        let id = StudentId::generate();
        self.bounded(
            sqlx::query(
                "INSERT INTO students (id, name, first_name, last_name, course_ids) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(id.as_uuid())
            .bind(draft.name.as_str())
            .bind(draft.first_name.as_str())
            .bind(draft.last_name.as_str())
            .bind(course_id_strings(&draft))
            .execute(&self.pool),
        )
        .await?;
        Ok(draft.into_student(id))
    }

    async fn replace(&self, id: &StudentId, draft: StudentDraft) -> Result<Option<Student>, Error> {
        let done = self
            .bounded(
                sqlx::query(
                    "UPDATE students SET name = $2, first_name = $3, last_name = $4, course_ids = $5, \
                     updated_at = now() WHERE id = $1",
                )
                .bind(id.as_uuid())
                .bind(draft.name.as_str())
                .bind(draft.first_name.as_str())
                .bind(draft.last_name.as_str())
                .bind(course_id_strings(&draft))
                .execute(&self.pool),
            )
            .await?;
        Ok((done.rows_affected() == 1).then(|| draft.into_student(*id)))
    }

    async fn delete(&self, id: &StudentId) -> Result<bool, Error> {
        let done = self
            .bounded(
                sqlx::query("DELETE FROM students WHERE id = $1")
                    .bind(id.as_uuid())
                    .execute(&self.pool),
            )
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn ping(&self) -> Result<(), Error> {
        self.bounded(sqlx::query("SELECT 1").execute(&self.pool))
            .await
            .map(|_| ())
    }
}

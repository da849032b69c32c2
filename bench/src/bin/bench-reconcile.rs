//! `bench-reconcile seed|disagree …`: the fixture of the reconciliation case of `make bench`
//! (docs/behaviour.md §5.10), written straight into the stores the services use, since the
//! case measures a run over a large relation, not the writes that would build it.
//!
//! - `seed --database-url URL --mongodb-uri URI --mongodb-database DB [--students 20000]
//!   [--courses 4000] [--links 10]`: students `i` (ids `00000000-0000-7000-8000-<i>`) each link
//!   `links` courses (`(i·links + k) mod courses`), and every course lists exactly the students
//!   that link it, with the same clock on both sides: the sides agree.
//! - `disagree … [--pairs 2000]`: half the pairs forgotten by whole courses (their lists and
//!   clocks emptied), half by whole students that link none of those courses, as if the queue
//!   had lost those changes: the run must repair `pairs`, half in each direction.
//!
//! Needs migrated stores (`students migrate`, `courses migrate`). Exits 2 on a flag mistake,
//! 1 on a failure.

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use mongodb::bson::{Document, doc, oid::ObjectId};
use sqlx::{Connection as _, PgConnection};

use bench::{BoxError, error::chain};

#[derive(Debug, Parser)]
#[command(
    name = "bench-reconcile",
    about = "The fixture of the reconciliation case"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Writes an agreeing relation into both stores.
    Seed(Shape),
    /// Makes `--pairs` of the seeded pairs disagree.
    Disagree {
        #[command(flatten)]
        shape: Shape,
        /// Pairs to make disagree (a multiple of 2 × the links of a course and of a student).
        #[arg(long, default_value_t = 2_000)]
        pairs: usize,
    },
}

#[derive(Debug, Args)]
struct Shape {
    /// The students' PostgreSQL database.
    #[arg(long)]
    database_url: String,
    /// The courses' MongoDB server.
    #[arg(long)]
    mongodb_uri: String,
    /// The courses' MongoDB database.
    #[arg(long)]
    mongodb_database: String,
    #[arg(long, default_value_t = 20_000)]
    students: usize,
    #[arg(long, default_value_t = 4_000)]
    courses: usize,
    /// Courses per student.
    #[arg(long, default_value_t = 10)]
    links: usize,
}

/// The clock of every seeded pair (even: as if students made the links).
const CLOCK: i64 = 3_500_000_000_000_000;

fn student_id(i: usize) -> String {
    format!("00000000-0000-7000-8000-{i:012x}")
}

fn course_id(j: usize) -> String {
    format!("{j:024x}")
}

impl Shape {
    /// The courses student `i` links.
    fn courses_of(&self, i: usize) -> impl Iterator<Item = usize> {
        let (links, courses) = (self.links, self.courses);
        (0..links).map(move |k| (i * links + k) % courses)
    }

    /// The students that link course `j`.
    fn students_of(&self, j: usize) -> Vec<usize> {
        (0..self.students)
            .filter(|i| self.courses_of(*i).any(|c| c == j))
            .collect()
    }

    async fn courses(&self) -> Result<mongodb::Collection<Document>, BoxError> {
        let client = mongodb::Client::with_uri_str(&self.mongodb_uri).await?;
        Ok(client
            .database(&self.mongodb_database)
            .collection("courses"))
    }
}

fn object_id(j: usize) -> Result<ObjectId, BoxError> {
    Ok(ObjectId::parse_str(course_id(j))?)
}

async fn seed(shape: &Shape) -> Result<(), BoxError> {
    let mut pg = PgConnection::connect(&shape.database_url).await?;
    let rows = sqlx::query(
        "INSERT INTO students (id, name, first_name, last_name, course_ids, link_clocks) \
         SELECT ('00000000-0000-7000-8000-' || lpad(to_hex(i), 12, '0'))::uuid, \
                'bench' || i, 'Ada', 'Lovelace', \
                ARRAY(SELECT lpad(to_hex((i * $2 + k) % $3), 24, '0') FROM generate_series(0, $2 - 1) k), \
                (SELECT jsonb_object_agg(lpad(to_hex((i * $2 + k) % $3), 24, '0'), $4::bigint) \
                   FROM generate_series(0, $2 - 1) k) \
         FROM generate_series(0, $1 - 1) i",
    )
    .bind(i64::try_from(shape.students)?)
    .bind(i64::try_from(shape.links)?)
    .bind(i64::try_from(shape.courses)?)
    .bind(CLOCK)
    .execute(&mut pg)
    .await?
    .rows_affected();

    let mut lists: Vec<Vec<usize>> = vec![Vec::new(); shape.courses];
    for i in 0..shape.students {
        for j in shape.courses_of(i) {
            lists[j].push(i);
        }
    }
    let documents = lists
        .into_iter()
        .enumerate()
        .map(|(j, students)| {
            let ids: Vec<String> = students.iter().map(|i| student_id(*i)).collect();
            let clocks: Document = ids.iter().map(|s| (s.clone(), CLOCK.into())).collect();
            Ok(doc! {
                "_id": object_id(j)?,
                "name": format!("course {j}"),
                "description": "A seeded course",
                "discipline": "Mathematics",
                "teacher": "Emmy Noether",
                "student_ids": ids,
                "link_clocks": clocks,
                "version": 0_i64,
            })
        })
        .collect::<Result<Vec<_>, BoxError>>()?;
    let courses = shape.courses().await?;
    for chunk in documents.chunks(500) {
        courses.insert_many(chunk.to_vec()).await?;
    }
    eprintln!(
        "bench-reconcile: seeded {rows} students and {} courses, {} pairs",
        shape.courses,
        shape.students * shape.links
    );
    Ok(())
}

async fn disagree(shape: &Shape, pairs: usize) -> Result<(), BoxError> {
    let courses = shape.courses().await?;
    // Courses 0, 1, … forget all their students.
    let mut forgotten_courses = 0;
    let mut forgotten = 0;
    let mut wiped = Vec::new();
    while forgotten < pairs / 2 && forgotten_courses < shape.courses {
        let students = shape.students_of(forgotten_courses);
        forgotten += students.len();
        wiped.push(forgotten_courses);
        courses
            .update_one(
                doc! { "_id": object_id(forgotten_courses)? },
                doc! { "$set": { "student_ids": [], "link_clocks": {} }, "$inc": { "version": 1 } },
            )
            .await?;
        forgotten_courses += 1;
    }
    // Then students that link none of those courses forget all their courses.
    let mut pg = PgConnection::connect(&shape.database_url).await?;
    let mut i = 0;
    while forgotten < pairs && i < shape.students {
        if !shape.courses_of(i).any(|c| wiped.contains(&c)) {
            sqlx::query(
                "UPDATE students SET course_ids = '{}', link_clocks = '{}', version = version + 1 \
                 WHERE id = $1::uuid",
            )
            .bind(student_id(i))
            .execute(&mut pg)
            .await?;
            forgotten += shape.links;
        }
        i += 1;
    }
    eprintln!("bench-reconcile: {forgotten} pairs now disagree");
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let done = match &cli.command {
        Command::Seed(shape) => seed(shape).await,
        Command::Disagree { shape, pairs } => disagree(shape, *pairs).await,
    };
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-reconcile: {}", chain(&*e));
            ExitCode::FAILURE
        }
    }
}

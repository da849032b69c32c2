//! The MongoDB adapter of `Repository<Course>` (the official `mongodb` driver).
//!
//! Documents: `{_id: ObjectId, name, description, discipline, teacher, student_ids: [uuid]}`.
//! Lists are sorted by `_id`, which starts with the creation time: oldest first, stable.

use std::time::Duration;

use common::{Error, Page, Repository, ids::CourseId, secret::Secret};
use futures::TryStreamExt as _;
use mongodb::{
    Client, Collection, IndexModel,
    bson::{doc, oid::ObjectId},
    error::ErrorKind,
    options::{ClientOptions, IndexOptions, ReturnDocument},
};
use serde::{Deserialize, Serialize};

use crate::domain::{Course, CourseDraft, Description, ShortText, StudentIds};

/// The collection that holds the courses.
const COLLECTION: &str = "courses";

/// Courses in MongoDB.
#[derive(Debug, Clone)]
pub struct MongoCourses {
    courses: Collection<CourseDocument>,
    timeout: Duration,
}

#[derive(Debug, Serialize, Deserialize)]
struct CourseDocument {
    #[serde(rename = "_id")]
    id: ObjectId,
    name: String,
    description: String,
    discipline: String,
    teacher: String,
    #[serde(default)]
    student_ids: Vec<String>,
}

impl CourseDocument {
    fn new(id: ObjectId, draft: &CourseDraft) -> Self {
        Self {
            id,
            name: draft.name.to_string(),
            description: draft.description.to_string(),
            discipline: draft.discipline.to_string(),
            teacher: draft.teacher.to_string(),
            student_ids: draft
                .student_ids
                .as_slice()
                .iter()
                .map(ToString::to_string)
                .collect(),
        }
    }
}

impl TryFrom<CourseDocument> for Course {
    type Error = Error;

    fn try_from(doc: CourseDocument) -> Result<Self, Error> {
        let corrupt =
            |what: String| Error::Internal(format!("stored course {} is invalid: {what}", doc.id));
        Ok(Course {
            id: CourseId::from(doc.id.bytes()),
            name: ShortText::parse(&doc.name).map_err(corrupt)?,
            description: Description::parse(&doc.description).map_err(corrupt)?,
            discipline: ShortText::parse(&doc.discipline).map_err(corrupt)?,
            teacher: ShortText::parse(&doc.teacher).map_err(corrupt)?,
            student_ids: StudentIds::parse("student_ids", &doc.student_ids)
                .map_err(|problems| corrupt(format!("{problems:?}")))?,
        })
    }
}

fn object_id(id: &CourseId) -> ObjectId {
    ObjectId::from_bytes(id.bytes())
}

fn map_error(error: mongodb::error::Error) -> Error {
    match *error.kind {
        ErrorKind::ServerSelection { .. }
        | ErrorKind::Io(_)
        | ErrorKind::ConnectionPoolCleared { .. } => {
            Error::Unavailable(format!("the database is unavailable: {error}"))
        }
        _ => Error::Internal(format!("database error: {error}")),
    }
}

impl MongoCourses {
    /// A store in database `database` of the server at `uri`. The driver connects in the
    /// background, so the service starts (not ready) while MongoDB is away; server selection
    /// and every call are bounded by `timeout`.
    pub async fn connect(uri: &Secret, database: &str, timeout: Duration) -> Result<Self, String> {
        let mut options = ClientOptions::parse(uri.expose())
            .await
            .map_err(|e| format!("MONGODB_URI is not a valid MongoDB URI: {e}"))?;
        options.app_name = Some("nis-courses".into());
        options.server_selection_timeout = Some(timeout);
        options.connect_timeout = Some(timeout);
        let client = Client::with_options(options).map_err(|e| format!("MongoDB client: {e}"))?;
        Ok(Self {
            courses: client.database(database).collection(COLLECTION),
            timeout,
        })
    }

    /// Creates the indexes (idempotent): the multikey index on `student_ids` serves the cross
    /// query "which courses list student s".
    pub async fn migrate(&self) -> Result<(), String> {
        let index = IndexModel::builder()
            .keys(doc! { "student_ids": 1 })
            .options(
                IndexOptions::builder()
                    .name("student_ids_1".to_owned())
                    .build(),
            )
            .build();
        self.bounded(self.courses.create_index(index))
            .await
            .map(|_| ())
            .map_err(|e| format!("creating the indexes failed: {e}"))
    }

    /// Runs one database call under the deadline, mapping its errors.
    async fn bounded<T>(
        &self,
        call: impl IntoFuture<Output = Result<T, mongodb::error::Error>>,
    ) -> Result<T, Error> {
        match tokio::time::timeout(self.timeout, call.into_future()).await {
            Ok(outcome) => outcome.map_err(map_error),
            Err(_) => Err(Error::Unavailable(format!(
                "the database did not answer within {:?}",
                self.timeout
            ))),
        }
    }
}

impl Repository<Course> for MongoCourses {
    async fn list(&self, page: Page) -> Result<Vec<Course>, Error> {
        let find = async {
            self.courses
                .find(doc! {})
                .sort(doc! { "_id": 1 })
                .skip(page.offset)
                .limit(i64::from(page.limit))
                .await?
                .try_collect::<Vec<_>>()
                .await
        };
        let documents = self.bounded(find).await?;
        documents.into_iter().map(Course::try_from).collect()
    }

    async fn get(&self, id: &CourseId) -> Result<Option<Course>, Error> {
        let document = self
            .bounded(self.courses.find_one(doc! { "_id": object_id(id) }))
            .await?;
        document.map(Course::try_from).transpose()
    }

    async fn insert(&self, draft: CourseDraft) -> Result<Course, Error> {
        let id = ObjectId::new();
        self.bounded(self.courses.insert_one(CourseDocument::new(id, &draft)))
            .await?;
        Ok(draft.into_course(CourseId::from(id.bytes())))
    }

    async fn replace(&self, id: &CourseId, draft: CourseDraft) -> Result<Option<Course>, Error> {
        let oid = object_id(id);
        let replaced = self
            .bounded(
                self.courses
                    .find_one_and_replace(doc! { "_id": oid }, CourseDocument::new(oid, &draft))
                    .return_document(ReturnDocument::After),
            )
            .await?;
        replaced.map(Course::try_from).transpose()
    }

    async fn delete(&self, id: &CourseId) -> Result<bool, Error> {
        let done = self
            .bounded(self.courses.delete_one(doc! { "_id": object_id(id) }))
            .await?;
        Ok(done.deleted_count == 1)
    }

    async fn ping(&self) -> Result<(), Error> {
        self.bounded(
            self.courses
                .client()
                .database("admin")
                .run_command(doc! { "ping": 1 }),
        )
        .await
        .map(|_| ())
    }
}

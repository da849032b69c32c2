//! The MongoDB adapter of `Repository<Course>` and of the outbox (the official `mongodb` driver).
//!
//! Documents: `{_id: ObjectId, name, description, discipline, teacher, student_ids: [uuid],
//! link_clocks: {uuid: clock}, version}`; lists are sorted by `_id`, which starts with the
//! creation time: oldest first, stable.
//!
//! A write reads the course, computes the link changes with `common::links`, then, in one
//! multi-document transaction, writes the course only if its `version` is still the one read
//! (compare-and-set) and records the outgoing changes in the `outbox` collection. A lost race
//! starts over from the read, so a concurrent PUT and an applied queue message never overwrite
//! each other, and nothing committed is left unpublished.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use common::{
    Context, Entity as _, Error, Page, Repository,
    ids::{CourseId, StudentId},
    links::{self, Clocks, Outcome, Side},
    queue::{Outbox, OutboxEntry, Topology},
    secret::Secret,
    service::{IncomingLink, Written},
};
use futures::TryStreamExt as _;
use mongodb::{
    Client, Collection, IndexModel,
    bson::{Document, doc, oid::ObjectId},
    error::{ErrorKind, TRANSIENT_TRANSACTION_ERROR, UNKNOWN_TRANSACTION_COMMIT_RESULT},
    options::{ClientOptions, IndexOptions},
};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::domain::{Course, CourseDraft, Description, ShortText, StudentIds};

/// How often a write starts over after losing a race before it gives up.
const MAX_ATTEMPTS: usize = 50;

/// Courses in MongoDB.
#[derive(Debug, Clone)]
pub struct MongoCourses {
    client: Client,
    courses: Collection<CourseDocument>,
    outbox: Collection<OutboxDocument>,
    timeout: Duration,
    subject: Arc<str>,
    notify: Arc<Notify>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct CourseDocument {
    #[serde(rename = "_id")]
    id: ObjectId,
    name: String,
    description: String,
    discipline: String,
    teacher: String,
    #[serde(default)]
    student_ids: Vec<String>,
    /// For every student this course is or was linked with: the newest change's clock.
    #[serde(default)]
    link_clocks: BTreeMap<String, i64>,
    /// Bumped by every write, for compare-and-set.
    #[serde(default)]
    version: i64,
}

impl CourseDocument {
    fn new(id: ObjectId, draft: &CourseDraft, clocks: Clocks, version: i64) -> Self {
        Self {
            id,
            name: draft.name.to_string(),
            description: draft.description.to_string(),
            discipline: draft.discipline.to_string(),
            teacher: draft.teacher.to_string(),
            student_ids: student_strings(&draft.student_ids),
            link_clocks: clocks,
            version,
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

/// A recorded change waiting for the relay; `_id` order is recording order.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct OutboxDocument {
    #[serde(rename = "_id")]
    id: ObjectId,
    event_id: String,
    subject: String,
    payload: String,
    request_id: String,
}

impl From<OutboxEntry> for OutboxDocument {
    fn from(entry: OutboxEntry) -> Self {
        Self {
            id: ObjectId::new(),
            event_id: entry.id,
            subject: entry.subject,
            payload: String::from_utf8_lossy(&entry.payload).into_owned(),
            request_id: entry.request_id,
        }
    }
}

/// The write part of a transaction.
enum Write {
    /// Only record outbox entries.
    Nothing,
    Insert(CourseDocument),
    /// Replace the course if it is still at `version`.
    Replace {
        version: i64,
        document: CourseDocument,
    },
    /// Delete the course if it is still at `version`.
    Delete {
        id: ObjectId,
        version: i64,
    },
}

fn student_strings(ids: &StudentIds) -> Vec<String> {
    ids.as_slice().iter().map(ToString::to_string).collect()
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
    /// and every call are bounded by `timeout`. Link changes are recorded for the subject of
    /// courses under `prefix`.
    pub async fn connect(
        uri: &Secret,
        database: &str,
        timeout: Duration,
        prefix: &str,
    ) -> Result<Self, String> {
        let mut options = ClientOptions::parse(uri.expose())
            .await
            .map_err(|e| format!("MONGODB_URI is not a valid MongoDB URI: {e}"))?;
        options.app_name = Some("nis-courses".into());
        options.server_selection_timeout = Some(timeout);
        options.connect_timeout = Some(timeout);
        let client = Client::with_options(options).map_err(|e| format!("MongoDB client: {e}"))?;
        let db = client.database(database);
        Ok(Self {
            courses: db.collection("courses"),
            outbox: db.collection("outbox"),
            client,
            timeout,
            subject: Topology::new(prefix).links_subject(Course::KIND).into(),
            notify: Arc::new(Notify::new()),
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
            Err(_) => Err(self.too_slow()),
        }
    }

    fn too_slow(&self) -> Error {
        Error::Unavailable(format!(
            "the database did not answer within {:?}",
            self.timeout
        ))
    }

    async fn read(&self, id: &ObjectId) -> Result<Option<CourseDocument>, Error> {
        self.bounded(self.courses.find_one(doc! { "_id": id }))
            .await
    }

    fn entry(&self, course: &ObjectId, change: &links::Outgoing, ctx: &Context) -> OutboxDocument {
        OutboxEntry::link_change(
            &self.subject,
            Course::KIND,
            &course.to_hex(),
            change,
            &ctx.request_id,
        )
        .into()
    }

    /// Commits `write` and `entries` atomically. `Ok(false)`: the course changed since it was
    /// read (or a transient conflict) — read again and start over.
    async fn commit(&self, write: Write, entries: Vec<OutboxDocument>) -> Result<bool, Error> {
        let attempt = async {
            let mut session = self.client.start_session().await?;
            session.start_transaction().await?;
            let written = match write {
                Write::Nothing => true,
                Write::Insert(document) => {
                    self.courses
                        .insert_one(document)
                        .session(&mut session)
                        .await?;
                    true
                }
                Write::Replace { version, document } => {
                    let filter = doc! { "_id": document.id, "version": version };
                    let done = self
                        .courses
                        .replace_one(filter, document)
                        .session(&mut session)
                        .await?;
                    done.matched_count == 1
                }
                Write::Delete { id, version } => {
                    let done = self
                        .courses
                        .delete_one(doc! { "_id": id, "version": version })
                        .session(&mut session)
                        .await?;
                    done.deleted_count == 1
                }
            };
            if !written {
                session.abort_transaction().await?;
                return Ok(false);
            }
            if !entries.is_empty() {
                self.outbox
                    .insert_many(entries)
                    .session(&mut session)
                    .await?;
            }
            loop {
                match session.commit_transaction().await {
                    Err(e) if e.contains_label(UNKNOWN_TRANSACTION_COMMIT_RESULT) => continue,
                    other => return other.map(|()| true),
                }
            }
        };
        match tokio::time::timeout(self.timeout, attempt).await {
            Ok(Ok(true)) => {
                self.notify.notify_one();
                Ok(true)
            }
            Ok(Ok(false)) => Ok(false),
            Ok(Err(e)) if e.contains_label(TRANSIENT_TRANSACTION_ERROR) => Ok(false),
            Ok(Err(e)) => Err(map_error(e)),
            Err(_) => Err(self.too_slow()),
        }
    }

    /// A page of the courses matching `filter`, oldest first.
    async fn find_page(&self, filter: Document, page: Page) -> Result<Vec<Course>, Error> {
        let find = async {
            self.courses
                .find(filter)
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

    fn contention() -> Error {
        Error::Unavailable("the course changed too often to be written; try again".into())
    }
}

impl Repository<Course> for MongoCourses {
    async fn list(&self, page: Page) -> Result<Vec<Course>, Error> {
        self.find_page(doc! {}, page).await
    }

    async fn get(&self, id: &CourseId) -> Result<Option<Course>, Error> {
        self.read(&object_id(id))
            .await?
            .map(Course::try_from)
            .transpose()
    }

    async fn insert(&self, ctx: &Context, draft: CourseDraft) -> Result<Written<Course>, Error> {
        let id = ObjectId::new();
        let students = student_strings(&draft.student_ids);
        let mut clocks = Clocks::new();
        let changes = links::plan_write(
            Side::Courses,
            &[],
            &students,
            &mut clocks,
            links::now_micros(),
        );
        let entries = changes.iter().map(|c| self.entry(&id, c, ctx)).collect();
        let document = CourseDocument::new(id, &draft, clocks, 0);
        if !self.commit(Write::Insert(document), entries).await? {
            return Err(Error::Unavailable(
                "the course could not be stored; try again".into(),
            ));
        }
        Ok(Written::new(
            draft.into_course(CourseId::from(id.bytes())),
            students,
        ))
    }

    async fn replace(
        &self,
        ctx: &Context,
        id: &CourseId,
        draft: CourseDraft,
    ) -> Result<Option<Written<Course>>, Error> {
        let oid = object_id(id);
        let students = student_strings(&draft.student_ids);
        for _ in 0..MAX_ATTEMPTS {
            let Some(current) = self.read(&oid).await? else {
                return Ok(None);
            };
            let mut clocks = current.link_clocks.clone();
            let changes = links::plan_write(
                Side::Courses,
                &current.student_ids,
                &students,
                &mut clocks,
                links::now_micros(),
            );
            let entries = changes.iter().map(|c| self.entry(&oid, c, ctx)).collect();
            let document = CourseDocument::new(oid, &draft, clocks, current.version + 1);
            let write = Write::Replace {
                version: current.version,
                document,
            };
            if self.commit(write, entries).await? {
                let relinked = changes.into_iter().map(|c| c.other).collect();
                return Ok(Some(Written::new(draft.into_course(*id), relinked)));
            }
        }
        Err(Self::contention())
    }

    async fn delete(&self, ctx: &Context, id: &CourseId) -> Result<Option<Written<()>>, Error> {
        let oid = object_id(id);
        for _ in 0..MAX_ATTEMPTS {
            let Some(current) = self.read(&oid).await? else {
                return Ok(None);
            };
            let mut clocks = current.link_clocks.clone();
            let changes = links::plan_write(
                Side::Courses,
                &current.student_ids,
                &[],
                &mut clocks,
                links::now_micros(),
            );
            let entries = changes.iter().map(|c| self.entry(&oid, c, ctx)).collect();
            let write = Write::Delete {
                id: oid,
                version: current.version,
            };
            if self.commit(write, entries).await? {
                return Ok(Some(Written::new((), current.student_ids)));
            }
        }
        Err(Self::contention())
    }

    async fn list_linked(&self, student: &StudentId, page: Page) -> Result<Vec<Course>, Error> {
        self.find_page(doc! { "student_ids": student.to_string() }, page)
            .await
    }

    async fn apply_link(
        &self,
        ctx: &Context,
        change: &IncomingLink<Course>,
    ) -> Result<Written<Outcome>, Error> {
        let oid = object_id(&change.entity);
        let received = change.received();
        for _ in 0..MAX_ATTEMPTS {
            let current = self.read(&oid).await?;
            let mut clocks = current
                .as_ref()
                .map(|c| c.link_clocks.clone())
                .unwrap_or_default();
            let plan = links::plan_apply(
                Side::Courses,
                current.as_ref().map(|c| c.student_ids.as_slice()),
                &mut clocks,
                &received,
                Course::LINK_LIMIT,
                links::now_micros(),
            );
            let entries = plan
                .compensation
                .iter()
                .map(|c| self.entry(&oid, c, ctx))
                .collect::<Vec<_>>();
            let write = match current {
                Some(current) if plan.new_links.is_some() || clocks != current.link_clocks => {
                    let version = current.version;
                    let mut document = current;
                    if let Some(new_links) = &plan.new_links {
                        document.student_ids.clone_from(new_links);
                    }
                    document.link_clocks = clocks;
                    document.version = version + 1;
                    Write::Replace { version, document }
                }
                _ => Write::Nothing,
            };
            if matches!(write, Write::Nothing) && entries.is_empty() {
                return Ok(Written::new(plan.outcome, vec![]));
            }
            let relinked = if plan.new_links.is_some() {
                vec![received.other.clone()]
            } else {
                vec![]
            };
            if self.commit(write, entries).await? {
                return Ok(Written::new(plan.outcome, relinked));
            }
        }
        Err(Self::contention())
    }

    async fn ping(&self) -> Result<(), Error> {
        self.bounded(
            self.client
                .database("admin")
                .run_command(doc! { "ping": 1 }),
        )
        .await
        .map(|_: Document| ())
    }
}

impl Outbox for MongoCourses {
    async fn pending(&self, limit: usize) -> Result<Vec<OutboxEntry>, Error> {
        let find = async {
            self.outbox
                .find(doc! {})
                .sort(doc! { "_id": 1 })
                .limit(i64::try_from(limit).unwrap_or(i64::MAX))
                .await?
                .try_collect::<Vec<_>>()
                .await
        };
        let documents = self.bounded(find).await?;
        Ok(documents
            .into_iter()
            .map(|d| OutboxEntry {
                id: d.event_id,
                subject: d.subject,
                payload: d.payload.into_bytes(),
                request_id: d.request_id,
            })
            .collect())
    }

    async fn published(&self, ids: &[String]) -> Result<(), Error> {
        self.bounded(self.outbox.delete_many(doc! { "event_id": { "$in": ids } }))
            .await
            .map(|_| ())
    }

    async fn backlog(&self) -> Result<u64, Error> {
        self.bounded(self.outbox.count_documents(doc! {})).await
    }

    fn notifier(&self) -> Arc<Notify> {
        self.notify.clone()
    }
}

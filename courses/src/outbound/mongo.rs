//! The MongoDB adapter of the store port and of the outbox (the official `mongodb` driver).
//!
//! Documents: `{_id: ObjectId, name, description, discipline, teacher, student_ids: [uuid],
//! link_clocks: {uuid: clock}, version}`; lists are sorted by `_id`, which starts with the
//! creation time: oldest first, stable.
//!
//! The core plans every write; this store only loads a course's links with its `version` and
//! commits a change together with its outbox documents in one multi-document transaction, on
//! the condition that `version` is unchanged (the filter `{_id, version}` matches nothing
//! otherwise, and the transaction is abandoned). A transient transaction error is a conflict
//! too: the core starts over.

use std::time::Duration;

use futures::TryStreamExt as _;
use mongodb::{
    Client, ClientSession, Collection, IndexModel,
    bson::{DateTime, Document, doc, oid::ObjectId},
    error::{
        ErrorKind, TRANSIENT_TRANSACTION_ERROR, UNKNOWN_TRANSACTION_COMMIT_RESULT, WriteFailure,
    },
    options::{ClientOptions, IndexOptions},
};
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
use serde::{Deserialize, Serialize};
use tracing::Instrument as _;

use crate::domain::{Course, CourseDraft, Description, ShortText, StudentIds};

/// The span of one command on `collection` in a traced request (docs/behaviour.md §7,
/// "Traces").
fn command<T: Send + Sync>(name: &'static str, collection: &Collection<T>) -> tracing::Span {
    nis_core::trace::database("mongodb", name, Some(collection.name()))
}

/// The span of one command on no collection (`ping`, `commitTransaction`).
fn database_command(name: &'static str) -> tracing::Span {
    nis_core::trace::database("mongodb", name, None)
}

/// Courses in MongoDB.
#[derive(Debug, Clone)]
pub struct MongoCourses {
    client: Client,
    courses: Collection<CourseDocument>,
    outbox: Collection<OutboxDocument>,
    keys: Collection<KeyDocument>,
    timeout: Duration,
}

/// An idempotency key of a create (docs/behaviour.md §3), stored in the create's transaction.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct KeyDocument {
    /// The key.
    #[serde(rename = "_id")]
    key: String,
    fingerprint: String,
    course_id: String,
    expires_at: DateTime,
}

/// The collections `migrate` creates, so no transaction has to create one implicitly (MongoDB
/// answers concurrent transactions that create the same collection with write conflicts).
const COLLECTIONS: [&str; 3] = ["courses", "outbox", "idempotency_keys"];

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
    link_clocks: Clocks,
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
            |what: String| Error::internal(format!("stored course {} is invalid: {what}", doc.id));
        Ok(Course {
            id: CourseId::from(doc.id.bytes()),
            name: ShortText::stored(&doc.name).map_err(corrupt)?,
            description: Description::stored(&doc.description).map_err(corrupt)?,
            discipline: ShortText::stored(&doc.discipline).map_err(corrupt)?,
            teacher: ShortText::stored(&doc.teacher).map_err(corrupt)?,
            student_ids: StudentIds::parse("student_ids", &doc.student_ids)
                .map_err(|problems| corrupt(format!("{problems:?}")))?,
            version: doc.version,
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
    /// The W3C `traceparent` of the write that recorded it (traces on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    trace_context: Option<String>,
    /// The relay that claimed the entry, until `claimed_until` (docs/behaviour.md §5.9).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    claimed_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    claimed_until: Option<DateTime>,
}

impl From<OutboxEntry> for OutboxDocument {
    fn from(entry: OutboxEntry) -> Self {
        Self {
            id: ObjectId::new(),
            event_id: entry.id,
            subject: entry.subject,
            payload: String::from_utf8_lossy(&entry.payload).into_owned(),
            request_id: entry.request_id,
            trace_context: entry.trace_context,
            claimed_by: None,
            claimed_until: None,
        }
    }
}

fn student_strings(ids: &StudentIds) -> Vec<String> {
    ids.as_slice().iter().map(ToString::to_string).collect()
}

fn object_id(id: &CourseId) -> ObjectId {
    ObjectId::from_bytes(id.bytes())
}

/// The server's error code, if the server refused the command or the write.
fn server_code(error: &mongodb::error::Error) -> Option<i32> {
    match &*error.kind {
        ErrorKind::Command(e) => Some(e.code),
        ErrorKind::Write(WriteFailure::WriteError(e)) => Some(e.code),
        _ => None,
    }
}

/// E11000: a unique index (here, a key's `_id`) already holds the value.
fn is_duplicate_key(error: &mongodb::error::Error) -> bool {
    server_code(error) == Some(11000)
}

fn map_error(error: mongodb::error::Error) -> Error {
    match *error.kind {
        ErrorKind::ServerSelection { .. }
        | ErrorKind::Io(_)
        | ErrorKind::ConnectionPoolCleared { .. } => {
            Error::unavailable_because("the database is unavailable", error)
        }
        _ => Error::internal_because("database error", error),
    }
}

impl MongoCourses {
    /// A store in database `database` of the server at `uri`. The driver connects in the
    /// background, so the service starts (not ready) while MongoDB is away; server selection
    /// and every call are bounded by `timeout`.
    pub async fn connect(
        uri: &Secret,
        database: &str,
        timeout: Duration,
    ) -> Result<Self, mongodb::error::Error> {
        let mut options = ClientOptions::parse(uri.expose()).await?;
        options.app_name = Some("nis-courses".into());
        options.server_selection_timeout = Some(timeout);
        options.connect_timeout = Some(timeout);
        let client = Client::with_options(options)?;
        let db = client.database(database);
        Ok(Self {
            courses: db.collection("courses"),
            outbox: db.collection("outbox"),
            keys: db.collection("idempotency_keys"),
            client,
            timeout,
        })
    }

    /// Creates the indexes (idempotent): the multikey index on `student_ids` serves the cross
    /// query "which courses list student s"; the one on the outbox's `event_id` serves the
    /// relay's deletes.
    pub async fn migrate(&self) -> Result<(), Error> {
        let db = self.courses.namespace().db;
        let db = self.client.database(&db);
        let existing = self
            .bounded(tracing::Span::none(), db.list_collection_names())
            .await?;
        for name in COLLECTIONS {
            if existing.iter().any(|e| e == name) {
                continue;
            }
            let created = async {
                match db.create_collection(name).await {
                    // Another replica created it meanwhile (48: NamespaceExists).
                    Err(e) if server_code(&e) == Some(48) => Ok(()),
                    other => other,
                }
            };
            self.bounded(tracing::Span::none(), created).await?;
        }
        let index = |key: &str| {
            IndexModel::builder()
                .keys(doc! { key: 1 })
                .options(IndexOptions::builder().name(format!("{key}_1")).build())
                .build()
        };
        self.bounded(
            tracing::Span::none(),
            self.courses.create_index(index("student_ids")),
        )
        .await?;
        // The relay deletes what was published by event id.
        self.bounded(
            tracing::Span::none(),
            self.outbox.create_index(index("event_id")),
        )
        .await?;
        // The periodic purge of expired keys.
        self.bounded(
            tracing::Span::none(),
            self.keys.create_index(index("expires_at")),
        )
        .await
        .map(|_| ())
    }

    /// Runs one database call under the deadline, in `span`, mapping its errors.
    async fn bounded<T>(
        &self,
        span: tracing::Span,
        call: impl IntoFuture<Output = Result<T, mongodb::error::Error>>,
    ) -> Result<T, Error> {
        match tokio::time::timeout(self.timeout, call.into_future().instrument(span)).await {
            Ok(outcome) => outcome.map_err(map_error),
            Err(_) => Err(self.too_slow()),
        }
    }

    fn too_slow(&self) -> Error {
        Error::unavailable(format!(
            "the database did not answer within {:?}",
            self.timeout
        ))
    }

    async fn read(&self, id: &ObjectId) -> Result<Option<CourseDocument>, Error> {
        self.bounded(
            command("find", &self.courses),
            self.courses.find_one(doc! { "_id": id }),
        )
        .await
    }

    /// Writes `change` in `session`'s transaction; `false` when the course is not at version
    /// `expected`.
    async fn write(
        &self,
        session: &mut ClientSession,
        change: Change<Course>,
        expected: Option<i64>,
    ) -> Result<bool, mongodb::error::Error> {
        let version = expected.unwrap_or(0);
        Ok(match change {
            Change::Insert { id, draft, clocks } => {
                let document = CourseDocument::new(object_id(&id), &draft, clocks, 0);
                self.courses
                    .insert_one(document)
                    .session(session)
                    .into_future()
                    .instrument(command("insert", &self.courses))
                    .await?;
                true
            }
            Change::Replace { id, draft, clocks } => {
                let oid = object_id(&id);
                let document = CourseDocument::new(oid, &draft, clocks, version + 1);
                let filter = doc! { "_id": oid, "version": version };
                let done = self
                    .courses
                    .replace_one(filter, document)
                    .session(session)
                    .into_future()
                    .instrument(command("update", &self.courses))
                    .await?;
                done.matched_count == 1
            }
            Change::Delete { id } => {
                let filter = doc! { "_id": object_id(&id), "version": version };
                let done = self
                    .courses
                    .delete_one(filter)
                    .session(session)
                    .into_future()
                    .instrument(command("delete", &self.courses))
                    .await?;
                done.deleted_count == 1
            }
            Change::Relink { id, links, clocks } => {
                let mut set = doc! {
                    "link_clocks": mongodb::bson::to_bson(&clocks)?,
                    "version": version + 1,
                };
                if let Some(links) = links {
                    set.insert("student_ids", links);
                }
                let filter = doc! { "_id": object_id(&id), "version": version };
                let done = self
                    .courses
                    .update_one(filter, doc! { "$set": set })
                    .session(session)
                    .into_future()
                    .instrument(command("update", &self.courses))
                    .await?;
                done.matched_count == 1
            }
            Change::Nothing => true,
        })
    }

    /// Stores an idempotency key in `session`'s transaction (replacing an expired one);
    /// `false` when it is taken.
    async fn store_key(
        &self,
        session: &mut ClientSession,
        key: NewKey,
    ) -> Result<bool, mongodb::error::Error> {
        let now = DateTime::now();
        let expired = doc! { "_id": key.key.as_str(), "expires_at": { "$lte": now } };
        self.keys
            .delete_one(expired)
            .session(&mut *session)
            .into_future()
            .instrument(command("delete", &self.keys))
            .await?;
        let retention = i64::try_from(key.retention.as_millis()).unwrap_or(i64::MAX);
        let document = KeyDocument {
            key: key.key.to_string(),
            fingerprint: key.fingerprint,
            course_id: key.entity,
            expires_at: DateTime::from_millis(now.timestamp_millis().saturating_add(retention)),
        };
        match self
            .keys
            .insert_one(document)
            .session(session)
            .into_future()
            .instrument(command("insert", &self.keys))
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if is_duplicate_key(&e) => Ok(false),
            Err(e) => Err(e),
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
        let documents = self.bounded(command("find", &self.courses), find).await?;
        documents.into_iter().map(Course::try_from).collect()
    }
}

impl EntityStore<Course> for MongoCourses {
    async fn list(&self, page: Page) -> Result<Vec<Course>, Error> {
        self.find_page(doc! {}, page).await
    }

    async fn get(&self, id: &CourseId) -> Result<Option<Course>, Error> {
        self.read(&object_id(id))
            .await?
            .map(Course::try_from)
            .transpose()
    }

    async fn list_linked(&self, student: &StudentId, page: Page) -> Result<Vec<Course>, Error> {
        self.find_page(doc! { "student_ids": student.to_string() }, page)
            .await
    }

    fn next_id(&self) -> CourseId {
        CourseId::from(ObjectId::new().bytes())
    }

    async fn load_links(&self, id: &CourseId) -> Result<Option<LinkState>, Error> {
        Ok(self.read(&object_id(id)).await?.map(|course| LinkState {
            links: course.student_ids,
            clocks: course.link_clocks,
            version: course.version,
        }))
    }

    async fn commit(&self, commit: Commit<Course>) -> Result<Committed, Error> {
        let attempt = async {
            let mut session = self.client.start_session().await?;
            session.start_transaction().await?;
            // The key first, as in students: a request made twice at once conflicts here.
            if let Some(key) = commit.key
                && !self.store_key(&mut session, key).await?
            {
                session.abort_transaction().await?;
                return Ok(Committed::Conflict);
            }
            if !self
                .write(&mut session, commit.change, commit.expected)
                .await?
            {
                session.abort_transaction().await?;
                return Ok(Committed::Conflict);
            }
            if !commit.outbox.is_empty() {
                let entries = commit.outbox.into_iter().map(OutboxDocument::from);
                self.outbox
                    .insert_many(entries)
                    .session(&mut session)
                    .into_future()
                    .instrument(command("insert", &self.outbox))
                    .await?;
            }
            loop {
                match session
                    .commit_transaction()
                    .into_future()
                    .instrument(database_command("commitTransaction"))
                    .await
                {
                    Err(e) if e.contains_label(UNKNOWN_TRANSACTION_COMMIT_RESULT) => continue,
                    other => return other.map(|()| Committed::Done),
                }
            }
        };
        match tokio::time::timeout(self.timeout, attempt).await {
            Ok(Ok(committed)) => Ok(committed),
            Ok(Err(e)) if e.contains_label(TRANSIENT_TRANSACTION_ERROR) => Ok(Committed::Conflict),
            Ok(Err(e)) => Err(map_error(e)),
            Err(_) => Err(self.too_slow()),
        }
    }

    async fn find_key(&self, key: &str) -> Result<Option<KeyRecord>, Error> {
        let live = doc! { "_id": key, "expires_at": { "$gt": DateTime::now() } };
        let found = self
            .bounded(command("find", &self.keys), self.keys.find_one(live))
            .await?;
        Ok(found.map(|k| KeyRecord {
            fingerprint: k.fingerprint,
            entity: k.course_id,
        }))
    }

    async fn purge_keys(&self) -> Result<u64, Error> {
        let expired = doc! { "expires_at": { "$lte": DateTime::now() } };
        let done = self
            .bounded(
                command("delete", &self.keys),
                self.keys.delete_many(expired),
            )
            .await?;
        Ok(done.deleted_count)
    }

    async fn ping(&self) -> Result<(), Error> {
        self.bounded(
            database_command("ping"),
            self.client
                .database("admin")
                .run_command(doc! { "ping": 1 }),
        )
        .await
        .map(|_: Document| ())
    }
}

/// Courses fetched per batch of a reconciliation scan (up to 60 ids and clocks each).
const SCAN_BATCH: u32 = 200;

/// A course's side of the relation, as a reconciliation scan reads it.
#[derive(Debug, Deserialize)]
struct RelationDocument {
    #[serde(rename = "_id")]
    id: ObjectId,
    #[serde(default)]
    student_ids: Vec<String>,
    #[serde(default)]
    link_clocks: Clocks,
}

/// A lease shared by the replicas (docs/behaviour.md §5.10).
#[derive(Debug, Serialize, Deserialize)]
struct LeaseDocument {
    #[serde(rename = "_id")]
    name: String,
    holder: String,
    until: DateTime,
}

impl RelationStore for MongoCourses {
    async fn relation_scan<F>(&self, mut visit: F) -> Result<(), Error>
    where
        F: FnMut(RelationRow) + Send,
    {
        // One cursor in `_id` order, fetched in batches, each within the deadline: one query
        // for the whole scan, a bounded batch in memory.
        let relation = self.courses.clone_with_type::<RelationDocument>();
        let find = relation
            .find(doc! {})
            .projection(doc! { "student_ids": 1, "link_clocks": 1 })
            .sort(doc! { "_id": 1 })
            .batch_size(SCAN_BATCH);
        let mut cursor = self.bounded(command("find", &relation), find).await?;
        while let Some(document) = self
            .bounded(command("getMore", &relation), cursor.try_next())
            .await?
        {
            visit(RelationRow {
                id: CourseId::from(document.id.bytes()).to_string(),
                links: document.student_ids,
                clocks: document.link_clocks,
            });
        }
        Ok(())
    }

    async fn try_lease(
        &self,
        name: &'static str,
        holder: &str,
        ttl: Duration,
    ) -> Result<bool, Error> {
        let now = DateTime::now();
        let until = DateTime::from_millis(
            now.timestamp_millis()
                .saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)),
        );
        let db = self.courses.namespace().db;
        let leases = self
            .client
            .database(&db)
            .collection::<LeaseDocument>("leases");
        // Matches the lease if it is this holder's or over; otherwise the upsert tries to insert
        // a second document with the same name, which the `_id` index refuses.
        let taken = leases
            .update_one(
                doc! { "_id": name, "$or": [ { "holder": holder }, { "until": { "$lte": now } } ] },
                doc! { "$set": { "holder": holder, "until": until } },
            )
            .upsert(true);
        let taken = taken.into_future().instrument(command("update", &leases));
        match tokio::time::timeout(self.timeout, taken).await {
            Ok(Ok(_)) => Ok(true),
            Ok(Err(e)) if is_duplicate_key(&e) => Ok(false),
            Ok(Err(e)) => Err(map_error(e)),
            Err(_) => Err(self.too_slow()),
        }
    }
}

/// How many times a relay picks free outbox entries again after losing some to another relay.
const CLAIM_ATTEMPTS: usize = 3;

impl Outbox for MongoCourses {
    async fn claim(
        &self,
        relay: &str,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<OutboxEntry>, Error> {
        // MongoDB has no SKIP LOCKED: pick the oldest free entries and claim those still free
        // in one conditional update (atomic per document, so of two relays racing for an entry
        // one wins). A relay that lost some picks again among what is still free, a few times,
        // so two relays starting together share the backlog instead of one getting nothing.
        let now = DateTime::now();
        let until = DateTime::from_millis(
            now.timestamp_millis()
                .saturating_add(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX)),
        );
        let free = vec![
            doc! { "claimed_until": null },
            doc! { "claimed_until": { "$lte": now } },
            doc! { "claimed_by": relay },
        ];
        let mine = doc! { "claimed_by": relay, "claimed_until": until };
        let claim = async {
            let mut claimed: Vec<ObjectId> = Vec::new();
            for _ in 0..CLAIM_ATTEMPTS {
                let wanted = limit.saturating_sub(claimed.len());
                let candidates: Vec<ObjectId> = self
                    .outbox
                    .find(doc! { "$or": free.clone(), "_id": { "$nin": &claimed } })
                    .sort(doc! { "_id": 1 })
                    .limit(i64::try_from(wanted).unwrap_or(i64::MAX))
                    .await?
                    .map_ok(|d| d.id)
                    .try_collect()
                    .await?;
                let (Some(oldest), Some(newest)) = (candidates.first(), candidates.last()) else {
                    break;
                };
                // The candidates are the oldest free entries, so the free ones of their `_id`
                // range are the candidates (a range also keeps the query cheap for servers that
                // scan `$in`).
                let range = doc! { "$gte": oldest, "$lte": newest };
                self.outbox
                    .update_many(
                        doc! { "_id": range.clone(), "$or": free.clone() },
                        doc! { "$set": mine.clone() },
                    )
                    .await?;
                let won: Vec<ObjectId> = self
                    .outbox
                    .find(doc! { "_id": range, "claimed_by": relay })
                    .await?
                    .map_ok(|d| d.id)
                    .try_collect()
                    .await?;
                let all_won = won.len() >= candidates.len();
                let new: Vec<ObjectId> =
                    won.into_iter().filter(|id| !claimed.contains(id)).collect();
                claimed.extend(new);
                if all_won || claimed.len() >= limit {
                    break;
                }
            }
            self.outbox
                .find(doc! { "_id": { "$in": &claimed } })
                .sort(doc! { "_id": 1 })
                .await?
                .try_collect::<Vec<_>>()
                .await
        };
        let documents = self.bounded(command("claim", &self.outbox), claim).await?;
        Ok(documents
            .into_iter()
            .map(|d| OutboxEntry {
                id: d.event_id,
                subject: d.subject,
                payload: d.payload.into_bytes(),
                request_id: d.request_id,
                trace_context: d.trace_context,
            })
            .collect())
    }

    async fn published(&self, ids: &[String]) -> Result<(), Error> {
        self.bounded(
            command("delete", &self.outbox),
            self.outbox.delete_many(doc! { "event_id": { "$in": ids } }),
        )
        .await
        .map(|_| ())
    }

    async fn backlog(&self) -> Result<u64, Error> {
        self.bounded(
            command("count", &self.outbox),
            self.outbox.count_documents(doc! {}),
        )
        .await
    }
}

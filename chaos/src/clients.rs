//! The load's clients: HTTP (reqwest) and gRPC (the generated `nis.v1` clients), one channel
//! per replica, every call bounded by the client timeout. Each call ends in an [`Answer`]:
//! the status the server gave, or the connection error or timeout that replaced it.

use std::time::Duration;

use nis_grpc::proto::v1::{
    self as pb, course_service_client::CourseServiceClient,
    student_service_client::StudentServiceClient,
};
use tonic::{Code, transport::Channel};

use crate::{
    error::{Context as _, Result, fail},
    model::{Entity, Kind},
    replicas::{Address, Service},
};

/// How long the load waits for any answer (docs/chaos.md, "The load").
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);

/// HTTP or gRPC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Transport {
    /// The JSON API.
    Http,
    /// The `nis.v1` API.
    Grpc,
}

impl Transport {
    /// `http` / `grpc`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Grpc => "grpc",
        }
    }
}

/// How a call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// An HTTP status.
    Http(u16),
    /// A gRPC status sent by the server.
    Grpc(Code),
    /// No answer: the connection failed or broke (what failed, briefly).
    Connection(String),
    /// No answer within [`CLIENT_TIMEOUT`].
    Timeout,
}

/// What a write's answer says about whether it was applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    /// 2xx / OK: applied.
    Acknowledged,
    /// 4xx / INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS…: refused, not applied.
    Refused,
    /// Timeout, connection error, 5xx / UNAVAILABLE…: may or may not have been applied.
    Unknown,
}

/// How the responses check sorts an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Class {
    /// 2xx / OK.
    Ok,
    /// 4xx and the gRPC codes of the caller's mistakes.
    Refused,
    /// 503 / UNAVAILABLE (and gRPC CANCELLED, DEADLINE_EXCEEDED): the server could not do it now.
    Unavailable,
    /// 500 and every other 5xx / INTERNAL and every other gRPC code: a bug.
    Internal,
    /// A connection error or a timeout: no answer at all.
    NoAnswer,
}

impl Answer {
    /// Sorts the answer.
    pub fn class(&self) -> Class {
        match self {
            Self::Http(s) if (200..300).contains(s) => Class::Ok,
            Self::Http(s) if (400..500).contains(s) => Class::Refused,
            Self::Http(503) => Class::Unavailable,
            Self::Http(_) => Class::Internal,
            Self::Grpc(Code::Ok) => Class::Ok,
            Self::Grpc(
                Code::InvalidArgument
                | Code::NotFound
                | Code::AlreadyExists
                | Code::FailedPrecondition
                | Code::OutOfRange
                | Code::PermissionDenied
                | Code::Unauthenticated,
            ) => Class::Refused,
            Self::Grpc(Code::Unavailable | Code::Cancelled | Code::DeadlineExceeded) => {
                Class::Unavailable
            }
            Self::Grpc(_) => Class::Internal,
            Self::Connection(_) | Self::Timeout => Class::NoAnswer,
        }
    }

    /// What it says about a write.
    pub fn outcome(&self) -> Outcome {
        match self.class() {
            Class::Ok => Outcome::Acknowledged,
            Class::Refused => Outcome::Refused,
            Class::Unavailable | Class::Internal | Class::NoAnswer => Outcome::Unknown,
        }
    }

    /// Its label in the report: `HTTP 201`, `gRPC Unavailable`, `connection: …`, `timeout`.
    pub fn label(&self) -> String {
        match self {
            Self::Http(s) => format!("HTTP {s}"),
            Self::Grpc(code) => format!("gRPC {code:?}"),
            Self::Connection(what) => format!("connection: {what}"),
            Self::Timeout => "timeout".into(),
        }
    }
}

/// The answer of a reqwest error.
fn http_error(error: &reqwest::Error) -> Answer {
    if error.is_timeout() {
        Answer::Timeout
    } else if error.is_connect() {
        Answer::Connection("http connect".into())
    } else {
        Answer::Connection("http request".into())
    }
}

/// The answer of a gRPC status: one made by the client for a broken or refused connection has
/// the transport error as its source; one sent by a server has none.
fn grpc_status(status: &tonic::Status) -> Answer {
    if std::error::Error::source(status).is_some() {
        Answer::Connection("grpc transport".into())
    } else {
        Answer::Grpc(status.code())
    }
}

fn student(e: pb::Student) -> Entity {
    Entity {
        kind: Kind::Student,
        id: e.id,
        name: e.name,
        tag: e.first_name,
        counter: e.last_name,
        links: e.course_ids,
    }
}

fn course(e: pb::Course) -> Entity {
    Entity {
        kind: Kind::Course,
        id: e.id,
        name: e.name,
        tag: e.discipline,
        counter: e.teacher,
        links: e.student_ids,
    }
}

/// Clients of every replica.
#[derive(Debug, Clone)]
pub struct Clients {
    http: reqwest::Client,
    students: Vec<Option<StudentServiceClient<Channel>>>,
    courses: Vec<Option<CourseServiceClient<Channel>>>,
}

impl Clients {
    /// Clients of the replicas at `addresses` (by fleet index); gRPC channels connect lazily and
    /// reconnect by themselves after a replica restarts.
    pub fn new(addresses: &[Address]) -> Result<Self> {
        // Idle connections are dropped before the services' 5 s keep-alive ends, so a request
        // never races the server closing an idle connection (a client artefact, not a fault).
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .pool_idle_timeout(Duration::from_secs(2))
            .build()
            .context("build the HTTP client")?;
        let mut students = Vec::new();
        let mut courses = Vec::new();
        for address in addresses {
            let channel = tonic::transport::Endpoint::from_shared(address.grpc.clone())
                .context("gRPC address")?
                .connect_timeout(Duration::from_secs(2))
                .connect_lazy();
            match address.service {
                Service::Students => {
                    students.push(Some(StudentServiceClient::new(channel)));
                    courses.push(None);
                }
                Service::Courses => {
                    courses.push(Some(CourseServiceClient::new(channel)));
                    students.push(None);
                }
            }
        }
        Ok(Self {
            http,
            students,
            courses,
        })
    }

    /// The HTTP client (also for probes).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    fn student_client(&self, replica: &Address) -> StudentServiceClient<Channel> {
        self.students[replica.index]
            .clone()
            .expect("a students replica has a students client")
    }

    fn course_client(&self, replica: &Address) -> CourseServiceClient<Channel> {
        self.courses[replica.index]
            .clone()
            .expect("a courses replica has a courses client")
    }

    /// POST / Create*: the answer and, if acknowledged, the entity as stored.
    pub async fn create(
        &self,
        transport: Transport,
        replica: &Address,
        entity: &Entity,
    ) -> (Answer, Option<Entity>) {
        match transport {
            Transport::Http => {
                let url = format!("{}/api/{}", replica.http, entity.kind.plural());
                self.http_write(self.http.post(url), entity).await
            }
            Transport::Grpc => match entity.kind {
                Kind::Student => {
                    let request = pb::CreateStudentRequest {
                        name: entity.name.clone(),
                        first_name: entity.tag.clone(),
                        last_name: entity.counter.clone(),
                        course_ids: entity.links.clone(),
                    };
                    let mut client = self.student_client(replica);
                    grpc(client.create_student(request), student).await
                }
                Kind::Course => {
                    let request = pb::CreateCourseRequest {
                        name: entity.name.clone(),
                        description: crate::model::DESCRIPTION.into(),
                        discipline: entity.tag.clone(),
                        teacher: entity.counter.clone(),
                        student_ids: entity.links.clone(),
                    };
                    let mut client = self.course_client(replica);
                    grpc(client.create_course(request), course).await
                }
            },
        }
    }

    /// PUT / Update*: a full replacement.
    pub async fn update(
        &self,
        transport: Transport,
        replica: &Address,
        entity: &Entity,
    ) -> (Answer, Option<Entity>) {
        match transport {
            Transport::Http => {
                let url = format!(
                    "{}/api/{}/{}",
                    replica.http,
                    entity.kind.plural(),
                    entity.id
                );
                self.http_write(self.http.put(url), entity).await
            }
            Transport::Grpc => match entity.kind {
                Kind::Student => {
                    let request = pb::UpdateStudentRequest {
                        id: entity.id.clone(),
                        name: entity.name.clone(),
                        first_name: entity.tag.clone(),
                        last_name: entity.counter.clone(),
                        course_ids: entity.links.clone(),
                        expected_version: None,
                    };
                    let mut client = self.student_client(replica);
                    grpc(client.update_student(request), student).await
                }
                Kind::Course => {
                    let request = pb::UpdateCourseRequest {
                        id: entity.id.clone(),
                        name: entity.name.clone(),
                        description: crate::model::DESCRIPTION.into(),
                        discipline: entity.tag.clone(),
                        teacher: entity.counter.clone(),
                        student_ids: entity.links.clone(),
                        expected_version: None,
                    };
                    let mut client = self.course_client(replica);
                    grpc(client.update_course(request), course).await
                }
            },
        }
    }

    /// DELETE / Delete*.
    pub async fn delete(
        &self,
        transport: Transport,
        replica: &Address,
        kind: Kind,
        id: &str,
    ) -> Answer {
        match transport {
            Transport::Http => {
                let url = format!("{}/api/{}/{id}", replica.http, kind.plural());
                self.http_status(self.http.delete(url)).await
            }
            Transport::Grpc => match kind {
                Kind::Student => {
                    let request = pb::DeleteStudentRequest {
                        id: id.to_owned(),
                        expected_version: None,
                    };
                    let mut client = self.student_client(replica);
                    grpc(client.delete_student(request), |_| ()).await.0
                }
                Kind::Course => {
                    let request = pb::DeleteCourseRequest {
                        id: id.to_owned(),
                        expected_version: None,
                    };
                    let mut client = self.course_client(replica);
                    grpc(client.delete_course(request), |_| ()).await.0
                }
            },
        }
    }

    /// GET / Get*: the answer and, if OK, the entity as read (for the stale-read check).
    pub async fn get(
        &self,
        transport: Transport,
        replica: &Address,
        kind: Kind,
        id: &str,
    ) -> (Answer, Option<Entity>) {
        match transport {
            Transport::Http => {
                let url = format!("{}/api/{}/{id}", replica.http, kind.plural());
                self.http_entity(self.http.get(url), kind).await
            }
            Transport::Grpc => match kind {
                Kind::Student => {
                    let request = pb::GetStudentRequest { id: id.to_owned() };
                    let mut client = self.student_client(replica);
                    grpc(client.get_student(request), student).await
                }
                Kind::Course => {
                    let request = pb::GetCourseRequest { id: id.to_owned() };
                    let mut client = self.course_client(replica);
                    grpc(client.get_course(request), course).await
                }
            },
        }
    }

    /// The service a cross query about an entity of `kind` goes to: over HTTP the entity's
    /// own service (`GET /api/courses/{id}/students` is answered by courses, asking students);
    /// over gRPC the other one (`ListStudentsByCourse` is answered by students, asking courses).
    pub fn cross_service(kind: Kind, transport: Transport) -> Service {
        match transport {
            Transport::Http => kind.service(),
            Transport::Grpc => kind.other().service(),
        }
    }

    /// The entities of the other kind that link entity `id` of `kind`, asked of `replica` (of
    /// [`Self::cross_service`]).
    pub async fn cross(
        &self,
        transport: Transport,
        replica: &Address,
        kind: Kind,
        id: &str,
    ) -> Answer {
        match transport {
            Transport::Http => {
                let url = format!(
                    "{}/api/{}/{id}/{}",
                    replica.http,
                    kind.plural(),
                    kind.other().plural()
                );
                self.http_status(self.http.get(url)).await
            }
            Transport::Grpc => match kind {
                Kind::Course => {
                    let request = pb::ListStudentsByCourseRequest {
                        course_id: id.to_owned(),
                        page: None,
                    };
                    let mut client = self.student_client(replica);
                    grpc(client.list_students_by_course(request), |_| ())
                        .await
                        .0
                }
                Kind::Student => {
                    let request = pb::ListCoursesByStudentRequest {
                        student_id: id.to_owned(),
                        page: None,
                    };
                    let mut client = self.course_client(replica);
                    grpc(client.list_courses_by_student(request), |_| ())
                        .await
                        .0
                }
            },
        }
    }

    async fn http_write(
        &self,
        request: reqwest::RequestBuilder,
        entity: &Entity,
    ) -> (Answer, Option<Entity>) {
        self.http_entity(request.json(&entity.body()), entity.kind)
            .await
    }

    /// Sends a request answered with one entity of `kind` in `data`.
    async fn http_entity(
        &self,
        request: reqwest::RequestBuilder,
        kind: Kind,
    ) -> (Answer, Option<Entity>) {
        let call = async {
            let response = request.send().await?;
            let status = response.status().as_u16();
            let body: Option<serde_json::Value> = response.json().await.ok();
            Ok::<_, reqwest::Error>((status, body))
        };
        match tokio::time::timeout(CLIENT_TIMEOUT, call).await {
            Ok(Ok((status, body))) => {
                let entity = body.and_then(|b| Entity::from_json(kind, &b["data"]));
                (Answer::Http(status), entity)
            }
            Ok(Err(e)) => (http_error(&e), None),
            Err(_) => (Answer::Timeout, None),
        }
    }

    async fn http_status(&self, request: reqwest::RequestBuilder) -> Answer {
        let call = async {
            let response = request.send().await?;
            let status = response.status().as_u16();
            // Read the body, so the request is over only when the whole answer is in.
            response.bytes().await?;
            Ok::<_, reqwest::Error>(status)
        };
        match tokio::time::timeout(CLIENT_TIMEOUT, call).await {
            Ok(Ok(status)) => Answer::Http(status),
            Ok(Err(e)) => http_error(&e),
            Err(_) => Answer::Timeout,
        }
    }

    /// Every entity of `kind`, read from `replica` over HTTP page by page (500 a page).
    pub async fn list_all(&self, replica: &Address, kind: Kind) -> Result<Vec<Entity>> {
        let mut all = Vec::new();
        loop {
            let url = format!(
                "{}/api/{}?limit=500&offset={}",
                replica.http,
                kind.plural(),
                all.len()
            );
            let response = self
                .http
                .get(&url)
                .timeout(CLIENT_TIMEOUT)
                .send()
                .await
                .context(format!("GET {url}"))?;
            if response.status() != 200 {
                return fail(format!("GET {url}: {}", response.status()));
            }
            let body: serde_json::Value = response.json().await.context(format!("GET {url}"))?;
            let page = body["data"].as_array().cloned().unwrap_or_default();
            let count = page.len();
            for item in &page {
                match Entity::from_json(kind, item) {
                    Some(entity) => all.push(entity),
                    None => return fail(format!("GET {url}: unreadable entity {item}")),
                }
            }
            if count < 500 {
                return Ok(all);
            }
        }
    }

    /// The HTTP status of `GET /api/{kind}/{id}` on `replica`.
    pub async fn status_of(&self, replica: &Address, kind: Kind, id: &str) -> Answer {
        let url = format!("{}/api/{}/{id}", replica.http, kind.plural());
        self.http_status(self.http.get(url)).await
    }
}

/// Runs a gRPC call under the client timeout; the entity (via `convert`) when it answers OK.
async fn grpc<T, R>(
    call: impl Future<Output = std::result::Result<tonic::Response<T>, tonic::Status>>,
    convert: impl FnOnce(T) -> R,
) -> (Answer, Option<R>) {
    match tokio::time::timeout(CLIENT_TIMEOUT, call).await {
        Ok(Ok(response)) => (Answer::Grpc(Code::Ok), Some(convert(response.into_inner()))),
        Ok(Err(status)) => (grpc_status(&status), None),
        Err(_) => (Answer::Timeout, None),
    }
}

//! The gRPC clients of the other service's peer service (`nis.v1.StudentPeerService`,
//! `nis.v1.CoursePeerService`, not the public API), adapters of the core's [`Peer`] port: "the
//! students of course c" and "does student s exist" are asked of students, the mirrored
//! questions of courses. Every call has a deadline; a peer that is down, slow or answers with
//! an error status is `Unavailable` (503 / `UNAVAILABLE`), never a hang (docs/behaviour.md §3).

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use nis_core::{Context, Error, Page, peer::Peer, request_id};
use tonic::{Code, Request, Response, Status, transport::Channel, transport::Endpoint};
use tracing::Instrument as _;

use crate::proto::v1::{
    self as pb, course_peer_service_client::CoursePeerServiceClient,
    student_peer_service_client::StudentPeerServiceClient,
};

/// The replicas of the other service: one lazily connecting channel per URL of a
/// comma-separated list (e.g. under `make up REPLICAS=2`; in Kubernetes one Service URL).
/// Calls start at the next replica in turn and move on to the following one when a replica
/// refuses or drops the connection (`UNAVAILABLE`), all within one deadline — so a replica that
/// is gone costs a retry, not an error (docs/behaviour.md §3, "Cross queries").
#[derive(Debug, Clone)]
pub(crate) struct Replicas {
    channels: Arc<[Channel]>,
    next: Arc<AtomicUsize>,
    timeout: Duration,
}

impl Replicas {
    pub(crate) fn connect(urls: &str, timeout: Duration) -> Result<Self, tonic::transport::Error> {
        let channels = urls
            .split(',')
            .map(|url| {
                Ok(Endpoint::from_shared(url.trim().to_owned())?
                    .connect_timeout(timeout)
                    .timeout(timeout)
                    .connect_lazy())
            })
            .collect::<Result<Arc<[Channel]>, tonic::transport::Error>>()?;
        Ok(Self {
            channels,
            next: Arc::default(),
            timeout,
        })
    }

    /// `attempt` on one replica after another until one answers (anything but `UNAVAILABLE`)
    /// or the last has been tried; the whole within the deadline. In a traced request, the
    /// whole is the RPC client span of `service`/`method` (docs/behaviour.md §7, "Traces"),
    /// whose context the requests carry.
    pub(crate) async fn call<T, F, Fut>(
        &self,
        (service, method): (&'static str, &'static str),
        mut attempt: F,
    ) -> Result<T, Status>
    where
        F: FnMut(Channel) -> Fut,
        Fut: Future<Output = Result<T, Status>>,
    {
        let count = self.channels.len();
        let first = self.next.fetch_add(1, Ordering::Relaxed);
        let tries = async {
            let mut answer = Err(Status::unavailable("no replica to ask"));
            for k in 0..count {
                answer = attempt(self.channels[(first + k) % count].clone()).await;
                match &answer {
                    Err(status) if status.code() == Code::Unavailable => continue,
                    _ => break,
                }
            }
            answer
        };
        let span = nis_core::trace::child(|| {
            tracing::info_span!(
                target: nis_core::trace::TARGET,
                "grpc client",
                otel.name = %format_args!("{service}/{method}"),
                otel.kind = "client",
                rpc.system = "grpc",
                rpc.service = service,
                rpc.method = method,
                rpc.grpc.status_code = tracing::field::Empty,
            )
        });
        let answer = tokio::time::timeout(self.timeout, tries.instrument(span.clone()))
            .await
            .unwrap_or_else(|_| {
                Err(Status::deadline_exceeded(format!(
                    "no answer within {:?}",
                    self.timeout
                )))
            });
        let code = answer.as_ref().map_or_else(Status::code, |_| Code::Ok);
        span.record("rpc.grpc.status_code", code as i32);
        answer
    }
}

/// A request carrying the caller's request id, so both services log the same one, and the
/// trace context, so that the call is part of the caller's trace.
pub(crate) fn request<T>(ctx: &Context, message: T) -> Request<T> {
    let mut request = Request::new(message);
    if let Ok(value) = ctx.request_id.parse() {
        request.metadata_mut().insert(request_id::HEADER, value);
    }
    // The trace continues on the other service (none when traces are off).
    for (name, value) in nis_runtime::traces::outgoing_context(ctx.trace_context.as_deref()) {
        if let Ok(value) = value.parse() {
            request.metadata_mut().insert(name, value);
        }
    }
    request
}

pub(crate) fn unavailable(peer: &str, status: Status) -> Error {
    Error::unavailable_because(format!("the {peer} service did not answer"), status)
}

fn page(page: Page) -> Option<pb::Page> {
    Some(pb::Page {
        limit: page.limit,
        offset: page.offset,
    })
}

/// What an existence check answered: `Ok` if the peer has entity `id` (a `singular` such as
/// "course"), `NotFound` if it has not, `Unavailable` if it did not answer.
fn existence(
    peer: &str,
    singular: &str,
    id: &str,
    answer: Result<Response<pb::ExistsResponse>, Status>,
) -> Result<(), Error> {
    match answer {
        Ok(response) if response.get_ref().exists => Ok(()),
        Ok(_) => Err(Error::NotFound(format!("{singular} {id} not found"))),
        Err(status) => Err(unavailable(peer, status)),
    }
}

/// The students service, as courses sees it.
#[derive(Debug, Clone)]
pub struct StudentsPeer {
    replicas: Replicas,
}

impl StudentsPeer {
    /// A client of the students peer service at `urls` (one URL, or a comma-separated list of
    /// replicas), each call bounded by `timeout`; connects on first use.
    pub fn connect(urls: &str, timeout: Duration) -> Result<Self, tonic::transport::Error> {
        Ok(Self {
            replicas: Replicas::connect(urls, timeout)?,
        })
    }
}

impl Peer for StudentsPeer {
    type Item = pb::Student;

    async fn linked_to(
        &self,
        ctx: &Context,
        id: &str,
        page: Page,
    ) -> Result<Vec<pb::Student>, Error> {
        let message = pb::ListStudentsByCourseRequest {
            course_id: id.to_owned(),
            page: self::page(page),
        };
        let answer = self.replicas.call(
            (
                pb::student_peer_service_server::SERVICE_NAME,
                "ListStudentsLinkingCourse",
            ),
            |channel| {
                let request = request(ctx, message.clone());
                async move {
                    StudentPeerServiceClient::new(channel)
                        .list_students_linking_course(request)
                        .await
                }
            },
        );
        match answer.await {
            Ok(response) => Ok(response.into_inner().students),
            Err(status) => Err(unavailable("students", status)),
        }
    }

    async fn ensure_exists(&self, ctx: &Context, id: &str) -> Result<(), Error> {
        let message = pb::StudentExistsRequest { id: id.to_owned() };
        let answer = self
            .replicas
            .call(
                (
                    pb::student_peer_service_server::SERVICE_NAME,
                    "StudentExists",
                ),
                |channel| {
                    let request = request(ctx, message.clone());
                    async move {
                        StudentPeerServiceClient::new(channel)
                            .student_exists(request)
                            .await
                    }
                },
            )
            .await;
        existence("students", "student", id, answer)
    }
}

/// The courses service, as students sees it.
#[derive(Debug, Clone)]
pub struct CoursesPeer {
    replicas: Replicas,
}

impl CoursesPeer {
    /// A client of the courses peer service at `urls` (one URL, or a comma-separated list of
    /// replicas), each call bounded by `timeout`; connects on first use.
    pub fn connect(urls: &str, timeout: Duration) -> Result<Self, tonic::transport::Error> {
        Ok(Self {
            replicas: Replicas::connect(urls, timeout)?,
        })
    }
}

impl Peer for CoursesPeer {
    type Item = pb::Course;

    async fn linked_to(
        &self,
        ctx: &Context,
        id: &str,
        page: Page,
    ) -> Result<Vec<pb::Course>, Error> {
        let message = pb::ListCoursesByStudentRequest {
            student_id: id.to_owned(),
            page: self::page(page),
        };
        let answer = self.replicas.call(
            (
                pb::course_peer_service_server::SERVICE_NAME,
                "ListCoursesLinkingStudent",
            ),
            |channel| {
                let request = request(ctx, message.clone());
                async move {
                    CoursePeerServiceClient::new(channel)
                        .list_courses_linking_student(request)
                        .await
                }
            },
        );
        match answer.await {
            Ok(response) => Ok(response.into_inner().courses),
            Err(status) => Err(unavailable("courses", status)),
        }
    }

    async fn ensure_exists(&self, ctx: &Context, id: &str) -> Result<(), Error> {
        let message = pb::CourseExistsRequest { id: id.to_owned() };
        let answer = self
            .replicas
            .call(
                (pb::course_peer_service_server::SERVICE_NAME, "CourseExists"),
                |channel| {
                    let request = request(ctx, message.clone());
                    async move {
                        CoursePeerServiceClient::new(channel)
                            .course_exists(request)
                            .await
                    }
                },
            )
            .await;
        existence("courses", "course", id, answer)
    }
}

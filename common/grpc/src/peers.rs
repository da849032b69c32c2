//! The gRPC clients of the other service's peer service (`nis.v1.StudentPeerService`,
//! `nis.v1.CoursePeerService`, not the public API), adapters of the core's [`Peer`] port: "the
//! students of course c" and "does student s exist" are asked of students, the mirrored
//! questions of courses. Every call has a deadline; a peer that is down, slow or answers with
//! an error status is `Unavailable` (503 / `UNAVAILABLE`), never a hang (docs/behaviour.md §3).

use std::time::Duration;

use nis_core::{Context, Error, Page, peer::Peer, request_id};
use tonic::{Request, Response, Status, transport::Channel, transport::Endpoint};

use crate::proto::v1::{
    self as pb, course_peer_service_client::CoursePeerServiceClient,
    student_peer_service_client::StudentPeerServiceClient,
};

/// A lazily connecting channel to `urls`: one URL, or several separated by commas (the
/// replicas of the other service, e.g. under `make up REPLICAS=2`), between which calls are
/// balanced; a replica that does not answer is left out until it does.
fn channel(urls: &str, timeout: Duration) -> Result<Channel, tonic::transport::Error> {
    let endpoints = urls
        .split(',')
        .map(str::trim)
        .filter(|url| !url.is_empty())
        .map(|url| {
            Ok(Endpoint::from_shared(url.to_owned())?
                .connect_timeout(timeout)
                .timeout(timeout))
        })
        .collect::<Result<Vec<_>, tonic::transport::Error>>()?;
    Ok(match <[Endpoint; 1]>::try_from(endpoints) {
        Ok([one]) => one.connect_lazy(),
        Err(many) => Channel::balance_list(many.into_iter()),
    })
}

/// A request carrying the caller's request id, so both services log the same one.
fn request<T>(ctx: &Context, message: T) -> Request<T> {
    let mut request = Request::new(message);
    if let Ok(value) = ctx.request_id.parse() {
        request.metadata_mut().insert(request_id::HEADER, value);
    }
    request
}

fn unavailable(peer: &str, status: Status) -> Error {
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
    client: StudentPeerServiceClient<Channel>,
}

impl StudentsPeer {
    /// A client of the students peer service at `url`, each call bounded by `timeout`;
    /// connects on first use.
    pub fn connect(url: &str, timeout: Duration) -> Result<Self, tonic::transport::Error> {
        Ok(Self {
            client: StudentPeerServiceClient::new(channel(url, timeout)?),
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
        let mut client = self.client.clone();
        match client
            .list_students_linking_course(request(ctx, message))
            .await
        {
            Ok(response) => Ok(response.into_inner().students),
            Err(status) => Err(unavailable("students", status)),
        }
    }

    async fn ensure_exists(&self, ctx: &Context, id: &str) -> Result<(), Error> {
        let message = pb::StudentExistsRequest { id: id.to_owned() };
        let answer = self
            .client
            .clone()
            .student_exists(request(ctx, message))
            .await;
        existence("students", "student", id, answer)
    }
}

/// The courses service, as students sees it.
#[derive(Debug, Clone)]
pub struct CoursesPeer {
    client: CoursePeerServiceClient<Channel>,
}

impl CoursesPeer {
    /// A client of the courses peer service at `url`, each call bounded by `timeout`;
    /// connects on first use.
    pub fn connect(url: &str, timeout: Duration) -> Result<Self, tonic::transport::Error> {
        Ok(Self {
            client: CoursePeerServiceClient::new(channel(url, timeout)?),
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
        let mut client = self.client.clone();
        match client
            .list_courses_linking_student(request(ctx, message))
            .await
        {
            Ok(response) => Ok(response.into_inner().courses),
            Err(status) => Err(unavailable("courses", status)),
        }
    }

    async fn ensure_exists(&self, ctx: &Context, id: &str) -> Result<(), Error> {
        let message = pb::CourseExistsRequest { id: id.to_owned() };
        let answer = self
            .client
            .clone()
            .course_exists(request(ctx, message))
            .await;
        existence("courses", "course", id, answer)
    }
}

//! The gRPC clients of the other service, adapters of the core's [`Peer`] port: "the students
//! of course c" is asked of students, "the courses of student s" of courses. Every call has a
//! deadline; a peer that is down or slow is `Unavailable` (503), never a hang.

use std::time::Duration;

use nis_core::{Context, Error, Page, peer::Peer, request_id};
use tonic::{Request, transport::Channel, transport::Endpoint};

use crate::proto::v1::{
    self as pb, course_service_client::CourseServiceClient,
    student_service_client::StudentServiceClient,
};

fn channel(url: &str, timeout: Duration) -> Result<Channel, tonic::transport::Error> {
    Ok(Endpoint::from_shared(url.to_owned())?
        .connect_timeout(timeout)
        .timeout(timeout)
        .connect_lazy())
}

fn request<T>(ctx: &Context, message: T) -> Request<T> {
    let mut request = Request::new(message);
    if let Ok(value) = ctx.request_id.parse() {
        request.metadata_mut().insert(request_id::HEADER, value);
    }
    request
}

fn unavailable(peer: &str, status: tonic::Status) -> Error {
    Error::unavailable_because(format!("the {peer} service did not answer"), status)
}

fn page(page: Page) -> Option<pb::Page> {
    Some(pb::Page {
        limit: page.limit,
        offset: page.offset,
    })
}

/// The students service, as courses sees it.
#[derive(Debug, Clone)]
pub struct StudentsPeer {
    client: StudentServiceClient<Channel>,
}

impl StudentsPeer {
    /// A client of the students gRPC API at `url`; connects on first use.
    pub fn connect(url: &str, timeout: Duration) -> Result<Self, tonic::transport::Error> {
        Ok(Self {
            client: StudentServiceClient::new(channel(url, timeout)?),
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
        match client.list_students_by_course(request(ctx, message)).await {
            Ok(response) => Ok(response.into_inner().students),
            Err(status) => Err(unavailable("students", status)),
        }
    }
}

/// The courses service, as students sees it.
#[derive(Debug, Clone)]
pub struct CoursesPeer {
    client: CourseServiceClient<Channel>,
}

impl CoursesPeer {
    /// A client of the courses gRPC API at `url`; connects on first use.
    pub fn connect(url: &str, timeout: Duration) -> Result<Self, tonic::transport::Error> {
        Ok(Self {
            client: CourseServiceClient::new(channel(url, timeout)?),
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
        match client.list_courses_by_student(request(ctx, message)).await {
            Ok(response) => Ok(response.into_inner().courses),
            Err(status) => Err(unavailable("courses", status)),
        }
    }
}

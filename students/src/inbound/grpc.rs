//! The gRPC services of students (docs/behaviour.md §4): the public `nis.v1.StudentService` and
//! `nis.v1.StudentPeerService`, which only courses calls. Message conversions around the shared
//! handlers of `nis_grpc::crud`.

use nis_core::{EntityService, peer::Peer};
use nis_grpc::{
    context, crud,
    proto::v1::{
        self as pb,
        student_peer_service_server::{StudentPeerService, StudentPeerServiceServer},
        student_service_server::{StudentService, StudentServiceServer},
    },
};
use tonic::{Request, Response, Status};

use crate::domain::{Student, StudentInput};

/// The public gRPC API over the student service `S`; its cross query asks courses (`P`)
/// whether the course exists.
#[derive(Debug, Clone)]
pub struct StudentGrpc<S, P> {
    service: S,
    courses: P,
}

impl<S: EntityService<Student>, P: Peer> StudentGrpc<S, P> {
    /// The tonic service of `service`, with `courses` for the cross query.
    pub fn server(service: S, courses: P) -> StudentServiceServer<Self> {
        StudentServiceServer::new(Self { service, courses })
    }
}

/// The peer service over the student service `S`: what courses asks of students.
#[derive(Debug, Clone)]
pub struct StudentPeerGrpc<S> {
    service: S,
}

impl<S: EntityService<Student>> StudentPeerGrpc<S> {
    /// The tonic service of `service`.
    pub fn server(service: S) -> StudentPeerServiceServer<Self> {
        StudentPeerServiceServer::new(Self { service })
    }
}

fn students(students: Vec<Student>) -> Response<pb::ListStudentsResponse> {
    let students = students.into_iter().map(Into::into).collect();
    Response::new(pb::ListStudentsResponse { students })
}

impl From<Student> for pb::Student {
    fn from(s: Student) -> Self {
        Self {
            id: s.id.to_string(),
            name: s.name.into(),
            first_name: s.first_name.into(),
            last_name: s.last_name.into(),
            course_ids: s
                .course_ids
                .as_slice()
                .iter()
                .map(ToString::to_string)
                .collect(),
            version: s.version,
        }
    }
}

fn input(
    name: String,
    first_name: String,
    last_name: String,
    course_ids: Vec<String>,
) -> StudentInput {
    StudentInput {
        name: Some(name),
        first_name: Some(first_name),
        last_name: Some(last_name),
        course_ids: Some(course_ids),
    }
}

#[tonic::async_trait]
impl<S: EntityService<Student>, P: Peer> StudentService for StudentGrpc<S, P> {
    async fn list_students(
        &self,
        request: Request<pb::ListStudentsRequest>,
    ) -> Result<Response<pb::ListStudentsResponse>, Status> {
        let list = crud::list(&self.service, &context(&request), request.into_inner().page).await?;
        Ok(students(list))
    }

    async fn get_student(
        &self,
        request: Request<pb::GetStudentRequest>,
    ) -> Result<Response<pb::Student>, Status> {
        let student =
            crud::get(&self.service, &context(&request), &request.into_inner().id).await?;
        Ok(Response::new(student.into()))
    }

    async fn create_student(
        &self,
        request: Request<pb::CreateStudentRequest>,
    ) -> Result<Response<pb::Student>, Status> {
        let ctx = context(&request);
        let key = crud::idempotency_key(&request)?;
        let r = request.into_inner();
        let input = input(r.name, r.first_name, r.last_name, r.course_ids);
        Ok(crud::created(
            crud::create(&self.service, &ctx, input, key).await?,
        ))
    }

    async fn update_student(
        &self,
        request: Request<pb::UpdateStudentRequest>,
    ) -> Result<Response<pb::Student>, Status> {
        let ctx = context(&request);
        let r = request.into_inner();
        let input = input(r.name, r.first_name, r.last_name, r.course_ids);
        Ok(Response::new(
            crud::update(&self.service, &ctx, &r.id, input, r.expected_version)
                .await?
                .into(),
        ))
    }

    async fn delete_student(
        &self,
        request: Request<pb::DeleteStudentRequest>,
    ) -> Result<Response<pb::DeleteStudentResponse>, Status> {
        let ctx = context(&request);
        let r = request.into_inner();
        crud::delete(&self.service, &ctx, &r.id, r.expected_version).await?;
        Ok(Response::new(pb::DeleteStudentResponse {}))
    }

    async fn link_course(
        &self,
        request: Request<pb::StudentCourseRequest>,
    ) -> Result<Response<pb::LinkResponse>, Status> {
        crud::set_link(&self.service, request, true).await
    }

    async fn unlink_course(
        &self,
        request: Request<pb::StudentCourseRequest>,
    ) -> Result<Response<pb::LinkResponse>, Status> {
        crud::set_link(&self.service, request, false).await
    }

    async fn list_students_by_course(
        &self,
        request: Request<pb::ListStudentsByCourseRequest>,
    ) -> Result<Response<pb::ListStudentsResponse>, Status> {
        let ctx = context(&request);
        let r = request.into_inner();
        let list =
            crud::list_by_other(&self.service, &self.courses, &ctx, &r.course_id, r.page).await?;
        Ok(students(list))
    }
}

#[tonic::async_trait]
impl<S: EntityService<Student>> StudentPeerService for StudentPeerGrpc<S> {
    async fn list_students_linking_course(
        &self,
        request: Request<pb::ListStudentsByCourseRequest>,
    ) -> Result<Response<pb::ListStudentsResponse>, Status> {
        let ctx = context(&request);
        let r = request.into_inner();
        let list = crud::list_linking(&self.service, &ctx, &r.course_id, r.page).await?;
        Ok(students(list))
    }

    async fn student_exists(
        &self,
        request: Request<pb::StudentExistsRequest>,
    ) -> Result<Response<pb::ExistsResponse>, Status> {
        let ctx = context(&request);
        let exists = crud::exists(&self.service, &ctx, &request.into_inner().id).await?;
        Ok(Response::new(pb::ExistsResponse { exists }))
    }
}

//! The gRPC API of students (`nis.v1.StudentService`).

use common::{
    Entity as _, EntityService, Error, Page,
    grpc::context,
    proto::v1::{
        self as pb,
        student_service_server::{StudentService, StudentServiceServer},
    },
};
use tonic::{Request, Response, Status};

use crate::domain::{Student, StudentInput};

/// The gRPC adapter over the student service `S`.
#[derive(Debug, Clone)]
pub struct StudentGrpc<S> {
    service: S,
}

impl<S: EntityService<Student>> StudentGrpc<S> {
    /// The tonic service.
    pub fn server(service: S) -> StudentServiceServer<Self> {
        StudentServiceServer::new(Self { service })
    }
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
        }
    }
}

fn page(page: Option<pb::Page>) -> Result<Page, Error> {
    let page = page.unwrap_or_default();
    Page::from_grpc(page.limit, page.offset)
}

#[tonic::async_trait]
impl<S: EntityService<Student>> StudentService for StudentGrpc<S> {
    async fn list_students(
        &self,
        request: Request<pb::ListStudentsRequest>,
    ) -> Result<Response<pb::ListStudentsResponse>, Status> {
        let ctx = context(&request);
        let page = page(request.into_inner().page)?;
        let students = self.service.list(&ctx, page).await?;
        Ok(Response::new(pb::ListStudentsResponse {
            students: students.into_iter().map(Into::into).collect(),
        }))
    }

    async fn get_student(
        &self,
        request: Request<pb::GetStudentRequest>,
    ) -> Result<Response<pb::Student>, Status> {
        let ctx = context(&request);
        let id = Student::parse_id(&request.into_inner().id)?;
        Ok(Response::new(self.service.get(&ctx, &id).await?.into()))
    }

    async fn create_student(
        &self,
        request: Request<pb::CreateStudentRequest>,
    ) -> Result<Response<pb::Student>, Status> {
        let ctx = context(&request);
        let r = request.into_inner();
        let draft = Student::parse_draft(StudentInput {
            name: Some(r.name),
            first_name: Some(r.first_name),
            last_name: Some(r.last_name),
            course_ids: Some(r.course_ids),
        })?;
        Ok(Response::new(
            self.service.create(&ctx, draft).await?.into(),
        ))
    }

    async fn update_student(
        &self,
        request: Request<pb::UpdateStudentRequest>,
    ) -> Result<Response<pb::Student>, Status> {
        let ctx = context(&request);
        let r = request.into_inner();
        let id = Student::parse_id(&r.id)?;
        let draft = Student::parse_draft(StudentInput {
            name: Some(r.name),
            first_name: Some(r.first_name),
            last_name: Some(r.last_name),
            course_ids: Some(r.course_ids),
        })?;
        Ok(Response::new(
            self.service.update(&ctx, &id, draft).await?.into(),
        ))
    }

    async fn delete_student(
        &self,
        request: Request<pb::DeleteStudentRequest>,
    ) -> Result<Response<pb::DeleteStudentResponse>, Status> {
        let ctx = context(&request);
        let id = Student::parse_id(&request.into_inner().id)?;
        self.service.delete(&ctx, &id).await?;
        Ok(Response::new(pb::DeleteStudentResponse {}))
    }

    async fn list_students_by_course(
        &self,
        _request: Request<pb::ListStudentsByCourseRequest>,
    ) -> Result<Response<pb::ListStudentsResponse>, Status> {
        // Comes with the relation sync (issue 4), which keeps this query's cache exact.
        Err(Status::unimplemented(
            "ListStudentsByCourse is not available yet",
        ))
    }
}

//! The gRPC API of students (`nis.v1.StudentService`): message conversions around the shared
//! CRUD handlers of `nis_grpc::crud`.

use nis_core::EntityService;
use nis_grpc::{
    context, crud,
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
    /// The tonic service of `service`.
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
impl<S: EntityService<Student>> StudentService for StudentGrpc<S> {
    async fn list_students(
        &self,
        request: Request<pb::ListStudentsRequest>,
    ) -> Result<Response<pb::ListStudentsResponse>, Status> {
        let students =
            crud::list(&self.service, &context(&request), request.into_inner().page).await?;
        let students = students.into_iter().map(Into::into).collect();
        Ok(Response::new(pb::ListStudentsResponse { students }))
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
        let r = request.into_inner();
        let input = input(r.name, r.first_name, r.last_name, r.course_ids);
        Ok(Response::new(
            crud::create(&self.service, &ctx, input).await?.into(),
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
            crud::update(&self.service, &ctx, &r.id, input)
                .await?
                .into(),
        ))
    }

    async fn delete_student(
        &self,
        request: Request<pb::DeleteStudentRequest>,
    ) -> Result<Response<pb::DeleteStudentResponse>, Status> {
        crud::delete(&self.service, &context(&request), &request.into_inner().id).await?;
        Ok(Response::new(pb::DeleteStudentResponse {}))
    }

    async fn list_students_by_course(
        &self,
        request: Request<pb::ListStudentsByCourseRequest>,
    ) -> Result<Response<pb::ListStudentsResponse>, Status> {
        let ctx = context(&request);
        let r = request.into_inner();
        let students = crud::list_linked(&self.service, &ctx, &r.course_id, r.page).await?;
        let students = students.into_iter().map(Into::into).collect();
        Ok(Response::new(pb::ListStudentsResponse { students }))
    }
}

//! The gRPC API of courses (`nis.v1.CourseService`): message conversions around the shared
//! CRUD handlers of `nis_grpc::crud`.

use nis_core::EntityService;
use nis_grpc::{
    context, crud,
    proto::v1::{
        self as pb,
        course_service_server::{CourseService, CourseServiceServer},
    },
};
use tonic::{Request, Response, Status};

use crate::domain::{Course, CourseInput};

/// The gRPC adapter over the course service `S`.
#[derive(Debug, Clone)]
pub struct CourseGrpc<S> {
    service: S,
}

impl<S: EntityService<Course>> CourseGrpc<S> {
    /// The tonic service of `service`.
    pub fn server(service: S) -> CourseServiceServer<Self> {
        CourseServiceServer::new(Self { service })
    }
}

impl From<Course> for pb::Course {
    fn from(c: Course) -> Self {
        Self {
            id: c.id.to_string(),
            name: c.name.into(),
            description: c.description.into(),
            discipline: c.discipline.into(),
            teacher: c.teacher.into(),
            student_ids: c
                .student_ids
                .as_slice()
                .iter()
                .map(ToString::to_string)
                .collect(),
        }
    }
}

fn input(
    name: String,
    description: String,
    discipline: String,
    teacher: String,
    student_ids: Vec<String>,
) -> CourseInput {
    CourseInput {
        name: Some(name),
        description: Some(description),
        discipline: Some(discipline),
        teacher: Some(teacher),
        student_ids: Some(student_ids),
    }
}

#[tonic::async_trait]
impl<S: EntityService<Course>> CourseService for CourseGrpc<S> {
    async fn list_courses(
        &self,
        request: Request<pb::ListCoursesRequest>,
    ) -> Result<Response<pb::ListCoursesResponse>, Status> {
        let courses =
            crud::list(&self.service, &context(&request), request.into_inner().page).await?;
        let courses = courses.into_iter().map(Into::into).collect();
        Ok(Response::new(pb::ListCoursesResponse { courses }))
    }

    async fn get_course(
        &self,
        request: Request<pb::GetCourseRequest>,
    ) -> Result<Response<pb::Course>, Status> {
        let course = crud::get(&self.service, &context(&request), &request.into_inner().id).await?;
        Ok(Response::new(course.into()))
    }

    async fn create_course(
        &self,
        request: Request<pb::CreateCourseRequest>,
    ) -> Result<Response<pb::Course>, Status> {
        let ctx = context(&request);
        let r = request.into_inner();
        let input = input(
            r.name,
            r.description,
            r.discipline,
            r.teacher,
            r.student_ids,
        );
        Ok(Response::new(
            crud::create(&self.service, &ctx, input).await?.into(),
        ))
    }

    async fn update_course(
        &self,
        request: Request<pb::UpdateCourseRequest>,
    ) -> Result<Response<pb::Course>, Status> {
        let ctx = context(&request);
        let r = request.into_inner();
        let input = input(
            r.name,
            r.description,
            r.discipline,
            r.teacher,
            r.student_ids,
        );
        Ok(Response::new(
            crud::update(&self.service, &ctx, &r.id, input)
                .await?
                .into(),
        ))
    }

    async fn delete_course(
        &self,
        request: Request<pb::DeleteCourseRequest>,
    ) -> Result<Response<pb::DeleteCourseResponse>, Status> {
        crud::delete(&self.service, &context(&request), &request.into_inner().id).await?;
        Ok(Response::new(pb::DeleteCourseResponse {}))
    }

    async fn list_courses_by_student(
        &self,
        request: Request<pb::ListCoursesByStudentRequest>,
    ) -> Result<Response<pb::ListCoursesResponse>, Status> {
        let ctx = context(&request);
        let r = request.into_inner();
        let courses = crud::list_linked(&self.service, &ctx, &r.student_id, r.page).await?;
        let courses = courses.into_iter().map(Into::into).collect();
        Ok(Response::new(pb::ListCoursesResponse { courses }))
    }
}

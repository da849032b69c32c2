//! The gRPC services of courses (docs/behaviour.md §4): the public `nis.v1.CourseService` and
//! `nis.v1.CoursePeerService`, which only students calls. Message conversions around the shared
//! handlers of `nis_grpc::crud`.

use nis_core::{EntityService, peer::Peer};
use nis_grpc::{
    context, crud,
    proto::v1::{
        self as pb,
        course_peer_service_server::{CoursePeerService, CoursePeerServiceServer},
        course_service_server::{CourseService, CourseServiceServer},
    },
};
use tonic::{Request, Response, Status};

use crate::domain::{Course, CourseInput};

/// The public gRPC API over the course service `S`; its cross query asks students (`P`)
/// whether the student exists.
#[derive(Debug, Clone)]
pub struct CourseGrpc<S, P> {
    service: S,
    students: P,
}

impl<S: EntityService<Course>, P: Peer> CourseGrpc<S, P> {
    /// The tonic service of `service`, with `students` for the cross query.
    pub fn server(service: S, students: P) -> CourseServiceServer<Self> {
        CourseServiceServer::new(Self { service, students })
    }
}

/// The peer service over the course service `S`: what students asks of courses.
#[derive(Debug, Clone)]
pub struct CoursePeerGrpc<S> {
    service: S,
}

impl<S: EntityService<Course>> CoursePeerGrpc<S> {
    /// The tonic service of `service`.
    pub fn server(service: S) -> CoursePeerServiceServer<Self> {
        CoursePeerServiceServer::new(Self { service })
    }
}

fn courses(courses: Vec<Course>) -> Response<pb::ListCoursesResponse> {
    let courses = courses.into_iter().map(Into::into).collect();
    Response::new(pb::ListCoursesResponse { courses })
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
            version: c.version,
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
impl<S: EntityService<Course>, P: Peer> CourseService for CourseGrpc<S, P> {
    async fn list_courses(
        &self,
        request: Request<pb::ListCoursesRequest>,
    ) -> Result<Response<pb::ListCoursesResponse>, Status> {
        let list = crud::list(&self.service, &context(&request), request.into_inner().page).await?;
        Ok(courses(list))
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
        let key = crud::idempotency_key(&request)?;
        let r = request.into_inner();
        let input = input(
            r.name,
            r.description,
            r.discipline,
            r.teacher,
            r.student_ids,
        );
        Ok(crud::created(
            crud::create(&self.service, &ctx, input, key).await?,
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
            crud::update(&self.service, &ctx, &r.id, input, r.expected_version)
                .await?
                .into(),
        ))
    }

    async fn delete_course(
        &self,
        request: Request<pb::DeleteCourseRequest>,
    ) -> Result<Response<pb::DeleteCourseResponse>, Status> {
        let ctx = context(&request);
        let r = request.into_inner();
        crud::delete(&self.service, &ctx, &r.id, r.expected_version).await?;
        Ok(Response::new(pb::DeleteCourseResponse {}))
    }

    async fn link_student(
        &self,
        request: Request<pb::CourseStudentRequest>,
    ) -> Result<Response<pb::LinkResponse>, Status> {
        crud::set_link(&self.service, request, true).await
    }

    async fn unlink_student(
        &self,
        request: Request<pb::CourseStudentRequest>,
    ) -> Result<Response<pb::LinkResponse>, Status> {
        crud::set_link(&self.service, request, false).await
    }

    async fn list_courses_by_student(
        &self,
        request: Request<pb::ListCoursesByStudentRequest>,
    ) -> Result<Response<pb::ListCoursesResponse>, Status> {
        let ctx = context(&request);
        let r = request.into_inner();
        let list =
            crud::list_by_other(&self.service, &self.students, &ctx, &r.student_id, r.page).await?;
        Ok(courses(list))
    }
}

#[tonic::async_trait]
impl<S: EntityService<Course>> CoursePeerService for CoursePeerGrpc<S> {
    async fn list_courses_linking_student(
        &self,
        request: Request<pb::ListCoursesByStudentRequest>,
    ) -> Result<Response<pb::ListCoursesResponse>, Status> {
        let ctx = context(&request);
        let r = request.into_inner();
        let list = crud::list_linking(&self.service, &ctx, &r.student_id, r.page).await?;
        Ok(courses(list))
    }

    async fn course_exists(
        &self,
        request: Request<pb::CourseExistsRequest>,
    ) -> Result<Response<pb::ExistsResponse>, Status> {
        let ctx = context(&request);
        let exists = crud::exists(&self.service, &ctx, &request.into_inner().id).await?;
        Ok(Response::new(pb::ExistsResponse { exists }))
    }
}

//! The HTTP API of courses: the generic entity routes of `common`, told how to read a course.

use nis_core::{Entity as _, ids::StudentId};
use nis_http::{
    JsonEntity, JsonFields,
    schema::{self, FieldSchema},
};

use crate::domain::{Course, CourseInput, Description, ShortText};

impl JsonEntity for Course {
    fn read_input(fields: &mut JsonFields) -> CourseInput {
        CourseInput {
            name: fields.text("name"),
            description: fields.text("description"),
            discipline: fields.text("discipline"),
            teacher: fields.text("teacher"),
            student_ids: fields.text_list("student_ids"),
        }
    }

    fn fields() -> Vec<FieldSchema> {
        vec![
            schema::text::<ShortText>("name"),
            schema::text::<Description>("description"),
            schema::text::<ShortText>("discipline"),
            schema::text::<ShortText>("teacher"),
            schema::id_list::<StudentId>("student_ids", Course::LINK_LIMIT),
        ]
    }
}

//! The HTTP API of students: the generic entity routes of `common`, told how to read a student.

use nis_core::{Entity as _, ids::CourseId};
use nis_http::{
    JsonEntity, JsonFields,
    schema::{self, FieldSchema},
};

use crate::domain::{PersonName, Student, StudentInput};

impl JsonEntity for Student {
    const UNIQUE_RULE: Option<&'static str> =
        Some("A student with the same name, first_name and last_name exists");

    fn read_input(fields: &mut JsonFields) -> StudentInput {
        StudentInput {
            name: fields.text("name"),
            first_name: fields.text("first_name"),
            last_name: fields.text("last_name"),
            course_ids: fields.text_list("course_ids"),
        }
    }

    fn fields() -> Vec<FieldSchema> {
        vec![
            schema::text::<PersonName>("name"),
            schema::text::<PersonName>("first_name"),
            schema::text::<PersonName>("last_name"),
            schema::id_list::<CourseId>("course_ids", Student::LINK_LIMIT),
        ]
    }
}

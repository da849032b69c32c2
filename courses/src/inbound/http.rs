//! The HTTP API of courses: the generic entity routes of `common`, told how to read a course.

use nis_http::{JsonEntity, JsonFields};
use serde_json::{Value, json};

use crate::domain::{Course, CourseInput};

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

    fn schema() -> Value {
        let short = json!({ "type": "string", "minLength": 3, "maxLength": 20, "description": "3–20 characters after trimming" });
        json!({
            "type": "object",
            "required": ["id", "name", "description", "discipline", "teacher", "student_ids"],
            "properties": {
                "id": { "type": "string", "pattern": "^[0-9a-f]{24}$", "readOnly": true },
                "name": short,
                "description": { "type": "string", "minLength": 3, "maxLength": 200, "description": "3–200 characters after trimming" },
                "discipline": short,
                "teacher": short,
                "student_ids": {
                    "type": "array", "maxItems": 60, "uniqueItems": true,
                    "items": { "type": "string", "format": "uuid" }
                }
            }
        })
    }
}

//! The HTTP API of students: the generic entity routes of `common`, told how to read a student.

use nis_http::{JsonEntity, JsonFields};
use serde_json::{Value, json};

use crate::domain::{Student, StudentInput};

impl JsonEntity for Student {
    fn read_input(fields: &mut JsonFields) -> StudentInput {
        StudentInput {
            name: fields.text("name"),
            first_name: fields.text("first_name"),
            last_name: fields.text("last_name"),
            course_ids: fields.text_list("course_ids"),
        }
    }

    fn schema() -> Value {
        let name = json!({ "type": "string", "minLength": 3, "maxLength": 20, "description": "3–20 characters after trimming" });
        json!({
            "type": "object",
            "required": ["id", "name", "first_name", "last_name", "course_ids"],
            "properties": {
                "id": { "type": "string", "format": "uuid", "readOnly": true },
                "name": name,
                "first_name": name,
                "last_name": name,
                "course_ids": {
                    "type": "array", "maxItems": 15, "uniqueItems": true,
                    "items": { "type": "string", "pattern": "^[0-9a-f]{24}$" }
                }
            }
        })
    }
}

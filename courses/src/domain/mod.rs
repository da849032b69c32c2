//! The courses domain: the entity and its rules. The ports and the core service are the
//! generic ones of `common` (`Repository<Course>`, `EntityService<Course>`, `Core`).

mod course;

pub use course::{Course, CourseDraft, CourseInput, Description, ShortText, StudentIds};

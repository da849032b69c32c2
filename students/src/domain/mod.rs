//! The students domain: the entity and its rules. The ports and the core service are the
//! generic ones of `common` (`Repository<Student>`, `EntityService<Student>`, `Core`).

mod student;

pub use student::{CourseIds, PersonName, Student, StudentDraft, StudentInput};

//! A student: three names and the ids of the courses it takes.

use nis_core::{
    Entity, Error,
    ids::{CourseId, IdList, StudentId},
    links::Side,
    validation::{Text, Validator},
};
use serde::{Deserialize, Serialize};

/// A name, first name or last name: 3 to 20 characters after trimming.
pub type PersonName = Text<3, 20>;

/// The courses a student takes: at most 15, no duplicates.
pub type CourseIds = IdList<CourseId, 15>;

/// A stored student. Every field is a validated type, so an invalid student cannot exist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Student {
    /// Made by the server (UUIDv7).
    pub id: StudentId,
    /// Unique together with `first_name` and `last_name`.
    pub name: PersonName,
    /// First name.
    pub first_name: PersonName,
    /// Last name.
    pub last_name: PersonName,
    /// Courses taken.
    pub course_ids: CourseIds,
    /// See [`Entity::version`]; not in the JSON.
    #[serde(skip)]
    pub version: i64,
}

/// The validated fields of a create or full replacement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StudentDraft {
    /// See [`Student::name`].
    pub name: PersonName,
    /// See [`Student::first_name`].
    pub first_name: PersonName,
    /// See [`Student::last_name`].
    pub last_name: PersonName,
    /// See [`Student::course_ids`].
    pub course_ids: CourseIds,
}

impl StudentDraft {
    /// The student this draft becomes under `id`.
    pub fn into_student(self, id: StudentId) -> Student {
        Student {
            id,
            name: self.name,
            first_name: self.first_name,
            last_name: self.last_name,
            course_ids: self.course_ids,
            version: 0,
        }
    }
}

/// The fields of a create or replacement as received; `None` where the caller left one out.
#[derive(Debug, Clone, Default)]
pub struct StudentInput {
    /// Raw `name`.
    pub name: Option<String>,
    /// Raw `first_name`.
    pub first_name: Option<String>,
    /// Raw `last_name`.
    pub last_name: Option<String>,
    /// Raw `course_ids`; left out means none.
    pub course_ids: Option<Vec<String>>,
}

impl Entity for Student {
    type Id = StudentId;
    type OtherId = CourseId;
    type Input = StudentInput;
    type Draft = StudentDraft;

    const KIND: &'static str = "students";
    const SINGULAR: &'static str = "student";
    const OTHER_KIND: &'static str = "courses";
    const LINK_LIMIT: usize = 15;
    const LINKS_FIELD: &'static str = "course_ids";
    const SIDE: Side = Side::Students;

    fn id(&self) -> &StudentId {
        &self.id
    }

    fn links(&self) -> &[CourseId] {
        self.course_ids.as_slice()
    }

    fn version(&self) -> i64 {
        self.version
    }

    fn with_version(self, version: i64) -> Self {
        Self { version, ..self }
    }

    fn assemble(id: StudentId, draft: StudentDraft) -> Self {
        draft.into_student(id)
    }

    fn draft_links(draft: &StudentDraft) -> &[CourseId] {
        draft.course_ids.as_slice()
    }

    fn with_links(self, links: Vec<CourseId>) -> Result<Self, Error> {
        let course_ids = CourseIds::from_ids(links).map_err(Error::internal)?;
        Ok(Self { course_ids, ..self })
    }

    fn parse_draft(input: StudentInput) -> Result<StudentDraft, Error> {
        let mut v = Validator::default();
        let name = v.text("name", input.name.as_deref());
        let first_name = v.text("first_name", input.first_name.as_deref());
        let last_name = v.text("last_name", input.last_name.as_deref());
        let course_ids = match CourseIds::parse("course_ids", &input.course_ids.unwrap_or_default())
        {
            Ok(ids) => Some(ids),
            Err(problems) => {
                v.extend(problems);
                None
            }
        };
        v.finish(|| {
            Some(StudentDraft {
                name: name?,
                first_name: first_name?,
                last_name: last_name?,
                course_ids: course_ids?,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(name: &str, first: &str, last: &str, courses: &[&str]) -> StudentInput {
        StudentInput {
            name: Some(name.into()),
            first_name: Some(first.into()),
            last_name: Some(last.into()),
            course_ids: Some(courses.iter().map(|c| (*c).to_owned()).collect()),
        }
    }

    #[test]
    fn a_valid_input_is_trimmed_and_deduplicated() {
        let c = "65f1a2b3c4d5e6f708192a3b";
        let draft =
            Student::parse_draft(input("  ada99 ", "Ada", "Lovelace", &[c, c])).expect("valid");
        assert_eq!(draft.name.as_str(), "ada99");
        assert_eq!(draft.course_ids.len(), 1);
    }

    #[test]
    fn every_broken_rule_is_reported() {
        let err = Student::parse_draft(StudentInput {
            name: Some("ab".into()),
            first_name: None,
            last_name: Some("x".repeat(21)),
            course_ids: Some(vec!["nope".into()]),
        })
        .expect_err("four problems");
        let fields: Vec<_> = err.details().iter().map(|d| d.field.as_str()).collect();
        assert_eq!(fields, ["name", "first_name", "last_name", "course_ids[0]"]);
    }

    #[test]
    fn unicode_names_count_characters() {
        assert!(Student::parse_draft(input("Ёжик", "Юлия", "Çelik", &[])).is_ok());
        assert!(Student::parse_draft(input("李小", "Ada", "Lovelace", &[])).is_err());
    }

    #[test]
    fn more_than_fifteen_courses_are_refused() {
        let ids: Vec<String> = (0..16).map(|i| format!("{i:024x}")).collect();
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let err =
            Student::parse_draft(input("ada", "Ada", "Lovelace", &refs)).expect_err("16 courses");
        assert_eq!(err.details()[0].field, "course_ids");
    }

    #[test]
    fn an_omitted_course_list_is_empty() {
        let mut raw = input("ada", "Ada", "Lovelace", &[]);
        raw.course_ids = None;
        assert!(
            Student::parse_draft(raw)
                .expect("valid")
                .course_ids
                .is_empty()
        );
    }
}

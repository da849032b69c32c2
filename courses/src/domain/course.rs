//! A course: what it is, who teaches it, and the ids of its students.

use nis_core::{
    Entity, Error,
    ids::{CourseId, IdList, StudentId},
    links::Side,
    validation::{MultiLine, Text, Validator},
};
use serde::{Deserialize, Serialize};

/// A name, discipline or teacher: 3 to 20 characters after trimming.
pub type ShortText = Text<3, 20>;

/// A description: 3 to 200 characters after trimming; the one text that may hold line feeds
/// and tabs.
pub type Description = Text<3, 200, MultiLine>;

/// The students of a course: at most 60, no duplicates.
pub type StudentIds = IdList<StudentId, 60>;

/// A stored course. Every field is a validated type, so an invalid course cannot exist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Course {
    /// The MongoDB ObjectId.
    pub id: CourseId,
    /// Name.
    pub name: ShortText,
    /// What the course is about.
    pub description: Description,
    /// Its field of study.
    pub discipline: ShortText,
    /// Who teaches it.
    pub teacher: ShortText,
    /// Its students.
    pub student_ids: StudentIds,
    /// See [`Entity::version`]; not in the JSON.
    #[serde(skip)]
    pub version: i64,
}

/// The validated fields of a create or full replacement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CourseDraft {
    /// See [`Course::name`].
    pub name: ShortText,
    /// See [`Course::description`].
    pub description: Description,
    /// See [`Course::discipline`].
    pub discipline: ShortText,
    /// See [`Course::teacher`].
    pub teacher: ShortText,
    /// See [`Course::student_ids`].
    pub student_ids: StudentIds,
}

impl CourseDraft {
    /// The course this draft becomes under `id`.
    pub fn into_course(self, id: CourseId) -> Course {
        Course {
            id,
            name: self.name,
            description: self.description,
            discipline: self.discipline,
            teacher: self.teacher,
            student_ids: self.student_ids,
            version: 0,
        }
    }
}

/// The fields of a create or replacement as received; `None` where the caller left one out.
#[derive(Debug, Clone, Default)]
pub struct CourseInput {
    /// Raw `name`.
    pub name: Option<String>,
    /// Raw `description`.
    pub description: Option<String>,
    /// Raw `discipline`.
    pub discipline: Option<String>,
    /// Raw `teacher`.
    pub teacher: Option<String>,
    /// Raw `student_ids`; left out means none.
    pub student_ids: Option<Vec<String>>,
}

impl Entity for Course {
    type Id = CourseId;
    type OtherId = StudentId;
    type Input = CourseInput;
    type Draft = CourseDraft;

    const KIND: &'static str = "courses";
    const SINGULAR: &'static str = "course";
    const OTHER_KIND: &'static str = "students";
    const LINK_LIMIT: usize = 60;
    const LINKS_FIELD: &'static str = "student_ids";
    const SIDE: Side = Side::Courses;

    fn id(&self) -> &CourseId {
        &self.id
    }

    fn links(&self) -> &[StudentId] {
        self.student_ids.as_slice()
    }

    fn version(&self) -> i64 {
        self.version
    }

    fn with_version(self, version: i64) -> Self {
        Self { version, ..self }
    }

    fn assemble(id: CourseId, draft: CourseDraft) -> Self {
        draft.into_course(id)
    }

    fn draft_links(draft: &CourseDraft) -> &[StudentId] {
        draft.student_ids.as_slice()
    }

    fn with_links(self, links: Vec<StudentId>) -> Result<Self, Error> {
        let student_ids = StudentIds::from_ids(links).map_err(Error::internal)?;
        Ok(Self {
            student_ids,
            ..self
        })
    }

    fn parse_draft(input: CourseInput) -> Result<CourseDraft, Error> {
        let mut v = Validator::default();
        let name = v.text("name", input.name.as_deref());
        let description = v.text("description", input.description.as_deref());
        let discipline = v.text("discipline", input.discipline.as_deref());
        let teacher = v.text("teacher", input.teacher.as_deref());
        let student_ids =
            match StudentIds::parse("student_ids", &input.student_ids.unwrap_or_default()) {
                Ok(ids) => Some(ids),
                Err(problems) => {
                    v.extend(problems);
                    None
                }
            };
        v.finish(|| {
            Some(CourseDraft {
                name: name?,
                description: description?,
                discipline: discipline?,
                teacher: teacher?,
                student_ids: student_ids?,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(description: &str, students: Vec<String>) -> CourseInput {
        CourseInput {
            name: Some("Algebra".into()),
            description: Some(description.into()),
            discipline: Some("Maths".into()),
            teacher: Some("Noether".into()),
            student_ids: Some(students),
        }
    }

    fn student_ids(n: usize) -> Vec<String> {
        (0..n)
            .map(|i| format!("00000000-0000-7000-8000-{i:012x}"))
            .collect()
    }

    #[test]
    fn descriptions_may_be_long_other_fields_not() {
        assert!(Course::parse_draft(input(&"d".repeat(200), vec![])).is_ok());
        let err = Course::parse_draft(input(&"d".repeat(201), vec![])).expect_err("too long");
        assert_eq!(err.details()[0].field, "description");
        let mut long_name = input("fine", vec![]);
        long_name.name = Some("n".repeat(21));
        assert_eq!(
            Course::parse_draft(long_name).expect_err("name").details()[0].field,
            "name"
        );
    }

    #[test]
    fn at_most_sixty_students() {
        let mut ids = student_ids(50);
        ids.extend(student_ids(10));
        assert_eq!(
            Course::parse_draft(input("fine", ids))
                .map(|d| d.student_ids.len())
                .ok(),
            Some(50)
        );
        let err = Course::parse_draft(input("fine", student_ids(61))).expect_err("61");
        assert_eq!(err.details()[0].field, "student_ids");
    }

    #[test]
    fn every_missing_or_malformed_field_is_reported() {
        let err = Course::parse_draft(CourseInput {
            student_ids: Some(vec!["65f1a2b3c4d5e6f708192a3b".into()]),
            ..CourseInput::default()
        })
        .expect_err("all missing");
        let fields: Vec<_> = err.details().iter().map(|d| d.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "name",
                "description",
                "discipline",
                "teacher",
                "student_ids[0]"
            ]
        );
    }

    #[test]
    fn unicode_is_counted_in_characters() {
        let mut unicode = input("Курс по алгебре", vec![]);
        unicode.teacher = Some("Эмми Нётер".into());
        assert!(Course::parse_draft(unicode).is_ok());
    }

    #[test]
    fn only_the_description_keeps_line_feeds_and_tabs() {
        assert!(Course::parse_draft(input("line one\n\tline two", vec![])).is_ok());
        let mut named = input("fine", vec![]);
        named.name = Some("Alge\nbra".into());
        named.teacher = Some("Noe\u{202E}ther".into());
        let err = Course::parse_draft(named).expect_err("control characters");
        let fields: Vec<_> = err.details().iter().map(|d| d.field.as_str()).collect();
        assert_eq!(fields, ["name", "teacher"]);
    }
}

//! What the load writes: students and courses in four partitions chosen so that every lost
//! write can be told exactly despite full-replacement writes (docs/chaos.md, "The load").
//!
//! - S1 students link C1 courses, and only writes of S1 students change those links;
//! - C2 courses link S2 students, and only writes of C2 courses change those links;
//! - C1 courses and S2 students are only created (with no links) and sometimes deleted.
//!
//! So the final links of an S1 student or a C2 course are exactly those of its last applied
//! write, minus the entities that are gone; the C1 and S2 lists follow by the relation.

use std::fmt;

use crate::replicas::Service;

/// Students or courses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// A student: `last_name` is the counter, `course_ids` the links.
    Student,
    /// A course: `teacher` is the counter, `student_ids` the links.
    Course,
}

impl Kind {
    /// The service that owns it.
    pub fn service(self) -> Service {
        match self {
            Self::Student => Service::Students,
            Self::Course => Service::Courses,
        }
    }

    /// The other kind (what its links name).
    pub fn other(self) -> Self {
        match self {
            Self::Student => Self::Course,
            Self::Course => Self::Student,
        }
    }

    /// The path segment and plural: `students` / `courses`.
    pub fn plural(self) -> &'static str {
        self.service().name()
    }

    /// The JSON field of its links.
    pub fn links_field(self) -> &'static str {
        match self {
            Self::Student => "course_ids",
            Self::Course => "student_ids",
        }
    }

    /// The most links one may hold (docs/behaviour.md §2).
    pub fn max_links(self) -> usize {
        match self {
            Self::Student => 15,
            Self::Course => 60,
        }
    }
}

/// The four partitions of the load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Part {
    /// Students whose own writes link C1 courses.
    S1,
    /// Courses linked only by S1 students' writes.
    C1,
    /// Students linked only by C2 courses' writes.
    S2,
    /// Courses whose own writes link S2 students.
    C2,
}

impl Part {
    /// Every partition.
    pub const ALL: [Self; 4] = [Self::S1, Self::C1, Self::S2, Self::C2];

    /// Students or courses.
    pub fn kind(self) -> Kind {
        match self {
            Self::S1 | Self::S2 => Kind::Student,
            Self::C1 | Self::C2 => Kind::Course,
        }
    }

    /// Whether its own writes set its links (S1, C2), so its final links are checked exactly.
    pub fn owns_links(self) -> bool {
        matches!(self, Self::S1 | Self::C2)
    }

    /// What its entities' `first_name` / `discipline` says, so a stored entity shows its
    /// partition.
    pub fn tag(self) -> &'static str {
        match self {
            Self::S1 => "part-s1",
            Self::C1 => "part-c1",
            Self::S2 => "part-s2",
            Self::C2 => "part-c2",
        }
    }
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A student or a course as the load writes and reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entity {
    /// Students or courses.
    pub kind: Kind,
    /// Its id (empty before it is created).
    pub id: String,
    /// Its `name`, unique in the run.
    pub name: String,
    /// Its partition's tag (`first_name` / `discipline`).
    pub tag: String,
    /// The counter (`last_name` / `teacher`): `v00` at creation, `v<n>` (two digits at least,
    /// as texts are 3 characters at least) after the n-th update.
    pub counter: String,
    /// `course_ids` / `student_ids`.
    pub links: Vec<String>,
}

/// The `description` of every course (it never changes).
pub const DESCRIPTION: &str = "a course of the chaos campaign";

impl Entity {
    /// The JSON body of a create or update (no id: the path carries it).
    pub fn body(&self) -> serde_json::Value {
        match self.kind {
            Kind::Student => serde_json::json!({
                "name": self.name, "first_name": self.tag, "last_name": self.counter,
                "course_ids": self.links,
            }),
            Kind::Course => serde_json::json!({
                "name": self.name, "description": DESCRIPTION, "discipline": self.tag,
                "teacher": self.counter, "student_ids": self.links,
            }),
        }
    }

    /// An entity from the `data` of an HTTP answer.
    pub fn from_json(kind: Kind, json: &serde_json::Value) -> Option<Self> {
        let text = |field: &str| json.get(field)?.as_str().map(str::to_owned);
        let (tag, counter) = match kind {
            Kind::Student => ("first_name", "last_name"),
            Kind::Course => ("discipline", "teacher"),
        };
        Some(Self {
            kind,
            id: text("id")?,
            name: text("name")?,
            tag: text(tag)?,
            counter: text(counter)?,
            links: json
                .get(kind.links_field())?
                .as_array()?
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
        })
    }
}

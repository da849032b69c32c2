//! Two small entity kinds for tests of the generic machinery: [`Pupil`] on the students side
//! (at most 15 links) and [`Class`] on the courses side (at most 60), with plain string ids.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

use crate::{entity::Entity, entity::EntityId, error::Error, links::Side};

/// An id of a test entity: any non-empty string without white space.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Key(pub String);

impl FromStr for Key {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s.is_empty() || s.contains(char::is_whitespace) {
            Err(format!("{s:?} is not a key"))
        } else {
            Ok(Self(s.to_owned()))
        }
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl EntityId for Key {
    const PATTERN: &'static str = "^\\S+$";
}

/// A test entity: a name and its links. `COURSES` picks the side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member<const COURSES: bool> {
    /// Its id.
    pub id: Key,
    /// Some text.
    pub name: String,
    /// The ids of the other kind it links.
    pub links: Vec<Key>,
    /// See [`Entity::version`].
    #[serde(skip)]
    pub version: i64,
}

/// The fields of a test entity without its id (also its raw input).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MemberDraft {
    /// Some text.
    pub name: String,
    /// The ids of the other kind it links.
    pub links: Vec<Key>,
}

/// A test entity of the students side.
pub type Pupil = Member<false>;
/// A test entity of the courses side.
pub type Class = Member<true>;

impl<const COURSES: bool> Entity for Member<COURSES> {
    type Id = Key;
    type OtherId = Key;
    type Input = MemberDraft;
    type Draft = MemberDraft;

    const KIND: &'static str = if COURSES { "courses" } else { "students" };
    const SINGULAR: &'static str = if COURSES { "course" } else { "student" };
    const OTHER_KIND: &'static str = if COURSES { "students" } else { "courses" };
    const LINK_LIMIT: usize = if COURSES { 60 } else { 15 };
    const LINKS_FIELD: &'static str = "links";
    const SIDE: Side = if COURSES {
        Side::Courses
    } else {
        Side::Students
    };

    fn id(&self) -> &Key {
        &self.id
    }

    fn links(&self) -> &[Key] {
        &self.links
    }

    fn version(&self) -> i64 {
        self.version
    }

    fn with_version(self, version: i64) -> Self {
        Self { version, ..self }
    }

    fn assemble(id: Key, draft: MemberDraft) -> Self {
        Self {
            id,
            name: draft.name,
            links: draft.links,
            version: 0,
        }
    }

    fn draft_links(draft: &MemberDraft) -> &[Key] {
        &draft.links
    }

    fn with_links(self, links: Vec<Key>) -> Result<Self, Error> {
        if links.len() > Self::LINK_LIMIT {
            return Err(Error::internal(format!("{} links", links.len())));
        }
        Ok(Self { links, ..self })
    }

    fn parse_draft(input: MemberDraft) -> Result<MemberDraft, Error> {
        let mut links: Vec<Key> = Vec::with_capacity(input.links.len());
        for link in input.links {
            if !links.contains(&link) {
                links.push(link);
            }
        }
        if links.len() > Self::LINK_LIMIT {
            return Err(Error::invalid_field(
                "links",
                format!("at most {} ids", Self::LINK_LIMIT),
            ));
        }
        Ok(MemberDraft {
            name: input.name,
            links,
        })
    }
}

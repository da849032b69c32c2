//! The two kinds of id and the id-list rule (set semantics, an upper bound).

use std::{collections::HashSet, fmt, str::FromStr};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{entity::EntityId, error::FieldError};

/// A student's id: a UUID (v7 when made here, so ids sort by creation).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct StudentId(Uuid);

impl StudentId {
    /// A new, time-ordered id.
    pub fn generate() -> Self {
        Self(Uuid::now_v7())
    }

    /// The UUID.
    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl From<Uuid> for StudentId {
    fn from(value: Uuid) -> Self {
        Self(value)
    }
}

impl FromStr for StudentId {
    type Err = String;

    /// Accepts the hyphenated form (36 characters, either case).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 36 {
            return Err(format!(
                "`{}` is not a valid student id (a UUID)",
                shorten(s)
            ));
        }
        Uuid::try_parse(s)
            .map(Self)
            .map_err(|_| format!("`{}` is not a valid student id (a UUID)", shorten(s)))
    }
}

impl fmt::Display for StudentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.hyphenated(), f)
    }
}

/// A course's id: a MongoDB ObjectId, shown as 24 lowercase hex characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CourseId([u8; 12]);

impl CourseId {
    /// The 12 raw bytes of the ObjectId.
    pub fn bytes(&self) -> [u8; 12] {
        self.0
    }
}

impl From<[u8; 12]> for CourseId {
    fn from(value: [u8; 12]) -> Self {
        Self(value)
    }
}

impl FromStr for CourseId {
    type Err = String;

    /// Accepts 24 hex characters (either case; shown in lowercase).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || {
            format!(
                "`{}` is not a valid course id (24 hex characters)",
                shorten(s)
            )
        };
        if s.len() != 24 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(invalid());
        }
        let mut bytes = [0u8; 12];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).map_err(|_| invalid())?;
        }
        Ok(Self(bytes))
    }
}

impl fmt::Display for CourseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

macro_rules! string_conversions {
    ($($id:ty),*) => {$(
        impl TryFrom<String> for $id {
            type Error = String;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                value.parse()
            }
        }
        impl From<$id> for String {
            fn from(value: $id) -> Self {
                value.to_string()
            }
        }
        impl fmt::Debug for $id {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({self})", stringify!($id))
            }
        }
    )*};
}
string_conversions!(StudentId, CourseId);

impl EntityId for StudentId {
    const PATTERN: &'static str =
        "^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$";
}

impl EntityId for CourseId {
    const PATTERN: &'static str = "^[0-9A-Fa-f]{24}$";
}

/// Keeps untrusted input short in error messages.
fn shorten(s: &str) -> String {
    const MAX: usize = 40;
    if s.chars().count() <= MAX {
        s.to_owned()
    } else {
        format!("{}…", s.chars().take(MAX).collect::<String>())
    }
}

/// What is wrong with a list of `got` distinct ids where at most `max` may be: the one message
/// for the list form and for a link added on its own.
pub fn too_many(max: usize, got: usize) -> String {
    format!("must hold at most {max} distinct ids, got {got}")
}

/// A set of ids with at most `MAX` entries, in first-occurrence order.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<I>", into = "Vec<I>", bound = "")]
pub struct IdList<I: EntityId, const MAX: usize>(Vec<I>);

impl<I: EntityId, const MAX: usize> IdList<I, MAX> {
    /// Checks that `raw` has at most `MAX` entries, parses every entry (reporting each
    /// malformed one as `field[index]`), and collapses duplicates keeping the first occurrence.
    /// The bound counts entries as sent, duplicates included, so that it is what a JSON Schema
    /// `maxItems` says (docs/behaviour.md §2).
    pub fn parse(field: &str, raw: &[String]) -> Result<Self, Vec<FieldError>> {
        if raw.len() > MAX {
            return Err(vec![FieldError::new(
                field,
                format!("must hold at most {MAX} ids, got {}", raw.len()),
            )]);
        }
        let mut problems = Vec::new();
        let mut ids = Vec::with_capacity(raw.len());
        for (index, entry) in raw.iter().enumerate() {
            match entry.trim().parse::<I>() {
                Ok(id) => ids.push(id),
                Err(e) => {
                    problems.push(FieldError::new(format!("{field}[{index}]"), e.to_string()))
                }
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Self::from_ids(ids).map_err(|e| vec![FieldError::new(field, e)])
    }

    /// Builds a list from ids already parsed: duplicates collapse, the bound is checked.
    pub fn from_ids(ids: impl IntoIterator<Item = I>) -> Result<Self, String> {
        let mut seen = HashSet::new();
        let unique: Vec<I> = ids
            .into_iter()
            .filter(|id| seen.insert(id.clone()))
            .collect();
        if unique.len() > MAX {
            return Err(too_many(MAX, unique.len()));
        }
        Ok(Self(unique))
    }

    /// The ids, in order.
    pub fn as_slice(&self) -> &[I] {
        &self.0
    }

    /// Whether `id` is in the list.
    pub fn contains(&self, id: &I) -> bool {
        self.0.contains(id)
    }

    /// How many ids.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<I: EntityId, const MAX: usize> Default for IdList<I, MAX> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<I: EntityId, const MAX: usize> TryFrom<Vec<I>> for IdList<I, MAX> {
    type Error = String;

    fn try_from(value: Vec<I>) -> Result<Self, Self::Error> {
        Self::from_ids(value)
    }
}

impl<I: EntityId, const MAX: usize> From<IdList<I, MAX>> for Vec<I> {
    fn from(value: IdList<I, MAX>) -> Self {
        value.0
    }
}

impl<I: EntityId, const MAX: usize> fmt::Debug for IdList<I, MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(ToString::to_string))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "0123456789abcdef01234567";
    const B: &str = "89abcdef0123456789abcdef";

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn course_ids_round_trip_in_lowercase() {
        let id: CourseId = "0123456789ABCDEF01234567".parse().expect("hex");
        assert_eq!(id.to_string(), A);
        assert!("0123456789abcdef0123456".parse::<CourseId>().is_err());
        assert!("0123456789abcdef0123456g".parse::<CourseId>().is_err());
        assert!("é123456789abcdef0123456".parse::<CourseId>().is_err());
    }

    #[test]
    fn student_ids_are_hyphenated_uuids() {
        let id = StudentId::generate();
        assert_eq!(id.to_string().parse::<StudentId>(), Ok(id));
        assert!("not-a-uuid".parse::<StudentId>().is_err());
        assert!(
            "0190c1a27a3b7cc89a1b2c3d4e5f6a7b"
                .parse::<StudentId>()
                .is_err()
        );
    }

    #[test]
    fn duplicates_collapse_keeping_first_order() {
        let list =
            IdList::<CourseId, 15>::parse("course_ids", &strings(&[B, A, B, A])).expect("valid");
        let shown: Vec<String> = list.as_slice().iter().map(ToString::to_string).collect();
        assert_eq!(shown, [B, A]);
    }

    #[test]
    fn bound_counts_entries_as_sent() {
        let ids: Vec<String> = (0..16).map(|i| format!("{i:024x}")).collect();
        let err = IdList::<CourseId, 15>::parse("course_ids", &ids).expect_err("16 > 15");
        assert_eq!(err[0].field, "course_ids");
        let mut fifteen_distinct = ids[..15].to_vec();
        fifteen_distinct.push(ids[0].clone());
        assert!(IdList::<CourseId, 15>::parse("course_ids", &fifteen_distinct).is_err());
        assert_eq!(
            IdList::<CourseId, 15>::parse("course_ids", &ids[..15]).map(|l| l.len()),
            Ok(15)
        );
    }

    #[test]
    fn each_malformed_entry_is_named() {
        let err = IdList::<CourseId, 15>::parse("course_ids", &strings(&[A, "nope", B, "x"]))
            .expect_err("two bad entries");
        let fields: Vec<_> = err.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["course_ids[1]", "course_ids[3]"]);
    }
}

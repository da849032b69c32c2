//! Conditional writes (docs/behaviour.md §3, "Versions and conditional requests"): a caller
//! that read an entity can make its write depend on the entity not having changed since — the
//! `If-Match` of RFC 9110, or the expected version of a gRPC call.

use crate::{entity::Entity, error::Error};

/// What a write expects of the entity's current version.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Expected {
    /// No condition: the write applies to whatever is stored (last writer wins).
    #[default]
    Unconditional,
    /// The entity exists, at any version (`If-Match: *`).
    Exists,
    /// The entity is at one of these versions.
    OneOf(Vec<i64>),
}

impl Expected {
    /// Checks the condition against entity `id` at `version` (`None`: not stored). An entity
    /// that is not there is 404 whatever the condition: RFC 9110 §13.2.1 has a server ignore
    /// the preconditions of a request it would refuse without them.
    pub fn check<E: Entity>(&self, id: &E::Id, version: Option<i64>) -> Result<(), Error> {
        let Some(version) = version else {
            return Err(E::not_found(id));
        };
        let holds = match self {
            Self::Unconditional | Self::Exists => true,
            Self::OneOf(versions) => versions.contains(&version),
        };
        if holds {
            Ok(())
        } else {
            Err(Error::PreconditionFailed(format!(
                "the {} {id} is not at the version the request expects: read it again",
                E::SINGULAR
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fakes::entities::{Key, Pupil};

    fn check(expected: &Expected, version: Option<i64>) -> Result<(), &'static str> {
        expected
            .check::<Pupil>(&Key("p1".into()), version)
            .map_err(|e| e.code())
    }

    #[test]
    fn each_condition_against_a_stored_and_a_missing_entity() {
        let one_of = Expected::OneOf(vec![3, 5]);
        assert_eq!(check(&Expected::Unconditional, Some(7)), Ok(()));
        assert_eq!(check(&Expected::Exists, Some(7)), Ok(()));
        assert_eq!(check(&one_of, Some(5)), Ok(()));
        assert_eq!(check(&one_of, Some(4)), Err("precondition_failed"));
        for expected in [Expected::Unconditional, Expected::Exists, one_of] {
            assert_eq!(check(&expected, None), Err("not_found"));
        }
    }
}

//! Field rules shared by every entity: trimmed text within character bounds, and a collector
//! that gathers every broken rule of a request into one validation error.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, FieldError};

/// Text of `MIN..=MAX` Unicode characters after trimming surrounding white space.
/// It can only be made by [`Text::parse`], so a value of this type always obeys the rule.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Text<const MIN: usize, const MAX: usize>(String);

impl<const MIN: usize, const MAX: usize> Text<MIN, MAX> {
    /// Trims `raw` and checks its length in characters.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let trimmed = raw.trim();
        let chars = trimmed.chars().count();
        if (MIN..=MAX).contains(&chars) {
            Ok(Self(trimmed.to_owned()))
        } else {
            Err(format!(
                "must be {MIN} to {MAX} characters long (after trimming), got {chars}"
            ))
        }
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<const MIN: usize, const MAX: usize> TryFrom<String> for Text<MIN, MAX> {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl<const MIN: usize, const MAX: usize> From<Text<MIN, MAX>> for String {
    fn from(value: Text<MIN, MAX>) -> Self {
        value.0
    }
}

impl<const MIN: usize, const MAX: usize> fmt::Display for Text<MIN, MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<const MIN: usize, const MAX: usize> fmt::Debug for Text<MIN, MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// Gathers the problems of every field of one request.
#[derive(Debug, Default)]
pub struct Validator {
    problems: Vec<FieldError>,
}

impl Validator {
    /// Records the outcome of one field's rule, giving back the value when it passed.
    pub fn check<T>(&mut self, field: &str, outcome: Result<T, String>) -> Option<T> {
        match outcome {
            Ok(value) => Some(value),
            Err(message) => {
                self.problems.push(FieldError::new(field, message));
                None
            }
        }
    }

    /// A required text field: missing is a problem, otherwise the [`Text`] rule applies.
    pub fn text<const MIN: usize, const MAX: usize>(
        &mut self,
        field: &str,
        raw: Option<&str>,
    ) -> Option<Text<MIN, MAX>> {
        let outcome = raw.map_or_else(|| Err("is required".to_owned()), Text::parse);
        self.check(field, outcome)
    }

    /// Records problems found elsewhere (e.g. one per list entry).
    pub fn extend(&mut self, problems: impl IntoIterator<Item = FieldError>) {
        self.problems.extend(problems);
    }

    /// Returns `value` if no rule was broken, else the validation error with every problem.
    /// `value` is only built when every field passed, so it may unwrap its parts.
    pub fn finish<T>(self, value: impl FnOnce() -> Option<T>) -> Result<T, Error> {
        if !self.problems.is_empty() {
            return Err(Error::Validation(self.problems));
        }
        value().ok_or_else(|| Error::internal("validated value incomplete"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Name = Text<3, 20>;

    #[test]
    fn trims_before_counting() {
        assert_eq!(
            Name::parse("  Ada  ").map(|t| t.as_str().to_owned()),
            Ok("Ada".into())
        );
        assert!(Name::parse("  Al  ").is_err());
        assert!(Name::parse("      ").is_err());
    }

    #[test]
    fn counts_characters_not_bytes() {
        // 20 characters, 40 bytes.
        let cyrillic = "Жжжжжжжжжжжжжжжжжжжж";
        assert_eq!(cyrillic.len(), 40);
        assert!(Name::parse(cyrillic).is_ok());
        assert!(Name::parse(&format!("{cyrillic}ж")).is_err());
        assert!(Name::parse("日本語").is_ok());
    }

    #[test]
    fn deserializing_applies_the_rule() {
        assert!(serde_json::from_str::<Name>("\"ab\"").is_err());
        let name: Name = serde_json::from_str("\" Bob \"").expect("valid");
        assert_eq!(name.as_str(), "Bob");
    }

    #[test]
    fn collects_every_problem() {
        let mut v = Validator::default();
        let a: Option<Name> = v.text("name", None);
        let b: Option<Name> = v.text("last_name", Some("x"));
        let c: Option<Name> = v.text("first_name", Some("Grace"));
        assert!(a.is_none() && b.is_none() && c.is_some());
        let err = v.finish(|| Some(())).expect_err("two problems");
        let fields: Vec<_> = err.details().iter().map(|d| d.field.as_str()).collect();
        assert_eq!(fields, ["name", "last_name"]);
    }
}

//! Field rules shared by every entity: trimmed text within character bounds and free of
//! control and bidirectional-control characters, and a collector that gathers every broken
//! rule of a request into one validation error (docs/behaviour.md §2).

use std::{fmt, marker::PhantomData, ops::RangeInclusive};

use serde::{Deserialize, Serialize};

use crate::error::{Error, FieldError};

/// The bidirectional overrides (U+202A–U+202E): text holding them can be shown in another
/// order than it is stored ("Trojan Source"), so no field may.
pub const BIDI_OVERRIDES: RangeInclusive<char> = '\u{202A}'..='\u{202E}';

/// The bidirectional isolates (U+2066–U+2069), refused for the same reason.
pub const BIDI_ISOLATES: RangeInclusive<char> = '\u{2066}'..='\u{2069}';

/// Which characters a kind of text refuses. Every kind refuses the control characters
/// (Unicode category Cc), [`BIDI_OVERRIDES`] and [`BIDI_ISOLATES`], except the line feed and tab that a
/// multi-line text keeps.
pub trait Lines: Send + Sync + 'static {
    /// Whether `\n` and `\t` are allowed between the ends.
    const BREAKS: bool;
    /// The refused characters, as ranges (what [`is_allowed`] checks and what the OpenAPI
    /// documents describe).
    const REFUSED: &'static [RangeInclusive<char>];
}

/// A one-line text (a name): no control character at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OneLine {}

/// A multi-line text (a description): `\n` and `\t` allowed, no other control character.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MultiLine {}

impl Lines for OneLine {
    const BREAKS: bool = false;
    const REFUSED: &'static [RangeInclusive<char>] = &[
        '\u{0}'..='\u{1F}',
        '\u{7F}'..='\u{9F}',
        BIDI_OVERRIDES,
        BIDI_ISOLATES,
    ];
}

impl Lines for MultiLine {
    const BREAKS: bool = true;
    const REFUSED: &'static [RangeInclusive<char>] = &[
        '\u{0}'..='\u{8}',
        '\u{B}'..='\u{1F}',
        '\u{7F}'..='\u{9F}',
        BIDI_OVERRIDES,
        BIDI_ISOLATES,
    ];
}

/// Whether `c` may stand in a text of kind `L` (between its trimmed ends).
pub fn is_allowed<L: Lines>(c: char) -> bool {
    !L::REFUSED.iter().any(|range| range.contains(&c))
}

/// The bounds and kind of a [`Text`] type, for those that describe it (the OpenAPI documents).
pub trait TextRule {
    /// The fewest characters after trimming.
    const MIN: usize;
    /// The most characters after trimming.
    const MAX: usize;
    /// Its kind.
    type Lines: Lines;
}

impl<const MIN: usize, const MAX: usize, L: Lines> TextRule for Text<MIN, MAX, L> {
    const MIN: usize = MIN;
    const MAX: usize = MAX;
    type Lines = L;
}

/// Text of `MIN..=MAX` Unicode characters after trimming surrounding white space, holding only
/// the characters its kind `L` allows. Requests make it with [`Text::parse`], which applies
/// every rule; stored values are read back with [`Text::stored`], which trusts their
/// characters, so a value written before the character rule existed still reads back.
#[derive(Serialize, Deserialize)]
#[serde(
    try_from = "String",
    into = "String",
    bound(deserialize = "", serialize = "")
)]
pub struct Text<const MIN: usize, const MAX: usize, L: Lines = OneLine>(String, PhantomData<L>);

impl<const MIN: usize, const MAX: usize, L: Lines> Text<MIN, MAX, L> {
    /// Trims `raw`, checks its length in characters, then that it holds no character its kind
    /// refuses (naming the first one found, as U+XXXX, and where it is).
    pub fn parse(raw: &str) -> Result<Self, String> {
        let text = Self::stored(raw)?;
        match text
            .0
            .chars()
            .enumerate()
            .find(|(_, c)| !is_allowed::<L>(*c))
        {
            None => Ok(text),
            Some((at, c)) => Err(format!(
                "must not contain control or bidirectional-control characters{}, found U+{:04X} at character {}",
                if L::BREAKS {
                    " other than line feed and tab"
                } else {
                    ""
                },
                u32::from(c),
                at + 1
            )),
        }
    }

    /// A value as stored: trimmed and length-checked, its characters trusted. For reading back
    /// what a store or cache holds, never for what a caller sends.
    pub fn stored(raw: &str) -> Result<Self, String> {
        let trimmed = raw.trim();
        let chars = trimmed.chars().count();
        if (MIN..=MAX).contains(&chars) {
            Ok(Self(trimmed.to_owned(), PhantomData))
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

/// Deserializing reads a stored value (a cached entity), so it is lenient like [`Text::stored`].
impl<const MIN: usize, const MAX: usize, L: Lines> TryFrom<String> for Text<MIN, MAX, L> {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::stored(&value)
    }
}

impl<const MIN: usize, const MAX: usize, L: Lines> From<Text<MIN, MAX, L>> for String {
    fn from(value: Text<MIN, MAX, L>) -> Self {
        value.0
    }
}

impl<const MIN: usize, const MAX: usize, L: Lines> Clone for Text<MIN, MAX, L> {
    fn clone(&self) -> Self {
        Self(self.0.clone(), PhantomData)
    }
}

impl<const MIN: usize, const MAX: usize, L: Lines> PartialEq for Text<MIN, MAX, L> {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl<const MIN: usize, const MAX: usize, L: Lines> Eq for Text<MIN, MAX, L> {}

impl<const MIN: usize, const MAX: usize, L: Lines> std::hash::Hash for Text<MIN, MAX, L> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl<const MIN: usize, const MAX: usize, L: Lines> fmt::Display for Text<MIN, MAX, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<const MIN: usize, const MAX: usize, L: Lines> fmt::Debug for Text<MIN, MAX, L> {
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
    pub fn text<const MIN: usize, const MAX: usize, L: Lines>(
        &mut self,
        field: &str,
        raw: Option<&str>,
    ) -> Option<Text<MIN, MAX, L>> {
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
    fn deserializing_reads_a_stored_value() {
        assert!(serde_json::from_str::<Name>("\"ab\"").is_err());
        let name: Name = serde_json::from_str("\" Bob \"").expect("valid");
        assert_eq!(name.as_str(), "Bob");
        let old: Name = serde_json::from_str("\"Bo\\u0007b\"").expect("stored before the rule");
        assert_eq!(old.as_str(), "Bo\u{7}b");
    }

    #[test]
    fn control_characters_are_refused_and_named() {
        for bad in [
            "ab\u{0}cd",
            "a\u{7}bc",
            "\u{1b}[31mred",
            "ab\u{7f}c",
            "ab\u{85}c",
            "ab\ncd",
            "ab\tcd",
        ] {
            let err = Name::parse(bad).expect_err(bad);
            assert!(err.contains("U+"), "{bad:?}: {err}");
        }
        assert_eq!(
            Name::parse("ab\u{0}cd").expect_err("NUL"),
            "must not contain control or bidirectional-control characters, found U+0000 at character 3"
        );
    }

    #[test]
    fn bidirectional_controls_are_refused() {
        for c in ('\u{202A}'..='\u{202E}').chain('\u{2066}'..='\u{2069}') {
            assert!(
                Name::parse(&format!("ab{c}cd")).is_err(),
                "U+{:04X}",
                u32::from(c)
            );
            assert!(Text::<3, 200, MultiLine>::parse(&format!("ab{c}cd")).is_err());
        }
        // Neighbours of the ranges, and the marks that only set a direction, are fine.
        for c in [
            '\u{2029}', '\u{202F}', '\u{2065}', '\u{206A}', '\u{200E}', '\u{200F}',
        ] {
            assert!(
                Name::parse(&format!("ab{c}cd")).is_ok(),
                "U+{:04X}",
                u32::from(c)
            );
        }
    }

    #[test]
    fn a_multi_line_text_keeps_line_feeds_and_tabs_only() {
        type Description = Text<3, 200, MultiLine>;
        let kept = Description::parse("  one\n\ttwo\n ").expect("line feed and tab");
        assert_eq!(kept.as_str(), "one\n\ttwo");
        for bad in ["one\rtwo", "one\u{0}two", "one\u{b}two", "one\u{85}two"] {
            assert!(Description::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn surrounding_white_space_is_trimmed_before_the_character_rule() {
        assert_eq!(
            Name::parse("\n\tAda\r\n").map(|t| t.as_str().to_owned()),
            Ok("Ada".into())
        );
        assert_eq!(
            Name::parse("\u{85}Ada\u{85}").map(|t| t.as_str().to_owned()),
            Ok("Ada".into())
        );
    }

    #[test]
    fn the_refused_ranges_are_category_cc_and_the_bidi_controls() {
        let bidi = |c: char| BIDI_OVERRIDES.contains(&c) || BIDI_ISOLATES.contains(&c);
        for c in (0..=0x10FFFF).filter_map(char::from_u32) {
            let line_break = matches!(c, '\n' | '\t');
            assert_eq!(
                is_allowed::<OneLine>(c),
                !c.is_control() && !bidi(c),
                "{c:?}"
            );
            assert_eq!(
                is_allowed::<MultiLine>(c),
                (!c.is_control() || line_break) && !bidi(c),
                "{c:?}"
            );
        }
    }

    #[test]
    fn stored_values_keep_their_characters() {
        assert_eq!(
            Name::stored("ab\u{202E}cd").map(|t| t.as_str().to_owned()),
            Ok("ab\u{202E}cd".into())
        );
        assert!(Name::stored("ab").is_err());
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

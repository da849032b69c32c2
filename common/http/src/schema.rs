//! JSON Schemas (as OpenAPI 3.0 uses them) of the values the API reads and shows, built from
//! the rules themselves (`nis_core::validation`, `nis_core::ids`) so a document cannot drift
//! from the code. What a request may send is described exactly as the service reads it —
//! surrounding white space is trimmed first, then the length and character rules apply
//! (docs/behaviour.md §2) — so a schema-driven client or fuzzer finds no gap between the two.

use std::ops::RangeInclusive;

use nis_core::{
    EntityId,
    validation::{Lines, TextRule},
};
use serde_json::{Value, json};

/// The characters `str::trim` removes: Unicode `White_Space`, as Rust's `char::is_whitespace`.
/// Spelled out because a regular expression's `\s` differs between engines (ECMA 262 adds
/// U+FEFF, Python adds U+001C–U+001F).
const WHITE_SPACE: [RangeInclusive<char>; 10] = [
    '\u{9}'..='\u{D}',
    ' '..=' ',
    '\u{85}'..='\u{85}',
    '\u{A0}'..='\u{A0}',
    '\u{1680}'..='\u{1680}',
    '\u{2000}'..='\u{200A}',
    '\u{2028}'..='\u{2029}',
    '\u{202F}'..='\u{202F}',
    '\u{205F}'..='\u{205F}',
    '\u{3000}'..='\u{3000}',
];

/// The ranges as the inside of a regular-expression character class, every character as a
/// `\uXXXX` escape (which ECMA 262 and Python read alike).
fn class(ranges: &[RangeInclusive<char>]) -> String {
    let escape = |c: char| format!("\\u{:04x}", u32::from(c));
    ranges
        .iter()
        .map(|r| {
            if r.start() == r.end() {
                escape(*r.start())
            } else {
                format!("{}-{}", escape(*r.start()), escape(*r.end()))
            }
        })
        .collect()
}

/// One field of an entity (besides `id`) in the OpenAPI document: how the API shows it and
/// how a request may send it.
#[derive(Debug, Clone)]
pub struct FieldSchema {
    /// Its JSON name.
    pub name: &'static str,
    /// Its schema in a response.
    pub shown: Value,
    /// Its schema in a request body.
    pub input: Value,
    /// Whether a request must send it.
    pub required: bool,
}

/// A required text field of rule `T`.
pub fn text<T: TextRule>(name: &'static str) -> FieldSchema {
    FieldSchema {
        name,
        shown: text_stored::<T>(),
        input: text_input::<T>(),
        required: true,
    }
}

/// An optional list of at most `max` ids of kind `I`.
pub fn id_list<I: EntityId>(name: &'static str, max: usize) -> FieldSchema {
    FieldSchema {
        name,
        shown: id_list_stored::<I>(max),
        input: id_list_input::<I>(max),
        required: false,
    }
}

/// A text field as a request may send it: any surrounding white space, then `T::MIN..=T::MAX`
/// characters that start and end with a character that is neither white space nor refused,
/// with no refused character between.
fn text_input<T: TextRule>() -> Value {
    let (space, refused) = (class(&WHITE_SPACE), class(<T::Lines as Lines>::REFUSED));
    let edge = format!("[^{space}{refused}]");
    let pattern = format!(
        "^[{space}]*{edge}[^{refused}]{{{},{}}}{edge}[{space}]*$",
        T::MIN - 2,
        T::MAX - 2
    );
    let kept = if <T::Lines as Lines>::BREAKS {
        "; line feed and tab are kept"
    } else {
        ""
    };
    json!({
        "type": "string",
        "minLength": T::MIN,
        "pattern": pattern,
        "description": format!(
            "{}–{} characters after trimming surrounding white space; no control characters \
             (Unicode Cc) or bidirectional overrides/isolates (U+202A–U+202E, U+2066–U+2069){kept}",
            T::MIN, T::MAX
        ),
    })
}

/// A text field as the API shows it: trimmed, `T::MIN..=T::MAX` characters. Values stored
/// before the character rule keep their characters, so none is promised here.
fn text_stored<T: TextRule>() -> Value {
    json!({ "type": "string", "minLength": T::MIN, "maxLength": T::MAX })
}

/// An id, as a path segment or shown in a body.
pub fn id<I: EntityId>() -> Value {
    json!({ "type": "string", "pattern": I::PATTERN })
}

/// A list of at most `max` ids as a request may send it: each entry may carry surrounding
/// white space; duplicates are allowed (they collapse); `null` means an empty list.
fn id_list_input<I: EntityId>(max: usize) -> Value {
    let space = class(&WHITE_SPACE);
    let bare = I::PATTERN.trim_start_matches('^').trim_end_matches('$');
    json!({
        "type": "array",
        "nullable": true,
        "maxItems": max,
        "items": { "type": "string", "pattern": format!("^[{space}]*{bare}[{space}]*$") },
        "description": format!(
            "at most {max} entries; duplicates collapse, first occurrence kept; null or left \
             out means none"
        ),
    })
}

/// A list of ids as the API shows it: distinct, lowercase, at most `max`.
fn id_list_stored<I: EntityId>(max: usize) -> Value {
    json!({ "type": "array", "maxItems": max, "uniqueItems": true, "items": id::<I>() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn white_space_is_what_trim_removes() {
        for c in (0..=0x10FFFF).filter_map(char::from_u32) {
            let listed = WHITE_SPACE.iter().any(|r| r.contains(&c));
            assert_eq!(listed, c.is_whitespace(), "{c:?}");
        }
    }

    #[test]
    fn classes_escape_every_character() {
        assert_eq!(
            class(&['a'..='a', '\u{0}'..='\u{1f}']),
            "\\u0061\\u0000-\\u001f"
        );
    }
}

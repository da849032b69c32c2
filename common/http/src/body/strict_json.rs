//! JSON parsing that refuses an object with a repeated key, at any depth.
//!
//! `serde_json` keeps the last of repeated keys without a word, and neither it nor a
//! well-kept crate offers a refusing mode for untyped values (`serde_with`'s
//! `maps_duplicate_key_is_error` covers one typed map, not the nested values of a body). A
//! repeated key is ambiguous: a gateway or another parser may read the first value where this
//! service reads the last, so a request could be checked as one thing and stored as another
//! (docs/behaviour.md §3). Hence this small visitor, which builds the same `Value` as
//! `serde_json` does but fails on the second occurrence of a key.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Parses `bytes` as one JSON value, refusing repeated keys.
pub fn from_slice(bytes: &[u8]) -> serde_json::Result<Value> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = StrictValue.deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(value)
}

/// The message of the error for a repeated `key`, so callers can tell it from a syntax error.
pub fn duplicate_key_message(key: &str) -> String {
    format!("the key `{key}` appears more than once in an object")
}

struct StrictValue;

impl<'de> DeserializeSeed<'de> for StrictValue {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictValue {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        // JSON has no NaN or infinity, so a parsed float is always a number.
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(StrictValue)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(de::Error::custom(duplicate_key_message(&key)));
            }
            let value = map.next_value_seed(StrictValue)?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn reads_what_serde_json_reads() {
        let text = r#"{"a": [1, -2, 3.5, "x", null, true, {"b": {}}], "c": "\u00e9"}"#;
        assert_eq!(
            from_slice(text.as_bytes()).expect("valid"),
            serde_json::from_str::<Value>(text).expect("valid")
        );
        assert_eq!(from_slice(b" [] ").expect("valid"), json!([]));
    }

    #[test]
    fn a_repeated_key_is_refused_at_any_depth() {
        for text in [
            r#"{"name": "a", "name": "b"}"#,
            r#"{"x": {"name": 1, "name": 2}}"#,
            r#"[{"name": 1, "name": 1}]"#,
        ] {
            let err = from_slice(text.as_bytes()).expect_err(text);
            assert!(
                err.to_string().contains("`name` appears more than once"),
                "{err}"
            );
        }
        // The same key in two different objects is fine.
        assert!(from_slice(br#"{"a": {"k": 1}, "b": {"k": 2}}"#).is_ok());
    }

    #[test]
    fn trailing_data_and_invalid_utf8_are_syntax_errors() {
        assert!(from_slice(b"{} {}").is_err());
        assert!(from_slice(b"{\"name\": \"\xff\"}").is_err());
    }
}

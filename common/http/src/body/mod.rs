//! Reading a JSON request body: media type, size limit, syntax, then field by field, so that
//! each problem gets the status docs/behaviour.md §3 gives it (415, 413, 400, 422).

mod strict_json;

use actix_web::{HttpMessage as _, HttpRequest, http::header, mime, web};
use futures::StreamExt as _;
use serde_json::{Map, Value};

use nis_core::{Error, FieldError};

use crate::error::ApiError;

/// The largest request body accepted.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Reads the body of `req` as a JSON object.
pub async fn json_object(
    req: &HttpRequest,
    mut payload: web::Payload,
) -> Result<JsonFields, ApiError> {
    if !is_utf8_json(req) {
        return Err(ApiError::UnsupportedMediaType);
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > MAX_BODY_BYTES) {
        return Err(ApiError::PayloadTooLarge(MAX_BODY_BYTES));
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| Error::BadRequest(format!("cannot read the request body: {e}")))?;
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(ApiError::PayloadTooLarge(MAX_BODY_BYTES));
        }
        body.extend_from_slice(&chunk);
    }
    match strict_json::from_slice(&body) {
        Ok(Value::Object(map)) => Ok(JsonFields::new(map)),
        Ok(_) => Err(Error::invalid_field("body", "must be a JSON object").into()),
        // A repeated key is well-formed JSON with an ambiguous meaning: said as such.
        Err(e) if e.is_data() => Err(Error::BadRequest(e.to_string()).into()),
        Err(e) => Err(Error::BadRequest(format!("malformed JSON: {e}")).into()),
    }
}

/// Whether the request says its body is JSON in UTF-8: `application/json`, with no `charset`
/// or `charset=utf-8` (any case, quoted or not). JSON exchanged between systems is UTF-8
/// (RFC 8259 §8.1), so a body declared in another charset is refused rather than misread.
fn is_utf8_json(req: &HttpRequest) -> bool {
    let Ok(Some(mime)) = req.mime_type() else {
        return false;
    };
    mime.essence_str() == mime::APPLICATION_JSON.essence_str()
        && mime
            .get_param(mime::CHARSET)
            .is_none_or(|charset| charset == mime::UTF_8)
}

/// The fields of a JSON object, taken one by one; type mistakes and unknown fields are
/// collected and reported together by [`JsonFields::finish`].
#[derive(Debug)]
pub struct JsonFields {
    map: Map<String, Value>,
    problems: Vec<FieldError>,
}

impl JsonFields {
    /// Wraps a parsed object.
    pub fn new(map: Map<String, Value>) -> Self {
        Self {
            map,
            problems: Vec::new(),
        }
    }

    /// Takes a field as it is (`null` counts as absent).
    pub fn take(&mut self, name: &str) -> Option<Value> {
        self.map.remove(name).filter(|v| !v.is_null())
    }

    /// Takes a string field.
    pub fn text(&mut self, name: &str) -> Option<String> {
        match self.take(name)? {
            Value::String(s) => Some(s),
            _ => {
                self.problem(name, "must be a string");
                None
            }
        }
    }

    /// Takes an array-of-strings field.
    pub fn text_list(&mut self, name: &str) -> Option<Vec<String>> {
        let Value::Array(items) = self.take(name)? else {
            self.problem(name, "must be an array of strings");
            return None;
        };
        let mut out = Vec::with_capacity(items.len());
        for (index, item) in items.into_iter().enumerate() {
            match item {
                Value::String(s) => out.push(s),
                _ => self.problem(&format!("{name}[{index}]"), "must be a string"),
            }
        }
        Some(out)
    }

    /// Records a problem with a field.
    pub fn problem(&mut self, field: &str, message: &str) {
        self.problems.push(FieldError::new(field, message));
    }

    /// Ends reading: every field not taken is unknown; any problem is a validation error.
    pub fn finish(mut self) -> Result<(), Error> {
        let unknown: Vec<String> = self.map.keys().cloned().collect();
        for field in unknown {
            self.problem(&field, "unknown field");
        }
        if self.problems.is_empty() {
            Ok(())
        } else {
            Err(Error::Validation(self.problems))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(json: &str) -> JsonFields {
        match serde_json::from_str(json) {
            Ok(Value::Object(map)) => JsonFields::new(map),
            other => panic!("not an object: {other:?}"),
        }
    }

    #[test]
    fn wrong_types_and_unknown_fields_are_named() {
        let mut f = fields(r#"{"name": 5, "ids": ["a", 3], "extra": true, "none": null}"#);
        assert_eq!(f.text("name"), None);
        assert_eq!(f.text_list("ids"), Some(vec!["a".to_owned()]));
        assert_eq!(f.text("none"), None);
        let err = f.finish().expect_err("three problems");
        let named: Vec<_> = err.details().iter().map(|d| d.field.as_str()).collect();
        assert_eq!(named, ["name", "ids[1]", "extra"]);
    }

    #[test]
    fn only_utf8_json_is_json() {
        let with = |content_type: &str| {
            let req = actix_web::test::TestRequest::default()
                .insert_header((header::CONTENT_TYPE, content_type))
                .to_http_request();
            is_utf8_json(&req)
        };
        for yes in [
            "application/json",
            "Application/JSON",
            "application/json; charset=utf-8",
            "application/json;charset=UTF-8",
            "application/json; charset=\"utf-8\"",
        ] {
            assert!(with(yes), "{yes}");
        }
        for no in [
            "application/json; charset=latin1",
            "application/json; charset=utf-16",
            "text/json",
            "application/jsonx",
            "application/merge-patch+json",
            "application/json;;;",
            "",
        ] {
            assert!(!with(no), "{no}");
        }
        assert!(!is_utf8_json(
            &actix_web::test::TestRequest::default().to_http_request()
        ));
    }

    #[test]
    fn a_clean_object_passes() {
        let mut f = fields(r#"{"name": "Ada"}"#);
        assert_eq!(f.text("name").as_deref(), Some("Ada"));
        assert!(f.finish().is_ok());
    }
}

//! The headers of versions, conditional requests and idempotent creates (docs/behaviour.md §3,
//! "Versions and conditional requests", "Idempotent creates"): a strong `ETag` from the
//! entity's version, `If-Match` (RFC 9110 §13.1.1) as the core's [`Expected`],
//! `If-None-Match` on reads (§13.1.2), and the `Idempotency-Key` of a create.

use actix_web::HttpRequest;
use nis_core::{
    Error,
    conditions::Expected,
    idempotency::{self, IdempotencyKey},
};

/// The strong entity tag of an entity at `version`, as the `ETag` header shows it: `"<n>"`.
pub fn etag(version: i64) -> String {
    format!("\"{version}\"")
}

/// One entity tag of a list.
struct Tag<'a> {
    weak: bool,
    /// Between the quotes.
    opaque: &'a str,
}

/// What `If-Match` or `If-None-Match` holds.
enum Tags<'a> {
    /// `*`.
    Any,
    /// The tags listed; none when the value is not a list of entity tags.
    Listed(Vec<Tag<'a>>),
}

/// Reads list header `name` (every line of it, as one comma-separated list): `None` when the
/// request has none. `*` alone, or tags `"…"` / `W/"…"` of visible ASCII except `"`,
/// separated by commas and spaces (RFC 9110 §8.8.3). A value that is not such a list names no
/// version: a condition on it is never met, so `If-Match` refuses the write (412) and
/// `If-None-Match` lets the read answer in full, as HTTP servers commonly read one.
fn tags<'a>(req: &'a HttpRequest, name: &str) -> Option<Tags<'a>> {
    let lines: Vec<&str> = req
        .headers()
        .get_all(name)
        .map(|value| value.to_str().unwrap_or(""))
        .collect();
    match lines[..] {
        [] => None,
        [only] if only.trim_matches(' ') == "*" => Some(Tags::Any),
        _ => Some(Tags::Listed(
            lines
                .iter()
                .map(|line| entity_tags(line))
                .collect::<Option<Vec<_>>>()
                .map(|lists| lists.into_iter().flatten().collect())
                .unwrap_or_default(),
        )),
    }
}

/// The tags of one header line, or `None` when it is not a list of them.
fn entity_tags(line: &str) -> Option<Vec<Tag<'_>>> {
    let mut tags = Vec::new();
    let mut rest = line.trim_matches(' ');
    loop {
        let (weak, quoted) = match rest.strip_prefix("W/") {
            Some(after) => (true, after),
            None => (false, rest),
        };
        let inside = quoted.strip_prefix('"')?;
        let end = inside.find('"')?;
        let opaque = &inside[..end];
        if !opaque
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x7e).contains(&b))
        {
            return None;
        }
        tags.push(Tag { weak, opaque });
        rest = inside[end + 1..].trim_start_matches(' ');
        if rest.is_empty() {
            return Some(tags);
        }
        rest = rest.strip_prefix(',')?.trim_start_matches(' ');
    }
}

/// The version a strong tag names (a weak one, or any other tag, names none).
fn version_of(tag: &Tag<'_>) -> Option<i64> {
    (!tag.weak).then(|| tag.opaque.parse().ok()).flatten()
}

/// What `If-Match` asks of the entity (none when absent): `*` is "exists", a list of tags is
/// "at one of these versions" by the strong comparison, so a weak tag never matches.
pub fn expected(req: &HttpRequest) -> Expected {
    match tags(req, "if-match") {
        None => Expected::Unconditional,
        Some(Tags::Any) => Expected::Exists,
        Some(Tags::Listed(tags)) => Expected::OneOf(tags.iter().filter_map(version_of).collect()),
    }
}

/// Whether `If-None-Match` matches an entity at `version` (a read then answers 304): `*`
/// matches any, a list of tags by the weak comparison (`W/"3"` matches version 3).
pub fn not_modified(req: &HttpRequest, version: i64) -> bool {
    let current = version.to_string();
    match tags(req, "if-none-match") {
        None => false,
        Some(Tags::Any) => true,
        Some(Tags::Listed(tags)) => tags.iter().any(|tag| tag.opaque == current),
    }
}

/// The idempotency key of a create, if it has one; sent twice or malformed is a bad request.
pub fn idempotency_key(req: &HttpRequest) -> Result<Option<IdempotencyKey>, Error> {
    let values = req.headers().get_all(idempotency::HEADER);
    idempotency::from_values(values.map(|v| v.to_str().ok()))
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    fn with(name: &str, values: &[&str]) -> HttpRequest {
        values
            .iter()
            .fold(TestRequest::default(), |r, v| r.append_header((name, *v)))
            .to_http_request()
    }

    #[test]
    fn if_match_reads_star_strong_tags_and_ignores_weak_ones() {
        let expect = |values: &[&str]| expected(&with("if-match", values));
        assert_eq!(expect(&[]), Expected::Unconditional);
        assert_eq!(expect(&["*"]), Expected::Exists);
        assert_eq!(expect(&["\"3\""]), Expected::OneOf(vec![3]));
        assert_eq!(
            expect(&["\"3\", W/\"4\" ,\"x,y\"", "\"5\""]),
            Expected::OneOf(vec![3, 5])
        );
        // Not a list of tags: a condition no version meets.
        for odd in [
            "",
            "3",
            "\"3",
            "c,^s#jbpkumhl",
            "\"a b\"",
            "\"3\",",
            "*, \"3\"",
            "W/3",
        ] {
            assert_eq!(expect(&[odd]), Expected::OneOf(vec![]), "{odd:?}");
        }
    }

    #[test]
    fn if_none_match_compares_weakly() {
        let matches = |values: &[&str]| not_modified(&with("if-none-match", values), 3);
        assert!(!matches(&[]));
        assert!(matches(&["*"]));
        assert!(matches(&["W/\"3\""]));
        assert!(matches(&["\"2\", \"3\""]));
        assert!(matches(&["W/\"K3,Sf\", \"3\""]));
        assert!(!matches(&["\"2\""]));
        assert!(!matches(&["\":BSiYk #x"]));
    }

    #[test]
    fn the_etag_is_the_version_quoted() {
        assert_eq!(etag(7), "\"7\"");
    }
}

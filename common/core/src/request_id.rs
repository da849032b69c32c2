//! Request ids, the same for every transport: a caller's `x-request-id` is kept when it is
//! sane, otherwise a new one is made (docs/behaviour.md §7).

/// The header (and gRPC metadata key, and message header) that carries the request id.
pub const HEADER: &str = "x-request-id";

/// Accepts a caller's id only if it is short printable ASCII, so it is safe in logs and headers;
/// makes a new one otherwise.
pub fn sanitize(raw: Option<&str>) -> String {
    raw.filter(|id| !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_graphic()))
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sane_ids_are_kept_and_others_replaced() {
        assert_eq!(sanitize(Some("abc-123")), "abc-123");
        for bad in [
            None,
            Some(""),
            Some("has space"),
            Some("é"),
            Some(&*"x".repeat(129)),
        ] {
            let made = sanitize(bad);
            assert!(uuid::Uuid::parse_str(&made).is_ok(), "{bad:?} → {made}");
        }
    }
}

//! Pagination: `limit` 1..=500 (default 50) and `offset` from 0.

use crate::error::Error;

/// One page of a list, oldest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Page {
    /// How many entities at most.
    pub limit: u32,
    /// How many to skip.
    pub offset: u64,
}

impl Page {
    /// The limit used when none is given.
    pub const DEFAULT_LIMIT: u32 = 50;
    /// The largest limit accepted.
    pub const MAX_LIMIT: u32 = 500;
    /// The largest offset accepted (what the stores can address).
    pub const MAX_OFFSET: u64 = i64::MAX as u64;

    /// A page from already-parsed numbers; `None` means the default.
    pub fn new(limit: Option<u32>, offset: Option<u64>) -> Result<Self, Error> {
        let limit = limit.unwrap_or(Self::DEFAULT_LIMIT);
        if !(1..=Self::MAX_LIMIT).contains(&limit) {
            return Err(Error::BadRequest(format!(
                "limit must be between 1 and {}",
                Self::MAX_LIMIT
            )));
        }
        let offset = offset.unwrap_or(0);
        if offset > Self::MAX_OFFSET {
            return Err(Error::BadRequest("offset is too large".into()));
        }
        Ok(Self { limit, offset })
    }

    /// A page from the raw `limit` and `offset` query parameters of an HTTP request.
    pub fn from_query(limit: Option<&str>, offset: Option<&str>) -> Result<Self, Error> {
        let limit = limit
            .map(|raw| {
                raw.parse::<u32>().map_err(|_| {
                    Error::BadRequest(format!(
                        "limit must be a whole number between 1 and {}",
                        Self::MAX_LIMIT
                    ))
                })
            })
            .transpose()?;
        let offset = offset
            .map(|raw| {
                raw.parse::<u64>().map_err(|_| {
                    Error::BadRequest("offset must be a whole number, 0 or more".into())
                })
            })
            .transpose()?;
        Self::new(limit, offset)
    }

    /// A page from a gRPC request, where 0 (the proto default) means the default limit.
    pub fn from_grpc(limit: u32, offset: u64) -> Result<Self, Error> {
        Self::new((limit != 0).then_some(limit), Some(offset))
    }

    /// The offset as the signed integer SQL wants (never fails: checked at construction).
    pub fn offset_i64(&self) -> i64 {
        i64::try_from(self.offset).unwrap_or(i64::MAX)
    }
}

impl Default for Page {
    fn default() -> Self {
        Self {
            limit: Self::DEFAULT_LIMIT,
            offset: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_bounds() {
        assert_eq!(Page::from_query(None, None).ok(), Some(Page::default()));
        assert!(Page::from_query(Some("0"), None).is_err());
        assert!(Page::from_query(Some("501"), None).is_err());
        assert_eq!(
            Page::from_query(Some("500"), Some("7"))
                .map(|p| (p.limit, p.offset))
                .ok(),
            Some((500, 7))
        );
        assert!(Page::from_query(Some("-1"), None).is_err());
        assert!(Page::from_query(None, Some("x")).is_err());
        assert!(Page::from_query(None, Some("-3")).is_err());
        assert!(Page::from_query(None, Some("9223372036854775808")).is_err());
    }

    #[test]
    fn grpc_zero_limit_means_default() {
        assert_eq!(Page::from_grpc(0, 0).map(|p| p.limit).ok(), Some(50));
        assert!(Page::from_grpc(501, 0).is_err());
    }
}
